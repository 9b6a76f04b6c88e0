// Tests for config: a full valid file, the defaults, the shipped conf/tlsfront.toml, one test per
// error class (asserting the exact file:line:column and the gist of the message), and the
// duration/size parsers.
#include "config/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "support/test_env.h"
#include "tls/certificate.h"

namespace tlsfront::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Drops one leading newline (so line 1 is the line after R"() and puts in the test
// certificates' directory for @CERTS@.
std::string with_certs(std::string_view text) {
  std::string out(text.starts_with('\n') ? text.substr(1) : text);
  const std::string marker = "@CERTS@";
  for (std::size_t at = out.find(marker); at != std::string::npos; at = out.find(marker, at)) {
    out.replace(at, marker.size(), test::certs_dir());
    at += test::certs_dir().size();
  }
  return out;
}

load_result load(std::string_view text) {
  return load_string(with_certs(text), "t.toml");
}

// Succeeds when `text` is refused with an error that starts with "t.toml:<where>: " and whose
// message contains `what`.
testing::AssertionResult fails_with(std::string_view text, std::string_view where,
                                    std::string_view what) {
  const load_result r = load(text);
  if (r.value) {
    return testing::AssertionFailure() << "the config was accepted";
  }
  const std::string got = r.error.to_string();
  const std::string prefix = "t.toml:" + std::string(where) + ": ";
  if (!got.starts_with(prefix)) {
    return testing::AssertionFailure()
           << "error \"" << got << "\" does not start with \"" << prefix << "\"";
  }
  if (r.error.message.find(what) == std::string::npos) {
    return testing::AssertionFailure()
           << "error \"" << got << "\" does not mention \"" << what << "\"";
  }
  return testing::AssertionSuccess();
}

// One listener on 127.0.0.1:8443 with one certificate (file names inside the test certs dir);
// the cert value sits at 4:10 and the key value at 5:9.
std::string one_certificate(const std::string& cert, const std::string& key) {
  return "\n[[listener]]\nlisten = \"127.0.0.1:8443\"\n  [[listener.certificate]]\n"
         "  cert = \"@CERTS@/" +
         cert + "\"\n  key = \"@CERTS@/" + key + "\"\n";
}

void copy_file(const std::string& from, const std::string& to) {
  std::filesystem::create_directories(std::filesystem::path(to).parent_path());
  test::write_file(to, test::read_file(from));
}

// The smallest valid config, followed by whatever a test appends.
constexpr std::string_view minimal = R"(
[[listener]]
listen = "127.0.0.1:8443"
  [[listener.certificate]]
  cert = "@CERTS@/a.crt"
  key = "@CERTS@/a.key"
)";

// ---------------------------------------------------------------------------------------------
// Valid configs

TEST(config_load, full_config_sets_every_field) {
  const std::string dir = test::make_temp_dir();
  copy_file(test::certs_dir() + "/a.crt", dir + "/certs/a.crt");
  copy_file(test::certs_dir() + "/a.key", dir + "/certs/a.key");
  const std::string path = dir + "/tlsfront.toml";
  test::write_file(path, with_certs(R"(
[server]
threads = 4

[admin]
enabled = false
listen = "[::1]:9902"

[log]
level = "debug"
error_log = "/var/log/tlsfront/error.log"
access_log = "off"

[limits]
max_connections = 100
max_header_bytes = "32k"
max_header_count = 50
max_body_bytes = "10m"
client_idle_timeout = "90s"
client_read_timeout = 15
drain_timeout = "1m"

[[listener]]
name = "main"
listen = "0.0.0.0:443"
min_tls = "1.3"
max_tls = "1.3"
ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
curves = "X25519"
alpn = ["h2", "http/1.1"]
handshake_timeout = "2500ms"
  [[listener.certificate]]
  cert = "certs/a.crt"
  key = "certs/a.key"
  server_names = ["A.Example", "*.WWW.a.example"]
  [[listener.certificate]]
  cert = "@CERTS@/b.crt"
  key = "@CERTS@/b.key"
  default = true

[[listener]]
listen = "[::]:0"
  [[listener.certificate]]
  cert = "@CERTS@/wild.crt"
  key = "@CERTS@/wild.key"

[[pool]]
name = "api"
servers = ["10.0.0.1:8080", "[fd00::1]:8081", "backend.internal:80"]
balance = "least_connections"
connect_timeout = "1s"
read_timeout = "2m"
idle_timeout = 30
max_idle = 8
cooldown = "500ms"
retries = 0

[[pool]]
name = "web"
servers = ["127.0.0.1:8080"]

[[route]]
host = "API.example.com"
path_prefix = "/v1/"
pool = "api"

[[route]]
host = "*.example.com"
pool = "web"

[[route]]
pool = "web"
)"));

  const load_result r = load_file(path);
  ASSERT_TRUE(r.value) << r.error.to_string();
  const config& c = *r.value;
  EXPECT_EQ(c.path, path);

  EXPECT_EQ(c.server.threads, 4u);
  EXPECT_FALSE(c.admin.enabled);
  EXPECT_EQ(c.admin.address, "::1");
  EXPECT_EQ(c.admin.port, 9902);
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.error_log, "/var/log/tlsfront/error.log");
  EXPECT_EQ(c.log.access_log, "off");

  const proxy::limits_options& l = c.server.limits;
  EXPECT_EQ(l.max_connections, 100u);
  EXPECT_EQ(l.max_header_bytes, 32u * 1024);
  EXPECT_EQ(l.max_header_count, 50u);
  EXPECT_EQ(l.max_body_bytes, 10u * 1024 * 1024);
  EXPECT_EQ(l.client_idle_timeout, seconds(90));
  EXPECT_EQ(l.client_read_timeout, seconds(15));
  EXPECT_EQ(l.drain_timeout, seconds(60));

  ASSERT_EQ(c.server.listeners.size(), 2u);
  const proxy::listener_options& main = c.server.listeners[0];
  EXPECT_EQ(main.name, "main");
  EXPECT_EQ(main.address, "0.0.0.0");
  EXPECT_EQ(main.port, 443);
  EXPECT_EQ(main.tls.min_version, tls::tls1_3);
  EXPECT_EQ(main.tls.max_version, tls::tls1_3);
  EXPECT_EQ(main.tls.ciphers, "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(main.tls.curves, "X25519");
  EXPECT_EQ(main.tls.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(main.tls.handshake_timeout, milliseconds(2500));
  ASSERT_EQ(main.tls.certificates.size(), 2u);
  // Relative paths resolve against the config file's directory; absolute ones stay as written.
  EXPECT_EQ(main.tls.certificates[0].cert_file, dir + "/certs/a.crt");
  EXPECT_EQ(main.tls.certificates[0].key_file, dir + "/certs/a.key");
  EXPECT_EQ(main.tls.certificates[0].server_names,
            (std::vector<std::string>{"a.example", "*.www.a.example"}));
  EXPECT_FALSE(main.tls.certificates[0].is_default);
  EXPECT_EQ(main.tls.certificates[1].cert_file, test::certs_dir() + "/b.crt");
  EXPECT_EQ(main.tls.certificates[1].key_file, test::certs_dir() + "/b.key");
  EXPECT_TRUE(main.tls.certificates[1].server_names.empty());
  EXPECT_TRUE(main.tls.certificates[1].is_default);

  const proxy::listener_options& second = c.server.listeners[1];
  EXPECT_EQ(second.name, "listener1");  // the default name carries the listener's index
  EXPECT_EQ(second.address, "::");
  EXPECT_EQ(second.port, 0);
  ASSERT_EQ(second.tls.certificates.size(), 1u);
  EXPECT_EQ(second.tls.min_version, tls::tls1_2);

  ASSERT_EQ(c.server.pools.size(), 2u);
  const proxy::pool_options& api = c.server.pools[0];
  EXPECT_EQ(api.name, "api");
  ASSERT_EQ(api.servers.size(), 3u);
  EXPECT_EQ(api.servers[0].host, "10.0.0.1");
  EXPECT_EQ(api.servers[0].port, 8080);
  EXPECT_EQ(api.servers[1].host, "fd00::1");
  EXPECT_EQ(api.servers[1].port, 8081);
  EXPECT_EQ(api.servers[2].host, "backend.internal");
  EXPECT_EQ(api.servers[2].port, 80);
  EXPECT_EQ(api.balance, proxy::balance_policy::least_connections);
  EXPECT_EQ(api.connect_timeout, seconds(1));
  EXPECT_EQ(api.read_timeout, seconds(120));
  EXPECT_EQ(api.idle_timeout, seconds(30));
  EXPECT_EQ(api.max_idle, 8u);
  EXPECT_EQ(api.cooldown, milliseconds(500));
  EXPECT_EQ(api.retries, 0);
  EXPECT_EQ(c.server.pools[1].name, "web");
  EXPECT_EQ(c.server.pools[1].balance, proxy::balance_policy::round_robin);

  ASSERT_EQ(c.server.routes.size(), 3u);
  EXPECT_EQ(c.server.routes[0].host, "api.example.com");
  EXPECT_EQ(c.server.routes[0].path_prefix, "/v1/");
  EXPECT_EQ(c.server.routes[0].pool, "api");
  EXPECT_EQ(c.server.routes[1].host, "*.example.com");
  EXPECT_EQ(c.server.routes[1].path_prefix, "/");
  EXPECT_EQ(c.server.routes[2].host, "");
  EXPECT_EQ(c.server.routes[2].pool, "web");
}

TEST(config_load, minimal_config_takes_the_documented_defaults) {
  const load_result r = load(minimal);
  ASSERT_TRUE(r.value) << r.error.to_string();
  const config& c = *r.value;

  const proxy::server_options server;
  const admin::admin_options admin;
  const tlsfront::log::log_options log;
  const proxy::limits_options limits;
  const tls::listener_tls_options tls;
  EXPECT_EQ(c.server.threads, server.threads);
  EXPECT_EQ(c.admin.enabled, admin.enabled);
  EXPECT_EQ(c.admin.address, admin.address);
  EXPECT_EQ(c.admin.port, admin.port);
  EXPECT_EQ(c.log.level, log.level);
  EXPECT_EQ(c.log.error_log, log.error_log);
  EXPECT_EQ(c.log.access_log, log.access_log);
  EXPECT_EQ(c.server.limits.max_connections, limits.max_connections);
  EXPECT_EQ(c.server.limits.max_header_bytes, limits.max_header_bytes);
  EXPECT_EQ(c.server.limits.max_header_count, limits.max_header_count);
  EXPECT_EQ(c.server.limits.max_body_bytes, limits.max_body_bytes);
  EXPECT_EQ(c.server.limits.client_idle_timeout, limits.client_idle_timeout);
  EXPECT_EQ(c.server.limits.client_read_timeout, limits.client_read_timeout);
  EXPECT_EQ(c.server.limits.drain_timeout, limits.drain_timeout);

  ASSERT_EQ(c.server.listeners.size(), 1u);
  const proxy::listener_options& l = c.server.listeners[0];
  EXPECT_EQ(l.name, "listener0");
  EXPECT_EQ(l.address, "127.0.0.1");
  EXPECT_EQ(l.port, 8443);
  EXPECT_EQ(l.tls.min_version, tls.min_version);
  EXPECT_EQ(l.tls.max_version, tls.max_version);
  EXPECT_EQ(l.tls.ciphers, tls.ciphers);
  EXPECT_EQ(l.tls.curves, tls.curves);
  // An http listener offers HTTP/2 first, then HTTP/1.1.
  EXPECT_EQ(l.tls.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(l.tls.handshake_timeout, tls.handshake_timeout);
  ASSERT_EQ(l.tls.certificates.size(), 1u);
  EXPECT_FALSE(l.tls.certificates[0].is_default);
  EXPECT_TRUE(c.server.pools.empty());
  EXPECT_TRUE(c.server.routes.empty());
}

TEST(config_load, pool_defaults_are_the_documented_ones) {
  const load_result r = load(std::string(minimal) + R"(
[[pool]]
name = "p"
servers = ["127.0.0.1:8080"]
)");
  ASSERT_TRUE(r.value) << r.error.to_string();
  ASSERT_EQ(r.value->server.pools.size(), 1u);
  const proxy::pool_options& p = r.value->server.pools[0];
  const proxy::pool_options defaults;
  EXPECT_EQ(p.balance, defaults.balance);
  EXPECT_EQ(p.connect_timeout, defaults.connect_timeout);
  EXPECT_EQ(p.read_timeout, defaults.read_timeout);
  EXPECT_EQ(p.idle_timeout, defaults.idle_timeout);
  EXPECT_EQ(p.max_idle, defaults.max_idle);
  EXPECT_EQ(p.cooldown, defaults.cooldown);
  EXPECT_EQ(p.retries, defaults.retries);
}

TEST(config_load, relative_paths_without_a_directory_stay_relative) {
  const load_result r = load_string(R"(
[[listener]]
listen = "127.0.0.1:1"
  [[listener.certificate]]
  cert = "no-such.crt"
  key = "no-such.key"
)",
                                    "t.toml");
  ASSERT_FALSE(r.value);
  EXPECT_NE(r.error.message.find("no-such.crt"), std::string::npos) << r.error.to_string();
  EXPECT_EQ(r.error.message.find("/no-such.crt"), std::string::npos) << r.error.to_string();
}

// The shipped config parses once the certificate pair it names exists.
TEST(config_load, shipped_config_parses) {
  const std::string dir = test::make_temp_dir();
  copy_file(test::source_dir() + "/conf/tlsfront.toml", dir + "/tlsfront.toml");
  copy_file(test::certs_dir() + "/a.crt", dir + "/certs/tlsfront.crt");
  copy_file(test::certs_dir() + "/a.key", dir + "/certs/tlsfront.key");

  const load_result r = load_file(dir + "/tlsfront.toml");
  ASSERT_TRUE(r.value) << r.error.to_string();
  const config& c = *r.value;
  ASSERT_EQ(c.server.listeners.size(), 1u);
  EXPECT_EQ(c.server.listeners[0].name, "https");
  EXPECT_EQ(c.server.listeners[0].address, "0.0.0.0");
  EXPECT_EQ(c.server.listeners[0].port, 8443);
  ASSERT_EQ(c.server.listeners[0].tls.certificates.size(), 1u);
  EXPECT_EQ(c.server.listeners[0].tls.certificates[0].cert_file, dir + "/certs/tlsfront.crt");
  EXPECT_TRUE(c.server.listeners[0].tls.certificates[0].is_default);
  ASSERT_EQ(c.server.pools.size(), 1u);
  EXPECT_EQ(c.server.pools[0].name, "demo");
  ASSERT_EQ(c.server.pools[0].servers.size(), 1u);
  EXPECT_EQ(c.server.pools[0].servers[0].host, "127.0.0.1");
  EXPECT_EQ(c.server.pools[0].servers[0].port, 8080);
  ASSERT_EQ(c.server.routes.size(), 1u);
  EXPECT_EQ(c.server.routes[0].pool, "demo");
  EXPECT_EQ(c.server.routes[0].path_prefix, "/");
  EXPECT_TRUE(c.admin.enabled);
  EXPECT_EQ(c.admin.address, "127.0.0.1");
  EXPECT_EQ(c.admin.port, 9901);
}

// Every key of the schema is documented in the shipped config, set or commented out.
TEST(config_load, shipped_config_mentions_every_key) {
  const std::string text = test::read_file(test::source_dir() + "/conf/tlsfront.toml");
  ASSERT_FALSE(text.empty());
  for (std::string_view key : {"threads",
                               "upgrade_socket",
                               "write_queue",
                               "keys_ahead",
                               "enabled",
                               "listen",
                               "level",
                               "error_log",
                               "access_log",
                               "max_connections",
                               "max_header_bytes",
                               "max_header_count",
                               "max_body_bytes",
                               "client_idle_timeout",
                               "client_read_timeout",
                               "drain_timeout",
                               "name",
                               "min_tls",
                               "max_tls",
                               "ciphers",
                               "curves",
                               "alpn",
                               "handshake_timeout",
                               "session_tickets",
                               "drop_client_headers",
                               "allow_encoded_slashes",
                               "capacity",
                               "timeout",
                               "shards",
                               "slot_bytes",
                               "source",
                               "files",
                               "rotation",
                               "publish_ahead",
                               "lifetime",
                               "tls13_tickets",
                               "early_data_strikes",
                               "early_data",
                               "max_early_data",
                               "early_data_window",
                               "early_data_methods",
                               "client_auth",
                               "client_ca",
                               "client_crl",
                               "client_verify_depth",
                               "certificate_dir",
                               "client_cert_header",
                               "client_verify_header",
                               "cert",
                               "key",
                               "server_names",
                               "default",
                               "servers",
                               "balance",
                               "connect_timeout",
                               "read_timeout",
                               "idle_timeout",
                               "max_idle",
                               "cooldown",
                               "retries",
                               "host",
                               "path_prefix",
                               "pool",
                               "redis",
                               "sentinels",
                               "master_name",
                               "sentinel_password_file",
                               "cluster_nodes",
                               "ocsp_stapling",
                               "ocsp_responder",
                               "ocsp_file",
                               "refresh_interval",
                               "retry_interval"}) {
    const std::string set = "\n" + std::string(key) + " = ";
    const std::string commented = "# " + std::string(key) + " = ";
    const std::string indented = "  " + std::string(key) + " = ";
    EXPECT_TRUE(text.find(set) != std::string::npos || text.find(commented) != std::string::npos ||
                text.find(indented) != std::string::npos)
        << key;
  }
}

// ---------------------------------------------------------------------------------------------
// Files that cannot be read

TEST(config_errors, missing_file) {
  const std::string path = test::make_temp_dir() + "/nope.toml";
  const load_result r = load_file(path);
  ASSERT_FALSE(r.value);
  EXPECT_EQ(r.error.to_string(), path + ":1:1: cannot read config file: No such file or directory");
}

TEST(config_errors, directory_instead_of_file) {
  const std::string dir = test::make_temp_dir();
  const load_result r = load_file(dir);
  ASSERT_FALSE(r.value);
  EXPECT_EQ(r.error.to_string(), dir + ":1:1: cannot read config file: Is a directory");
}

// ---------------------------------------------------------------------------------------------
// Syntax, unknown keys, types

TEST(config_errors, toml_syntax_error) {
  EXPECT_TRUE(fails_with(R"(
[server]
threads = = 4
)",
                         "2:11", "could not determine value type"));
}

TEST(config_errors, unknown_top_level_table) {
  EXPECT_TRUE(
      fails_with(std::string(minimal) + "[servr]\nthreads = 1\n", "6:2", "unknown table [servr]"));
}

TEST(config_errors, unknown_top_level_key_and_array) {
  EXPECT_TRUE(
      fails_with("threads = 1\n" + std::string(minimal), "1:1", "unknown top-level key 'threads'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[[backend]]\nname = \"x\"\n", "6:3",
                         "unknown table [[backend]]"));
}

TEST(config_errors, unknown_key_in_server) {
  EXPECT_TRUE(fails_with("[server]\nthread = 1\n", "2:1", "unknown key 'thread' in [server]"));
}

TEST(config_errors, unknown_key_in_listener_reports_the_first_in_the_file) {
  // 'zz' sorts after 'lsiten' but comes first in the file.
  EXPECT_TRUE(fails_with(R"(
[[listener]]
zz = 1
lsiten = "127.0.0.1:8443"
)",
                         "2:1", "unknown key 'zz' in [listener]"));
}

TEST(config_errors, unknown_key_in_certificate) {
  EXPECT_TRUE(fails_with(std::string(minimal) + "  chain = \"x.pem\"\n", "6:3",
                         "unknown key 'chain' in [listener.certificate]"));
}

TEST(config_errors, unknown_key_in_pool) {
  EXPECT_TRUE(fails_with(std::string(minimal) + R"(
[[pool]]
name = "p"
servers = ["127.0.0.1:80"]
timeout = "1s"
)",
                         "10:1", "unknown key 'timeout' in [pool]"));
}

TEST(config_load, health_checks) {
  const load_result r = load(std::string(minimal) + R"(
[[pool]]
name = "p"
servers = ["127.0.0.1:8080"]
max_fails = 3
[pool.health_check]
type = "http"
path = "/healthz"
host = "app.internal"
expect_status = "2xx"
interval = "5s"
timeout = "2s"
rise = 3
fall = 4
[[pool]]
name = "q"
servers = ["127.0.0.1:8081"]
)");
  ASSERT_TRUE(r.value) << r.error.to_string();
  const proxy::pool_options& p = r.value->server.pools[0];
  EXPECT_EQ(p.max_fails, 3);
  EXPECT_EQ(p.health.type, proxy::health_check_options::kind::http);
  EXPECT_EQ(p.health.path, "/healthz");
  EXPECT_EQ(p.health.host, "app.internal");
  EXPECT_EQ(p.health.expect_min, 200);
  EXPECT_EQ(p.health.expect_max, 299);
  EXPECT_EQ(p.health.interval, std::chrono::seconds(5));
  EXPECT_EQ(p.health.timeout, std::chrono::seconds(2));
  EXPECT_EQ(p.health.rise, 3);
  EXPECT_EQ(p.health.fall, 4);
  EXPECT_EQ(r.value->server.pools[1].health.type, proxy::health_check_options::kind::none);
  EXPECT_EQ(r.value->server.pools[1].max_fails, 1);
}

TEST(config_errors, bad_health_checks) {
  const std::string pool = std::string(minimal) +
                           "[[pool]]\nname = \"p\"\nservers = [\"127.0.0.1:80\"]\n"
                           "[pool.health_check]\n";  // the health_check keys start on line 10
  EXPECT_TRUE(
      fails_with(pool + "path = \"/\"\n", "9:1", "missing required key 'type' in [health_check]"));
  EXPECT_TRUE(fails_with(pool + "type = \"icmp\"\n", "10:8", "'type' must be \"tcp\" or \"http\""));
  EXPECT_TRUE(
      fails_with(pool + "type = \"tcp\"\npath = \"/\"\n", "11:8", "'path' needs type = \"http\""));
  EXPECT_TRUE(fails_with(pool + "type = \"http\"\npath = \"health\"\n", "11:8",
                         "'path' must start with '/'"));
  EXPECT_TRUE(fails_with(pool + "type = \"http\"\nexpect_status = 42\n", "11:17",
                         "'expect_status' must be"));
  EXPECT_TRUE(fails_with(pool + "type = \"http\"\nexpect_status = \"2xy\"\n", "11:17",
                         "'expect_status' must be"));
  EXPECT_TRUE(fails_with(pool + "type = \"tcp\"\ninterval = \"1s\"\ntimeout = \"2s\"\n", "12:11",
                         "'timeout' must not exceed 'interval'"));
  EXPECT_TRUE(fails_with(pool + "type = \"tcp\"\nrise = 0\n", "11:8", "'rise'"));
  EXPECT_TRUE(fails_with(pool + "type = \"tcp\"\nping = 1\n", "11:1",
                         "unknown key 'ping' in [health_check]"));
}

TEST(config_errors, bad_route_upgrades) {
  const std::string base =
      std::string(minimal) +
      "[[pool]]\nname = \"p\"\nservers = [\"127.0.0.1:80\"]\n[[route]]\npool = "
      "\"p\"\n";  // upgrades on line 11
  EXPECT_TRUE(fails_with(base + "upgrades = [\"h2c\"]\n", "11:13", "h2c cannot be upgraded to"));
  EXPECT_TRUE(fails_with(base + "upgrades = [\"web socket\"]\n", "11:13", "protocol names"));
  EXPECT_TRUE(fails_with(base + "upgrades = [\"\"]\n", "11:13", "must not hold an empty string"));
  EXPECT_TRUE(fails_with(base + "upgrades = \"websocket\"\n", "11:12", "'upgrades'"));
  const load_result r = load(base + "upgrades = [\"WebSocket\", \"my-proto\"]\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.routes[0].upgrades,
            (std::vector<std::string>{"websocket", "my-proto"}));
}

// One listener with `keys` before its certificate table (so their lines start at 3), then
// `tail`; and a pool a tcp listener can name.
std::string listener_with(const std::string& keys, const std::string& tail = "") {
  return "[[listener]]\nlisten = \"127.0.0.1:8443\"\n" + keys +
         "  [[listener.certificate]]\n  cert = \"@CERTS@/a.crt\"\n  key = \"@CERTS@/a.key\"\n" +
         tail;
}
const std::string db_pool = "[[pool]]\nname = \"db\"\nservers = [\"127.0.0.1:5432\"]\n";

TEST(config_errors, bad_early_data) {
  auto with = [](const std::string& keys, const std::string& tail = "") {
    return listener_with(keys, tail);
  };
  const std::string pool = db_pool;
  EXPECT_TRUE(fails_with(with("early_data = 1\n"), "3:14", "'early_data'"));
  EXPECT_TRUE(fails_with(with("early_data = true\nmax_tls = \"1.2\"\n"), "3:14",
                         "'early_data' needs TLS 1.3"));
  EXPECT_TRUE(fails_with(with("early_data = true\nsession_tickets = false\n"), "3:14",
                         "needs session_tickets = true"));
  EXPECT_TRUE(fails_with(with("mode = \"tcp\"\npool = \"db\"\nearly_data = true\n", pool), "5:14",
                         "'early_data' needs mode = \"http\""));
  EXPECT_TRUE(fails_with(with("max_early_data = 20000\n"), "3:18", "'max_early_data'"));
  EXPECT_TRUE(fails_with(with("max_early_data = 0\n"), "3:18", "'max_early_data'"));
  EXPECT_TRUE(fails_with(with("early_data_window = \"0s\"\n"), "3:21", "more than 0"));
  EXPECT_TRUE(fails_with(with("early_data_window = \"90s\"\n"), "3:21", "at most 60s"));
  EXPECT_TRUE(fails_with(with("early_data_window = \"soon\"\n"), "3:21", "early_data_window"));
  const std::string route =
      "[[pool]]\nname = \"p\"\nservers = [\"127.0.0.1:80\"]\n[[route]]\npool = \"p\"\n";
  EXPECT_TRUE(fails_with(with("", route + "early_data_methods = [\"CONNECT\"]\n"), "11:23",
                         "CONNECT cannot go in early data"));
  EXPECT_TRUE(
      fails_with(with("", route + "early_data_methods = [\"GE T\"]\n"), "11:23", "invalid method"));
  EXPECT_TRUE(fails_with(with("", route + "early_data_methods = \"GET\"\n"), "11:22",
                         "'early_data_methods'"));
  EXPECT_TRUE(
      fails_with(with("", "[tickets]\nearly_data_strikes = 3\n"), "7:22", "early_data_strikes"));
  const load_result r =
      load(with("early_data = true\nmax_early_data = 4096\n"
                "early_data_window = \"2s\"\n",
                route + "early_data_methods = [\"GET\"]\n"));
  ASSERT_TRUE(r.value) << r.error.to_string();
  const tls::early_data_options& e = r.value->server.listeners[0].tls.early_data;
  EXPECT_TRUE(e.enabled);
  EXPECT_EQ(e.max_bytes, 4096u);
  EXPECT_EQ(e.window, std::chrono::seconds(2));
  EXPECT_EQ(r.value->server.routes[0].early_data_methods, std::vector<std::string>{"GET"});
  const load_result d = load(with(""));
  ASSERT_TRUE(d.value) << d.error.to_string();
  EXPECT_FALSE(d.value->server.listeners[0].tls.early_data.enabled);
  EXPECT_EQ(d.value->server.listeners[0].tls.early_data.max_bytes, 14336u);
  EXPECT_EQ(d.value->server.listeners[0].tls.early_data.window, std::chrono::seconds(10));
}

TEST(config_errors, bad_listener_modes) {
  auto with = [](const std::string& keys, const std::string& tail = "") {
    return listener_with(keys, tail);
  };
  const std::string pool = db_pool;
  EXPECT_TRUE(fails_with(with("mode = \"udp\"\n"), "3:8", "'mode' must be \"http\" or \"tcp\""));
  EXPECT_TRUE(fails_with(with("mode = \"tcp\"\n"), "3:8", "mode = \"tcp\" needs 'pool'"));
  EXPECT_TRUE(fails_with(with("pool = \"db\"\n", pool), "3:8", "'pool' needs mode = \"tcp\""));
  EXPECT_TRUE(fails_with(with("mode = \"tcp\"\npool = \"nope\"\n", pool), "4:8",
                         "listener names unknown pool 'nope'"));
  EXPECT_TRUE(fails_with(with("proxy_protocol = \"v2\"\n"), "3:18", "'proxy_protocol' needs mode"));
  EXPECT_TRUE(fails_with(with("mode = \"tcp\"\npool = \"db\"\nproxy_protocol = \"v3\"\n", pool),
                         "5:18", "'proxy_protocol' must be"));
  EXPECT_TRUE(fails_with(with("trusted_proxies = [\"10.0.0.0/40\"]\n"), "3:20",
                         "invalid 'trusted_proxies' entry \"10.0.0.0/40\""));
  const load_result r =
      load(with("mode = \"tcp\"\npool = \"db\"\nproxy_protocol = \"v1\"\ntrusted_proxies = "
                "[\"10.0.0.0/8\", \"::1\"]\n",
                pool));
  ASSERT_TRUE(r.value) << r.error.to_string();
  const proxy::listener_options& l = r.value->server.listeners[0];
  EXPECT_EQ(l.mode, proxy::listener_options::mode_kind::tcp);
  EXPECT_EQ(l.pool, "db");
  EXPECT_EQ(l.send_proxy, proxy::listener_options::proxy_header::v1);
  EXPECT_EQ(l.trusted_proxies.size(), 2u);
}

TEST(config_errors, unknown_key_in_route) {
  EXPECT_TRUE(fails_with(std::string(minimal) + R"(
[[pool]]
name = "p"
servers = ["127.0.0.1:80"]
[[route]]
pool = "p"
prefix = "/"
)",
                         "12:1", "unknown key 'prefix' in [route]"));
}

TEST(config_errors, unknown_key_in_limits) {
  EXPECT_TRUE(
      fails_with("[limits]\nmax_conns = 5\n", "2:1", "unknown key 'max_conns' in [limits]"));
}

TEST(config_errors, unknown_key_in_admin_and_log) {
  EXPECT_TRUE(fails_with("[admin]\nport = 5\n", "2:1", "unknown key 'port' in [admin]"));
  EXPECT_TRUE(fails_with("[log]\nfile = \"x\"\n", "2:1", "unknown key 'file' in [log]"));
}

TEST(config_errors, wrong_type) {
  EXPECT_TRUE(fails_with("[server]\nthreads = \"4\"\n", "2:11", "'threads' must be an integer"));
  EXPECT_TRUE(fails_with("[admin]\nenabled = \"yes\"\n", "2:11", "'enabled' must be a boolean"));
  EXPECT_TRUE(fails_with("[log]\nlevel = 3\n", "2:9", "'level' must be a string"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "  server_names = \"a.example\"\n", "6:18",
                         "'server_names' must be an array of strings"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "  server_names = [\"a.example\", 5]\n", "6:32",
                         "'server_names' must be an array of strings"));
  EXPECT_TRUE(fails_with("server = 5\n", "1:10", "'server' must be a table"));
}

TEST(config_errors, listener_as_a_single_table) {
  EXPECT_TRUE(fails_with(R"(
[listener]
listen = "127.0.0.1:8443"
)",
                         "1:1", "'listener' must be an array of tables: write [[listener]]"));
}

TEST(config_errors, integer_out_of_range) {
  EXPECT_TRUE(
      fails_with("[server]\nthreads = 5000\n", "2:11", "'threads' must be between 0 and 1024"));
  EXPECT_TRUE(fails_with("[limits]\nmax_connections = 0\n", "2:19",
                         "'max_connections' must be at least 1"));
  EXPECT_TRUE(fails_with("[limits]\nmax_header_count = 10001\n", "2:20",
                         "'max_header_count' must be between 1 and 10000"));
}

// ---------------------------------------------------------------------------------------------
// Required keys

TEST(config_errors, no_listener) {
  EXPECT_TRUE(fails_with("[server]\nthreads = 1\n", "1:1", "at least one listener is required"));
  EXPECT_TRUE(fails_with("", "1:1", "at least one listener is required"));
  EXPECT_TRUE(fails_with("listener = []\n", "1:12", "at least one listener is required"));
}

TEST(config_errors, missing_listen) {
  EXPECT_TRUE(fails_with(R"(
[server]
threads = 1
[[listener]]
name = "x"
  [[listener.certificate]]
  cert = "@CERTS@/a.crt"
  key = "@CERTS@/a.key"
)",
                         "3:1", "missing required key 'listen' in [listener]"));
}

TEST(config_errors, missing_certificate) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
name = "web"
listen = "127.0.0.1:8443"
)",
                         "1:1", "listener 'web' has no certificate"));
  EXPECT_TRUE(fails_with(R"(
[[listener]]
name = "web"
listen = "127.0.0.1:8443"
certificate = []
)",
                         "4:15", "listener 'web' has no certificate"));
}

TEST(config_errors, missing_cert_and_key) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
  [[listener.certificate]]
  key = "@CERTS@/a.key"
)",
                         "3:3", "missing required key 'cert' in [listener.certificate]"));
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
  [[listener.certificate]]
  cert = "@CERTS@/a.crt"
)",
                         "3:3", "missing required key 'key' in [listener.certificate]"));
}

TEST(config_errors, missing_pool_name_and_servers) {
  EXPECT_TRUE(fails_with(std::string(minimal) + "[[pool]]\nservers = [\"127.0.0.1:80\"]\n", "6:1",
                         "missing required key 'name' in [pool]"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[[pool]]\nname = \"p\"\n", "6:1",
                         "missing required key 'servers' in [pool]"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[[pool]]\nname = \"p\"\nservers = []\n", "8:11",
                         "'servers' must list at least one"));
}

TEST(config_errors, missing_route_pool) {
  EXPECT_TRUE(fails_with(std::string(minimal) + "[[route]]\npath_prefix = \"/\"\n", "6:1",
                         "missing required key 'pool' in [route]"));
}

// ---------------------------------------------------------------------------------------------
// Values

TEST(config_errors, bad_duration) {
  EXPECT_TRUE(fails_with(std::string(minimal) + "[limits]\ndrain_timeout = \"10x\"\n", "7:17",
                         "invalid duration \"10x\" for 'drain_timeout'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[limits]\ndrain_timeout = -5\n", "7:17",
                         "'drain_timeout' must not be negative"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[limits]\ndrain_timeout = 1.5\n", "7:17",
                         "'drain_timeout' must be a duration"));
}

TEST(config_errors, zero_timeout) {
  EXPECT_TRUE(fails_with(std::string(minimal) + "[limits]\nclient_read_timeout = \"0s\"\n", "7:23",
                         "'client_read_timeout' must be longer than zero"));
  EXPECT_TRUE(load(std::string(minimal) + "[limits]\ndrain_timeout = 0\n").value.has_value());
}

TEST(config_errors, bad_size) {
  EXPECT_TRUE(fails_with("[limits]\nmax_body_bytes = \"16q\"\n", "2:18",
                         "invalid size \"16q\" for 'max_body_bytes'"));
  EXPECT_TRUE(fails_with("[limits]\nmax_body_bytes = -1\n", "2:18",
                         "'max_body_bytes' must not be negative"));
}

TEST(config_errors, size_out_of_range) {
  EXPECT_TRUE(fails_with("[limits]\nmax_header_bytes = \"2m\"\n", "2:20",
                         "'max_header_bytes' must be between 1k and 1m"));
  EXPECT_TRUE(fails_with("[limits]\nmax_header_bytes = 100\n", "2:20",
                         "'max_header_bytes' must be between 1k and 1m"));
}

TEST(config_errors, bad_address) {
  EXPECT_TRUE(fails_with("[admin]\nlisten = \"127.0.0.1\"\n", "2:10",
                         "invalid address \"127.0.0.1\" for 'listen': expected host:port"));
  EXPECT_TRUE(fails_with("[admin]\nlisten = \"127.0.0.1:65536\"\n", "2:10",
                         "the port must be a number from 0 to 65535"));
  EXPECT_TRUE(fails_with("[admin]\nlisten = \"127.0.0.1:http\"\n", "2:10",
                         "the port must be a number from 0 to 65535"));
  EXPECT_TRUE(fails_with("[admin]\nlisten = \"::1:9901\"\n", "2:10",
                         "an IPv6 address must be in brackets"));
  EXPECT_TRUE(fails_with("[admin]\nlisten = \"[::1:9901\"\n", "2:10", "missing ']'"));
  EXPECT_TRUE(
      fails_with("[admin]\nlisten = \"[1.2.3.4]:9901\"\n", "2:10", "is not an IPv6 address"));
  EXPECT_TRUE(fails_with("[admin]\nlisten = \":9901\"\n", "2:10", "missing host"));
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "localhost:8443"
)",
                         "2:10", "\"localhost\" is not an IP address"));
  // Backends may be host names, but port 0 means nothing there.
  EXPECT_TRUE(fails_with(std::string(minimal) + "[[pool]]\nname = \"p\"\nservers = [\"a.b:0\"]\n",
                         "8:12", "the port must be a number from 1 to 65535"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[[pool]]\nname = \"p\"\nservers = [\"a b:80\"]\n",
                         "8:12", "is neither an IP address nor a host name"));
}

TEST(config_errors, duplicate_listen_address) {
  EXPECT_TRUE(fails_with(std::string(minimal) + R"(
[[listener]]
name = "again"
listen = "127.0.0.1:8443"
  [[listener.certificate]]
  cert = "@CERTS@/a.crt"
  key = "@CERTS@/a.key"
)",
                         "9:10",
                         "listener 'again' listens on the same address as listener 'listener0'"));
}

TEST(config_errors, min_tls_above_max_tls) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
min_tls = "1.3"
max_tls = "1.2"
)",
                         "3:11", "'min_tls' (1.3) is higher than 'max_tls' (1.2)"));
}

TEST(config_errors, bad_tls_version) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
max_tls = "1.1"
)",
                         "3:11", "'max_tls' must be \"1.2\" or \"1.3\""));
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
min_tls = 1.2
)",
                         "3:11", "'min_tls' must be \"1.2\" or \"1.3\""));
}

TEST(config_errors, two_default_certificates) {
  EXPECT_TRUE(fails_with(
      R"(
[[listener]]
name = "web"
listen = "127.0.0.1:8443"
  [[listener.certificate]]
  cert = "@CERTS@/a.crt"
  key = "@CERTS@/a.key"
  default = true
  [[listener.certificate]]
  cert = "@CERTS@/b.crt"
  key = "@CERTS@/b.key"
  default = true
)",
      "11:13", "listener 'web' has more than one default certificate (the first at line 7)"));
}

TEST(config_errors, duplicate_listener_name) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
name = "web"
listen = "127.0.0.1:8443"
  [[listener.certificate]]
  cert = "@CERTS@/a.crt"
  key = "@CERTS@/a.key"
[[listener]]
name = "web"
listen = "127.0.0.1:8444"
  [[listener.certificate]]
  cert = "@CERTS@/a.crt"
  key = "@CERTS@/a.key"
)",
                         "8:8", "duplicate listener name 'web' (first at line 1)"));
}

TEST(config_errors, duplicate_pool_name) {
  EXPECT_TRUE(fails_with(std::string(minimal) + R"(
[[pool]]
name = "p"
servers = ["127.0.0.1:80"]
[[pool]]
name = "p"
servers = ["127.0.0.1:81"]
)",
                         "11:8", "duplicate pool name 'p' (first at line 8)"));
}

TEST(config_errors, bad_names) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
name = "my listener"
)",
                         "2:8", "'name' may hold only letters, digits"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[[pool]]\nname = \"\"\n", "7:8",
                         "'name' must not be empty"));
}

TEST(config_errors, route_to_unknown_pool) {
  EXPECT_TRUE(fails_with(std::string(minimal) + R"(
[[pool]]
name = "p"
servers = ["127.0.0.1:80"]
[[route]]
pool = "q"
)",
                         "11:8", "route names unknown pool 'q'"));
}

TEST(config_errors, route_path_prefix_must_start_with_a_slash) {
  EXPECT_TRUE(fails_with(std::string(minimal) + R"(
[[pool]]
name = "p"
servers = ["127.0.0.1:80"]
[[route]]
path_prefix = "api"
pool = "p"
)",
                         "11:15", "'path_prefix' must start with \"/\""));
}

TEST(config_errors, unreadable_cert_file) {
  EXPECT_TRUE(fails_with(one_certificate("missing.crt", "a.key"), "4:10",
                         "cannot read " + test::certs_dir() + "/missing.crt"));
}

TEST(config_errors, unreadable_key_file) {
  EXPECT_TRUE(fails_with(one_certificate("a.crt", "missing.key"), "5:9",
                         "cannot read " + test::certs_dir() + "/missing.key"));
}

TEST(config_errors, garbage_cert_file) {
  EXPECT_TRUE(fails_with(one_certificate("garbage.pem", "a.key"), "4:10", "garbage.pem"));
}

TEST(config_errors, garbage_key_file) {
  EXPECT_TRUE(fails_with(one_certificate("a.crt", "garbage.pem"), "5:9", "garbage.pem"));
}

TEST(config_errors, key_does_not_match_certificate) {
  EXPECT_TRUE(fails_with(one_certificate("a.crt", "other.key"), "5:9", "does not match"));
}

TEST(config_errors, bad_cipher_list) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:NOT-A-CIPHER"
)",
                         "3:11", "invalid 'ciphers'"));
}

TEST(config_errors, bad_curves) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
curves = "X25519:P-999"
)",
                         "3:10", "invalid 'curves'"));
}

TEST(config_errors, bad_alpn) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
alpn = ["h2", ""]
)",
                         "3:15", "'alpn' must not hold an empty string"));
}

TEST(config_errors, alpn_an_http_listener_cannot_serve) {
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
alpn = ["h2", "h3"]
)",
                         "3:15", "may name only \"h2\" and \"http/1.1\", not \"h3\""));
  EXPECT_TRUE(fails_with(R"(
[[listener]]
listen = "127.0.0.1:8443"
alpn = ["http/1.1", "http/1.1"]
)",
                         "3:21", "'alpn' names \"http/1.1\" twice"));
}

TEST(config_errors, bad_balance) {
  EXPECT_TRUE(fails_with(std::string(minimal) + R"(
[[pool]]
name = "p"
servers = ["127.0.0.1:80"]
balance = "random"
)",
                         "10:11", "'balance' must be \"round_robin\" or \"least_connections\""));
}

TEST(config_errors, bad_log_level) {
  EXPECT_TRUE(fails_with("[log]\nlevel = \"verbose\"\n", "2:9",
                         "'level' must be one of trace, debug, info, warn, error, critical, off"));
}

TEST(config_errors, wildcard_in_wrong_place) {
  EXPECT_TRUE(
      fails_with(std::string(minimal) + "  server_names = [\"a.example\", \"a.*.example\"]\n",
                 "6:32", "invalid server name \"a.*.example\": a '*' wildcard is allowed only"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "  server_names = [\"*a.example\"]\n", "6:19",
                         "a '*' wildcard is allowed only as the whole first label"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "  server_names = [\"a..example\"]\n", "6:19",
                         "each label"));
  EXPECT_TRUE(fails_with(std::string(minimal) + R"(
[[pool]]
name = "p"
servers = ["127.0.0.1:80"]
[[route]]
host = "api.*"
pool = "p"
)",
                         "11:8", "invalid 'host' \"api.*\""));
}

// ---------------------------------------------------------------------------------------------
// parse_duration / parse_size

TEST(parse_duration, accepts_every_unit) {
  EXPECT_EQ(parse_duration("250ms"), milliseconds(250));
  EXPECT_EQ(parse_duration("30s"), seconds(30));
  EXPECT_EQ(parse_duration("5m"), std::chrono::minutes(5));
  EXPECT_EQ(parse_duration("1h"), std::chrono::hours(1));
  EXPECT_EQ(parse_duration("2d"), std::chrono::hours(48));
  EXPECT_EQ(parse_duration("45"), seconds(45));
  EXPECT_EQ(parse_duration("0"), milliseconds(0));
  EXPECT_EQ(parse_duration("0ms"), milliseconds(0));
  EXPECT_EQ(parse_duration("007s"), seconds(7));
}

TEST(parse_duration, refuses_malformed_text) {
  for (std::string_view bad : {"", "s", "ms", "-1s", "+1s", "10x", "1.5s", "10 s", " 10s", "10s ",
                               "10S", "1h30m", "10sec", "0x10", "10mss"}) {
    EXPECT_FALSE(parse_duration(bad)) << '"' << bad << '"';
  }
}

TEST(parse_duration, refuses_overflow) {
  const auto max = std::numeric_limits<milliseconds::rep>::max();
  EXPECT_EQ(parse_duration(std::to_string(max) + "ms"), milliseconds(max));
  EXPECT_FALSE(parse_duration(std::to_string(static_cast<std::uint64_t>(max) + 1) + "ms"));
  EXPECT_FALSE(parse_duration("9223372036854776s"));      // * 1000 passes the int64 range
  EXPECT_FALSE(parse_duration("18446744073709551616s"));  // does not fit 64 bits at all
  EXPECT_FALSE(parse_duration("99999999999999999999999999d"));
}

TEST(parse_size, accepts_units_in_any_case) {
  EXPECT_EQ(parse_size("512"), 512u);
  EXPECT_EQ(parse_size("0"), 0u);
  EXPECT_EQ(parse_size("512b"), 512u);
  EXPECT_EQ(parse_size("512B"), 512u);
  EXPECT_EQ(parse_size("16k"), 16u * 1024);
  EXPECT_EQ(parse_size("16K"), 16u * 1024);
  EXPECT_EQ(parse_size("16kb"), 16u * 1024);
  EXPECT_EQ(parse_size("16KB"), 16u * 1024);
  EXPECT_EQ(parse_size("16kB"), 16u * 1024);
  EXPECT_EQ(parse_size("10m"), 10u * 1024 * 1024);
  EXPECT_EQ(parse_size("10M"), 10u * 1024 * 1024);
  EXPECT_EQ(parse_size("1g"), 1024u * 1024 * 1024);
  EXPECT_EQ(parse_size("3G"), 3ULL * 1024 * 1024 * 1024);
}

TEST(parse_size, refuses_malformed_text) {
  for (std::string_view bad : {"", "k", "b", "kb", "-1", "+1", "16kk", "16 k", " 16k", "16k ", "1t",
                               "1.5k", "16kib", "16bb", "0x10", "16bk"}) {
    EXPECT_FALSE(parse_size(bad)) << '"' << bad << '"';
  }
}

TEST(parse_size, refuses_overflow) {
  EXPECT_EQ(parse_size("18446744073709551615"), std::numeric_limits<std::uint64_t>::max());
  EXPECT_FALSE(parse_size("18446744073709551616"));
  EXPECT_EQ(parse_size("17179869183g"), 17179869183ULL << 30);
  EXPECT_FALSE(parse_size("17179869184g"));  // 2^34 * 2^30 = 2^64
  EXPECT_FALSE(parse_size("18014398509481984k"));
}

}  // namespace
}  // namespace tlsfront::config

namespace tlsfront::config {
namespace {

TEST(config_load, session_cache_in_entries_or_memory) {
  load_result r = load(std::string(minimal) +
                       "[session_cache]\ncapacity = 5000\ntimeout = \"90s\"\nshards = 8\n"
                       "slot_bytes = 256\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  const proxy::server_options& s = r.value->server;
  EXPECT_TRUE(s.session_cache_enabled);
  EXPECT_EQ(s.session_cache.capacity, 5000u);
  EXPECT_EQ(s.session_cache.shards, 8u);
  EXPECT_EQ(s.session_cache.slot_bytes, 256u);
  EXPECT_EQ(s.listeners[0].tls.session_timeout, std::chrono::seconds(90));
  EXPECT_TRUE(s.listeners[0].tls.session_tickets);

  r = load(std::string(minimal) + "[session_cache]\ncapacity = \"1m\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.session_cache.capacity,
            (1u << 20) /
                cache::session_cache::bytes_per_entry(cache::session_cache_options{}.slot_bytes));

  r = load(std::string(minimal) + "[session_cache]\nenabled = false\n");
  ASSERT_TRUE(r.value);
  EXPECT_FALSE(r.value->server.session_cache_enabled);
}

TEST(config_load, session_tickets_per_listener) {
  std::string text = std::string(minimal);
  text.insert(text.find("  [[listener.certificate]]"), "session_tickets = false\n");
  load_result r = load(text);
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_FALSE(r.value->server.listeners[0].tls.session_tickets);
}

TEST(config_errors, bad_session_cache) {
  EXPECT_TRUE(fails_with(std::string(minimal) + "[session_cache]\ntimeout = \"0s\"\n", "7:11",
                         "'timeout' must be between 1s and 7d"));
  EXPECT_TRUE(
      fails_with(std::string(minimal) + "[session_cache]\ncapacity = 0\n", "7:12", "'capacity'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[session_cache]\ncapacity = \"100\"\n", "7:12",
                         "smaller than one entry"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[session_cache]\nslot_bytes = \"8k\"\n", "7:14",
                         "'slot_bytes'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[session_cache]\nsize = 1\n", "7:1",
                         "unknown key 'size' in [session_cache]"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[session_cache]\nenabled = \"yes\"\n", "7:11",
                         "'enabled'"));
}

}  // namespace
}  // namespace tlsfront::config

namespace tlsfront::config {
namespace {

TEST(config_load, tickets_memory_and_file_sources) {
  load_result r = load(std::string(minimal) +
                       "[tickets]\nrotation = \"2h\"\nlifetime = \"90m\"\npublish_ahead = \"30s\"\n"
                       "tls13_tickets = 1\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  const tls::ticket_key_options& t = r.value->server.tickets;
  EXPECT_EQ(t.source, tls::ticket_key_options::source_kind::memory);
  EXPECT_EQ(t.rotation, std::chrono::hours(2));
  EXPECT_EQ(t.lifetime, std::chrono::minutes(90));
  EXPECT_EQ(t.publish_ahead, std::chrono::seconds(30));
  EXPECT_EQ(t.tls13_tickets, 1u);

  const std::string dir = test::make_temp_dir();
  test::write_file(dir + "/k1.key", std::string(80, 'a'));
  test::write_file(dir + "/k2.key", std::string(48, 'b'));
  r = load(std::string(minimal) + "[tickets]\nsource = \"file\"\nfiles = [\"" + dir +
           "/k1.key\", \"" + dir + "/k2.key\"]\nlifetime = \"7d\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.tickets.source, tls::ticket_key_options::source_kind::file);
  EXPECT_EQ(r.value->server.tickets.files.size(), 2u);
}

TEST(config_errors, bad_tickets) {
  const std::string dir = test::make_temp_dir();
  test::write_file(dir + "/short.key", std::string(50, 'a'));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[tickets]\nsource = \"redis\"\n", "7:10",
                         "source = \"redis\" needs a [cluster] section"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[tickets]\nsource = \"vault\"\n", "7:10",
                         "'source' must be \"memory\", \"file\" or \"redis\""));
  EXPECT_TRUE(
      fails_with(std::string(minimal) + "[tickets]\nsource = \"file\"\n", "7:10", "needs 'files'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[tickets]\nfiles = [\"x\"]\n", "7:9",
                         "'files' needs source = \"file\""));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[tickets]\nsource = \"file\"\nfiles = [\"" + dir +
                             "/missing.key\"]\n",
                         "8:10", "cannot read ticket key file"));
  EXPECT_TRUE(fails_with(
      std::string(minimal) + "[tickets]\nsource = \"file\"\nfiles = [\"" + dir + "/short.key\"]\n",
      "8:10", "not 50 bytes"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[tickets]\nlifetime = \"8d\"\nrotation = \"9d\"\n",
                         "7:12", "at most 7d"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[tickets]\nrotation = \"1h\"\nlifetime = \"2h\"\n",
                         "8:12", "RFC 9325"));
  EXPECT_TRUE(
      fails_with(std::string(minimal) + "[tickets]\nrotation = \"1m\"\npublish_ahead = \"2m\"\n",
                 "8:17", "'publish_ahead' must not exceed 'rotation'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[tickets]\ntls13_tickets = 9\n", "7:17",
                         "'tls13_tickets'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[tickets]\nkeys = 1\n", "7:1",
                         "unknown key 'keys' in [tickets]"));
}

// [limits] client_write_timeout: a progress timeout for writes to the client.
TEST(config_load, client_write_timeout) {
  auto dflt = load(std::string(minimal));
  ASSERT_TRUE(dflt.value.has_value());
  EXPECT_EQ(dflt.value->server.limits.client_write_timeout, std::chrono::seconds(30));
  auto set = load(std::string(minimal) + "[limits]\nclient_write_timeout = \"5s\"\n");
  ASSERT_TRUE(set.value.has_value());
  EXPECT_EQ(set.value->server.limits.client_write_timeout, std::chrono::seconds(5));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[limits]\nclient_write_timeout = \"0s\"\n", "7:24",
                         "'client_write_timeout' must be longer than zero"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[limits]\nclient_write_timeout = \"soon\"\n",
                         "7:24", "invalid duration \"soon\" for 'client_write_timeout'"));
  const std::string shipped = test::read_file(test::source_dir() + "/conf/tlsfront.toml");
  EXPECT_NE(shipped.find("# client_write_timeout = "), std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Listener request rules and the weak-cipher warning

TEST(config_load, listener_request_rules_and_their_defaults) {
  load_result r = load(minimal);
  ASSERT_TRUE(r.value) << r.error.to_string();
  const proxy::listener_options& d = r.value->server.listeners[0];
  // The session-handle and client-certificate fields ([http]) are dropped on every listener,
  // whatever it lists.
  EXPECT_EQ(d.drop_client_headers,
            (std::vector<std::string>{"Forwarded", "X-Real-IP", "True-Client-IP", "X-Client-IP",
                                      "X-Forwarded-Port", "TLS-Session", "TLS-Logout",
                                      "X-Forwarded-Client-Cert", "X-Client-Verify"}));
  EXPECT_FALSE(d.allow_encoded_slashes);
  EXPECT_TRUE(d.tls.ciphers.empty());  // tlsfront's default list, see tls/cipher_policy.h
  EXPECT_TRUE(r.value->warnings.empty());

  r = load(R"(
[[listener]]
listen = "127.0.0.1:8443"
drop_client_headers = ["X-Real-IP", "CF-Connecting-IP"]
allow_encoded_slashes = true
  [[listener.certificate]]
  cert = "@CERTS@/a.crt"
  key = "@CERTS@/a.key"
[[listener]]
listen = "127.0.0.1:8444"
drop_client_headers = []
  [[listener.certificate]]
  cert = "@CERTS@/a.crt"
  key = "@CERTS@/a.key"
)");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.listeners[0].drop_client_headers,
            (std::vector<std::string>{"X-Real-IP", "CF-Connecting-IP", "TLS-Session", "TLS-Logout",
                                      "X-Forwarded-Client-Cert", "X-Client-Verify"}));
  EXPECT_TRUE(r.value->server.listeners[0].allow_encoded_slashes);
  EXPECT_EQ(r.value->server.listeners[1].drop_client_headers,
            (std::vector<std::string>{"TLS-Session", "TLS-Logout", "X-Forwarded-Client-Cert",
                                      "X-Client-Verify"}));

  const std::string head = "\n[[listener]]\nlisten = \"127.0.0.1:8443\"\n";
  const std::string cert =
      "  [[listener.certificate]]\n  cert = \"@CERTS@/a.crt\"\n  key = \"@CERTS@/a.key\"\n";
  EXPECT_TRUE(fails_with(head + "drop_client_headers = [\"X Real\"]\n" + cert, "3:24",
                         "invalid header name \"X Real\" in 'drop_client_headers'"));
  EXPECT_TRUE(fails_with(head + "drop_client_headers = [\"\"]\n" + cert, "3:24",
                         "must not hold an empty string"));
  EXPECT_TRUE(fails_with(head + "drop_client_headers = \"X-Real-IP\"\n" + cert, "3:23",
                         "must be an array of strings"));
  EXPECT_TRUE(fails_with(head + "allow_encoded_slashes = \"yes\"\n" + cert, "3:25",
                         "'allow_encoded_slashes' must be a boolean"));
}

TEST(config_load, weak_cipher_list_loads_with_a_warning_at_its_position) {
  const std::string head = "\n[[listener]]\nname = \"edge\"\nlisten = \"127.0.0.1:8443\"\n";
  const std::string cert =
      "  [[listener.certificate]]\n  cert = \"@CERTS@/a.crt\"\n  key = \"@CERTS@/a.key\"\n";
  load_result r = load(head + "ciphers = \"AES128-SHA:DES-CBC3-SHA\"\n" + cert);
  ASSERT_TRUE(r.value) << r.error.to_string();
  ASSERT_EQ(r.value->warnings.size(), 1u);
  EXPECT_EQ(r.value->warnings[0],
            "t.toml:4:11: warning: listener 'edge': the cipher list enables weak TLS 1.2 suites: "
            "AES128-SHA (static RSA key exchange), DES-CBC3-SHA (3DES, static RSA key exchange); "
            "remove them or leave 'ciphers' unset for the ECDHE+AEAD default");
  // Read from the expanded list: "ALL" and "kRSA" name no suite but enable them.
  for (const char* list : {"ALL", "kRSA", "ECDHE-RSA-AES128-GCM-SHA256:3DES"}) {
    r = load(head + "ciphers = \"" + list + "\"\n" + cert);
    ASSERT_TRUE(r.value) << r.error.to_string();
    EXPECT_EQ(r.value->warnings.size(), 1u) << list;
  }
  for (const char* list : {"ECDHE-ECDSA-AES256-GCM-SHA384", "ALL:!kRSA:!3DES", ""}) {
    r = load(head + "ciphers = \"" + list + "\"\n" + cert);
    ASSERT_TRUE(r.value) << r.error.to_string();
    EXPECT_TRUE(r.value->warnings.empty()) << list;
  }
}

// A secret "file" that is a directory (an empty path names the config's own directory) is a
// clear error at its position, not an exception (found by config_fuzz).
TEST(config_load, secret_files_that_are_directories_are_refused) {
  const std::string cluster = std::string(minimal) + "[cluster]\nredis = \"127.0.0.1:6379\"\n";
  EXPECT_TRUE(
      fails_with(cluster + "secret_file = \"\"\n", "8:15", "'secret_file' must not be empty"));
  EXPECT_TRUE(fails_with(cluster + "secret_file = \".\"\n", "8:15", "not a regular file"));
  EXPECT_TRUE(fails_with(cluster + "secret_file = \"@CERTS@/a.crt\"\npassword_file = \".\"\n",
                         "9:17", "not a regular file"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[admin]\ntoken_file = \".\"\n", "7:14",
                         "not a regular file"));
}

// [cluster] on Redis Sentinel: the sentinels and the master's name, in place of `redis`.
TEST(config_load, cluster_on_sentinels) {
  const load_result r = load(std::string(minimal) +
                             "[cluster]\nsentinels = [\"127.0.0.1:26379\", \"[::1]:26380\"]\n"
                             "master_name = \"edge\"\nsecret_file = \"@CERTS@/a.crt\"\n"
                             "sentinel_password_file = \"@CERTS@/a.key\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  ASSERT_TRUE(r.value->server.cluster);
  const cluster::redis_options& o = r.value->server.cluster->redis;
  ASSERT_EQ(o.sentinels.size(), 2u);
  EXPECT_EQ(o.sentinels[0].str(), "127.0.0.1:26379");
  EXPECT_EQ(o.sentinels[1].host, "::1");
  EXPECT_EQ(o.sentinels[1].port, 26380);
  EXPECT_EQ(o.master_name, "edge");
  EXPECT_FALSE(o.sentinel_password.empty());
}

// Exactly one of `redis` and `sentinels`; `master_name` with `sentinels` only; every address an
// IP literal, listed once.
TEST(config_errors, bad_sentinel_settings) {
  const std::string head = std::string(minimal) + "[cluster]\nsecret_file = \"@CERTS@/a.crt\"\n";
  EXPECT_TRUE(fails_with(head, "6:1", "needs 'redis' (one Redis"));
  EXPECT_TRUE(fails_with(head + "redis = \"127.0.0.1:6379\"\nsentinels = [\"127.0.0.1:26379\"]\n",
                         "9:13", "one of 'redis', 'sentinels' and 'cluster_nodes', not several"));
  EXPECT_TRUE(fails_with(head + "redis = \"127.0.0.1:6379\"\nmaster_name = \"edge\"\n", "9:15",
                         "'master_name' applies only with 'sentinels'"));
  EXPECT_TRUE(fails_with(head + "sentinels = [\"127.0.0.1:26379\"]\n", "6:1",
                         "missing required key 'master_name'"));
  EXPECT_TRUE(fails_with(head + "sentinels = []\nmaster_name = \"edge\"\n", "8:13",
                         "at least one sentinel"));
  EXPECT_TRUE(fails_with(head + "sentinels = \"127.0.0.1:26379\"\nmaster_name = \"edge\"\n", "8:13",
                         "must be an array of strings"));
  EXPECT_TRUE(fails_with(head + "sentinels = [\"sentinel.example:26379\"]\nmaster_name = \"e\"\n",
                         "8:14", "invalid address"));
  EXPECT_TRUE(fails_with(head + "sentinels = [\"127.0.0.1:0\"]\nmaster_name = \"e\"\n", "8:14",
                         "invalid address"));
  EXPECT_TRUE(fails_with(
      head + "sentinels = [\"127.0.0.1:26379\", \"127.0.0.1:26379\"]\nmaster_name = \"e\"\n",
      "8:33", "listed twice"));
  EXPECT_TRUE(fails_with(head + "sentinels = [\"127.0.0.1:26379\"]\nmaster_name = \"my edge\"\n",
                         "9:15", "without spaces"));
  EXPECT_TRUE(fails_with(head + "sentinels = [\"127.0.0.1:26379\"]\nmaster_name = \"\"\n", "9:15",
                         "must not be empty"));
  EXPECT_TRUE(fails_with(head + "sentinels = [\"127.0.0.1:26379\"]\nmaster_name = \"e\"\n"
                                "sentinel_password_file = \"@CERTS@/nope\"\n",
                         "10:26", "cannot read the sentinel password file"));
}

// Issue 18: the outage settings. `write_queue` (sessions kept per worker for Redis's return)
// and `keys_ahead` (fleet keys published ahead), with their defaults and bounds; keys_ahead
// only where the keys are the fleet's.
TEST(config_load, outage_settings) {
  const std::string head =
      std::string(minimal) +
      "[cluster]\nsecret_file = \"@CERTS@/a.crt\"\nredis = \"127.0.0.1:6379\"\n";
  const load_result dflt = load(head);
  ASSERT_TRUE(dflt.value) << dflt.error.to_string();
  EXPECT_EQ(dflt.value->server.cluster->write_queue, 4096u);
  EXPECT_EQ(dflt.value->server.tickets.keys_ahead, 4u);
  const load_result set = load(head + "write_queue = 0\n[tickets]\nkeys_ahead = 16\n");
  ASSERT_TRUE(set.value) << set.error.to_string();
  EXPECT_EQ(set.value->server.cluster->write_queue, 0u);
  EXPECT_EQ(set.value->server.tickets.keys_ahead, 16u);
  EXPECT_TRUE(fails_with(head + "write_queue = -1\n", "9:15", "'write_queue'"));
  EXPECT_TRUE(fails_with(head + "write_queue = 2000000\n", "9:15", "'write_queue'"));
  EXPECT_TRUE(fails_with(head + "write_queue = \"lots\"\n", "9:15", "'write_queue'"));
  EXPECT_TRUE(fails_with(head + "[tickets]\nkeys_ahead = 0\n", "10:14", "'keys_ahead'"));
  EXPECT_TRUE(fails_with(head + "[tickets]\nkeys_ahead = 17\n", "10:14", "'keys_ahead'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[tickets]\nkeys_ahead = 2\n", "7:14",
                         "'keys_ahead' applies only to the fleet's keys (source = \"redis\")"));
  EXPECT_TRUE(fails_with(head + "[tickets]\nsource = \"memory\"\nkeys_ahead = 2\n", "11:14",
                         "'keys_ahead' applies only to the fleet's keys"));
}

// [server] upgrade_socket: a path, resolved against the config's directory, that fits a UNIX
// socket address.
TEST(config_load, upgrade_socket) {
  const load_result r =
      load(std::string(minimal) + "[server]\nupgrade_socket = \"/run/tf/up.sock\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.upgrade_socket, "/run/tf/up.sock");
  const load_result none = load(std::string(minimal));
  ASSERT_TRUE(none.value);
  EXPECT_EQ(none.value->server.upgrade_socket, "");
  EXPECT_TRUE(fails_with(std::string(minimal) + "[server]\nupgrade_socket = \"\"\n", "7:18",
                         "'upgrade_socket' must not be empty"));
  EXPECT_TRUE(fails_with(
      std::string(minimal) + "[server]\nupgrade_socket = \"/" + std::string(120, 'x') + "\"\n",
      "7:18", "at most 107 bytes"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[server]\nupgrade_socket = 1\n", "7:18",
                         "'upgrade_socket'"));
}

// [cluster] on Redis Cluster: the seed nodes in place of `redis`.
TEST(config_load, cluster_on_redis_cluster) {
  const load_result r = load(std::string(minimal) +
                             "[cluster]\ncluster_nodes = [\"127.0.0.1:7000\", \"[::1]:7001\"]\n"
                             "secret_file = \"@CERTS@/a.crt\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  ASSERT_TRUE(r.value->server.cluster);
  const cluster::redis_options& o = r.value->server.cluster->redis;
  ASSERT_EQ(o.cluster_nodes.size(), 2u);
  EXPECT_EQ(o.cluster_nodes[0].str(), "127.0.0.1:7000");
  EXPECT_EQ(o.cluster_nodes[1].host, "::1");
  EXPECT_TRUE(o.sentinels.empty());
  EXPECT_EQ(o.database, 0);
}

// `cluster_nodes` alone of the three, without `database` or the sentinel keys; every seed an IP
// literal, listed once.
TEST(config_errors, bad_redis_cluster_settings) {
  const std::string head = std::string(minimal) + "[cluster]\nsecret_file = \"@CERTS@/a.crt\"\n";
  const std::string seeds = "cluster_nodes = [\"127.0.0.1:7000\"]\n";
  EXPECT_TRUE(fails_with(head + "redis = \"127.0.0.1:6379\"\n" + seeds, "9:17", "not several"));
  EXPECT_TRUE(
      fails_with(head + "sentinels = [\"127.0.0.1:26379\"]\n" + seeds, "9:17", "not several"));
  EXPECT_TRUE(fails_with(head + seeds + "database = 2\n", "9:12",
                         "'database' does not apply to a Redis Cluster"));
  EXPECT_TRUE(fails_with(head + seeds + "master_name = \"edge\"\n", "9:15",
                         "'master_name' applies only with 'sentinels'"));
  EXPECT_TRUE(fails_with(head + "cluster_nodes = []\n", "8:17", "at least one node"));
  EXPECT_TRUE(
      fails_with(head + "cluster_nodes = [\"redis.example:7000\"]\n", "8:18", "invalid address"));
  EXPECT_TRUE(fails_with(head + "cluster_nodes = [\"127.0.0.1:7000\", \"127.0.0.1:7000\"]\n",
                         "8:36", "node 127.0.0.1:7000 is listed twice"));
  EXPECT_TRUE(fails_with(head + "cluster_nodes = 7000\n", "8:17", "must be an array of strings"));
}

// ---------------------------------------------------------------------------------------------
// [http2]: the limits of every HTTP/2 client connection (http::h2_options).

// Every field of h2_options by its key name, so a whole struct compares in one EXPECT_EQ that
// names the field that differs.
std::vector<std::pair<std::string, std::uint64_t>> h2_fields(const http::h2_options& o) {
  return {{"max_concurrent_streams", o.max_concurrent_streams},
          {"max_header_list_size", o.max_header_list_size},
          {"initial_stream_window", o.initial_stream_window},
          {"connection_window", o.connection_window},
          {"max_frame_size", o.max_frame_size},
          {"rapid_reset_budget", o.rapid_reset_budget},
          {"reset_rate_burst", o.reset_rate_burst},
          {"reset_rate_per_second", o.reset_rate_per_second},
          {"max_settings_entries", o.max_settings_entries},
          {"max_outbound_ack", o.max_outbound_ack},
          {"control_frame_burst", o.control_frame_burst},
          {"control_frames_per_second", o.control_frames_per_second},
          {"max_empty_frames", o.max_empty_frames},
          {"max_continuations", o.max_continuations},
          {"stream_output_buffer", o.stream_output_buffer},
          {"connection_output_buffer", o.connection_output_buffer},
          {"output_batch", o.output_batch}};
}

TEST(config_load, http2_defaults_when_the_section_is_absent_or_empty) {
  for (const std::string extra : {"", "[http2]\n"}) {
    const load_result r = load(std::string(minimal) + extra);
    ASSERT_TRUE(r.value) << r.error.to_string();
    EXPECT_EQ(h2_fields(r.value->server.http2), h2_fields(http::h2_options{})) << extra;
  }
}

TEST(config_load, http2_every_key_is_read) {
  const load_result r = load(std::string(minimal) + R"(
[http2]
max_concurrent_streams = 200
max_header_list_size = "32k"
initial_stream_window = 65535
connection_window = "4m"
max_frame_size = 16777215
rapid_reset_budget = 400
reset_rate_burst = 500
reset_rate_per_second = 20
max_settings_entries = 16
max_outbound_ack = 300
control_frame_burst = 50
control_frames_per_second = 10
max_empty_frames = 7
max_continuations = 4
stream_output_buffer = "128k"
connection_output_buffer = "2m"
output_batch = 32768
)");
  ASSERT_TRUE(r.value) << r.error.to_string();
  http::h2_options want;
  want.max_concurrent_streams = 200;
  want.max_header_list_size = 32 * 1024;
  want.initial_stream_window = 65535;
  want.connection_window = 4 * 1024 * 1024;
  want.max_frame_size = 16777215;
  want.rapid_reset_budget = 400;
  want.reset_rate_burst = 500;
  want.reset_rate_per_second = 20;
  want.max_settings_entries = 16;
  want.max_outbound_ack = 300;
  want.control_frame_burst = 50;
  want.control_frames_per_second = 10;
  want.max_empty_frames = 7;
  want.max_continuations = 4;
  want.stream_output_buffer = 128 * 1024;
  want.connection_output_buffer = 2 * 1024 * 1024;
  want.output_batch = 32768;
  EXPECT_EQ(h2_fields(r.value->server.http2), h2_fields(want));
  // Every key differs from its default, so none can pass by staying unread.
  const auto got = h2_fields(r.value->server.http2);
  const auto defaults = h2_fields(http::h2_options{});
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_NE(got[i].second, defaults[i].second) << got[i].first;
  }
}

// The edges of every range are accepted.
TEST(config_load, http2_range_edges_are_accepted) {
  for (const char* body : {
           "max_concurrent_streams = 1\nrapid_reset_budget = 1\n",
           "max_concurrent_streams = 100000\nrapid_reset_budget = 100000\n",
           "max_header_list_size = \"1k\"\n",
           "max_header_list_size = \"16m\"\n",
           "initial_stream_window = 1\n",
           "initial_stream_window = 2147483647\n",
           "connection_window = 65535\n",
           "connection_window = 2147483647\n",
           "max_frame_size = \"16k\"\n",
           "rapid_reset_budget = 4294967295\n",
           "reset_rate_burst = 1\nreset_rate_per_second = 1\n",
           "max_settings_entries = 1\nmax_continuations = 1\n",
           "max_settings_entries = 1000\nmax_continuations = 1000\n",
           "max_outbound_ack = 1\ncontrol_frame_burst = 1\ncontrol_frames_per_second = 1\n",
           "max_empty_frames = 1\n",
           "stream_output_buffer = 1024\nconnection_output_buffer = 1024\n",
           "stream_output_buffer = 2147483647\nconnection_output_buffer = 2147483647\n",
           "output_batch = 1024\n",
           "output_batch = \"16m\"\n",
       }) {
    const load_result r = load(std::string(minimal) + "[http2]\n" + body);
    EXPECT_TRUE(r.value) << body << ": " << r.error.to_string();
  }
}

// Each value out of its range is refused at its position (line 2, the value's column), with the
// key and the range in the message.
TEST(config_errors, http2_out_of_range) {
  struct refused {
    std::string_view key;
    std::string_view value;
    std::string_view message;
  };
  const refused cases[] = {
      {"max_concurrent_streams", "0", "'max_concurrent_streams' must be between 1 and 100000"},
      {"max_concurrent_streams", "100001", "'max_concurrent_streams' must be between 1 and 100000"},
      {"max_header_list_size", "1023", "'max_header_list_size' must be between 1k and 16m"},
      {"max_header_list_size", "\"17m\"", "'max_header_list_size' must be between 1k and 16m"},
      {"initial_stream_window", "0", "'initial_stream_window' must be between 1 and 2147483647"},
      {"initial_stream_window", "\"2g\"",
       "'initial_stream_window' must be between 1 and 2147483647"},
      {"connection_window", "65534", "'connection_window' must be between 65535 and 2147483647"},
      {"connection_window", "2147483648",
       "'connection_window' must be between 65535 and 2147483647"},
      {"max_frame_size", "16383", "'max_frame_size' must be between 16k and 16777215"},
      {"max_frame_size", "\"16m\"", "'max_frame_size' must be between 16k and 16777215"},
      {"rapid_reset_budget", "0", "'rapid_reset_budget' must be between 1 and 4294967295"},
      {"rapid_reset_budget", "4294967296", "'rapid_reset_budget' must be between 1 and 4294967295"},
      {"reset_rate_burst", "0", "'reset_rate_burst' must be at least 1"},
      {"reset_rate_per_second", "0", "'reset_rate_per_second' must be at least 1"},
      {"max_settings_entries", "0", "'max_settings_entries' must be between 1 and 1000"},
      {"max_settings_entries", "1001", "'max_settings_entries' must be between 1 and 1000"},
      {"max_outbound_ack", "0", "'max_outbound_ack' must be at least 1"},
      {"control_frame_burst", "0", "'control_frame_burst' must be between 1 and 4294967295"},
      {"control_frames_per_second", "-1",
       "'control_frames_per_second' must be between 1 and 4294967295"},
      {"max_empty_frames", "0", "'max_empty_frames' must be between 1 and 4294967295"},
      {"max_continuations", "0", "'max_continuations' must be between 1 and 1000"},
      {"max_continuations", "1001", "'max_continuations' must be between 1 and 1000"},
      {"stream_output_buffer", "\"1023b\"",
       "'stream_output_buffer' must be between 1k and 2147483647"},
      {"stream_output_buffer", "\"2g\"",
       "'stream_output_buffer' must be between 1k and 2147483647"},
      {"connection_output_buffer", "512", "'connection_output_buffer' must be at least 1k"},
      {"output_batch", "1000", "'output_batch' must be between 1k and 16m"},
      {"output_batch", "\"32m\"", "'output_batch' must be between 1k and 16m"},
      {"max_header_list_size", "-1", "'max_header_list_size' must not be negative"},
  };
  for (const refused& c : cases) {
    const std::string line = std::string(c.key) + " = " + std::string(c.value) + "\n";
    const std::string where = "2:" + std::to_string(c.key.size() + 4);
    EXPECT_TRUE(
        fails_with(std::string("[http2]\n") + line + std::string(minimal), where, c.message))
        << line;
  }
}

// rapid_reset_budget >= max_concurrent_streams and connection_output_buffer >=
// stream_output_buffer: refused with the reason, at the key the file sets (the larger one when
// both are set, else the one raised above the other's default).
TEST(config_errors, http2_cross_field_rules) {
  EXPECT_TRUE(fails_with("[http2]\nmax_concurrent_streams = 300\nrapid_reset_budget = 299\n",
                         "3:22",
                         "'rapid_reset_budget' (299) must be at least 'max_concurrent_streams' "
                         "(300): a browser that navigates away cancels all its open streams at "
                         "once"));
  EXPECT_TRUE(fails_with("[http2]\nmax_concurrent_streams = 1000\n", "2:26",
                         "'rapid_reset_budget' (256, the default) must be at least "
                         "'max_concurrent_streams' (1000)"));
  EXPECT_TRUE(fails_with("[http2]\nrapid_reset_budget = 100\n", "2:22",
                         "'rapid_reset_budget' (100) must be at least 'max_concurrent_streams' "
                         "(128)"));
  EXPECT_TRUE(fails_with(
      "[http2]\nstream_output_buffer = \"256k\"\nconnection_output_buffer = \"128k\"\n", "3:28",
      "'connection_output_buffer' (128k) must be at least 'stream_output_buffer' (256k): every "
      "stream's output is also counted against the connection's buffer"));
  EXPECT_TRUE(fails_with("[http2]\nstream_output_buffer = \"2m\"\n", "2:24",
                         "'connection_output_buffer' (1m, the default) must be at least "
                         "'stream_output_buffer' (2m)"));
  EXPECT_TRUE(fails_with("[http2]\nconnection_output_buffer = \"32k\"\n", "2:28",
                         "'connection_output_buffer' (32k) must be at least "
                         "'stream_output_buffer' (64k)"));
}

TEST(config_errors, http2_unknown_key) {
  EXPECT_TRUE(
      fails_with("[http2]\nmax_streams = 5\n", "2:1", "unknown key 'max_streams' in [http2]"));
  EXPECT_TRUE(fails_with("[http2]\nmax_frame_size = 16384\n[http2.extra]\n", "3:8",
                         "unknown key 'extra' in [http2]"));
}

TEST(config_errors, http2_wrong_type) {
  EXPECT_TRUE(fails_with("http2 = 5\n", "1:9", "'http2' must be a table: write [http2]"));
  EXPECT_TRUE(fails_with("[http2]\nmax_concurrent_streams = \"many\"\n", "2:26",
                         "'max_concurrent_streams' must be an integer"));
  EXPECT_TRUE(fails_with("[http2]\nmax_continuations = 1.5\n", "2:21",
                         "'max_continuations' must be an integer"));
  EXPECT_TRUE(fails_with("[http2]\ninitial_stream_window = true\n", "2:25",
                         "'initial_stream_window' must be a size"));
  EXPECT_TRUE(fails_with("[http2]\noutput_batch = \"64q\"\n", "2:16",
                         "invalid size \"64q\" for 'output_batch'"));
  EXPECT_TRUE(fails_with("[http2]\nreset_rate_burst = [1]\n", "2:20",
                         "'reset_rate_burst' must be an integer"));
}

// The shipped config documents every [http2] key, commented out with its default: its [http2]
// section with the keys uncommented reads back as h2_options{}.
TEST(config_load, shipped_config_documents_http2_with_the_defaults) {
  const std::string text = test::read_file(test::source_dir() + "/conf/tlsfront.toml");
  const std::size_t begin = text.find("\n[http2]\n");
  ASSERT_NE(begin, std::string::npos);
  const std::size_t end = text.find("\n[", begin + 1);
  std::string section = "[http2]\n";
  std::istringstream lines(text.substr(begin + 9, end - begin - 9));
  for (std::string line; std::getline(lines, line);) {
    // "# key = value  # note": a commented-out key, not prose.
    const std::size_t eq = line.find(" = ");
    if (line.starts_with("# ") && eq != std::string::npos &&
        std::all_of(line.begin() + 2, line.begin() + static_cast<std::ptrdiff_t>(eq),
                    [](char c) { return (c >= 'a' && c <= 'z') || c == '_'; })) {
      section += line.substr(2) + "\n";
    }
  }
  for (const auto& [key, value] : h2_fields(http::h2_options{})) {
    EXPECT_NE(section.find("\n" + key + " = "), std::string::npos) << key;
  }
  const load_result r = load(std::string(minimal) + section);
  ASSERT_TRUE(r.value) << r.error.to_string() << "\n" << section;
  EXPECT_EQ(h2_fields(r.value->server.http2), h2_fields(http::h2_options{}));
}

}  // namespace
}  // namespace tlsfront::config

namespace tlsfront::config {
namespace {

// ---------------------------------------------------------------------------------------------
// Session handles: [http] field names, [revocation], [[route]] send_session_handle

TEST(config_load, session_handle_keys_and_their_defaults) {
  load_result r = load(minimal);
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.session_headers.session_header, "TLS-Session");
  EXPECT_EQ(r.value->server.session_headers.logout_header, "TLS-Logout");
  EXPECT_EQ(r.value->server.revocation.capacity, 262144u);
  EXPECT_EQ(r.value->server.revocation.handle_max_age, std::chrono::hours(24));

  r = load(std::string(minimal) +
           "[http]\nsession_header = \"X-Sess\"\nlogout_header = \"X-Bye\"\n"
           "[revocation]\ncapacity = 1000\nhandle_max_age = \"2h\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.session_headers.session_header, "X-Sess");
  EXPECT_EQ(r.value->server.session_headers.logout_header, "X-Bye");
  EXPECT_EQ(r.value->server.revocation.capacity, 1000u);
  EXPECT_EQ(r.value->server.revocation.handle_max_age, std::chrono::hours(2));
  const auto& drop = r.value->server.listeners[0].drop_client_headers;
  EXPECT_NE(std::find(drop.begin(), drop.end(), "X-Sess"), drop.end());
  EXPECT_NE(std::find(drop.begin(), drop.end(), "X-Bye"), drop.end());
  EXPECT_EQ(std::find(drop.begin(), drop.end(), "TLS-Session"), drop.end());

  // Unset, handle_max_age never cuts a configured lifetime short.
  r = load(std::string(minimal) + "[session_cache]\ntimeout = \"3d\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.revocation.handle_max_age, std::chrono::hours(72));

  EXPECT_TRUE(fails_with(std::string(minimal) + "[http]\nsession_header = \"TLS Session\"\n",
                         "7:18", "'session_header' must be a header name (a token)"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[http]\nlogout_header = \"\"\n", "7:17",
                         "'logout_header'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[http]\nlogout_header = \"Content-Length\"\n",
                         "7:17", "'logout_header' cannot be \"Content-Length\""));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[http]\nlogout_header = \"tls-session\"\n", "7:17",
                         "must be different fields"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[http]\nlogout = \"X\"\n", "7:1", "logout"));
  EXPECT_TRUE(
      fails_with(std::string(minimal) + "[revocation]\ncapacity = 10\n", "7:12", "'capacity'"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[revocation]\nhandle_max_age = \"8d\"\n", "7:18",
                         "'handle_max_age' must be between 1m and 7d"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[session_cache]\ntimeout = \"2h\"\n[revocation]\n"
                                                "handle_max_age = \"1h\"\n",
                         "9:18", "must be at least the longest session lifetime"));
}

TEST(config_load, route_send_session_handle) {
  const std::string base = std::string(minimal) +
                           "[[pool]]\nname = \"p\"\nservers = [\"127.0.0.1:9000\"]\n"
                           "[[route]]\npool = \"p\"\n";
  load_result r = load(base);
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_FALSE(r.value->server.routes.at(0).send_session_handle);
  r = load(base + "send_session_handle = true\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_TRUE(r.value->server.routes.at(0).send_session_handle);
  EXPECT_TRUE(fails_with(base + "send_session_handle = 1\n", "11:23",
                         "'send_session_handle' must be a boolean"));
}

}  // namespace
}  // namespace tlsfront::config

namespace tlsfront::config {
namespace {

// A listener with client-certificate keys (lines 3 on) before its certificate.
std::string client_auth_listener(const std::string& keys) {
  return "\n[[listener]]\nlisten = \"127.0.0.1:8443\"\n" + keys +
         "  [[listener.certificate]]\n  cert = \"@CERTS@/a.crt\"\n  key = \"@CERTS@/a.key\"\n";
}

// Client certificates: the mode, the bundle, the CRLs and the depth are read; with client
// certificates on, session-cache slots default to 2048 bytes (a session carries the chain).
TEST(config_load, client_certificates) {
  const load_result r = load(
      client_auth_listener("client_auth = \"required\"\nclient_ca = \"@CERTS@/client-ca.pem\"\n"
                           "client_crl = \"@CERTS@/client-crl.pem\"\nclient_verify_depth = 2\n"));
  ASSERT_TRUE(r.value) << r.error.to_string();
  const tls::client_auth_options& a = r.value->server.listeners[0].tls.client_auth;
  EXPECT_EQ(a.mode, tls::client_auth_options::mode_kind::required);
  EXPECT_EQ(a.ca_file, test::certs_dir() + "/client-ca.pem");
  EXPECT_EQ(a.crl_file, test::certs_dir() + "/client-crl.pem");
  EXPECT_EQ(a.verify_depth, 2);
  EXPECT_EQ(r.value->server.session_cache.slot_bytes, 2048u);
  const load_result explicit_slots = load(
      client_auth_listener("client_auth = \"optional\"\nclient_ca = \"@CERTS@/client-ca.pem\"\n") +
      "[session_cache]\nslot_bytes = 512\n");
  ASSERT_TRUE(explicit_slots.value) << explicit_slots.error.to_string();
  EXPECT_EQ(explicit_slots.value->server.listeners[0].tls.client_auth.mode,
            tls::client_auth_options::mode_kind::optional);
  EXPECT_EQ(explicit_slots.value->server.session_cache.slot_bytes, 512u);
  const load_result off = load(std::string(minimal));
  ASSERT_TRUE(off.value);
  EXPECT_EQ(off.value->server.listeners[0].tls.client_auth.mode,
            tls::client_auth_options::mode_kind::off);
  EXPECT_EQ(off.value->server.session_cache.slot_bytes, 176u);
  // The fields tlsfront sets are dropped from every listener's client requests.
  const auto& drop = off.value->server.listeners[0].drop_client_headers;
  for (const char* f : {"X-Forwarded-Client-Cert", "X-Client-Verify"}) {
    EXPECT_NE(std::find(drop.begin(), drop.end(), f), drop.end()) << f;
  }
}

// Every bad client-certificate setting is refused at its position, with what is wrong.
TEST(config_errors, bad_client_certificate_settings) {
  const std::string ca = "client_ca = \"@CERTS@/client-ca.pem\"\n";
  EXPECT_TRUE(fails_with(client_auth_listener("client_auth = \"yes\"\n" + ca), "3:15",
                         "'client_auth' must be \"off\", \"optional\" or \"required\""));
  EXPECT_TRUE(
      fails_with(client_auth_listener("client_auth = true\n" + ca), "3:15", "must be a string"));
  EXPECT_TRUE(fails_with(client_auth_listener("client_auth = \"required\"\n"), "3:15",
                         "needs 'client_ca'"));
  EXPECT_TRUE(fails_with(client_auth_listener(ca), "3:13", "'client_ca' needs client_auth"));
  EXPECT_TRUE(fails_with(client_auth_listener("client_auth = \"off\"\nclient_verify_depth = 3\n"),
                         "4:23", "'client_verify_depth' needs client_auth"));
  const std::string on = "client_auth = \"required\"\n";
  EXPECT_TRUE(fails_with(client_auth_listener(on + ca + "client_verify_depth = 0\n"), "5:23",
                         "client_verify_depth"));
  EXPECT_TRUE(fails_with(client_auth_listener(on + ca + "client_verify_depth = 17\n"), "5:23",
                         "client_verify_depth"));
  EXPECT_TRUE(fails_with(client_auth_listener(on + "client_ca = \"@CERTS@/nope.pem\"\n"), "4:13",
                         "nope.pem"));
  EXPECT_TRUE(fails_with(client_auth_listener(on + "client_ca = \"@CERTS@/garbage.pem\"\n"), "4:13",
                         "garbage.pem"));
  // A leaf is not a CA; a key file holds no certificate.
  EXPECT_TRUE(fails_with(client_auth_listener(on + "client_ca = \"@CERTS@/client.crt\"\n"), "4:13",
                         "is not a CA"));
  EXPECT_TRUE(fails_with(client_auth_listener(on + "client_ca = \"@CERTS@/client.key\"\n"), "4:13",
                         "client.key"));
  // CRLs: not PEM CRLs; signed by a CA the bundle does not hold; one missing for a CA of it.
  EXPECT_TRUE(fails_with(client_auth_listener(on + ca + "client_crl = \"@CERTS@/a.crt\"\n"), "5:14",
                         "a.crt"));
  EXPECT_TRUE(fails_with(client_auth_listener(on + "client_ca = \"@CERTS@/client-other-ca.pem\"\n" +
                                              "client_crl = \"@CERTS@/client-crl.pem\"\n"),
                         "5:14", "is not signed by a CA of"));
  EXPECT_TRUE(fails_with(
      client_auth_listener(on + ca + "client_crl = \"@CERTS@/client-crl-root-only.pem\"\n"), "5:14",
      "intermediate"));
  EXPECT_TRUE(fails_with(
      client_auth_listener(on + ca + "client_crl = \"@CERTS@/client-crl-expired.pem\"\n"), "5:14",
      "has expired (nextUpdate passed)"));
}

// [http] names the client-certificate fields; all four of its names must differ.
TEST(config_errors, client_certificate_header_names) {
  const load_result r = load(std::string(minimal) +
                             "[http]\nclient_cert_header = \"X-Client-Cert\"\n"
                             "client_verify_header = \"X-Cert-Status\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.session_headers.client_cert_header, "X-Client-Cert");
  EXPECT_EQ(r.value->server.session_headers.client_verify_header, "X-Cert-Status");
  EXPECT_TRUE(fails_with(std::string(minimal) + "[http]\nclient_cert_header = \"TLS-Session\"\n",
                         "7:22", "'session_header' and 'client_cert_header' must be different"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[http]\nclient_cert_header = \"X-A\"\n"
                                                "client_verify_header = \"x-a\"\n",
                         "8:24", "'client_cert_header' and 'client_verify_header' must be"));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[http]\nclient_verify_header = \"Host\"\n", "7:24",
                         "cannot be \"Host\""));
  EXPECT_TRUE(fails_with(std::string(minimal) + "[http]\nclient_cert_header = \"X Cert\"\n", "7:22",
                         "must be a header name"));
}

// Certificate names (PUT /certificates/<name>, the expiry metric): the cert file's stem by
// default, or `name`; one name, one pair of files; a chain out of order or a certificate
// outside its validity is refused with the cert's position.
TEST(config_load, certificate_names) {
  const load_result r = load(std::string(one_certificate("a.crt", "a.key")) +
                             "  [[listener.certificate]]\n  name = \"edge-b\"\n"
                             "  cert = \"@CERTS@/b.crt\"\n  key = \"@CERTS@/b.key\"\n"
                             "[[listener]]\nname = \"alt\"\nlisten = \"127.0.0.1:8444\"\n"
                             "  [[listener.certificate]]\n  name = \"edge-b\"\n"
                             "  cert = \"@CERTS@/b.crt\"\n  key = \"@CERTS@/b.key\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  const auto& certs = r.value->server.listeners[0].tls.certificates;
  ASSERT_EQ(certs.size(), 2u);
  EXPECT_EQ(certs[0].name, "a");
  EXPECT_EQ(certs[1].name, "edge-b");
  EXPECT_EQ(r.value->server.listeners[1].tls.certificates[0].name, "edge-b");
  ASSERT_TRUE(certs[0].loaded);
  EXPECT_EQ(certs[0].loaded->names, (std::vector<std::string>{"a.example", "www.a.example"}));
  EXPECT_EQ(certs[0].source, tls::certificate_options::source_kind::config);
}

TEST(config_errors, bad_certificate_names_and_chains) {
  const std::string two = one_certificate("a.crt", "a.key") +
                          "  [[listener.certificate]]\n  name = \"a\"\n"
                          "  cert = \"@CERTS@/b.crt\"\n  key = \"@CERTS@/b.key\"\n";
  EXPECT_TRUE(fails_with(two, "7:10", "certificate name 'a' is already used (line 4)"));
  EXPECT_TRUE(fails_with(one_certificate("a.crt", "a.key") + "  name = \"../etc\"\n", "6:10",
                         "must be 1 to 64 letters"));
  EXPECT_TRUE(fails_with(one_certificate("a.crt", "a.key") + "  name = \"\"\n", "6:10", "empty"));
  EXPECT_TRUE(fails_with(one_certificate("client-expired.crt", "client-expired.key"), "4:10",
                         "the leaf (CN=expired.example,O=tlsfront test) expired at 2021-01-01"));
  // The leaf followed by a CA that did not issue it.
  const std::string dir = test::make_temp_dir();
  test::write_file(dir + "/wrong.crt",
                   test::read_file(test::certs_dir() + "/default.crt")
                           .substr(0, test::read_file(test::certs_dir() + "/default.crt")
                                              .find("-----END CERTIFICATE-----") +
                                          26) +
                       test::read_file(test::certs_dir() + "/client-root.crt"));
  EXPECT_TRUE(
      fails_with("\n[[listener]]\nlisten = \"127.0.0.1:8443\"\n  [[listener.certificate]]\n"
                 "  cert = \"" +
                     dir + "/wrong.crt\"\n  key = \"@CERTS@/default.key\"\n",
                 "4:10", "was not issued by the certificate after it"));
}

// [admin] certificate_dir: a writable directory; a copy there replaces the config's files.
TEST(config_load, certificate_dir_copy_wins) {
  const std::string dir = test::make_temp_dir();
  test::write_file(dir + "/a.pem", test::read_file(test::certs_dir() + "/b.crt") +
                                       test::read_file(test::certs_dir() + "/b.key"));
  const load_result r =
      load("\n[admin]\ncertificate_dir = \"" + dir + "\"" + one_certificate("a.crt", "a.key"));
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->admin.certificate_dir, dir);
  const auto& c = r.value->server.listeners[0].tls.certificates[0];
  EXPECT_EQ(c.source, tls::certificate_options::source_kind::certificate_dir);
  EXPECT_EQ(c.loaded->names, (std::vector<std::string>{"b.example"}));
}

// OCSP keys of a certificate entry and [ocsp]: each bad value at its position.
TEST(config_errors, bad_ocsp_settings) {
  const std::string entry = one_certificate("ocsp.crt", "ocsp.key");
  EXPECT_TRUE(fails_with(entry + "  ocsp_responder = \"https://ocsp.example/\"\n", "6:20",
                         "is not an http:// URL"));
  EXPECT_TRUE(fails_with(entry + "  ocsp_responder = \"http://ocsp.example:0/\"\n", "6:20",
                         "the port must be 1..65535"));
  EXPECT_TRUE(fails_with(entry + "  ocsp_responder = \"http:///x\"\n", "6:20", "names no host"));
  EXPECT_TRUE(fails_with(entry + "  ocsp_file = \"@CERTS@/none.der\"\n", "6:15", "cannot read"));
  EXPECT_TRUE(
      fails_with(entry + "  ocsp_file = \"@CERTS@/a.crt\"\n  ocsp_responder = \"http://x/\"\n",
                 "7:20", "exclude each other"));
  EXPECT_TRUE(fails_with(entry + "  ocsp_stapling = false\n  ocsp_file = \"@CERTS@/a.crt\"\n",
                         "7:15", "ocsp_stapling is off"));
  EXPECT_TRUE(fails_with(entry + "  ocsp_stapling = \"yes\"\n", "6:19", "must be a boolean"));
  // Must-staple: never without stapling, never without a responder.
  const std::string must = one_certificate("must-staple.crt", "must-staple.key");
  EXPECT_TRUE(fails_with(must + "  ocsp_stapling = false\n", "6:19", "is must-staple"));
  // A responder named but no issuer after the leaf.
  copy_file(test::certs_dir() + "/ocsp.crt", test::certs_dir() + "/ocsp-leaf-only/ocsp.crt");
  {
    const std::string all = test::read_file(test::certs_dir() + "/ocsp.crt");
    test::write_file(test::certs_dir() + "/ocsp-leaf-only/ocsp.crt",
                     all.substr(0, all.find("-----END CERTIFICATE-----") + 26));
  }
  EXPECT_TRUE(fails_with(one_certificate("ocsp-leaf-only/ocsp.crt", "ocsp.key") +
                             "  ocsp_responder = \"http://127.0.0.1:9/\"\n",
                         "4:10", "no issuer certificate in the chain"));
  EXPECT_TRUE(fails_with("\n[ocsp]\ntimeout = \"0s\"\n" + entry, "2:11", "longer than zero"));
  EXPECT_TRUE(fails_with("\n[ocsp]\ntimeout = \"2m\"\n" + entry, "2:11", "at most 1m"));
  EXPECT_TRUE(fails_with("\n[ocsp]\nrefresh_interval = \"500ms\"\n" + entry, "2:20",
                         "whole number of seconds"));
  EXPECT_TRUE(fails_with("\n[ocsp]\nretry = \"1s\"\n" + entry, "2:1", "retry"));
}

TEST(config_load, ocsp_settings) {
  const load_result r = load(
      "\n[ocsp]\ntimeout = \"2s\"\nrefresh_interval = \"10m\"\n"
      "retry_interval = \"30s\"\n" +
      one_certificate("ocsp.crt", "ocsp.key") + "  ocsp_responder = \"http://[::1]:8080/ocsp\"\n");
  ASSERT_TRUE(r.value) << r.error.to_string();
  EXPECT_EQ(r.value->server.ocsp.timeout, std::chrono::seconds(2));
  EXPECT_EQ(r.value->server.ocsp.refresh_interval, std::chrono::minutes(10));
  EXPECT_EQ(r.value->server.ocsp.retry_interval, std::chrono::seconds(30));
  const tls::certificate_options& co = r.value->server.listeners.at(0).tls.certificates.at(0);
  EXPECT_TRUE(co.ocsp_stapling);
  EXPECT_EQ(co.ocsp_responder, "http://[::1]:8080/ocsp");
}

TEST(config_errors, bad_certificate_dir) {
  const std::string dir = test::make_temp_dir();
  EXPECT_TRUE(fails_with(
      "\n[admin]\ncertificate_dir = \"" + dir + "/nope\"" + one_certificate("a.crt", "a.key"),
      "2:19", "is not a directory"));
  test::write_file(dir + "/file", "x");
  EXPECT_TRUE(fails_with(
      "\n[admin]\ncertificate_dir = \"" + dir + "/file\"" + one_certificate("a.crt", "a.key"),
      "2:19", "is not a directory"));
  test::write_file(dir + "/a.pem", test::read_file(test::certs_dir() + "/a.crt"));  // no key
  EXPECT_TRUE(
      fails_with("\n[admin]\ncertificate_dir = \"" + dir + "\"" + one_certificate("a.crt", "a.key"),
                 "2:19", "certificate 'a' from certificate_dir: no private key"));
}

}  // namespace
}  // namespace tlsfront::config
