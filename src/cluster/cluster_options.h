// cluster/cluster_options.h — the `[cluster]` section: where the fleet's Redis is and how the
// fleet's shared state is protected. Absent: tlsfront runs alone (L1 cache and local keys).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include "cluster/redis_client.h"

namespace tlsfront::cluster {

struct cluster_options {
  redis_options redis;                          // address, password (from password_file), timeouts
  std::string secret;                           // the fleet secret's bytes (from secret_file)
  std::string key_prefix = "tlsfront:";         // every key tlsfront writes starts with it
  std::chrono::milliseconds lookup_timeout{5};  // longest a handshake waits for an L2 lookup
  std::size_t max_pending_writes = 1024;        // per worker; more wait in the write queue
  std::size_t write_queue = 4096;  // per worker: sessions kept for Redis's return; oldest dropped
  std::chrono::milliseconds poll_interval{2000};  // how often the ticket key list is read
};

}  // namespace tlsfront::cluster
