// cluster/fleet_metrics.h — the fleet's metrics, registered next to the counters the cluster
// module owns: the workers' Redis connections (up now), their L2 session stores (lookups, hits,
// misses, timeouts, errors, rejected values, writes, dropped writes; summed over the workers)
// and the ticket key list's sync (polls, errors, rejected lists, updates, conflicts, version,
// age, shared or not, keys made locally).
//
// Thread-safety: call once on the control thread before serving; the registered functions run
// on the metrics renderer's thread and read relaxed atomics (counts for display).
// Ownership: the clients, stores, sync and ring outlive the registry's last render. Never fails.
#pragma once

#include <memory>
#include <vector>

#include "cluster/cluster_router.h"
#include "cluster/redis_client.h"
#include "cluster/sentinel_watch.h"
#include "cluster/session_store.h"
#include "cluster/ticket_key_sync.h"
#include "core/metrics.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::cluster {

// tlsfront_fleet_redis_connections_up: how many of `clients` are connected.
void register_redis_connection_metrics(std::vector<const redis_client*> clients,
                                       core::metrics_registry& metrics);
// With Redis Sentinel: tlsfront_fleet_redis_master_changes_total (times a worker connection
// moved to another master, summed over `clients`) and tlsfront_fleet_redis_switches_total (the
// sentinels' +switch-master announcements `watch` heard), tlsfront_fleet_sentinel_connected.
void register_sentinel_metrics(std::vector<const redis_client*> clients,
                               const sentinel_watch& watch, core::metrics_registry& metrics);
// With Redis Cluster, one series per node (label node="ip:port"): worker connections up, MOVED
// and ASK redirections to it, times it was seen promoted from replica to master, whether it is a
// master in the last map; and the slot maps read.
void register_cluster_metrics(std::shared_ptr<const cluster_stats> stats,
                              core::metrics_registry& metrics);
// tlsfront_fleet_session_*: the counters of `stores`, summed.
void register_session_store_metrics(std::vector<const session_store*> stores,
                                    core::metrics_registry& metrics);
// tlsfront_fleet_ticket_*: `sync`'s counters and state, and the local keys `ring` made.
void register_key_sync_metrics(const ticket_key_sync& sync, const tls::ticket_key_ring& ring,
                               core::metrics_registry& metrics);

}  // namespace tlsfront::cluster
