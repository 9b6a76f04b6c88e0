// HTTP/2 towards clients, end to end: the real tlsfront between real HTTP/2 clients (curl,
// nghttp, h2load from nghttp2-client; tests/integration/h2_hostile.py on Debian's python3-h2 for
// malformed and hostile frames) and the echo backend (HTTP/1.1) or a backend written here.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <mutex>
#include <thread>

#include "integration/harness.h"
#include "support/loopback_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool sanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool sanitized = true;
#else
constexpr bool sanitized = false;
#endif
#else
constexpr bool sanitized = false;
#endif

std::string url(int port, const std::string& path) {
  return "https://127.0.0.1:" + std::to_string(port) + path;
}

// tests/integration/h2_hostile.py SCENARIO [ARGS] against the proxy: its JSON line.
std::string hostile(int port, const std::string& args) {
  command_result r = run_command("/usr/bin/python3 " + source_dir() +
                                 "/tests/integration/h2_hostile.py 127.0.0.1 " +
                                 std::to_string(port) + " " + args + " 2>&1");
  EXPECT_EQ(r.status, 0) << r.out;
  return r.out;
}

bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string fnv1a_hex(const std::string& data) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : data) {
    h = (h ^ c) * 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// kB of a /proc/<pid>/status field (VmRSS, VmHWM).
long proc_kb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::stol(line.substr(field.size() + 1));
    }
  }
  return -1;
}

class H2Test : public ::testing::Test {
 protected:
  void start(const std::string& limits = "", const std::string& extra = "") {
    backend_ = std::make_unique<echo_backend>(make_temp_dir());
    proxy_ = std::make_unique<proxy_instance>(default_config(backend_->address(), limits) + extra);
  }
  int port() const { return proxy_->port(); }
  std::unique_ptr<echo_backend> backend_;
  std::unique_ptr<proxy_instance> proxy_;
};

TEST_F(H2Test, CurlNegotiatesH2AndTheBackendGetsHttp11WithForwardedFields) {
  start();
  command_result r =
      run_command("curl -sk --http2 -H 'X-Forwarded-For: 6.6.6.6' -w '\\n%{http_version}' " +
                  url(port(), "/headers?q=1"));
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(r.out.ends_with("\n2")) << r.out;
  EXPECT_TRUE(has(r.out, "GET /headers?q=1 HTTP/1.1")) << r.out;
  EXPECT_TRUE(has(r.out, "Host: 127.0.0.1:" + std::to_string(port()))) << r.out;  // :authority
  EXPECT_TRUE(has(r.out, "X-Forwarded-For: 127.0.0.1\r\n")) << r.out;
  EXPECT_FALSE(has(r.out, "6.6.6.6")) << r.out;  // the client's own is replaced
  EXPECT_TRUE(has(r.out, "X-Forwarded-Proto: https")) << r.out;
  const std::string log = file_containing(proxy_->dir() + "/access.log", "proto=h2");
  EXPECT_TRUE(has(log, "proto=h2 method=\"GET\" path=\"/headers?q=1\" status=200")) << log;
  EXPECT_GE(
      proxy_->metric_reaching("tlsfront_client_requests_total{protocol=\"h2\",class=\"2xx\"}", 1),
      1);
}

TEST_F(H2Test, TheListenersAlpnListDecidesTheProtocol) {
  start();
  command_result h1 =
      run_command("curl -sk --http1.1 -o /dev/null -w '%{http_version}' " + url(port(), "/"));
  EXPECT_EQ(h1.out, "1.1");
  proxy_.reset();
  backend_ = std::make_unique<echo_backend>(make_temp_dir());
  std::string cfg = default_config(backend_->address());
  const std::string at = "handshake_timeout = \"1s\"\n";
  cfg.replace(cfg.find(at), at.size(), at + "alpn = [\"http/1.1\"]\n");
  proxy_ = std::make_unique<proxy_instance>(cfg);
  command_result r =
      run_command("curl -sk --http2 -o /dev/null -w '%{http_version}' " + url(port(), "/"));
  EXPECT_EQ(r.out, "1.1");  // h2 not offered: the client falls back to HTTP/1.1
}

TEST_F(H2Test, PriorKnowledgeWithoutAlpnIsRefusedAsABadHttp11Request) {
  start();
  const std::string out = hostile(port(), "prior-knowledge-without-alpn --no-alpn");
  EXPECT_TRUE(has(out, "\"http1_status_line\": \"HTTP/1.1 400 Bad Request\"")) << out;
  EXPECT_EQ(backend_->requests(), 0);
}

TEST_F(H2Test, ManyStreamsInFlightOnOneConnection) {
  start();
  command_result r = run_command("h2load -n 3000 -c 1 -m 100 " + url(port(), "/") + " 2>&1");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(has(r.out, "3000 succeeded, 0 failed, 0 errored")) << r.out;
  EXPECT_GE(backend_->requests(), 3000);
  // nghttp: several requests on one connection, each answered.
  command_result n = run_command("nghttp -ns " + url(port(), "/bytes/1000") + " " +
                                 url(port(), "/chunked/5000") + " " + url(port(), "/") + " 2>&1");
  EXPECT_EQ(n.status, 0) << n.out;
  EXPECT_GE(proxy_->metric_reaching("tlsfront_client_requests_total{protocol=\"h2\",class=\"2xx\"}",
                                    3003),
            3003);
  EXPECT_EQ(proxy_->metric("tlsfront_h2_streams_active"), 0);
}

TEST_F(H2Test, BodiesStreamBothWaysWithAndWithoutContentLength) {
  start();
  const std::string dir = make_temp_dir();
  std::string body(5 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < body.size(); ++i) {
    body[i] = static_cast<char>((i * 7919) >> 3);
  }
  write_file(dir + "/up.bin", body);
  const std::string expect = "bytes=" + std::to_string(body.size()) + " fnv1a=" + fnv1a_hex(body);
  // Content-Length known (curl sends it) ...
  command_result a =
      run_command("curl -sk --http2 --data-binary @" + dir + "/up.bin " + url(port(), "/sink"));
  EXPECT_EQ(a.out, expect + "\n");
  // ... and unknown (from a pipe): chunked towards the backend.
  command_result b =
      run_command("cat " + dir + "/up.bin | curl -sk --http2 -X POST -T - " + url(port(), "/sink"));
  EXPECT_EQ(b.out, expect + "\n");
  // The echo comes back whole.
  command_result e = run_command("head -c 900000 " + dir +
                                 "/up.bin | curl -sk --http2 -X POST "
                                 "-T - " +
                                 url(port(), "/echo") + " | md5sum");
  command_result m = run_command("head -c 900000 " + dir + "/up.bin | md5sum");
  EXPECT_EQ(e.out, m.out);
  // Downloads, by Content-Length and chunked from the backend.
  for (const std::string path : {"/bytes/3000001", "/chunked/3000001"}) {
    command_result d = run_command(
        "curl -sk --http2 -o /dev/null -w '%{http_code} %{size_download}' " + url(port(), path));
    EXPECT_EQ(d.out, "200 3000001") << path;
  }
}

TEST_F(H2Test, GigabyteTransfersKeepMemoryFlat) {
  start();
  const std::uint64_t size = sanitized ? (256ull << 20) : (1ull << 30);
  const pid_t pid = proxy_->proc().pid();
  ASSERT_EQ(run_command("curl -sk --http2 -o /dev/null " + url(port(), "/")).status, 0);
  const long before = proc_kb(pid, "VmRSS");
  command_result down =
      run_command("curl -sk --http2 -o /dev/null -w '%{http_code} %{size_download}' " +
                  url(port(), "/bytes/" + std::to_string(size)));
  EXPECT_EQ(down.out, "200 " + std::to_string(size));
  command_result up = run_command("head -c " + std::to_string(size) +
                                  " /dev/zero | curl -sk --http2 -T - " + url(port(), "/sink"));
  EXPECT_TRUE(up.out.starts_with("bytes=" + std::to_string(size) + " ")) << up.out;
  const long peak = proc_kb(pid, "VmHWM");
  // Bounded by the windows and output buffers (a few MiB), never by the transfer.
  EXPECT_LT(peak - before, 64 * 1024) << "RSS before " << before << " kB, peak " << peak << " kB";
}

TEST_F(H2Test, TrailersPassBothWays) {
  std::mutex mu;
  std::string seen;
  loopback_server backend([&](int fd) {
    std::string req;
    char buf[4096];
    while (req.find("\r\n0\r\n") == std::string::npos || !req.ends_with("\r\n\r\n")) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n <= 0) {
        return;
      }
      req.append(buf, static_cast<std::size_t>(n));
    }
    {
      std::lock_guard lock(mu);
      seen = req;
    }
    const std::string resp =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-backend-trailer\r\n\r\n"
        "5\r\nhello\r\n0\r\nx-backend-trailer: yes\r\n\r\n";
    (void)::write(fd, resp.data(), resp.size());
  });
  proxy_instance proxy(default_config(backend.address()));
  const std::string out = hostile(proxy.port(), "trailers --path /t");
  EXPECT_TRUE(has(out, "\"status\": \"200\"")) << out;
  EXPECT_TRUE(has(out, "\"data\": \"hello\"")) << out;
  EXPECT_TRUE(has(out, "[\"x-backend-trailer\", \"yes\"]")) << out;
  EXPECT_FALSE(has(out, "\"rst\": {\"1\"")) << out;
  std::lock_guard lock(mu);
  EXPECT_TRUE(has(seen, "POST /t HTTP/1.1\r\n")) << seen;
  EXPECT_TRUE(has(seen, "Transfer-Encoding: chunked\r\n")) << seen;
  EXPECT_TRUE(has(seen, "e\r\nhello trailers\r\n0\r\nx-client-trailer: abc\r\n\r\n")) << seen;
  EXPECT_FALSE(has(seen, "6.6.6.6")) << seen;  // a trailer may not forge X-Forwarded-For
}

TEST_F(H2Test, MalformedRequestsGetAStreamErrorAndReachNoBackend) {
  start();
  const char* kinds[] = {"connection",
                         "keep-alive",
                         "proxy-connection",
                         "transfer-encoding",
                         "upgrade",
                         "te",
                         "uppercase",
                         "cr",
                         "lf",
                         "nul",
                         "leading-space",
                         "trailing-space",
                         "pseudo-after-regular",
                         "duplicate-pseudo",
                         "unknown-pseudo",
                         "missing-method",
                         "missing-path",
                         "conflicting-host"};
  long served = 0;
  for (const char* kind : kinds) {
    const std::string out = hostile(port(), std::string("bad-header ") + kind);
    EXPECT_TRUE(has(out, "\"rst\": {\"1\": \"PROTOCOL_ERROR\"}")) << kind << ": " << out;
    EXPECT_TRUE(has(out, "\"status\": \"200\"")) << kind << ": " << out;  // stream 3 still served
    ++served;
    EXPECT_EQ(backend_->requests(), served) << kind << " reached the backend";
  }
}

TEST_F(H2Test, StreamsOverTheLimitAreRefusedAndOversizedHeadsGet431) {
  start();
  // 130 streams at once against max_concurrent_streams = 128: two are refused, unforwarded.
  const std::string many = hostile(port(), "many-streams 130 --path /slow/300 --timeout 10");
  EXPECT_TRUE(has(many, "\"ended\": 128")) << many;
  EXPECT_TRUE(has(many, "\"REFUSED_STREAM\"")) << many;
  EXPECT_EQ(backend_->requests(), 128);
  // A head over max_header_list_size (64 KiB): 431, not forwarded; the next stream is served.
  const std::string big = hostile(port(), "big-head 80000");
  EXPECT_TRUE(has(big, "[[\":status\", \"431\"]]")) << big;
  EXPECT_TRUE(has(big, "\"data\": \"hello from tlsfront-echo-backend\\n\"")) << big;
  EXPECT_EQ(backend_->requests(), 129);
}

TEST_F(H2Test, AbusiveClientsAreCutOffWithEnhanceYourCalm) {
  start();
  for (const char* scenario :
       {"rapid-reset", "continuation-flood", "settings-flood", "ping-flood", "empty-data-flood"}) {
    const std::string out = hostile(port(), scenario);
    EXPECT_TRUE(has(out, "\"goaway\": \"ENHANCE_YOUR_CALM\"")) << scenario << ": " << out;
  }
  EXPECT_GE(proxy_->metric("tlsfront_h2_goaway_errors_total{reason=\"enhance_your_calm\"}"), 5);
  // Rapid reset: the cancelled streams were not forwarded (a few may have started).
  EXPECT_LT(backend_->requests(), 64);
  EXPECT_EQ(run_command("curl -sk --http2 -o /dev/null -w '%{http_code}' " + url(port(), "/")).out,
            "200");  // and it still serves
}

TEST_F(H2Test, AClientThatNeverOpensItsWindowIsResetAtTheWriteTimeout) {
  start("client_write_timeout = \"1s\"\n");
  const std::string out = hostile(port(), "never-open-window --path /bytes/1000000 --hold 4");
  EXPECT_TRUE(has(out, "\"status\": \"200\"")) << out;
  EXPECT_TRUE(has(out, "\"rst\": {\"1\": \"CANCEL\"}")) << out;
  EXPECT_EQ(proxy_->metric_reaching("tlsfront_client_write_timeouts_total{listener=\"https\"}", 1),
            1);
  EXPECT_EQ(proxy_->metric("tlsfront_h2_stream_resets_total{by=\"server\"}"), 1);
}

TEST_F(H2Test, ARequestBodyThatNeverComesIsAnswered408) {
  start("client_read_timeout = \"1s\"\n");
  const std::string out = hostile(port(), "stalled-body --path /sink --timeout 5");
  EXPECT_TRUE(has(out, "\"status\": \"408\"")) << out;
}

TEST_F(H2Test, DrainSendsGoawayAndTheStreamInFlightFinishes) {
  start();
  std::string out;
  std::thread client([&] { out = hostile(port(), "ok-get --path /slow/1500 --timeout 10"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  proxy_->proc().signal(SIGTERM);
  client.join();
  EXPECT_TRUE(has(out, "\"status\": \"200\"")) << out;
  EXPECT_TRUE(has(out, "\"goaway\": \"NO_ERROR\"")) << out;
  EXPECT_FALSE(has(out, "\"rst\": {\"1\"")) << out;
  EXPECT_EQ(proxy_->proc().wait(std::chrono::seconds(10)), 0);
}

// Issue 18: a connection accepted before SIGTERM whose handshake ends after it starts draining
// too: its HTTP/2 session used to miss the drain (the hook reached only sessions already
// running), so it got no GOAWAY and held the process until the drain timeout. Its first
// request is served (the GOAWAY's first step names the highest stream ID).
TEST_F(H2Test, AHandshakeThatEndsDuringTheDrainGetsItsRequestServedAndAGoaway) {
  start("drain_timeout = \"20s\"\n");
  std::string out;
  std::thread client(
      [&] { out = hostile(port(), "ok-get --path /slow/300 --handshake-pause 0.6 --timeout 8"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  proxy_->proc().signal(SIGTERM);
  client.join();
  EXPECT_TRUE(has(out, "\"alpn\": \"h2\"")) << out;
  EXPECT_TRUE(has(out, "\"status\": \"200\"")) << out;
  EXPECT_TRUE(has(out, "\"goaway\": \"NO_ERROR\"")) << out;
  EXPECT_FALSE(has(out, "\"rst\": {\"1\"")) << out;
  EXPECT_EQ(proxy_->proc().wait(std::chrono::seconds(10)), 0);
  EXPECT_EQ(proxy_->log().find("drain timeout"), std::string::npos) << proxy_->log();
}

TEST_F(H2Test, AReloadThatRemovesTheListenerSendsGoaway) {
  backend_ = std::make_unique<echo_backend>(make_temp_dir());
  const std::string base = default_config(backend_->address());
  const std::string second =
      "[[listener]]\nname = \"old\"\nlisten = \"127.0.0.1:0\"\n"
      "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n";
  proxy_ = std::make_unique<proxy_instance>(base + second);
  const int old_port = proxy_->port("old");
  std::string out;
  std::thread client([&] { out = hostile(old_port, "ok-get --path /slow/1500 --timeout 10"); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  proxy_->write_config(base);
  proxy_->proc().signal(SIGHUP);
  client.join();
  EXPECT_TRUE(has(out, "\"status\": \"200\"")) << out;
  EXPECT_TRUE(has(out, "\"goaway\": \"NO_ERROR\"")) << out;
  // The listener that stays still serves HTTP/2.
  EXPECT_EQ(
      run_command("curl -sk --http2 -o /dev/null -w '%{http_code}' " + url(proxy_->port(), "/"))
          .out,
      "200");
}

}  // namespace
}  // namespace tlsfront::test
