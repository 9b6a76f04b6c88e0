// tools/loadgen against the real proxy: each mode offers (or not) what it claims, and the
// resumed share it reports matches what the proxy counted.
#include <gtest/gtest.h>

#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

double json_number(const std::string& json, const std::string& key) {
  size_t p = json.find("\"" + key + "\":");
  return p == std::string::npos ? -1 : std::atof(json.c_str() + p + key.size() + 3);
}

TEST(Loadgen, ModesResumeAsTheyClaim) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(default_config(b.address(), "", "", 1), dir);
  struct {
    std::string args;
    bool resumes;
    const char* version;
    const char* kind;
  } cases[] = {
      {"--mode full --tls 1.2", false, "TLSv1.2", "none"},
      {"--mode full --tls 1.3", false, "TLSv1.3", "none"},
      {"--mode id", true, "TLSv1.2", "id"},
      {"--mode ticket12", true, "TLSv1.2", "ticket"},
      {"--mode ticket13", true, "TLSv1.3", "ticket"},
  };
  for (const auto& c : cases) {
    std::string series = "tlsfront_handshakes_total{listener=\"https\",version=\"" +
                         std::string(c.version) + "\",resumed=\"" + c.kind + "\"}";
    double before = p.metric(series);
    std::string json = dir + "/lg.json";
    command_result r = run_command(std::string(TLSFRONT_LOADGEN) + " --port " +
                                   std::to_string(p.port()) + " --sni a.example " + c.args +
                                   " --connections 4 --duration 1 --json " + json + " 2>&1");
    ASSERT_EQ(r.status, 0) << c.args << ": " << r.out;
    std::string out = read_file(json);
    double handshakes = json_number(out, "handshakes");
    double resumed = json_number(out, "resumed");
    EXPECT_GT(handshakes, 10) << out;
    EXPECT_EQ(json_number(out, "errors"), 0) << out;
    if (c.resumes) {
      EXPECT_GE(resumed, handshakes - 4) << c.args << ": " << out;  // all but the first per conn
    } else {
      EXPECT_EQ(resumed, 0) << c.args << ": " << out;
    }
    // The proxy saw the same: every loadgen handshake is in its counters, of the right kind.
    double counted = p.metric(series) - before;
    EXPECT_GE(counted, c.resumes ? resumed : handshakes) << c.args;
  }
}

// --mode early13 with both clients (BoringSSL and OpenSSL 3): every round after a connection's
// first sends its request as early data, which the proxy accepts (a fresh ticket each time).
TEST(Loadgen, Early13SendsItsRequestsAsEarlyData) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  std::string config = default_config(b.address(), "", "", 1);
  config.replace(config.find("handshake_timeout = \"1s\"\n"), 0, "early_data = true\n");
  proxy_instance p(config, dir);
  for (const std::string& tool :
       {std::string(TLSFRONT_LOADGEN), std::string(TLSFRONT_LOADGEN_OPENSSL)}) {
    const double accepted_before = p.metric("tlsfront_early_data_accepted_total");
    std::string json = dir + "/lg.json";
    command_result r = run_command(tool + " --port " + std::to_string(p.port()) +
                                   " --sni a.example --mode early13 --connections 4 --duration 1"
                                   " --json " +
                                   json + " 2>&1");
    ASSERT_EQ(r.status, 0) << tool << ": " << r.out;
    std::string out = read_file(json);
    const double handshakes = json_number(out, "handshakes");
    const double early = json_number(out, "early_accepted");
    EXPECT_GT(handshakes, 10) << out;
    EXPECT_EQ(json_number(out, "errors"), 0) << out;
    EXPECT_GE(early, handshakes - 4) << tool << ": " << out;  // all but the first per connection
    EXPECT_GE(p.metric("tlsfront_early_data_accepted_total") - accepted_before, early) << tool;
    EXPECT_GT(json_number(out, "p50"), 0) << out;
  }
}

}  // namespace
}  // namespace tlsfront::test
