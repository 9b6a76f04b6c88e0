// tls/ticket_metrics.h — the session-ticket counters the ticket key callback bumps
// (tls/ticket_keys.h) and their registration with the ring's gauges (keys held, age of the
// current key), next to the counters the tls module owns.
//
// Thread-safety: register_ticket_metrics() once on the control thread before serving; the
// counters are the registry's per-thread counters, bumped on workers; the gauges read the ring
// through its control-plane read (latest()). Ownership: `ring` outlives the registry's last
// render. Never fails.
#pragma once

#include "core/metrics.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::tls {

struct ticket_metrics {
  core::counter* issued = nullptr;
  core::counter* opened[3] = {};   // by key_role: next, current, previous
  core::counter* renewed[2] = {};  // resumed under a previous key and renewed: TLS 1.2, TLS 1.3
  core::counter* unknown_key = nullptr;
  core::counter* rejected = nullptr;   // a known key but no resumption: corrupt/tampered ticket,
                                       // or a session not valid here (expired, other vhost)
  core::counter* malformed = nullptr;  // offered but too short/malformed to look up
};

// Fills `m` with the ticket counters (registered in `metrics`) and adds the ring's gauges.
void register_ticket_metrics(const ticket_key_ring& ring, ticket_metrics& m,
                             core::metrics_registry& metrics);

}  // namespace tlsfront::tls
