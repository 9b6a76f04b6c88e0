// The admin endpoint as an attacker and a careful operator meet it: a bearer token for every
// state-changing call, Host and cross-site checks (a browser page or DNS rebinding cannot drive
// it), a refusal to start beyond loopback without a token, a cap on connections, a deadline for
// a whole request, a rate limit on key rotation, and a log line with the peer for every action.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

constexpr const char* kToken = "0123456789abcdef0123456789abcdef";

// The default config with `admin` as the whole [admin] section.
std::string config_with_admin(const std::string& backend, const std::string& admin) {
  std::string c = default_config(backend);
  const std::string section = "[admin]\nlisten = \"127.0.0.1:0\"\n";
  c.replace(c.find(section), section.size(), "[admin]\n" + admin + "\n");
  return c;
}

std::string write_token(const std::string& dir, const std::string& token,
                        const std::string& name = "admin.token") {
  const std::string path = dir + "/" + name;
  write_file(path, token + "\n");
  ::chmod(path.c_str(), 0600);
  return path;
}

// One request on the admin port with the given extra header lines (each ending in \r\n).
std::string admin_raw(const proxy_instance& p, const std::string& method, const std::string& path,
                      const std::string& headers, const std::string& host = "") {
  const std::string h = host.empty() ? "127.0.0.1:" + std::to_string(p.admin_port()) : host;
  return plain_exchange(p.admin_port(), method + " " + path + " HTTP/1.1\r\nHost: " + h + "\r\n" +
                                            headers +
                                            "Content-Length: 0\r\nConnection: close\r\n\r\n");
}

std::string bearer(const std::string& token) {
  return "Authorization: Bearer " + token + "\r\n";
}

// A TLS 1.2 session-ID session made on `port`, to show a refused flush flushed nothing.
bssl::UniquePtr<SSL_SESSION> id_session(int port) {
  tls_client c(port, tls_client::session_id_only("a.example"));
  EXPECT_TRUE(c.connected()) << c.error();
  c.send("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  c.read_response();
  return c.session();
}

bool id_resumes(int port, SSL_SESSION* s) {
  tls_client c(port, tls_client::session_id_only("a.example", s));
  return c.connected() && c.resumed();
}

class AdminTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  std::string dir_;
};

TEST_F(AdminTest, EveryStateChangingCallNeedsTheTokenAndReadsDoNot) {
  echo_backend backend(dir_);
  const std::string token_path = write_token(dir_, kToken);
  proxy_instance p(
      config_with_admin(backend.address(),
                        "listen = \"127.0.0.1:0\"\ntoken_file = \"" + token_path + "\""),
      dir_);
  auto s = id_session(p.port());
  ASSERT_TRUE(s);

  std::string r = admin_raw(p, "POST", "/sessions/flush", "");
  EXPECT_EQ(response_status(r), 401) << r;
  EXPECT_NE(response_header(r, "WWW-Authenticate").find("Bearer"), std::string::npos) << r;
  r = admin_raw(p, "POST", "/sessions/flush", bearer("0123456789abcdef0123456789abcdeX"));
  EXPECT_EQ(response_status(r), 401) << r;
  r = admin_raw(p, "POST", "/sessions/flush", "Authorization: Basic YWRtaW46YWRtaW4=\r\n");
  EXPECT_EQ(response_status(r), 401) << r;
  r = admin_raw(p, "DELETE", "/sessions/00", "");
  EXPECT_EQ(response_status(r), 401) << r;
  r = admin_raw(p, "POST", "/tickets/rotate", "");
  EXPECT_EQ(response_status(r), 401) << r;
  r = admin_raw(p, "POST", "/reload", "");
  EXPECT_EQ(response_status(r), 401) << r;
  // None of the refused calls did anything: the session still resumes.
  EXPECT_TRUE(id_resumes(p.port(), s.get()));

  // Reads stay open to the local monitoring.
  EXPECT_EQ(response_status(admin_raw(p, "GET", "/metrics", "")), 200);
  EXPECT_EQ(response_status(admin_raw(p, "GET", "/tickets", "")), 200);

  r = admin_raw(p, "POST", "/sessions/flush", bearer(kToken));
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_FALSE(id_resumes(p.port(), s.get()));

  // Basic credentials are no bearer token at all.
  EXPECT_EQ(p.metric("tlsfront_admin_refused_total{reason=\"no_token\"}"), 5);
  EXPECT_EQ(p.metric("tlsfront_admin_refused_total{reason=\"bad_token\"}"), 1);
  const std::string log = p.log_containing("admin: POST /sessions/flush from 127.0.0.1:");
  EXPECT_NE(log.find("admin: POST /sessions/flush from 127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("refused (bad_token)"), std::string::npos) << log;
  EXPECT_NE(log.find(": 200"), std::string::npos) << log;
  EXPECT_EQ(log.find(kToken), std::string::npos) << "the token reached the log";
}

TEST_F(AdminTest, CrossSitePagesAndForeignHostNamesAreRefused) {
  echo_backend backend(dir_);
  proxy_instance p(default_config(backend.address()), dir_);
  auto s = id_session(p.port());
  ASSERT_TRUE(s);
  const std::string port = std::to_string(p.admin_port());

  // What a page on another site sends with a form or fetch(): refused before the route runs.
  std::string r = admin_raw(p, "POST", "/sessions/flush", "Origin: http://evil.example\r\n");
  EXPECT_EQ(response_status(r), 403) << r;
  r = admin_raw(p, "POST", "/sessions/flush", "Origin: null\r\n");
  EXPECT_EQ(response_status(r), 403) << r;
  r = admin_raw(p, "POST", "/tickets/rotate",
                "Sec-Fetch-Site: cross-site\r\nContent-Type: text/plain\r\n");
  EXPECT_EQ(response_status(r), 403) << r;
  r = admin_raw(p, "POST", "/reload", "Sec-Fetch-Site: same-site\r\n");
  EXPECT_EQ(response_status(r), 403) << r;
  // DNS rebinding: the page's own name in Host, for reads as well as writes.
  r = admin_raw(p, "GET", "/metrics", "", "rebind.evil.example:" + port);
  EXPECT_EQ(response_status(r), 403) << r;
  r = admin_raw(p, "POST", "/sessions/flush", "", "rebind.evil.example:" + port);
  EXPECT_EQ(response_status(r), 403) << r;
  r = admin_raw(p, "GET", "/metrics", "", "10.1.2.3:" + port);  // another address
  EXPECT_EQ(response_status(r), 403) << r;
  r = plain_exchange(p.admin_port(), "GET /metrics HTTP/1.0\r\n\r\n");  // no Host at all
  EXPECT_EQ(response_status(r), 403) << r;
  EXPECT_TRUE(id_resumes(p.port(), s.get()));

  // The admin origin itself, tools without browser headers, and localhost are fine.
  EXPECT_EQ(response_status(admin_raw(p, "GET", "/healthz", "", "localhost:" + port)), 200);
  EXPECT_EQ(response_status(admin_raw(p, "GET", "/healthz", "", "127.0.0.1")), 200);
  r = admin_raw(p, "POST", "/tickets/rotate",
                "Origin: http://127.0.0.1:" + port + "\r\nSec-Fetch-Site: same-origin\r\n");
  EXPECT_EQ(response_status(r), 200) << r;
  r = admin_raw(p, "POST", "/sessions/flush", "Sec-Fetch-Site: none\r\n", "localhost:" + port);
  EXPECT_EQ(response_status(r), 200) << r;

  EXPECT_EQ(p.metric("tlsfront_admin_refused_total{reason=\"cross_site\"}"), 4);
  EXPECT_EQ(p.metric("tlsfront_admin_refused_total{reason=\"host\"}"), 4);
  const std::string log = p.log_containing("admin: POST /sessions/flush from 127.0.0.1:");
  EXPECT_NE(log.find("admin: POST /sessions/flush from 127.0.0.1:"), std::string::npos) << log;
  EXPECT_NE(log.find("refused (cross_site)"), std::string::npos) << log;
  EXPECT_NE(log.find("refused (host)"), std::string::npos) << log;
}

TEST_F(AdminTest, AllowedHostsAddsTheNamesMonitoringUses) {
  echo_backend backend(dir_);
  proxy_instance p(config_with_admin(backend.address(),
                                     "listen = \"127.0.0.1:0\"\n"
                                     "allowed_hosts = [\"Metrics.Internal\", \"admin.lan:9901\"]"),
                   dir_);
  EXPECT_EQ(response_status(admin_raw(p, "GET", "/metrics", "", "metrics.internal:8080")), 200);
  EXPECT_EQ(response_status(admin_raw(p, "GET", "/metrics", "", "admin.lan")), 200);
  EXPECT_EQ(response_status(admin_raw(p, "GET", "/metrics", "", "other.internal")), 403);
}

TEST_F(AdminTest, BeyondLoopbackWithoutATokenTheConfigIsRefused) {
  auto check = [&](const std::string& admin) {
    const std::string path = dir_ + "/check.toml";
    std::string c = config_with_admin("127.0.0.1:1", admin);
    for (const auto& [from, to] :
         {std::pair<std::string, std::string>{"{certs}", certs_dir()}, {"{dir}", dir_}}) {
      for (std::size_t at; (at = c.find(from)) != std::string::npos;) {
        c.replace(at, from.size(), to);
      }
    }
    write_file(path, c);
    return run_command(std::string(TLSFRONT_BINARY) + " -t -c " + path + " 2>&1");
  };
  command_result r = check("listen = \"0.0.0.0:0\"");
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("check.toml:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("not a loopback address"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("token_file"), std::string::npos) << r.out;
  r = check("listen = \"[::]:0\"");
  EXPECT_NE(r.status, 0) << r.out;

  const std::string good = write_token(dir_, kToken);
  r = check("listen = \"0.0.0.0:0\"\ntoken_file = \"" + good + "\"");
  EXPECT_EQ(r.status, 0) << r.out;
  r = check("listen = \"127.0.0.5:0\"");  // all of 127/8 is loopback
  EXPECT_EQ(r.status, 0) << r.out;

  // Bad token files: each a clear error with its position.
  write_file(dir_ + "/empty.token", "\n");
  r = check("token_file = \"" + dir_ + "/empty.token\"");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("is empty"), std::string::npos) << r.out;
  const std::string short_token = write_token(dir_, "tooshort", "short.token");
  r = check("token_file = \"" + short_token + "\"");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("too short"), std::string::npos) << r.out;
  const std::string spaced = write_token(dir_, "0123456789 abcdef0123456789", "spaced.token");
  r = check("token_file = \"" + spaced + "\"");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("printable ASCII"), std::string::npos) << r.out;
  r = check("token_file = \"" + dir_ + "/missing.token\"");
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("cannot read the admin token file"), std::string::npos) << r.out;
  r = check("max_connections = 0");
  EXPECT_NE(r.status, 0);
  r = check("request_timeout = \"0s\"");
  EXPECT_NE(r.status, 0);
  r = check("allowed_hosts = \"x\"");
  EXPECT_NE(r.status, 0);
}

TEST_F(AdminTest, ConnectionsAreCappedAndAWholeRequestHasADeadline) {
  echo_backend backend(dir_);
  proxy_instance p(config_with_admin(backend.address(),
                                     "listen = \"127.0.0.1:0\"\n"
                                     "max_connections = 4\n"
                                     "request_timeout = \"1s\""),
                   dir_);
  // Four slow clients hold every admin slot with half a request head.
  std::vector<int> slow;
  for (int i = 0; i < 4; ++i) {
    int fd = connect_tcp(p.admin_port());
    ASSERT_GE(fd, 0);
    const std::string part = "GET /metrics HTTP/1.1\r\nHo";
    ASSERT_EQ(::send(fd, part.data(), part.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(part.size()));
    slow.push_back(fd);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // A fifth gets a 503 at once, and the TLS listener serves on.
  std::string r = admin_raw(p, "GET", "/healthz", "");
  EXPECT_EQ(response_status(r), 503) << r;
  EXPECT_EQ(response_status(https_request(p.port(),
                                          "GET / HTTP/1.1\r\nHost: a\r\n"
                                          "Connection: close\r\n\r\n",
                                          "a.example")),
            200);
  // Within the deadline (plus slack) the slow ones are closed by the server.
  for (int fd : slow) {
    timeval tv{5, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char b[64];
    EXPECT_EQ(::recv(fd, b, sizeof b, 0), 0) << "a slow admin connection was not closed";
    ::close(fd);
  }
  // A client trickling a byte every 200 ms never completes its head: cut after the whole-request
  // deadline although every single read arrives in time.
  int fd = connect_tcp(p.admin_port());
  ASSERT_GE(fd, 0);
  const std::string head =
      "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaa";
  bool cut = false;
  const auto start = std::chrono::steady_clock::now();
  for (char ch : head) {
    if (::send(fd, &ch, 1, MSG_NOSIGNAL) != 1) {
      cut = true;
      break;
    }
    char b[64];
    if (::recv(fd, b, sizeof b, MSG_DONTWAIT) == 0) {
      cut = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ::close(fd);
  EXPECT_TRUE(cut) << "a trickling client kept its connection for "
                   << std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start)
                          .count()
                   << " ms";
  // Slots free again: served, and the refusal counted.
  EXPECT_EQ(response_status(admin_raw(p, "GET", "/healthz", "")), 200);
  EXPECT_GE(p.metric("tlsfront_admin_refused_total{reason=\"connections\"}"), 1);
  const std::string log = p.log_containing("not complete within 1000 ms, closed");
  EXPECT_NE(log.find("not complete within 1000 ms, closed"), std::string::npos) << log;
}

TEST_F(AdminTest, KeyRotationIsRateLimited) {
  echo_backend backend(dir_);
  proxy_instance p(config_with_admin(backend.address(),
                                     "listen = \"127.0.0.1:0\"\n"
                                     "rotate_burst = 2\n"
                                     "rotate_interval = \"1h\""),
                   dir_);
  auto keys = [&] {
    std::string t = p.admin_get("/tickets");
    std::size_t n = 0;
    for (std::size_t at = 0; (at = t.find("\"name\"", at)) != std::string::npos; ++at) {
      ++n;
    }
    return n;
  };
  const std::size_t before = keys();
  EXPECT_EQ(response_status(p.admin_request("POST", "/tickets/rotate")), 200);
  EXPECT_EQ(response_status(p.admin_request("POST", "/tickets/rotate")), 200);
  EXPECT_EQ(keys(), before + 2);
  for (int i = 0; i < 50; ++i) {
    std::string r = p.admin_request("POST", "/tickets/rotate");
    ASSERT_EQ(response_status(r), 429) << r;
    if (i == 0) {
      int retry = std::atoi(response_header(r, "Retry-After").c_str());
      EXPECT_GT(retry, 0) << r;
      EXPECT_LE(retry, 3600) << r;
    }
  }
  EXPECT_EQ(keys(), before + 2) << "a refused rotation added a key";
  EXPECT_EQ(p.metric("tlsfront_admin_refused_total{reason=\"rate_limited\"}"), 50);
}

TEST_F(AdminTest, AReloadPicksUpARewrittenTokenFile) {
  echo_backend backend(dir_);
  const std::string token_path = write_token(dir_, kToken);
  const std::string cfg = config_with_admin(
      backend.address(), "listen = \"127.0.0.1:0\"\ntoken_file = \"" + token_path + "\"");
  proxy_instance p(cfg, dir_);
  const std::string next = "fedcba9876543210fedcba9876543210";
  write_token(dir_, next);
  std::string r = admin_raw(p, "POST", "/reload", bearer(kToken));
  ASSERT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(response_status(admin_raw(p, "POST", "/tickets/rotate", bearer(kToken))), 401);
  EXPECT_EQ(response_status(admin_raw(p, "POST", "/tickets/rotate", bearer(next))), 200);
  // A token file that became unusable refuses the reload and keeps the running token.
  write_file(token_path, "\n");
  r = admin_raw(p, "POST", "/reload", bearer(next));
  EXPECT_EQ(response_status(r), 400) << r;
  EXPECT_EQ(response_status(admin_raw(p, "POST", "/tickets/rotate", bearer(next))), 200);
}

}  // namespace
}  // namespace tlsfront::test
