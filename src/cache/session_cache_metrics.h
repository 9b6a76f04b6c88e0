// cache/session_cache_metrics.h — the session cache's metrics: its per-shard counters (hits,
// misses, inserts, evictions, expirations, oversize, torn-read retries, busy, removals) summed on
// read, and its fill and memory gauges, registered next to the counters the cache owns.
//
// Thread-safety: call once, on the control thread, before serving; the registered functions run
// on the metrics renderer's thread and read the cache's atomics (see session_cache.h).
// Ownership: `cache` must outlive `metrics`' last render. Never fails.
#pragma once

#include "cache/session_cache.h"
#include "core/metrics.h"

namespace tlsfront::cache {

void register_session_cache_metrics(const session_cache& cache, core::metrics_registry& metrics);

}  // namespace tlsfront::cache
