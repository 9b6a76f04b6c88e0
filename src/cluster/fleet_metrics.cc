#include "cluster/fleet_metrics.h"

namespace tlsfront::cluster {

namespace {

// One counter member of a counters struct of relaxed atomics, with its metric name and help.
template <class Counters>
struct atomic_field {
  const char* name;
  const char* help;
  std::atomic<std::uint64_t> Counters::*member;
};

// Each field as a counter: the sum of that member over `sources`.
template <class Counters, std::size_t N>
void add_summed_counters(core::metrics_registry& metrics, const atomic_field<Counters> (&fields)[N],
                         const std::vector<const Counters*>& sources) {
  for (const auto& f : fields) {
    metrics.add_counter_fn(f.name, f.help, "", [sources, m = f.member] {
      double sum = 0;
      for (const Counters* c : sources) {
        // Relaxed: a monotonic count read for display; it publishes nothing.
        sum += static_cast<double>((c->*m).load(std::memory_order_relaxed));
      }
      return sum;
    });
  }
}

}  // namespace

void register_redis_connection_metrics(std::vector<const redis_client*> clients,
                                       core::metrics_registry& metrics) {
  metrics.add_gauge_fn("tlsfront_fleet_redis_connections_up",
                       "Worker Redis connections ready now (one per worker thread)", "", [clients] {
                         double up = 0;
                         for (const redis_client* c : clients) {
                           up += c->connected() ? 1 : 0;
                         }
                         return up;
                       });
}

void register_sentinel_metrics(std::vector<const redis_client*> clients,
                               const sentinel_watch& watch, core::metrics_registry& metrics) {
  metrics.add_counter_fn("tlsfront_fleet_redis_master_changes_total",
                         "Times a worker's Redis connection moved to another master (Sentinel), "
                         "summed over the workers",
                         "", [clients] {
                           double n = 0;
                           for (const redis_client* c : clients) {
                             n += static_cast<double>(c->master_changes());
                           }
                           return n;
                         });
  metrics.add_counter_fn("tlsfront_fleet_redis_switches_total",
                         "The sentinels' +switch-master announcements heard for the master", "",
                         [w = &watch] { return static_cast<double>(w->switches()); });
  metrics.add_gauge_fn("tlsfront_fleet_sentinel_connected",
                       "1 while subscribed to a sentinel's failover announcements", "",
                       [w = &watch] { return w->connected() ? 1.0 : 0.0; });
}

void register_cluster_metrics(std::shared_ptr<const cluster_stats> stats,
                              core::metrics_registry& metrics) {
  using view = cluster_stats::node_view;
  auto per_node = [stats](double (*value)(const view&)) {
    return [stats, value] {
      core::metrics_registry::labeled_values out;
      for (const auto& [node, v] : stats->nodes()) {
        out.emplace_back("node=\"" + node + "\"", value(v));
      }
      return out;
    };
  };
  metrics.add_gauge_set_fn("tlsfront_fleet_cluster_node_connections_up",
                           "Worker connections ready now to each Redis Cluster node",
                           per_node([](const view& v) { return double(v.connections_up); }));
  metrics.add_gauge_set_fn("tlsfront_fleet_cluster_node_master",
                           "1 while the last slot map read shows the node a master",
                           per_node([](const view& v) { return v.master ? 1.0 : 0.0; }));
  metrics.add_counter_set_fn("tlsfront_fleet_cluster_moved_total",
                             "MOVED redirections to each node (a slot that changed owner)",
                             per_node([](const view& v) { return double(v.moved); }));
  metrics.add_counter_set_fn("tlsfront_fleet_cluster_ask_total",
                             "ASK redirections to each node (a slot being migrated to it)",
                             per_node([](const view& v) { return double(v.ask); }));
  metrics.add_counter_set_fn("tlsfront_fleet_cluster_promotions_total",
                             "Times a slot map showed the node a master after it had been a "
                             "replica (failovers seen)",
                             per_node([](const view& v) { return double(v.promotions); }));
  metrics.add_counter_fn("tlsfront_fleet_cluster_maps_read_total",
                         "Redis Cluster slot maps read (at start, on redirections, lost nodes "
                         "and every poll_interval), summed over the workers",
                         "", [stats] { return double(stats->maps_read()); });
}

void register_session_store_metrics(std::vector<const session_store*> stores,
                                    core::metrics_registry& metrics) {
  using counters = session_store_counters;
  static const atomic_field<counters> fields[] = {
      {"tlsfront_fleet_session_lookups_total",
       "Session-ID lookups sent to the fleet store (L1 misses)", &counters::lookups},
      {"tlsfront_fleet_session_hits_total", "Fleet store lookups that returned a valid session",
       &counters::hits},
      {"tlsfront_fleet_session_misses_total", "Fleet store lookups that found nothing",
       &counters::misses},
      {"tlsfront_fleet_session_timeouts_total",
       "Handshakes that stopped waiting for the fleet store after lookup_timeout",
       &counters::timeouts},
      {"tlsfront_fleet_session_errors_total",
       "Fleet store commands that failed (Redis down, error reply, dropped connection)",
       &counters::errors},
      {"tlsfront_fleet_session_rejected_total",
       "Fleet store values that did not open (tampered, truncated, another fleet's secret)",
       &counters::rejected},
      {"tlsfront_fleet_session_writes_total", "New sessions written to the fleet store",
       &counters::writes},
      {"tlsfront_fleet_session_dropped_writes_total",
       "New sessions never written: the oldest dropped from a full outage queue",
       &counters::dropped_writes},
      {"tlsfront_fleet_session_expired_writes_total",
       "Queued sessions whose lifetime ended before Redis was back", &counters::expired_writes},
  };
  std::vector<const counters*> sources;
  for (const session_store* s : stores) {
    sources.push_back(&s->counters());
  }
  add_summed_counters(metrics, fields, sources);
  metrics.add_gauge_fn("tlsfront_fleet_session_writes_queued",
                       "New sessions waiting to be written (Redis down or writes in flight at "
                       "max_pending_writes), summed over the workers",
                       "", [sources] {
                         double n = 0;
                         for (const counters* c : sources) {
                           n += static_cast<double>(c->queued.load(std::memory_order_relaxed));
                         }
                         return n;
                       });
}

void register_key_sync_metrics(const ticket_key_sync& sync, const tls::ticket_key_ring& ring,
                               core::metrics_registry& metrics) {
  using counters = ticket_sync_counters;
  static const atomic_field<counters> fields[] = {
      {"tlsfront_fleet_ticket_key_polls_total", "Reads of the fleet's ticket key list",
       &counters::polls},
      {"tlsfront_fleet_ticket_key_errors_total",
       "Ticket key list reads or writes that failed (Redis down, error reply)", &counters::errors},
      {"tlsfront_fleet_ticket_key_rejected_total",
       "Ticket key lists that did not open or parse (another fleet's secret, altered)",
       &counters::rejected},
      {"tlsfront_fleet_ticket_key_updates_total",
       "Changed ticket key lists this instance wrote (new key, expired key dropped)",
       &counters::added},
      {"tlsfront_fleet_ticket_key_conflicts_total",
       "Ticket key list changes another instance wrote first", &counters::conflicts},
  };
  const counters& c = sync.counters();
  add_summed_counters(metrics, fields, {&c});
  metrics.add_gauge_fn(
      "tlsfront_fleet_ticket_keys_version",
      "Version of the installed fleet ticket key list (-1: none read yet)", "",
      [&c] { return static_cast<double>(c.version.load(std::memory_order_relaxed)); });
  metrics.add_gauge_fn("tlsfront_fleet_ticket_keys_age_seconds",
                       "Seconds since the fleet ticket key list was last read (-1: never)", "",
                       [&c, &ring] {
                         const std::int64_t at = c.read_at.load(std::memory_order_relaxed);
                         return at == 0 ? -1.0 : static_cast<double>(ring.clock().now_s() - at);
                       });
  metrics.add_gauge_fn("tlsfront_fleet_ticket_keys_shared",
                       "1 while the ticket keys are the fleet's, 0 while they are per instance", "",
                       [&c] { return c.shared.load(std::memory_order_relaxed) ? 1.0 : 0.0; });
  metrics.add_counter_fn("tlsfront_fleet_ticket_local_keys_total",
                         "Ticket keys made by this instance alone while the fleet list was "
                         "unavailable",
                         "", [&ring] { return static_cast<double>(ring.local_keys_made()); });
}

}  // namespace tlsfront::cluster
