#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

#include "cluster/fleet_secret.h"
#include "config/reader.h"

namespace tlsfront::config::detail {

// [cluster]: the fleet store, on one Redis (`redis`) or on the master that Redis Sentinel names
// (`sentinels` and `master_name`). Addresses must be IP literals: hiredis resolves names with a
// blocking call on the worker thread at every reconnect.
void reader::read_cluster(const toml::table& t, cluster::cluster_options& out) {
  check_keys(t, "cluster",
             {"redis", "sentinels", "master_name", "sentinel_password_file", "password_file",
              "secret_file", "key_prefix", "database", "lookup_timeout", "connect_timeout",
              "command_timeout", "max_pending_writes", "poll_interval"});
  const toml::node* redis = t.get("redis");
  const toml::node* sentinels = t.get("sentinels");
  if (redis != nullptr && sentinels != nullptr) {
    fail(*sentinels, "[cluster] takes one of 'redis' and 'sentinels', not both");
  }
  if (redis == nullptr && sentinels == nullptr) {
    fail(t.source(),
         "[cluster] needs 'redis' (one Redis, \"ip:port\") or 'sentinels' (Redis "
         "Sentinel, with 'master_name')");
  }
  if (redis != nullptr) {
    host_port hp = as_host_port(*redis, "redis", true, false);
    out.redis.host = hp.host;
    out.redis.port = hp.port;
    for (const char* key : {"master_name", "sentinel_password_file"}) {
      if (const toml::node* n = t.get(key)) {
        fail(*n, single_quoted(key) + " applies only with 'sentinels'");
      }
    }
  } else {
    for_each_string(*sentinels, "sentinels", [&](const toml::node& e, const std::string&) {
      host_port hp = as_host_port(e, "sentinels", true, false);
      cluster::redis_endpoint ep{hp.host, hp.port};
      if (std::find(out.redis.sentinels.begin(), out.redis.sentinels.end(), ep) !=
          out.redis.sentinels.end()) {
        fail(e, "sentinel " + ep.str() + " is listed twice");
      }
      out.redis.sentinels.push_back(std::move(ep));
    });
    if (out.redis.sentinels.empty()) {
      fail(*sentinels, "'sentinels' must name at least one sentinel");
    }
    if (out.redis.sentinels.size() > 64) {
      fail(*sentinels, "'sentinels' holds at most 64 addresses");
    }
    const toml::node& mn = require(t, "master_name", "cluster");
    out.redis.master_name = as_nonempty_string(mn, "master_name");
    if (out.redis.master_name.size() > 128 ||
        !std::all_of(out.redis.master_name.begin(), out.redis.master_name.end(),
                     [](char c) { return c > ' ' && c < 0x7f; })) {
      fail(mn, "'master_name' must be printable ASCII without spaces, at most 128 characters");
    }
    if (const toml::node* n = t.get("sentinel_password_file")) {
      out.redis.sentinel_password = read_secret_file(
          resolve(as_string(*n, "sentinel_password_file")), *n, "the sentinel password file");
    }
  }
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
