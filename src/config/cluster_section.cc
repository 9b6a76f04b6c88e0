#include <spdlog/spdlog.h>

#include <string>

#include "cluster/fleet_secret.h"
#include "config/reader.h"

namespace tlsfront::config::detail {

// [cluster]: the fleet store. `redis` must be an IP literal: hiredis resolves names with a
// blocking call on the worker thread at every reconnect.
void reader::read_cluster(const toml::table& t, cluster::cluster_options& out) {
  check_keys(t, "cluster",
             {"redis", "password_file", "secret_file", "key_prefix", "database", "lookup_timeout",
              "connect_timeout", "command_timeout", "max_pending_writes", "poll_interval"});
  host_port hp = as_host_port(require(t, "redis", "cluster"), "redis", true, false);
  out.redis.host = hp.host;
  out.redis.port = hp.port;
  if (const toml::node* n = t.get("password_file")) {
    out.redis.password =
        read_secret_file(resolve(as_string(*n, "password_file")), *n, "the Redis password file");
  }
  const toml::node& sf = require(t, "secret_file", "cluster");
  std::string error, warning;
  if (!cluster::load_fleet_secret(resolve(as_nonempty_string(sf, "secret_file")), out.secret, error,
                                  warning)) {
    fail(sf, error);
  }
  if (!warning.empty()) {
    spdlog::warn("{}", warning);
  }
  if (const toml::node* n = t.get("key_prefix")) {
    out.key_prefix = as_string(*n, "key_prefix");
  }
  optional_integer(t, "database", 0, 15, out.redis.database);
  optional_duration(t, "lookup_timeout", out.lookup_timeout);
  optional_duration(t, "connect_timeout", out.redis.connect_timeout);
  optional_duration(t, "command_timeout", out.redis.command_timeout);
  optional_duration(t, "poll_interval", out.poll_interval);
  if (const toml::node* n = t.get("poll_interval");
      n != nullptr && (out.poll_interval < std::chrono::milliseconds(100) ||
                       out.poll_interval > std::chrono::minutes(10))) {
    fail(*n, "'poll_interval' must be between 100ms and 10m");
  }
  for (const char* key : {"lookup_timeout", "connect_timeout", "command_timeout"}) {
    if (const toml::node* n = t.get(key); n != nullptr && as_duration(*n, key).count() < 1) {
      fail(*n, single_quoted(key) + " must be at least 1ms");
    }
  }
  optional_integer(t, "max_pending_writes", 1, 1 << 20, out.max_pending_writes);
}

}  // namespace tlsfront::config::detail
