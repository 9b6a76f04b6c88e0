// tests/support/redis_cluster.h — a real Redis Cluster for tests: `masters` redis-server nodes in
// cluster mode on free 127.0.0.1 ports, each with `replicas_each` replicas, created with
// `redis-cli --cluster create` and waited on until every node says cluster_state:ok and every
// replica is in sync. Short timings (cluster-node-timeout 1000 ms) so a failover completes in a
// few seconds. Thread-safety: none. The nodes are killed on destruction.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/redis_server.h"

namespace tlsfront::test {

class redis_cluster {
 public:
  explicit redis_cluster(int masters = 3, int replicas_each = 1);

  std::vector<std::unique_ptr<redis_server>> nodes;

  bool created() const { return created_; }
  // `"127.0.0.1:p1", "127.0.0.1:p2", ...` of the first `n` nodes (all when n is 0), for a
  // cluster_nodes list.
  std::string seeds(std::size_t n = 0) const;
  // The running nodes whose ROLE is master (right now).
  std::vector<redis_server*> masters() const;
  // The node serving `slot` as a master in `asked`'s CLUSTER SLOTS (nullptr if none).
  redis_server* owner_of(int slot, const redis_server& asked) const;
  redis_server* by_port(int port) const;
  std::string id_of(const redis_server& node) const;  // CLUSTER MYID
  // Every running node says cluster_state:ok, within `limit`.
  bool wait_ok(std::chrono::milliseconds limit) const;
  // Keys a node holds (DBSIZE).
  long long keys_on(const redis_server& node) const;

 private:
  bool created_ = false;
};

// A free port a cluster node can take: its bus port (port + 10000) is a valid port too.
int free_cluster_port();

// The ROLE of a node ("master", "slave"), "" if it does not answer.
std::string role_of(const redis_server& r);

}  // namespace tlsfront::test
