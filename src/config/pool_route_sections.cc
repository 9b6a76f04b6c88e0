#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "config/reader.h"

namespace tlsfront::config::detail {

void reader::read_pools(const toml::array& pools, std::vector<proxy::pool_options>& out) {
  std::vector<toml::source_position> first_at;
  for (const toml::node& p : pools) {
    const toml::table& t = *p.as_table();
    check_keys(t, "pool",
               {"name", "servers", "balance", "connect_timeout", "read_timeout", "idle_timeout",
                "max_idle", "cooldown", "retries", "max_fails", "health_check"});
    proxy::pool_options pool;
    const toml::node& name_node = require(t, "name", "pool");
    pool.name = as_nonempty_string(name_node, "name");
    if (!is_plain_name(pool.name)) {
      fail(name_node, "'name' may hold only letters, digits, '_', '-' and '.'");
    }
    for (std::size_t i = 0; i < out.size(); ++i) {
      if (out[i].name == pool.name) {
        fail(name_node, "duplicate pool name " + single_quoted(pool.name) + " (first at line " +
                            std::to_string(first_at[i].line) + ")");
      }
    }
    const toml::node& servers = require(t, "servers", "pool");
    for_each_string(servers, "servers", [&](const toml::node& e, const std::string&) {
      host_port hp = as_host_port(e, "servers", /*ip_only=*/false, /*allow_port_zero=*/false);
      pool.servers.push_back({std::move(hp.host), hp.port});
    });
    if (pool.servers.empty()) {
      fail(servers, "'servers' must list at least one host:port");
    }
    if (const toml::node* n = t.get("balance")) {
      const std::string balance = as_string(*n, "balance");
      if (balance == "round_robin") {
        pool.balance = proxy::balance_policy::round_robin;
      } else if (balance == "least_connections") {
        pool.balance = proxy::balance_policy::least_connections;
      } else {
        fail(*n, "'balance' must be \"round_robin\" or \"least_connections\"");
      }
    }
    optional_timeout(t, "connect_timeout", pool.connect_timeout);
    optional_timeout(t, "read_timeout", pool.read_timeout);
    optional_timeout(t, "idle_timeout", pool.idle_timeout);
    optional_integer(t, "max_idle", 0, 100000, pool.max_idle);
    optional_duration(t, "cooldown", pool.cooldown);
    optional_integer(t, "retries", 0, 10, pool.retries);
    optional_integer(t, "max_fails", 0, 1000, pool.max_fails);
    if (const toml::node* n = t.get("health_check")) {
      read_health_check(as_table(*n, "health_check"), pool.health);
    }
    first_at.push_back(name_node.source().begin);
    out.push_back(std::move(pool));
  }
}

// [pool.health_check]: type = "tcp" | "http", and for http the path, Host and expected
// status (a code, or a class such as "2xx").
void reader::read_health_check(const toml::table& t, proxy::health_check_options& out) {
  using kind = proxy::health_check_options::kind;
  check_keys(t, "health_check",
             {"type", "path", "host", "expect_status", "interval", "timeout", "rise", "fall"});
  const toml::node& type = require(t, "type", "health_check");
  const std::string v = as_string(type, "type");
  if (v == "tcp") {
    out.type = kind::tcp;
  } else if (v == "http") {
    out.type = kind::http;
  } else {
    fail(type, "'type' must be \"tcp\" or \"http\"");
  }
  for (const char* key : {"path", "host", "expect_status"}) {
    if (const toml::node* n = t.get(key); n != nullptr && out.type != kind::http) {
      fail(*n, single_quoted(key) + " needs type = \"http\"");
    }
  }
  if (const toml::node* n = t.get("path")) {
    out.path = as_string(*n, "path");
    if (out.path.empty() || out.path[0] != '/' ||
        out.path.find_first_of(" \r\n\t") != std::string::npos) {
      fail(*n, "'path' must start with '/' and hold no spaces or control characters");
    }
  }
  if (const toml::node* n = t.get("host")) {
    out.host = as_nonempty_string(*n, "host");
    if (out.host.find_first_of(" \r\n\t") != std::string::npos) {
      fail(*n, "'host' must hold no spaces or control characters");
    }
  }
  if (const toml::node* n = t.get("expect_status")) {
    if (const auto* code = n->as_integer()) {
      if (code->get() < 100 || code->get() > 599) {
        fail(*n, "'expect_status' must be a status code (100..599) or a class (\"2xx\")");
      }
      out.expect_min = out.expect_max = static_cast<int>(code->get());
    } else if (const auto* cls = n->as_string(); cls != nullptr && cls->get().size() == 3 &&
                                                 cls->get()[0] >= '1' && cls->get()[0] <= '5' &&
                                                 cls->get().substr(1) == "xx") {
      out.expect_min = (cls->get()[0] - '0') * 100;
      out.expect_max = out.expect_min + 99;
    } else {
      fail(*n, "'expect_status' must be a status code (100..599) or a class (\"2xx\")");
    }
  }
  optional_timeout(t, "interval", out.interval);
  optional_timeout(t, "timeout", out.timeout);
  if (out.timeout > out.interval) {
    fail(t.get("timeout") != nullptr ? *t.get("timeout") : *t.get("interval"),
         "'timeout' must not exceed 'interval'");
  }
  optional_integer(t, "rise", 1, 100, out.rise);
  optional_integer(t, "fall", 1, 100, out.fall);
}

void reader::read_routes(const toml::array& routes, const std::vector<proxy::pool_options>& pools,
                         std::vector<proxy::route_options>& out) {
  for (const toml::node& r : routes) {
    const toml::table& t = *r.as_table();
    check_keys(
        t, "route",
        {"host", "path_prefix", "pool", "upgrades", "send_session_handle", "early_data_methods"});
    proxy::route_options route;
    if (const toml::node* n = t.get("host")) {
      const std::string text = as_string(*n, "host");
      route.host = text;
      std::string why;
      if (!route.host.empty() && !check_server_name(route.host, why)) {
        fail(*n, "invalid 'host' " + double_quoted(text) + ": " + why);
      }
    }
    if (const toml::node* n = t.get("path_prefix")) {
      route.path_prefix = as_string(*n, "path_prefix");
      if (!route.path_prefix.starts_with("/")) {
        fail(*n, "'path_prefix' must start with \"/\"");
      }
    }
    const toml::node& pool_node = require(t, "pool", "route");
    route.pool = as_nonempty_string(pool_node, "pool");
    const bool known = std::any_of(pools.begin(), pools.end(), [&](const proxy::pool_options& p) {
      return p.name == route.pool;
    });
    if (!known) {
      fail(pool_node, "route names unknown pool " + single_quoted(route.pool));
    }
    if (const toml::node* n = t.get("upgrades")) {
      route.upgrades.clear();
      for_each_string(*n, "upgrades", [&](const toml::node& e, const std::string& v) {
        std::string p;
        for (char c : v) {
          if (!is_token_char(c)) {
            fail(e, "'upgrades' holds protocol names (tokens such as \"websocket\")");
          }
          p.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
        }
        if (p == "h2c") {
          fail(e,
               "h2c cannot be upgraded to over TLS (RFC 9113 section 3.2); tlsfront strips "
               "it");
        }
        route.upgrades.push_back(std::move(p));
      });
    }
    optional_key(t, "send_session_handle", route.send_session_handle,
                 [](const toml::node& n) { return as_bool(n, "send_session_handle"); });
    if (const toml::node* n = t.get("early_data_methods")) {
      route.early_data_methods.clear();  // []: every request waits for the handshake
      for_each_string(*n, "early_data_methods", [&](const toml::node& e, const std::string& v) {
        if (v.empty() || !std::all_of(v.begin(), v.end(), is_token_char)) {
          fail(e, "invalid method " + double_quoted(v) + " in 'early_data_methods'");
        }
        if (v == "CONNECT") {
          fail(e, "CONNECT cannot go in early data (tlsfront never tunnels early bytes)");
        }
        route.early_data_methods.push_back(v);
      });
    }
    out.push_back(std::move(route));
  }
}

}  // namespace tlsfront::config::detail
