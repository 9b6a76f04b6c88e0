// Backend health with real backends: active HTTP and TCP checks take a stopped or killed server
// out after `fall` failed checks and bring it back after `rise` good ones; passive ejection after
// max_fails failures in a row; every server down → 503; GET /backends and the metrics say so.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "integration/harness.h"
#include "support/loopback_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

std::string two_server_config(const echo_backend& a, const echo_backend& b,
                              const std::string& pool_extra) {
  std::string c = default_config(a.address(), "", pool_extra, 2);
  const std::string one = "servers = [\"" + a.address() + "\"]";
  c.replace(c.find(one), one.size(),
            "servers = [\"" + a.address() + "\", \"" + b.address() + "\"]");
  return c;
}

int get_status(proxy_instance& p, const std::string& path = "/") {
  tls_client c(p.port(), client("a.example", TLS1_3_VERSION));
  if (!c.connected()) {
    return -1;
  }
  c.send("GET " + path + " HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  return response_status(c.read_response());
}

std::string up_series(const echo_backend& b) {
  return "tlsfront_backend_up{pool=\"echo\",server=\"" + b.address() + "\"}";
}
std::string checks_series(const echo_backend& b, const char* result) {
  return "tlsfront_backend_health_checks_total{pool=\"echo\",server=\"" + b.address() +
         "\",result=\"" + result + "\"}";
}

// Polls until `series` equals `value` (10 s at most); returns the last value read.
double wait_metric(proxy_instance& p, const std::string& series, double value) {
  double v = p.metric(series);
  for (int i = 0; i < 500 && v != value; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    v = p.metric(series);
  }
  return v;
}

class HealthTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  std::string dir_;
};

TEST_F(HealthTest, HttpChecksTakeAStuckServerOutAfterFallAndBackAfterRise) {
  echo_backend a(dir_), b(dir_);
  proxy_instance p(two_server_config(a, b,
                                     "max_fails = 0\n[pool.health_check]\ntype = \"http\"\n"
                                     "path = \"/\"\ninterval = \"100ms\"\ntimeout = \"100ms\"\n"
                                     "rise = 2\nfall = 3\n"),
                   dir_);
  ASSERT_GE(p.metric_reaching(checks_series(a, "ok"), 2), 2);
  EXPECT_EQ(p.metric("tlsfront_pool_servers_up{pool=\"echo\"}"), 2);

  // Stopped (SIGSTOP): connections are accepted by the kernel but never answered, so each
  // check times out.
  a.proc().signal(SIGSTOP);
  EXPECT_EQ(wait_metric(p, up_series(a), 0), 0) << p.log();
  // Down after exactly `fall` failed checks in a row.
  EXPECT_NE(p.log().find("server " + a.address() + " is down: response: timed out (3 failed"),
            std::string::npos)
      << p.log();
  std::string backends = p.admin_get("/backends");
  EXPECT_NE(backends.find("\"servers_up\":1"), std::string::npos) << backends;
  EXPECT_NE(backends.find("{\"name\":\"" + a.address() + "\",\"up\":false,\"checks_up\":false"),
            std::string::npos)
      << backends;
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(get_status(p), 200) << "a request went to the server taken out";
  }

  // Both stuck: every request gets 503 from tlsfront, at once.
  b.proc().signal(SIGSTOP);
  EXPECT_EQ(wait_metric(p, "tlsfront_pool_servers_up{pool=\"echo\"}", 0), 0);
  EXPECT_EQ(get_status(p), 503);

  a.proc().signal(SIGCONT);
  b.proc().signal(SIGCONT);
  EXPECT_EQ(wait_metric(p, "tlsfront_pool_servers_up{pool=\"echo\"}", 2), 2);
  EXPECT_NE(p.log().find("server " + a.address() + " is up again (2 good checks)"),
            std::string::npos);
  EXPECT_EQ(get_status(p), 200);
}

TEST_F(HealthTest, AnUnexpectedStatusFailsTheCheck) {
  echo_backend a(dir_), b(dir_);
  proxy_instance p(two_server_config(a, b,
                                     "[pool.health_check]\ntype = \"http\"\n"
                                     "path = \"/status/503\"\ninterval = \"100ms\"\n"
                                     "timeout = \"100ms\"\nfall = 1\n"),
                   dir_);
  EXPECT_EQ(wait_metric(p, "tlsfront_pool_servers_up{pool=\"echo\"}", 0), 0);
  EXPECT_NE(p.log().find("is down: status 503"), std::string::npos) << p.log();
  EXPECT_EQ(get_status(p), 503);
}

TEST_F(HealthTest, TcpChecksSeeAKilledServer) {
  echo_backend a(dir_), b(dir_);
  proxy_instance p(two_server_config(a, b,
                                     "[pool.health_check]\ntype = \"tcp\"\n"
                                     "interval = \"100ms\"\ntimeout = \"100ms\"\nfall = 2\n"),
                   dir_);
  a.proc().signal(SIGKILL);
  EXPECT_EQ(wait_metric(p, up_series(a), 0), 0);
  EXPECT_NE(p.log().find("is down: connect: Connection refused"), std::string::npos) << p.log();
  EXPECT_EQ(p.metric(up_series(b)), 1);
  const double errors = p.metric("tlsfront_backend_connect_errors_total{pool=\"echo\"}");
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(get_status(p), 200);
  }
  EXPECT_EQ(p.metric("tlsfront_backend_connect_errors_total{pool=\"echo\"}"), errors)
      << "requests still tried the dead server";
}

TEST_F(HealthTest, PassiveEjectionAfterMaxFailsInARow) {
  echo_backend a(dir_), b(dir_);
  proxy_instance p(two_server_config(a, b, "max_fails = 2\ncooldown = \"30s\"\n"), dir_);
  a.proc().signal(SIGKILL);
  // Every request succeeds (a refused connect is retried on the other server) until the dead
  // one has failed twice in a row and is ejected; after that nothing goes to it.
  for (int i = 0; i < 8; ++i) {
    EXPECT_EQ(get_status(p), 200);
  }
  EXPECT_EQ(p.metric("tlsfront_backend_connect_errors_total{pool=\"echo\"}"), 2);
  EXPECT_EQ(
      p.metric("tlsfront_backend_ejections_total{pool=\"echo\",server=\"" + a.address() + "\"}"),
      1);
  EXPECT_EQ(p.metric(up_series(a)), 0);
  std::string backends = p.admin_get("/backends");
  EXPECT_NE(backends.find("\"checks_up\":true,\"ejected_ms\":"), std::string::npos) << backends;
}

TEST_F(HealthTest, GarbageOrTruncatedCheckAnswersCountAsFailures) {
  // Backends that read the check's request and answer with something that is not an HTTP
  // status line, or close before the line ends.
  auto read_head = [](int fd) {
    std::string req;
    while (req.find("\r\n\r\n") == std::string::npos && read_until_size(fd, req, req.size() + 1)) {
    }
  };
  loopback_server garbage([&](int fd) {
    read_head(fd);
    ::write(fd, "SSH-2.0-OpenSSH_9.2\r\n", 21);
  });
  loopback_server truncated([&](int fd) {
    read_head(fd);
    ::write(fd, "HTTP/1.1 2", 10);
  });
  for (const loopback_server* s : {&garbage, &truncated}) {
    const std::string dir = make_temp_dir();
    std::string cfg = default_config(s->address(), "",
                                     "[pool.health_check]\ntype = \"http\"\n"
                                     "interval = \"100ms\"\ntimeout = \"100ms\"\nfall = 1\n");
    proxy_instance p(cfg, dir);
    EXPECT_EQ(wait_metric(p, "tlsfront_pool_servers_up{pool=\"echo\"}", 0), 0) << p.log();
    const std::string why = s == &garbage ? "is down: response: not an HTTP/1.x status line"
                                          : "is down: response: closed early";
    EXPECT_NE(p.log().find(why), std::string::npos) << p.log();
    EXPECT_EQ(get_status(p), 503);
    EXPECT_TRUE(p.proc().running());
  }
}

}  // namespace
}  // namespace tlsfront::test
