#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <utility>

#include "config/reader.h"

namespace tlsfront::config::detail {

void reader::read_server(const toml::table& t, proxy::server_options& out) {
  check_keys(t, "server", {"threads", "upgrade_socket"});
  optional_integer(t, "threads", 0, 1024, out.threads);
  if (const toml::node* n = t.get("upgrade_socket")) {
    out.upgrade_socket = resolve(as_nonempty_string(*n, "upgrade_socket"));
    // sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
    if (out.upgrade_socket.size() > 107) {
      fail(*n, "'upgrade_socket' must be a path of at most 107 bytes (a UNIX socket's limit)");
    }
  }
}

// [admin]: the admin endpoint. A token (from `token_file`) is required for every
// state-changing call when set, and must be set when the endpoint listens beyond loopback.
void reader::read_admin(const toml::table& t, admin::admin_options& out) {
  check_keys(t, "admin",
             {"enabled", "listen", "token_file", "allowed_hosts", "max_connections",
              "request_timeout", "rotate_burst", "rotate_interval", "certificate_dir"});
  optional_key(t, "enabled", out.enabled,
               [](const toml::node& n) { return as_bool(n, "enabled"); });
  if (const toml::node* n = t.get("token_file")) {
    out.token_file = resolve(as_nonempty_string(*n, "token_file"));
    out.token = read_secret_file(out.token_file, *n, "the admin token file");
    if (out.token.size() < 16) {
      fail(*n, "the admin token in " + out.token_file +
                   " is too short: use at least 16 characters (e.g. openssl rand -hex 32)");
    }
    for (unsigned char c : out.token) {
      if (c <= 0x20 || c >= 0x7f) {
        fail(*n, "the admin token in " + out.token_file +
                     " must be one line of printable ASCII without spaces");
      }
    }
  }
  if (const toml::node* n = t.get("allowed_hosts")) {
    for_each_string(*n, "allowed_hosts", [&](const toml::node&, const std::string& h) {
      out.allowed_hosts.push_back(h);
    });
  }
  optional_integer(t, "max_connections", 1, 10000, out.max_connections);
  optional_timeout(t, "request_timeout", out.request_timeout);
  optional_integer(t, "rotate_burst", 1, 1000000, out.rotate_burst);
  optional_duration(t, "rotate_interval", out.rotate_interval);
  if (const toml::node* n = t.get("certificate_dir")) {
    out.certificate_dir = resolve(as_nonempty_string(*n, "certificate_dir"));
    std::error_code ec;
    if (!std::filesystem::is_directory(out.certificate_dir, ec)) {
      fail(*n, "certificate_dir " + out.certificate_dir + " is not a directory" +
                   (ec ? ": " + ec.message() : std::string()));
    }
    if (::access(out.certificate_dir.c_str(), W_OK | X_OK) != 0) {
      fail(*n, "certificate_dir " + out.certificate_dir +
                   " is not writable by this process: " + std::strerror(errno));
    }
    certificate_dir_ = out.certificate_dir;
    certificate_dir_node_ = n;
  }
  if (const toml::node* n = t.get("listen")) {
    host_port hp = as_host_port(*n, "listen", /*ip_only=*/true, /*allow_port_zero=*/true);
    out.address = std::move(hp.host);
    out.port = hp.port;
    if (out.enabled && out.token.empty() && !is_loopback_literal(out.address)) {
      fail(*n, "admin 'listen' " + double_quoted(out.address) +
                   " is not a loopback address: anyone who reaches it could reload, flush "
                   "sessions and rotate keys; set 'token_file' in [admin] or listen on "
                   "127.0.0.1 or ::1");
    }
  }
}

bool reader::is_loopback_literal(const std::string& ip) {
  in_addr v4{};
  if (::inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    return (ntohl(v4.s_addr) >> 24) == 127;
  }
  in6_addr v6{};
  return ::inet_pton(AF_INET6, ip.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

void reader::read_log(const toml::table& t, tlsfront::log::log_options& out) {
  check_keys(t, "log", {"level", "error_log", "access_log"});
  if (const toml::node* n = t.get("level")) {
    constexpr std::string_view levels[] = {"trace", "debug",    "info", "warn",
                                           "error", "critical", "off"};
    std::string level = as_string(*n, "level");
    if (std::find(std::begin(levels), std::end(levels), level) == std::end(levels)) {
      fail(*n, "'level' must be one of trace, debug, info, warn, error, critical, off");
    }
    out.level = std::move(level);
  }
  optional_key(t, "error_log", out.error_log,
               [](const toml::node& n) { return as_nonempty_string(n, "error_log"); });
  optional_key(t, "access_log", out.access_log,
               [](const toml::node& n) { return as_nonempty_string(n, "access_log"); });
}

void reader::read_limits(const toml::table& t, proxy::limits_options& out) {
  check_keys(
      t, "limits",
      {"max_connections", "max_header_bytes", "max_header_count", "max_body_bytes",
       "client_idle_timeout", "client_read_timeout", "client_write_timeout", "drain_timeout"});
  optional_integer(t, "max_connections", 1, std::numeric_limits<std::int64_t>::max(),
                   out.max_connections);
  optional_size(t, "max_header_bytes", 1024, 1024 * 1024, out.max_header_bytes);
  optional_integer(t, "max_header_count", 1, 10000, out.max_header_count);
  optional_size(t, "max_body_bytes", 0, std::numeric_limits<std::uint64_t>::max(),
                out.max_body_bytes);
  optional_timeout(t, "client_idle_timeout", out.client_idle_timeout);
  optional_timeout(t, "client_read_timeout", out.client_read_timeout);
  optional_timeout(t, "client_write_timeout", out.client_write_timeout);
  optional_duration(t, "drain_timeout", out.drain_timeout);
}

void reader::read_ocsp(const toml::table& t, proxy::ocsp_options& out) {
  check_keys(t, "ocsp", {"timeout", "refresh_interval", "retry_interval"});
  optional_timeout(t, "timeout", out.timeout);
  if (out.timeout > std::chrono::minutes(1)) {
    fail(*t.get("timeout"), "'timeout' must be at most 1m");
  }
  // Whole seconds, at least one: the stapler schedules in seconds.
  auto seconds_key = [&](std::string_view key, std::chrono::seconds& value) {
    const toml::node* n = t.get(key);
    if (n == nullptr) {
      return;
    }
    const milliseconds d = as_duration(*n, key);
    if (d < std::chrono::seconds(1) || d.count() % 1000 != 0) {
      fail(*n, single_quoted(key) + " must be a whole number of seconds, at least 1s");
    }
    value = std::chrono::duration_cast<std::chrono::seconds>(d);
  };
  seconds_key("refresh_interval", out.refresh_interval);
  seconds_key("retry_interval", out.retry_interval);
}

}  // namespace tlsfront::config::detail
