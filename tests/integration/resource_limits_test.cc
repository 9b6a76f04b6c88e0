// Timeouts, resources and what the logs say about them, on the real binary: writes to a slow
// client bounded by progress (client_write_timeout), in HTTP and in TCP tunnels; accept(2) out
// of descriptors (a lowered RLIMIT_NOFILE): connections shed, counted, logged a bounded number
// of times, service back once descriptors free up; max_connections refusals per listener; the
// access log of responses that broke off and of proxy-generated ones.
#include <dirent.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

#include "integration/harness.h"
#include "support/loopback_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

using namespace std::chrono_literals;

// The first access-log line of `dir` that contains `needle` (polled up to 5 s), or "".
std::string access_line(const std::string& dir, const std::string& needle) {
  for (int i = 0; i < 250; ++i) {
    std::istringstream in(read_file(dir + "/access.log"));
    std::string line;
    while (std::getline(in, line)) {
      if (line.find(needle) != std::string::npos) {
        return line;
      }
    }
    std::this_thread::sleep_for(20ms);
  }
  return "";
}

// The number after `key=` in an access-log line (-1 if absent).
long long field(const std::string& line, const std::string& key) {
  const std::size_t at = line.find(" " + key + "=");
  return at == std::string::npos ? -1 : std::atoll(line.c_str() + at + key.size() + 2);
}

// A small, fixed receive buffer: the client's TCP window stays small, so when it reads slowly
// tlsfront's writes really wait on it (no multi-megabyte autotuned buffer absorbs them).
void small_receive_buffer(tls_client& c) {
  int size = 64 * 1024;
  ::setsockopt(SSL_get_fd(c.ssl()), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
}

// Reads a response head byte by byte (so no body byte is taken with it).
std::string read_head(tls_client& c) {
  std::string head;
  while (head.size() < 16384 && (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n"))) {
    std::string b = c.read_exact(1);
    if (b.empty()) {
      break;
    }
    head += b;
  }
  return head;
}

// Reads `n` bytes: `fast` of them at once, then 8 KB every 50 ms (160 KB/s) for `slow`, then the
// rest at once. Returns how many arrived before the stream ended.
std::size_t read_with_a_slow_phase(tls_client& c, std::size_t n, std::size_t fast,
                                   std::chrono::milliseconds slow, std::string* data = nullptr) {
  std::size_t got = 0;
  auto take = [&](std::size_t want) {
    std::string s = c.read_exact(want);
    got += s.size();
    if (data != nullptr) {
      *data += s;
    }
    return s.size() == want;
  };
  if (!take(fast)) {
    return got;
  }
  const auto until = std::chrono::steady_clock::now() + slow;
  while (std::chrono::steady_clock::now() < until) {
    if (!take(std::min<std::size_t>(8192, n - got))) {
      return got;
    }
    std::this_thread::sleep_for(50ms);
  }
  take(n - got);
  return got;
}

constexpr std::size_t kBig = 16u << 20;  // more than any socket buffers hold

// Asks the echo backend for kBig bytes on `c` (with a small receive buffer) and reads the head.
testing::AssertionResult start_big_download(tls_client& c) {
  if (!c.connected()) {
    return testing::AssertionFailure() << c.error();
  }
  small_receive_buffer(c);
  if (!c.send("GET /bytes/" + std::to_string(kBig) + " HTTP/1.1\r\nHost: a\r\n\r\n")) {
    return testing::AssertionFailure() << "cannot send the request";
  }
  const std::string head = read_head(c);
  if (response_status(head) != 200 ||
      response_header(head, "Content-Length") != std::to_string(kBig)) {
    return testing::AssertionFailure() << "unexpected head: " << head;
  }
  return testing::AssertionSuccess();
}

TEST(ClientWriteTimeout, ASlowButSteadyReaderGetsTheWholeBody) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  // Both client timeouts short: before client_write_timeout existed, client_read_timeout bounded
  // each write to the client as a whole, and one write to a reader this slow takes seconds. 2 s,
  // not 1 s: under ThreadSanitizer, with another test running beside it, tlsfront once saw no
  // progress from this reader for a whole second and cut it.
  proxy_instance p(
      default_config(b.address(), "client_read_timeout = \"2s\"\nclient_write_timeout = \"2s\"\n"),
      dir);
  tls_client c(p.port());
  ASSERT_TRUE(start_big_download(c));
  // 6 s of slow reading: three times the timeout.
  EXPECT_EQ(read_with_a_slow_phase(c, kBig, 1 << 20, 6000ms), kBig);
  EXPECT_EQ(p.metric("tlsfront_client_write_timeouts_total{listener=\"https\"}"), 0);
  const std::string line = access_line(dir, "path=\"/bytes/" + std::to_string(kBig) + "\"");
  EXPECT_EQ(field(line, "bytes_sent"), static_cast<long long>(kBig)) << line;
  EXPECT_EQ(line.find("aborted="), std::string::npos) << line;
}

TEST(ClientWriteTimeout, AReaderThatStopsIsCutCountedAndLoggedAsAborted) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address(), "client_write_timeout = \"1s\"\n"), dir);
  tls_client c(p.port());
  ASSERT_TRUE(start_big_download(c));
  ASSERT_EQ(c.read_exact(100000).size(), 100000u);
  // The client stops reading: cut about a second later.
  EXPECT_GE(p.metric_reaching("tlsfront_client_write_timeouts_total{listener=\"https\"}", 1), 1);
  const std::string rest = c.read_all();  // what was in flight, then the close
  EXPECT_LT(100000 + rest.size(), kBig);
  const std::string line = access_line(dir, "path=\"/bytes/" + std::to_string(kBig) + "\"");
  EXPECT_NE(line.find(" status=200 "), std::string::npos) << line;
  EXPECT_NE(line.find(" aborted=1"), std::string::npos) << line;
  EXPECT_GE(field(line, "bytes_sent"), 100000);
  EXPECT_LT(field(line, "bytes_sent"), static_cast<long long>(kBig)) << line;
  // Other clients are served as before.
  EXPECT_EQ(response_status(https_request(p.port(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n")), 200);
}

// A TCP-mode backend that sends `size` pattern bytes on each connection, then closes.
class blob_backend {
 public:
  explicit blob_backend(std::size_t size) : size_(size) {}
  std::string address() const { return server_.address(); }
  static char at(std::size_t i) { return static_cast<char>('a' + (i * 7 + i / 4093) % 26); }

 private:
  void serve(int fd) {
    std::string chunk(65536, '\0');
    for (std::size_t off = 0; off < size_;) {
      const std::size_t n = std::min(chunk.size(), size_ - off);
      for (std::size_t i = 0; i < n; ++i) {
        chunk[i] = at(off + i);
      }
      std::size_t sent = 0;
      while (sent < n) {
        const ssize_t r = ::send(fd, chunk.data() + sent, n - sent, MSG_NOSIGNAL);
        if (r <= 0) {
          return;  // tlsfront cut the tunnel
        }
        sent += static_cast<std::size_t>(r);
      }
      off += n;
    }
  }
  std::size_t size_;
  loopback_server server_{[this](int c) { serve(c); }};
};

std::string tcp_mode_config(const std::string& backend) {
  return "[server]\nthreads = 2\n[admin]\nlisten = \"127.0.0.1:0\"\n"
         "[log]\nerror_log = \"stderr\"\naccess_log = \"{dir}/access.log\"\n"
         "[limits]\nclient_write_timeout = \"1s\"\n"
         "[[listener]]\nname = \"tunnel\"\nlisten = \"127.0.0.1:0\"\nmode = \"tcp\"\n"
         "pool = \"blob\"\n"
         "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n"
         "[[pool]]\nname = \"blob\"\nread_timeout = \"1s\"\nservers = [\"" +
         backend + "\"]\n";
}

TEST(ClientWriteTimeout, TunnelToASlowReaderIsNeitherIdleNorCutButToAStoppedOneIsCut) {
  std::string dir = make_temp_dir();
  blob_backend backend(kBig);
  proxy_instance p(tcp_mode_config(backend.address()), dir);
  {
    // Reading slowly for 3 s, against an idle timeout (read_timeout) and a write timeout of 1 s:
    // the tunnel moves, so neither cuts it.
    tls_client c(p.port("tunnel"), client("a.example", TLS1_3_VERSION));
    ASSERT_TRUE(c.connected()) << c.error();
    small_receive_buffer(c);
    std::string data;
    ASSERT_EQ(read_with_a_slow_phase(c, kBig, 1 << 20, 3000ms, &data), kBig);
    bool same = true;
    for (std::size_t i = 0; i < data.size() && same; ++i) {
      same = data[i] == blob_backend::at(i);
    }
    EXPECT_TRUE(same);
    EXPECT_TRUE(c.wait_closed(5000));  // the backend closed after its last byte
  }
  EXPECT_EQ(p.metric("tlsfront_client_write_timeouts_total{listener=\"tunnel\"}"), 0);
  {
    // A reader that stops, while the backend still has bytes: cut after the write timeout.
    tls_client c(p.port("tunnel"), client("a.example", TLS1_3_VERSION));
    ASSERT_TRUE(c.connected()) << c.error();
    small_receive_buffer(c);
    ASSERT_EQ(c.read_exact(100000).size(), 100000u);
    EXPECT_GE(p.metric_reaching("tlsfront_client_write_timeouts_total{listener=\"tunnel\"}", 1), 1);
    EXPECT_LT(100000 + c.read_all().size(), kBig);
  }
  const std::string line = access_line(dir, " aborted=1");
  EXPECT_NE(line.find("method=\"TCP\""), std::string::npos) << line;
}

// --- accept(2) out of descriptors ---

int open_descriptors(pid_t pid) {
  int n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (dirent* e = ::readdir(d)) {
      n += e->d_name[0] != '.';
    }
    ::closedir(d);
  }
  return n;
}

// True if tlsfront closed (or reset) the connection within `timeout`; false if it hangs.
bool closed_by_peer(int fd, std::chrono::milliseconds timeout) {
  pollfd pfd{fd, POLLIN, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0) {
    return false;
  }
  char buf[256];
  return ::recv(fd, buf, sizeof buf, MSG_DONTWAIT) <= 0;
}

int count_lines_with(const std::string& text, const std::string& needle) {
  int n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST(AcceptLimits, OutOfDescriptorsNewConnectionsAreShedCountedLoggedBoundedAndServiceResumes) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  // The sanitizer runtimes need descriptors of their own (UBSan's vptr check probes memory
  // through a pipe): in a process out of descriptors they report errors that are not there.
  GTEST_SKIP() << "runs on the release build only: sanitizers need free descriptors";
#endif
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address(), "", "", 1), dir);
  // Warm up: the pooled backend connection and whatever opens lazily is open now.
  ASSERT_EQ(response_status(https_request(p.port(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n")), 200);
  const pid_t pid = p.proc().pid();
  const rlim_t limit = static_cast<rlim_t>(open_descriptors(pid) + 4);
  const rlimit lim{limit, limit};
  ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &lim, nullptr), 0);

  // Fill the descriptors with connections that stay open.
  std::vector<std::unique_ptr<tls_client>> held;
  tls_client::options quick;
  quick.timeout_ms = 3000;
  for (int i = 0; i < 20; ++i) {
    auto c = std::make_unique<tls_client>(p.port(), quick);
    if (!c->connected()) {
      break;
    }
    held.push_back(std::move(c));
  }
  ASSERT_LT(held.size(), 20u) << "the descriptor limit did not bite";

  // Out of descriptors: every new connection is closed at once, not left in the backlog.
  int shed = 0;
  for (int i = 0; i < 10; ++i) {
    const int fd = connect_tcp(p.port());
    ASSERT_GE(fd, 0);
    (void)!::send(fd, "\x16\x03\x01", 3, MSG_NOSIGNAL);  // bytes, so TCP_DEFER_ACCEPT hands it over
    shed += closed_by_peer(fd, 10s);
    ::close(fd);
  }
  EXPECT_EQ(shed, 10);

  // Descriptors free up: service resumes (after the current back-off, at most a second).
  held.clear();
  int status = 0;
  for (int i = 0; i < 50 && status != 200; ++i) {
    status = response_status(https_request(p.port(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    if (status != 200) {
      std::this_thread::sleep_for(100ms);
    }
  }
  EXPECT_EQ(status, 200);
  EXPECT_GE(p.metric("tlsfront_accept_errors_total{listener=\"https\",reason=\"emfile\"}"), 1);
  EXPECT_GE(p.metric("tlsfront_accept_shed_total{listener=\"https\"}"), 10);
  EXPECT_EQ(p.metric("tlsfront_accept_errors_total{listener=\"https\",reason=\"other\"}"), 0);
  // Many failed accepts over a few seconds: one line per 5 s at most (it was one per 50 ms).
  const std::string log = p.log_containing("waiting connection(s) shed");
  const int lines = count_lines_with(log, "accept on https: ");
  EXPECT_GE(lines, 1) << log;
  EXPECT_LE(lines, 4) << log;
  EXPECT_NE(log.find("waiting connection(s) shed"), std::string::npos) << log;
}

// --- max_connections, per listener ---

TEST(AcceptLimits, MaxConnectionsRefusalsAreCountedPerListener) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  const std::string second =
      "[[listener]]\nname = \"second\"\nlisten = \"127.0.0.1:0\"\n"
      "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n";
  proxy_instance p(default_config(b.address(), "max_connections = 1\n", "", 1) + second, dir);
  tls_client c1(p.port("https"));
  ASSERT_TRUE(c1.connected()) << c1.error();
  tls_client c2(p.port("second"));
  EXPECT_FALSE(c2.connected());  // over the process-wide limit: closed at accept
  tls_client c3(p.port("second"));
  EXPECT_FALSE(c3.connected());
  EXPECT_EQ(p.metric_reaching("tlsfront_connections_rejected_total{listener=\"second\"}", 2), 2);
  EXPECT_EQ(p.metric("tlsfront_connections_rejected_total{listener=\"https\"}"), 0);
  ASSERT_TRUE(c1.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(response_status(c1.read_response()), 200);
}

// --- the access log of responses that broke off, and of tlsfront's own ---

TEST(AccessLog, ResponseCutShortByTheBackendIsLoggedAbortedWithTheBytesSent) {
  std::string dir = make_temp_dir();
  // Announces 100000 body bytes, sends 5000, closes.
  loopback_server backend([](int fd) {
    std::string in;
    while (in.find("\r\n\r\n") == std::string::npos && read_until_size(fd, in, in.size() + 1)) {
    }
    const std::string out =
        "HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + std::string(5000, 'x');
    (void)!::send(fd, out.data(), out.size(), MSG_NOSIGNAL);
  });
  proxy_instance p(default_config(backend.address()), dir);
  tls_client c(p.port());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.send("GET /short HTTP/1.1\r\nHost: a\r\n\r\n"));
  const std::string r = c.read_all();
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(response_body(r).size(), 5000u);  // then the close: the client sees it short
  const std::string line = access_line(dir, "path=\"/short\"");
  EXPECT_NE(line.find(" status=200 bytes_sent=5000 "), std::string::npos) << line;
  EXPECT_NE(line.find(" aborted=1"), std::string::npos) << line;
  const std::string broke_off = "pool echo: response from " + backend.address() + " broke off";
  const std::string log = p.log_containing(broke_off);
  EXPECT_NE(log.find(broke_off), std::string::npos) << log;
}

TEST(AccessLog, ClientGoneMidBodyIsLoggedAbortedWithLessThanTheBody) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address()), dir);
  {
    tls_client c(p.port());
    ASSERT_TRUE(start_big_download(c));
    ASSERT_EQ(c.read_exact(50000).size(), 50000u);
  }  // closed with unread bytes: a reset
  const std::string line = access_line(dir, "path=\"/bytes/" + std::to_string(kBig) + "\"");
  EXPECT_NE(line.find(" status=200 "), std::string::npos) << line;
  EXPECT_NE(line.find(" aborted=1"), std::string::npos) << line;
  EXPECT_GE(field(line, "bytes_sent"), 50000);
  EXPECT_LT(field(line, "bytes_sent"), static_cast<long long>(kBig)) << line;
}

TEST(AccessLog, ProxyGeneratedResponsesLogTheirBodyBytes) {
  std::string dir = make_temp_dir();
  int port = 0;
  ::close(listen_on_loopback(port));  // nothing listens there: the pool answers 502
  proxy_instance p(default_config("127.0.0.1:" + std::to_string(port)), dir);
  const std::string bad = https_request(p.port(), "NOT A REQUEST\r\n\r\n");
  EXPECT_EQ(response_status(bad), 400) << bad;
  const std::string gw = https_request(p.port(), "GET /gw HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(gw), 502) << gw;
  const std::string l400 = access_line(dir, " status=400 ");
  EXPECT_EQ(field(l400, "bytes_sent"), static_cast<long long>(response_body(bad).size())) << l400;
  const std::string l502 = access_line(dir, "path=\"/gw\"");
  EXPECT_NE(l502.find(" status=502 "), std::string::npos) << l502;
  EXPECT_EQ(field(l502, "bytes_sent"), static_cast<long long>(response_body(gw).size())) << l502;
  EXPECT_GT(response_body(gw).size(), 0u);
  EXPECT_EQ(l502.find("aborted="), std::string::npos) << l502;
}

}  // namespace
}  // namespace tlsfront::test
