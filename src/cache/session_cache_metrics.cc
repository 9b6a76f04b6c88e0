#include "cache/session_cache_metrics.h"

namespace tlsfront::cache {

void register_session_cache_metrics(const session_cache& c, core::metrics_registry& metrics) {
  using stats = session_cache::stats;
  struct field {
    const char* name;
    const char* help;
    std::uint64_t stats::*member;
  };
  static const field fields[] = {
      {"tlsfront_session_cache_hits_total", "Session-ID cache lookups that found the session",
       &stats::hits},
      {"tlsfront_session_cache_misses_total", "Session-ID cache lookups that found nothing usable",
       &stats::misses},
      {"tlsfront_session_cache_inserts_total", "Sessions stored in the session-ID cache",
       &stats::inserts},
      {"tlsfront_session_cache_evictions_total",
       "Live sessions evicted to make room (CLOCK, per bucket)", &stats::evictions},
      {"tlsfront_session_cache_expirations_total", "Lookups that found an expired session",
       &stats::expirations},
      {"tlsfront_session_cache_oversize_total", "Sessions too large for a slot, not cached",
       &stats::oversize},
      {"tlsfront_session_cache_torn_read_retries_total",
       "Lookups that copied a slot while a writer changed it and read it again",
       &stats::torn_retries},
      {"tlsfront_session_cache_busy_total",
       "Inserts dropped because another writer held the chosen slot", &stats::busy},
      {"tlsfront_session_cache_removals_total", "Sessions removed (revoked)", &stats::removals},
  };
  for (const field& f : fields) {
    metrics.add_counter_fn(f.name, f.help, "",
                           [&c, m = f.member] { return static_cast<double>(c.total_stats().*m); });
  }
  metrics.add_gauge_fn("tlsfront_session_cache_entries", "Live sessions in the session-ID cache",
                       "", [&c] { return static_cast<double>(c.entries_in_use()); });
  metrics.add_gauge_fn("tlsfront_session_cache_capacity", "Slots in the session-ID cache", "",
                       [&c] { return static_cast<double>(c.slot_count()); });
  metrics.add_gauge_fn("tlsfront_session_cache_memory_bytes",
                       "Memory allocated for the session-ID cache", "",
                       [&c] { return static_cast<double>(c.memory_bytes()); });
}

}  // namespace tlsfront::cache
