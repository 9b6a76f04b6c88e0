// Integration tests: the real tlsfront binary and the real echo backend on port 0, driven by a
// BoringSSL client, curl and openssl s_client.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

std::string get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: a.example\r\n" + extra + "\r\n";
}

std::uint64_t fnv1a(const std::string& data, std::uint64_t h = 14695981039346656037ull) {
  for (unsigned char c : data) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

std::string hex16(std::uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

long vm_hwm_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      return std::atol(line.c_str() + 6);
    }
  }
  return -1;
}

class ProxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(make_temp_dir());
    backend_ = new echo_backend(*dir_, 2);
    proxy_ = new proxy_instance(
        default_config(backend_->address(), "max_body_bytes = \"2g\"\n", "read_timeout = \"1s\"\n"),
        *dir_);
  }
  static void TearDownTestSuite() {
    delete proxy_;
    delete backend_;
    delete dir_;
  }
  static int port() { return proxy_->port(); }

  static std::string* dir_;
  static echo_backend* backend_;
  static proxy_instance* proxy_;
};
std::string* ProxyTest::dir_ = nullptr;
echo_backend* ProxyTest::backend_ = nullptr;
proxy_instance* ProxyTest::proxy_ = nullptr;

TEST_F(ProxyTest, GetThroughProxy) {
  std::string r = https_request(port(), get("/"), "a.example");
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(response_body(r), "hello from tlsfront-echo-backend\n");
}

// The test client itself: a signal to the test process while it waits for a response (seen in
// CI's failover tests) interrupts its read with EINTR; that is no failure and the response
// still arrives.
TEST_F(ProxyTest, TheTestClientReadsOnThroughASignal) {
  struct sigaction quiet {};
  quiet.sa_handler = [](int) {};
  sigemptyset(&quiet.sa_mask);
  quiet.sa_flags = 0;  // no SA_RESTART: the waiting recv returns EINTR
  struct sigaction before {};
  ASSERT_EQ(::sigaction(SIGUSR1, &quiet, &before), 0);
  tls_client c(port());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.send(get("/slow/400")));
  const pthread_t reader = pthread_self();
  std::thread signaller([reader] {
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    ::pthread_kill(reader, SIGUSR1);
  });
  const std::string r = c.read_response();
  signaller.join();
  ::sigaction(SIGUSR1, &before, nullptr);
  EXPECT_EQ(response_status(r), 200) << c.error();
}

TEST_F(ProxyTest, PostBodyIsEchoed) {
  std::string body(100000, 'x');
  for (size_t i = 0; i < body.size(); ++i) {
    body[i] = static_cast<char>('a' + i % 26);
  }
  std::string r =
      https_request(port(), "POST /echo HTTP/1.1\r\nHost: a.example\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\n\r\n" + body);
  EXPECT_EQ(response_status(r), 200);
  EXPECT_EQ(response_body(r), body);
}

TEST_F(ProxyTest, ChunkedUploadIsDecodedAndReframed) {
  std::string req = "POST /sink HTTP/1.1\r\nHost: a.example\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string all;
  for (int i = 0; i < 50; ++i) {
    std::string piece(1000 + i, static_cast<char>('A' + i % 26));
    all += piece;
    char size[16];
    std::snprintf(size, sizeof size, "%zx", piece.size());
    req += std::string(size) + ";ext=1\r\n" + piece + "\r\n";
  }
  req += "0\r\nX-Trailer: dropped\r\n\r\n";
  std::string r = https_request(port(), req);
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(response_body(r),
            "bytes=" + std::to_string(all.size()) + " fnv1a=" + hex16(fnv1a(all)) + "\n");
}

TEST_F(ProxyTest, OneGibUploadStreamsWithBoundedMemory) {
  const std::uint64_t total = 1ull << 30;
  tls_client c(port());
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.send("PUT /sink HTTP/1.1\r\nHost: a.example\r\nContent-Length: " +
                     std::to_string(total) + "\r\n\r\n"));
  std::string block(1 << 20, '\0');
  for (size_t i = 0; i < block.size(); ++i) {
    block[i] = static_cast<char>(i * 7 + 3);
  }
  std::uint64_t h = 14695981039346656037ull;
  for (std::uint64_t sent = 0; sent < total; sent += block.size()) {
    ASSERT_TRUE(c.send(block));
    h = fnv1a(block, h);
  }
  std::string r = c.read_response();
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(response_body(r), "bytes=" + std::to_string(total) + " fnv1a=" + hex16(h) + "\n");
  // The body went through, never whole in memory: tlsfront's peak RSS stays far below 1 GiB.
  long hwm = vm_hwm_kib(proxy_->proc().pid());
  EXPECT_GT(hwm, 0);
  EXPECT_LT(hwm, 256 * 1024) << "peak RSS " << hwm << " KiB";
}

TEST_F(ProxyTest, LargeDownloadsContentLengthAndChunked) {
  const size_t n = 8 * 1024 * 1024 + 7;
  std::string expect(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    expect[i] = "0123456789abcdef"[i % 16];
  }
  std::string r = https_request(port(), get("/bytes/" + std::to_string(n)));
  EXPECT_EQ(response_status(r), 200);
  EXPECT_EQ(response_header(r, "Content-Length"), std::to_string(n));
  EXPECT_TRUE(response_body(r) == expect);
  std::string c = https_request(port(), get("/chunked/" + std::to_string(n)));
  EXPECT_EQ(response_status(c), 200);
  EXPECT_EQ(response_header(c, "Transfer-Encoding"), "chunked");
  // De-chunk to compare.
  std::string body = response_body(c), plain;
  size_t pos = 0;
  for (;;) {
    size_t eol = body.find("\r\n", pos);
    ASSERT_NE(eol, std::string::npos);
    size_t size = std::strtoul(body.c_str() + pos, nullptr, 16);
    if (size == 0) {
      break;
    }
    plain += body.substr(eol + 2, size);
    pos = eol + 2 + size + 2;
  }
  EXPECT_TRUE(plain == expect);
}

TEST_F(ProxyTest, HundredKeepAliveRequestsOnOneConnection) {
  tls_client c(port());
  ASSERT_TRUE(c.connected());
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(c.send(get("/")));
    std::string r = c.read_response();
    ASSERT_EQ(response_status(r), 200) << "request " << i;
  }
}

TEST_F(ProxyTest, PipelinedRequestsAnswerInOrder) {
  tls_client c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/status/201") + get("/status/202") + get("/")));
  EXPECT_EQ(response_status(c.read_response()), 201);
  EXPECT_EQ(response_status(c.read_response()), 202);
  EXPECT_EQ(response_status(c.read_response()), 200);
}

TEST_F(ProxyTest, HeadRequestHasNoBody) {
  tls_client c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("HEAD /bytes/1000 HTTP/1.1\r\nHost: a.example\r\n\r\n" + get("/")));
  std::string h = c.read_response(true);
  EXPECT_EQ(response_status(h), 200);
  EXPECT_EQ(response_header(h, "Content-Length"), "1000");
  EXPECT_EQ(response_body(h), "");
  EXPECT_EQ(response_status(c.read_response()), 200);  // the next response is intact
}

TEST_F(ProxyTest, SniSelectsCertificateAndUnknownGetsDefault) {
  struct {
    std::string sni, cn;
  } cases[] = {{"a.example", "a.example"},
               {"www.a.example", "a.example"},
               {"B.Example", "b.example"},
               {"x.wild.example", "*.wild.example"},
               {"deep.x.wild.example", "default.example"},
               {"unknown.example", "default.example"},
               {"", "default.example"}};
  for (const auto& tc : cases) {
    tls_client::options o;
    o.sni = tc.sni;
    tls_client c(port(), o);
    ASSERT_TRUE(c.connected()) << tc.sni << ": " << c.error();
    EXPECT_EQ(c.peer_common_name(), tc.cn) << "sni " << tc.sni;
    EXPECT_EQ(c.alpn(), "http/1.1");
  }
}

TEST_F(ProxyTest, Tls12WithEcdsaAndRsaCertificates) {
  for (std::string sni : {"a.example", "b.example"}) {
    tls_client::options o;
    o.sni = sni;
    o.max_version = TLS1_2_VERSION;
    tls_client c(port(), o);
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_EQ(SSL_version(c.ssl()), TLS1_2_VERSION);
    ASSERT_TRUE(c.send(get("/")));
    EXPECT_EQ(response_status(c.read_response()), 200);
  }
}

TEST_F(ProxyTest, OpensslClientSeesChainAndGroups) {
  for (std::string group : {"X25519", "P-256"}) {
    command_result r = run_command("openssl s_client -connect 127.0.0.1:" + std::to_string(port()) +
                                       " -servername a.example -groups " + group + " -CAfile " +
                                       certs_dir() + "/ca.crt -verify_return_error -showcerts 2>&1",
                                   "Q\n");
    EXPECT_NE(r.out.find("Verify return code: 0 (ok)"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(" 1 s:"), std::string::npos) << "intermediate not sent: " << r.out;
    EXPECT_NE(r.out.find(group == "P-256" ? "prime256v1" : "X25519"), std::string::npos) << r.out;
  }
}

TEST_F(ProxyTest, CurlGetAndPost) {
  std::string url = "https://a.example:" + std::to_string(port());
  std::string resolve = " --resolve a.example:" + std::to_string(port()) + ":127.0.0.1";
  command_result g =
      run_command("curl -s --cacert " + certs_dir() + "/ca.crt" + resolve + " " + url + "/");
  EXPECT_EQ(g.status, 0);
  EXPECT_EQ(g.out, "hello from tlsfront-echo-backend\n");
  command_result p = run_command("curl -s --cacert " + certs_dir() + "/ca.crt" + resolve +
                                 " --data-binary hello-post " + url + "/echo");
  EXPECT_EQ(p.out, "hello-post");
}

TEST_F(ProxyTest, ForwardedHeadersAreSetByTheProxyAndHopByHopRemoved) {
  std::string r = https_request(
      port(),
      "GET /headers HTTP/1.1\r\nHost: a.example\r\nX-Forwarded-For: 6.6.6.6\r\n"
      "X-Forwarded-Proto: http\r\nX-Forwarded-Host: evil.example\r\nForwarded: for=6.6.6.6\r\n"
      "Connection: keep-alive, X-Secret\r\nX-Secret: s\r\nKeep-Alive: timeout=5\r\n"
      "TE: trailers\r\nUpgrade: h2c\r\nX-Normal: kept\r\n\r\n");
  ASSERT_EQ(response_status(r), 200);
  std::string seen = response_body(r);
  EXPECT_NE(seen.find("X-Forwarded-For: 127.0.0.1\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Forwarded-Proto: https\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Forwarded-Host: a.example\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Normal: kept\r\n"), std::string::npos) << seen;
  for (std::string bad : {"6.6.6.6", "evil.example", "X-Secret", "Keep-Alive", "TE:", "Upgrade",
                          "Connection", "Forwarded: for"}) {
    EXPECT_EQ(seen.find(bad), std::string::npos) << bad << " leaked: " << seen;
  }
}

TEST_F(ProxyTest, ExpectContinueIsAnswered) {
  tls_client c(port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(
      c.send("POST /echo HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n"
             "Expect: 100-continue\r\n\r\n"));
  std::string interim = c.read_response();
  EXPECT_EQ(response_status(interim), 100) << interim;
  ASSERT_TRUE(c.send("hello"));
  std::string r = c.read_response();
  EXPECT_EQ(response_status(r), 200);
  EXPECT_EQ(response_body(r), "hello");
}

// Each of these must be refused with 400 (or 501) and a closed connection, and nothing may
// reach the backend.
TEST_F(ProxyTest, MalformedAndSmugglingRequestsAreRefused) {
  struct {
    const char* name;
    std::string raw;
    int status;
  } cases[] = {
      {"CL+TE",
       "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: "
       "chunked\r\n\r\n0\r\n\r\n",
       400},
      {"double CL",
       "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", 400},
      {"conflicting CL",
       "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
       400},
      {"CL list", "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 4, 4\r\n\r\nabcd", 400},
      {"double TE",
       "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
       "chunked\r\n\r\n0\r\n\r\n",
       400},
      {"TE not chunked",
       "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
      {"TE identity", "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", 501},
      {"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n", 400},
      {"missing Host", "GET / HTTP/1.1\r\n\r\n", 400},
      {"double Host", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400},
      {"space before colon", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length : 0\r\n\r\n", 400},
      {"CL in trailer",
       "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: "
       "5\r\n\r\n",
       400},
      {"bad chunk size",
       "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
       400},
      {"NUL in value", std::string("GET / HTTP/1.1\r\nHost: a\r\nX: a\0b\r\n\r\n", 35), 400},
      {"bad version", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400},
      {"bad target", "GET foo HTTP/1.1\r\nHost: a\r\n\r\n", 400},
      {"CONNECT", "CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 501},
      {"garbage", "\x16\x03\x01 hello\r\n\r\n", 400},
  };
  long before = backend_->requests();
  for (const auto& tc : cases) {
    tls_client c(port());
    ASSERT_TRUE(c.connected());
    ASSERT_TRUE(c.send(tc.raw));
    std::string r = c.read_response();
    EXPECT_EQ(response_status(r), tc.status) << tc.name << ": " << r;
    EXPECT_EQ(response_header(r, "Connection"), "close") << tc.name;
    EXPECT_TRUE(c.wait_closed(5000)) << tc.name;
  }
  EXPECT_EQ(backend_->requests(), before) << "a refused request reached the backend";
}

TEST_F(ProxyTest, OversizeHeaderGets431) {
  long before = backend_->requests();
  std::string r = https_request(port(), get("/", "X-Big: " + std::string(20000, 'a') + "\r\n"));
  EXPECT_EQ(response_status(r), 431) << r;
  std::string many;
  for (int i = 0; i < 150; ++i) {
    many += "X-H" + std::to_string(i) + ": v\r\n";
  }
  EXPECT_EQ(response_status(https_request(port(), get("/", many))), 431);
  EXPECT_EQ(backend_->requests(), before);
}

TEST_F(ProxyTest, ClientWithoutClientHelloIsClosedAtHandshakeTimeout) {
  int fd = connect_tcp(port());
  ASSERT_GE(fd, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[16];
  ssize_t n = ::read(fd, buf, sizeof buf);  // the configured 1 s timeout closes it
  EXPECT_EQ(n, 0);
  ::close(fd);
  EXPECT_GE(proxy_->metric("tlsfront_handshake_timeouts_total{listener=\"https\"}"), 1);
}

TEST_F(ProxyTest, BackendHangGives504) {
  std::string r = https_request(port(), get("/hang"));
  EXPECT_EQ(response_status(r), 504) << r;
}

TEST_F(ProxyTest, MetricsCountRequestsAndHandshakes) {
  https_request(port(), get("/"));
  EXPECT_GE(proxy_->metric_reaching("tlsfront_requests_total{pool=\"echo\",class=\"2xx\"}", 1), 1);
  EXPECT_GE(proxy_->metric("tlsfront_handshakes_total{listener=\"https\",version=\"TLSv1.3\","
                           "resumed=\"none\"}"),
            1);
  EXPECT_EQ(proxy_->admin_get("/healthz"), "ok\n");
}

TEST_F(ProxyTest, AccessLogHasOneLinePerRequest) {
  https_request(port(), get("/access-log-marker"), "a.example");
  std::string log;
  // The whole line: the logger may have written only part of it when the file is first read.
  const auto whole_line = [&] {
    const size_t at = log.find("access-log-marker");
    return at != std::string::npos && log.find('\n', at) != std::string::npos;
  };
  for (int i = 0; i < 50 && !whole_line(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    log = read_file(*dir_ + "/access.log");
  }
  size_t p = log.find("path=\"/access-log-marker\"");
  ASSERT_NE(p, std::string::npos) << log;
  std::string line = log.substr(log.rfind('\n', p) + 1);
  line = line.substr(0, line.find('\n'));
  for (std::string field : {"client=127.0.0.1:", "sni=\"a.example\"", "tls=TLSv1.3", "cipher=TLS_",
                            "resumed=none", "handshake_us=", "method=\"GET\"", "status=200",
                            "bytes_sent=", "upstream=127.0.0.1:", "duration_us="}) {
    EXPECT_NE(line.find(field), std::string::npos) << field << " missing in " << line;
  }
}

// --- separate instances for pool behaviour ---

TEST(ProxyPool, BackendDownGives502) {
  std::string dir = make_temp_dir();
  int dead = connect_tcp(1);  // nothing listens on port 1
  ASSERT_LT(dead, 0);
  proxy_instance p(default_config("127.0.0.1:1", "", "retries = 0\n"), dir);
  std::string r = https_request(p.port(), get("/"));
  EXPECT_EQ(response_status(r), 502) << r;
  // Cooling down: the only server is skipped, so the next request gets 503 at once.
  std::string r2 = https_request(p.port(), get("/"));
  EXPECT_EQ(response_status(r2), 503) << r2;
}

TEST(ProxyPool, RetryOnRefusedServerAndLeastConnections) {
  std::string dir = make_temp_dir();
  echo_backend b1(dir), b2(dir);
  proxy_instance p(
      "[server]\nthreads = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\naccess_log = \"off\"\n"
      "[[listener]]\nname = \"https\"\nlisten = \"127.0.0.1:0\"\n"
      "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n"
      "[[pool]]\nname = \"rr\"\nservers = [\"127.0.0.1:1\", \"" +
          b1.address() +
          "\"]\n"
          "retries = 1\n"
          "[[pool]]\nname = \"lc\"\nbalance = \"least_connections\"\nservers = [\"" +
          b1.address() + "\", \"" + b2.address() +
          "\"]\n"
          "[[route]]\npath_prefix = \"/lc/\"\npool = \"lc\"\n"
          "[[route]]\npool = \"rr\"\n",
      dir);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(response_status(https_request(p.port(), get("/"))), 200) << i;
  }
  long b1_before = b1.requests(), b2_before = b2.requests();
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(response_status(https_request(p.port(), get("/lc/x"))), 200);
  }
  EXPECT_GT(b1.requests() - b1_before, 0);
  EXPECT_GT(b2.requests() - b2_before, 0);
}

TEST(ProxyRouting, NoRouteGives404AndBodyLimitGives413) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(
      "[admin]\nlisten = \"127.0.0.1:0\"\n[log]\naccess_log = \"off\"\n"
      "[limits]\nmax_body_bytes = \"1k\"\n"
      "[[listener]]\nname = \"https\"\nlisten = \"127.0.0.1:0\"\n"
      "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n"
      "[[pool]]\nname = \"p\"\nservers = [\"" +
          b.address() +
          "\"]\n"
          "[[route]]\nhost = \"a.example\"\npath_prefix = \"/api/\"\npool = \"p\"\n",
      dir);
  EXPECT_EQ(response_status(https_request(p.port(), get("/api/x"))), 200);
  EXPECT_EQ(response_status(https_request(p.port(), get("/other"))), 404);
  EXPECT_EQ(response_status(
                https_request(p.port(), "GET /api/x HTTP/1.1\r\nHost: other.example\r\n\r\n")),
            404);
  std::string big(2000, 'x');
  EXPECT_EQ(
      response_status(https_request(
          p.port(),
          "POST /api/echo HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2000\r\n\r\n" + big)),
      413);
}

TEST(ProxyLifecycle, SigtermDrainsInFlightRequest) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address(), "drain_timeout = \"10s\"\n"), dir);
  tls_client c(p.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/slow/1500")));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  p.proc().signal(SIGTERM);
  std::string r = c.read_response();
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(response_body(r), "slow\n");
  EXPECT_EQ(response_header(r, "Connection"), "close");
  auto status = p.proc().wait(std::chrono::seconds(15));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << p.log();
  // New connections are refused once draining started.
  EXPECT_LT(connect_tcp(p.port()), 0);
}

// The drain hook (connection → http1_session) closes an idle keep-alive connection at once, so
// nothing is left for the drain timeout to cut.
TEST(ProxyLifecycle, SigtermClosesAnIdleKeepAliveConnectionThroughTheDrainHook) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(
      default_config(b.address(), "drain_timeout = \"20s\"\nclient_idle_timeout = \"60s\"\n"), dir);
  tls_client c(p.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(get("/")));
  ASSERT_EQ(response_status(c.read_response()), 200);
  p.proc().signal(SIGTERM);
  auto status = p.proc().wait(std::chrono::seconds(40));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0) << p.log();
  EXPECT_EQ(p.log().find("drain timeout"), std::string::npos) << p.log();
}

TEST(ProxyCli, CheckModeAcceptsAndRefuses) {
  std::string dir = make_temp_dir();
  write_file(dir + "/good.toml", default_config("127.0.0.1:8080"));
  std::string good = read_file(dir + "/good.toml");
  for (auto [k, v] :
       {std::pair<std::string, std::string>{"{certs}", certs_dir()}, {"{dir}", dir}}) {
    for (size_t pos; (pos = good.find(k)) != std::string::npos;) {
      good.replace(pos, k.size(), v);
    }
  }
  write_file(dir + "/good.toml", good);
  command_result ok =
      run_command(std::string(TLSFRONT_BINARY) + " -t -c " + dir + "/good.toml 2>&1");
  EXPECT_EQ(ok.status, 0) << ok.out;
  write_file(dir + "/bad.toml", good + "\n[limits]\nbogus = 1\n");
  command_result bad =
      run_command(std::string(TLSFRONT_BINARY) + " -t -c " + dir + "/bad.toml 2>&1");
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find(dir + "/bad.toml:"), std::string::npos) << bad.out;
}

}  // namespace
}  // namespace tlsfront::test

namespace tlsfront::test {
namespace {

TEST(ProxyLimits, MaxConnectionsClosesTheExtraOne) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address(), "max_connections = 2\n", "", 1), dir);
  tls_client c1(p.port()), c2(p.port());
  ASSERT_TRUE(c1.connected());
  ASSERT_TRUE(c2.connected());
  tls_client c3(p.port());
  EXPECT_FALSE(c3.connected());  // accepted and closed at once: the handshake fails
  EXPECT_GE(p.metric("tlsfront_connections_rejected_total{listener=\"https\"}"), 1);
  // The two open ones still work.
  ASSERT_TRUE(c1.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(response_status(c1.read_response()), 200);
}

TEST(ProxyLimits, StalledRequestHeadGets408) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address(), "client_read_timeout = \"1s\"\n"), dir);
  tls_client c(p.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: a\r\n"));  // the head never ends
  std::string r = c.read_response();
  EXPECT_EQ(response_status(r), 408) << r;
  EXPECT_TRUE(c.wait_closed(5000));
}

TEST(ProxyLimits, IdleKeepAliveConnectionIsClosed) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address(), "client_idle_timeout = \"1s\"\n"), dir);
  tls_client c(p.port());
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(response_status(c.read_response()), 200);
  EXPECT_TRUE(c.wait_closed(5000));
}

}  // namespace
}  // namespace tlsfront::test

namespace tlsfront::test {
namespace {

TEST(ProxyHttp10, ClientGetsNoChunkedCodingAndTheConnectionCloses) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address()), dir);
  tls_client::options o;
  o.sni = "a.example";
  tls_client c(p.port(), o);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send("GET /chunked/100 HTTP/1.0\r\n\r\n"));
  std::string r = c.read_all();
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(response_header(r, "Transfer-Encoding"), "");
  EXPECT_EQ(response_body(r), std::string("0123456789abcdef0123456789abcdef0123456789abcdef"
                                          "0123456789abcdef0123456789abcdef0123456789abcdef0123"));
  // And the request reached the backend with a Host taken from SNI.
  tls_client c2(p.port(), o);
  ASSERT_TRUE(c2.send("GET /headers HTTP/1.0\r\n\r\n"));
  std::string h = c2.read_all();
  EXPECT_NE(response_body(h).find("Host: a.example"), std::string::npos) << h;
}

TEST(ProxyLimits, SlowlorisHeadIsCutAtTheHeadDeadline) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address(), "client_read_timeout = \"1s\"\n"), dir);
  tls_client c(p.port());
  ASSERT_TRUE(c.connected());
  // One header byte every 300 ms: each read is within the per-read timeout, but the head as a
  // whole is not done within 1 s.
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Slow: abcdefghij\r\n\r\n";
  bool got_408 = false;
  for (size_t i = 0; i < head.size(); ++i) {
    if (!c.send(head.substr(i, 1))) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    if (i == 6) {
      std::string r = c.read_response();
      got_408 = response_status(r) == 408;
      break;
    }
  }
  EXPECT_TRUE(got_408);
}

}  // namespace
}  // namespace tlsfront::test
