// Hot reload (SIGHUP and POST /reload) with real clients running: new connections and kept-alive
// ones keep being served across ten reloads that swap a certificate and add routes and pools;
// sessions made before resume after; listeners are added and removed; a broken config changes
// nothing; [http2] limits reload, and a bad [http2] is refused; SIGUSR1 reopens the log files.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>

#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

// Clients that keep hitting the proxy until stopped: one opening a new TLS connection per
// request, one reusing a keep-alive connection. Every failure is recorded with its reason.
class client_load {
 public:
  explicit client_load(int port) {
    threads_.emplace_back([this, port] {
      while (!stop_) {
        tls_client c(port, client("a.example", TLS1_3_VERSION));
        if (!c.connected()) {
          fail("new connection: " + c.error());
          continue;
        }
        c.send("GET /new HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        check(c.read_response(), "new connection");
      }
    });
    threads_.emplace_back([this, port] {
      while (!stop_) {
        tls_client c(port, client("a.example", TLS1_2_VERSION));
        if (!c.connected()) {
          fail("keep-alive connection: " + c.error());
          continue;
        }
        for (int i = 0; i < 200 && !stop_; ++i) {
          c.send("GET /kept HTTP/1.1\r\nHost: a\r\n\r\n");
          check(c.read_response(), "keep-alive request " + std::to_string(i));
        }
      }
    });
  }
  ~client_load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }
  long ok() const { return ok_; }
  std::vector<std::string> failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }

 private:
  void check(const std::string& response, const std::string& what) {
    if (response_status(response) == 200) {
      ++ok_;
    } else {
      fail(what + ": " + response.substr(0, 200));
    }
  }
  void fail(const std::string& why) {
    std::lock_guard lock(mu_);
    failures_.push_back(why);
  }
  std::atomic<bool> stop_{false};
  std::atomic<long> ok_{0};
  std::mutex mu_;
  std::vector<std::string> failures_;
  std::vector<std::thread> threads_;
};

// A second certificate for b.example (CN "b-reloaded"), self-signed, in `dir`.
void make_second_b_certificate(const std::string& dir) {
  command_result r = run_command(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -keyout " +
      dir + "/b2.key -out " + dir +
      "/b2.crt -subj /CN=b-reloaded -addext "
      "subjectAltName=DNS:b.example 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
}

// The default config with b.example's certificate from `b_cert` and, for each of `routes`
// extra routes, a path /rN served by the pool "second" on `second`.
std::string reload_config(const std::string& backend, const std::string& second,
                          const std::string& b_cert, int routes) {
  std::string c = default_config(backend, "", "", 2);
  const std::string b = "cert = \"{certs}/b.crt\"\n  key = \"{certs}/b.key\"";
  c.replace(c.find(b), b.size(), "cert = \"" + b_cert + ".crt\"\n  key = \"" + b_cert + ".key\"");
  if (routes > 0) {
    c += "[[pool]]\nname = \"second\"\nservers = [\"" + second + "\"]\n";
    // Routes match in order: the specific ones before the catch-all.
    std::string extra;
    for (int i = 0; i < routes; ++i) {
      extra += "[[route]]\npath_prefix = \"/r" + std::to_string(i) + "\"\npool = \"second\"\n";
    }
    c.replace(c.find("[[route]]\npool = \"echo\""), 0, extra);
  }
  return c;
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  std::string dir_;
};

TEST_F(ReloadTest, TenReloadsUnderLoadRefuseNothingAndKeepSessions) {
  make_second_b_certificate(dir_);
  echo_backend b(dir_), second(dir_);
  const std::string original_b = certs_dir() + "/b";
  proxy_instance p(reload_config(b.address(), second.address(), original_b, 0), dir_);
  // Sessions made before any reload: a TLS 1.2 session ID and a TLS 1.3 ticket.
  bssl::UniquePtr<SSL_SESSION> by_id;
  {
    tls_client c(p.port(), tls_client::session_id_only("a.example"));
    ASSERT_TRUE(c.connected()) << c.error();
    c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_EQ(response_status(c.read_response()), 200);
    by_id = c.session();
  }
  auto by_ticket = ticket_session(p.port(), "a.example", TLS1_3_VERSION);
  const std::string first_cn = [&] {
    tls_client c(p.port(), client("b.example", TLS1_3_VERSION));
    return c.peer_common_name();
  }();
  ASSERT_NE(first_cn, "b-reloaded");

  client_load load(p.port());
  for (int i = 1; i <= 10; ++i) {
    const bool swapped = i % 2 == 1;
    p.write_config(
        reload_config(b.address(), second.address(), swapped ? dir_ + "/b2" : original_b, i));
    if (i % 2 == 0) {
      std::string r = p.admin_request("POST", "/reload");
      ASSERT_EQ(response_status(r), 200) << r;
    } else {
      p.proc().signal(SIGHUP);
      ASSERT_GE(p.metric_reaching("tlsfront_reloads_total{result=\"ok\"}", i), i) << p.log();
    }
    EXPECT_EQ(p.metric("tlsfront_reloads_total{result=\"ok\"}"), i);
    // The new certificate and the new route answer at once.
    tls_client c(p.port(), client("b.example", TLS1_3_VERSION));
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_EQ(c.peer_common_name() == "b-reloaded", swapped) << "reload " << i;
    const long before = second.requests();
    c.send("GET /r" + std::to_string(i - 1) + " HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(response_status(c.read_response()), 200);
    EXPECT_EQ(second.requests(), before + 1) << "route /r" << i - 1 << " is not served";
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  // A broken config: refused with its position, nothing changes.
  p.write_config(reload_config(b.address(), second.address(), original_b, 3) +
                 "[[route]]\npool = \"missing\"\n");
  std::string refused = p.admin_request("POST", "/reload");
  EXPECT_EQ(response_status(refused), 400) << refused;
  EXPECT_NE(refused.find("tlsfront.toml:"), std::string::npos) << refused;
  EXPECT_NE(refused.find("missing"), std::string::npos) << refused;
  EXPECT_EQ(p.metric("tlsfront_reloads_total{result=\"refused\"}"), 1);
  {
    const long before = second.requests();
    tls_client c(p.port(), client("a.example", TLS1_3_VERSION));
    c.send("GET /r9 HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(response_status(c.read_response()), 200);
    EXPECT_EQ(second.requests(), before + 1) << "the refused config replaced the running one";
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  load.stop();
  EXPECT_GT(load.ok(), 50);
  const auto failures = load.failures();
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed, first: " << failures.front();

  // Sessions made before the reloads still resume (the cache and ticket keys survive).
  tls_client by_id_again(p.port(), tls_client::session_id_only("a.example", by_id.get()));
  EXPECT_TRUE(by_id_again.resumed());
  EXPECT_TRUE(resumes(p.port(), "a.example", TLS1_3_VERSION, by_ticket.get()));
  EXPECT_TRUE(p.proc().running());
}

TEST_F(ReloadTest, ListenersAreAddedAndRemovedWhileTheOthersStay) {
  echo_backend b(dir_);
  const std::string base = default_config(b.address(), "", "", 2);
  std::string two = base;
  two.replace(
      two.find("[[pool]]"), 0,
      "[[listener]]\nname = \"extra\"\nlisten = \"127.0.0.1:0\"\n"
      "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n");
  proxy_instance p(base, dir_);
  const int https = p.port();
  tls_client kept(https, client("a.example", TLS1_3_VERSION));
  ASSERT_TRUE(kept.connected());

  p.write_config(two);
  p.proc().signal(SIGHUP);
  ASSERT_GE(p.metric_reaching("tlsfront_reloads_total{result=\"ok\"}", 1), 1) << p.log();
  p.read_ports();
  EXPECT_EQ(p.port(), https) << "the kept listener moved";
  const int extra = p.port("extra");
  tls_client on_extra(extra, client("a.example", TLS1_3_VERSION));
  ASSERT_TRUE(on_extra.connected()) << on_extra.error();
  on_extra.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(on_extra.read_response()), 200);

  // Removed: no new connection there; the one open there drains (an idle keep-alive one closes
  // now; HTTP/2 gets GOAWAY, see H2Test); the other listener and its kept-alive connection go
  // on.
  p.write_config(base);
  std::string r = p.admin_request("POST", "/reload");
  ASSERT_EQ(response_status(r), 200) << r;
  EXPECT_LT(connect_tcp(extra), 0) << "the removed listener still accepts";
  EXPECT_TRUE(on_extra.wait_closed(5000)) << "a connection of the removed listener stays open";
  kept.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(kept.read_response()), 200);
  tls_client fresh(https, client("a.example", TLS1_3_VERSION));
  EXPECT_TRUE(fresh.connected()) << fresh.error();

  // A listener that cannot bind (the port is held by a socket without SO_REUSEPORT): the
  // reload is refused, nothing changes.
  int held_port = 0;
  int holder = listen_on_loopback(held_port);
  ASSERT_GE(holder, 0);
  std::string clash = base;
  clash.replace(
      clash.find("[[pool]]"), 0,
      "[[listener]]\nname = \"clash\"\nlisten = \"127.0.0.1:" + std::to_string(held_port) +
          "\"\n  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n"
          "  key = \"{certs}/a.key\"\n");
  p.write_config(clash);
  std::string refused = p.admin_request("POST", "/reload");
  ::close(holder);
  EXPECT_EQ(response_status(refused), 400) << refused;
  EXPECT_NE(refused.find("cannot listen on"), std::string::npos) << refused;
  EXPECT_EQ(p.metric("tlsfront_reloads_total{result=\"refused\"}"), 1);
  kept.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(kept.read_response()), 200);
  tls_client after(https, client("a.example", TLS1_3_VERSION));
  EXPECT_TRUE(after.connected()) << after.error();
}

TEST_F(ReloadTest, ABrokenConfigOnSighupIsLoggedWithItsPositionAndChangesNothing) {
  echo_backend b(dir_);
  proxy_instance p(default_config(b.address()), dir_);
  p.write_config(default_config(b.address()) + "[limits]\nmax_connections = \"many\"\n");
  p.proc().signal(SIGHUP);
  std::string log;
  for (int i = 0; i < 100 && log.find("reload refused") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    log = p.log();
  }
  EXPECT_NE(log.find("reload refused"), std::string::npos) << log;
  EXPECT_NE(log.find("tlsfront.toml:"), std::string::npos) << log;
  EXPECT_EQ(p.metric("tlsfront_reloads_total{result=\"ok\"}"), 0);
  tls_client c(p.port(), client("a.example", TLS1_3_VERSION));
  ASSERT_TRUE(c.connected());
  c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(c.read_response()), 200);
  EXPECT_TRUE(p.proc().running());
}

TEST_F(ReloadTest, Sigusr1ReopensTheLogFilesAfterRotation) {
  echo_backend b(dir_);
  proxy_instance p(default_config(b.address()), dir_);
  auto request = [&] {
    tls_client c(p.port(), client("a.example", TLS1_3_VERSION));
    c.send("GET /marker HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
    return response_status(c.read_response());
  };
  ASSERT_EQ(request(), 200);
  const std::string access = dir_ + "/access.log";
  for (int i = 0; i < 100 && read_file(access).find("/marker") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(::rename(access.c_str(), (access + ".1").c_str()), 0);  // what logrotate does
  p.proc().signal(SIGUSR1);
  std::string fresh;
  for (int i = 0; i < 100 && fresh.find("/marker") == std::string::npos; ++i) {
    ASSERT_EQ(request(), 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    fresh = read_file(access);
  }
  EXPECT_NE(fresh.find("/marker"), std::string::npos) << "nothing was written to the new file";
  EXPECT_NE(read_file(access + ".1").find("/marker"), std::string::npos);
}

TEST_F(ReloadTest, SystemdHearsReadyReloadingAndStopping) {
  // A stand-in for systemd's notification socket.
  const std::string path = dir_ + "/notify";
  int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  auto next = [fd] {
    char buf[256];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("(nothing)");
  };
  ::setenv("NOTIFY_SOCKET", path.c_str(), 1);  // inherited by the tlsfront started next
  echo_backend b(dir_);
  proxy_instance p(default_config(b.address()), dir_);
  ::unsetenv("NOTIFY_SOCKET");
  EXPECT_EQ(next(), "READY=1");
  p.proc().signal(SIGHUP);
  EXPECT_EQ(next(), "RELOADING=1");
  EXPECT_EQ(next(), "READY=1");
  p.proc().signal(SIGTERM);
  EXPECT_EQ(next(), "STOPPING=1");
  EXPECT_EQ(p.proc().wait(std::chrono::seconds(10)), 0);
  ::close(fd);
}

// [http2] is part of the snapshot: a reload that changes it applies (no "next restart"
// warning); one that breaks a rule is refused with its position and the reason, and the proxy
// keeps serving; `tlsfront -t` refuses the same file and one with a value out of range.
TEST_F(ReloadTest, Http2LimitsReloadAndABadOneIsRefusedWithItsPosition) {
  echo_backend b(dir_);
  const std::string base = default_config(b.address()) + "[http2]\n";
  // The line of the first key under [http2].
  const std::string line = std::to_string(std::count(base.begin(), base.end(), '\n') + 1);
  proxy_instance p(base + "max_concurrent_streams = 100\n", dir_);
  p.write_config(base +
                 "max_concurrent_streams = 200\nrapid_reset_budget = 400\n"
                 "stream_output_buffer = \"128k\"\n");
  p.proc().signal(SIGHUP);
  std::string log = p.log_containing("configuration reloaded");
  EXPECT_NE(log.find("configuration reloaded"), std::string::npos) << log;
  EXPECT_EQ(log.find("next restart"), std::string::npos) << log;
  EXPECT_EQ(p.metric("tlsfront_reloads_total{result=\"ok\"}"), 1);

  p.write_config(base + "max_concurrent_streams = 1000\n");
  p.proc().signal(SIGHUP);
  const std::string refused = "tlsfront.toml:" + line +
                              ":26: 'rapid_reset_budget' (256, the default) must be at least "
                              "'max_concurrent_streams' (1000): a browser that navigates away";
  log = p.log_containing(refused);
  EXPECT_NE(log.find("reload refused"), std::string::npos) << log;
  EXPECT_NE(log.find(refused), std::string::npos) << log;
  EXPECT_EQ(p.metric("tlsfront_reloads_total{result=\"ok\"}"), 1);
  EXPECT_EQ(p.metric_reaching("tlsfront_reloads_total{result=\"refused\"}", 1), 1);
  tls_client c(p.port(), client("a.example", TLS1_3_VERSION));
  ASSERT_TRUE(c.connected()) << c.error();
  c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(c.read_response()), 200);
  EXPECT_TRUE(p.proc().running());

  const std::string check = std::string(TLSFRONT_BINARY) + " -t -c " + dir_ + "/tlsfront.toml 2>&1";
  command_result t = run_command(check);
  EXPECT_NE(t.status, 0) << t.out;
  EXPECT_NE(t.out.find(refused), std::string::npos) << t.out;
  p.write_config(base + "max_frame_size = 1024\n");
  t = run_command(check);
  EXPECT_NE(t.status, 0) << t.out;
  EXPECT_NE(t.out.find("tlsfront.toml:" + line +
                       ":18: 'max_frame_size' must be between 16k and 16777215"),
            std::string::npos)
      << t.out;
  EXPECT_TRUE(p.proc().running());
}

}  // namespace
}  // namespace tlsfront::test
