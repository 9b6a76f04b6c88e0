#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

#include "cluster/fleet_secret.h"
#include "config/reader.h"

namespace tlsfront::config::detail {

// [cluster]: the fleet store, on one Redis (`redis`), on the master that Redis Sentinel names
// (`sentinels` and `master_name`) or on a Redis Cluster (`cluster_nodes`, its seeds). Addresses
// must be IP literals: hiredis resolves names with a blocking call on the worker thread at every
// reconnect.
void reader::read_cluster(const toml::table& t, cluster::cluster_options& out) {
  check_keys(
      t, "cluster",
      {"redis", "sentinels", "master_name", "sentinel_password_file", "cluster_nodes",
       "password_file", "secret_file", "key_prefix", "database", "lookup_timeout",
       "connect_timeout", "command_timeout", "max_pending_writes", "write_queue", "poll_interval"});
  const toml::node* redis = t.get("redis");
  const toml::node* sentinels = t.get("sentinels");
  const toml::node* seeds = t.get("cluster_nodes");
  const int given = (redis != nullptr) + (sentinels != nullptr) + (seeds != nullptr);
  if (given > 1) {
    fail(redis != nullptr && sentinels != nullptr ? *sentinels : *seeds,
         "[cluster] takes one of 'redis', 'sentinels' and 'cluster_nodes', not several");
  }
  if (given == 0) {
    fail(t.source(),
         "[cluster] needs 'redis' (one Redis, \"ip:port\"), 'sentinels' (Redis Sentinel, with "
         "'master_name') or 'cluster_nodes' (Redis Cluster seeds)");
  }
  // A list of 1..64 distinct "ip:port" strings.
  auto endpoints = [&](const toml::node& list, const char* key, const char* what) {
    std::vector<cluster::redis_endpoint> eps;
    for_each_string(list, key, [&](const toml::node& e, const std::string&) {
      host_port hp = as_host_port(e, key, true, false);
      cluster::redis_endpoint ep{hp.host, hp.port};
      if (std::find(eps.begin(), eps.end(), ep) != eps.end()) {
        fail(e, std::string(what) + " " + ep.str() + " is listed twice");
      }
      eps.push_back(std::move(ep));
    });
    if (eps.empty()) {
      fail(list, single_quoted(key) + " must name at least one " + what);
    }
    if (eps.size() > 64) {
      fail(list, single_quoted(key) + " holds at most 64 addresses");
    }
    return eps;
  };
  if (sentinels == nullptr) {
    for (const char* key : {"master_name", "sentinel_password_file"}) {
      if (const toml::node* n = t.get(key)) {
        fail(*n, single_quoted(key) + " applies only with 'sentinels'");
      }
    }
  }
  if (redis != nullptr) {
    host_port hp = as_host_port(*redis, "redis", true, false);
    out.redis.host = hp.host;
    out.redis.port = hp.port;
  } else if (seeds != nullptr) {
    out.redis.cluster_nodes = endpoints(*seeds, "cluster_nodes", "node");
    if (const toml::node* n = t.get("database")) {
      fail(*n, "'database' does not apply to a Redis Cluster (it has only database 0)");
    }
  } else {
    out.redis.sentinels = endpoints(*sentinels, "sentinels", "sentinel");
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
  out.redis.map_refresh = out.poll_interval;  // the cluster's slot map is read as often
  for (const char* key : {"lookup_timeout", "connect_timeout", "command_timeout"}) {
    if (const toml::node* n = t.get(key); n != nullptr && as_duration(*n, key).count() < 1) {
      fail(*n, single_quoted(key) + " must be at least 1ms");
    }
  }
  optional_integer(t, "max_pending_writes", 1, 1 << 20, out.max_pending_writes);
  optional_integer(t, "write_queue", 0, 1 << 20, out.write_queue);
}

}  // namespace tlsfront::config::detail
