#include "tls/ticket_metrics.h"

#include <string>

namespace tlsfront::tls {

void register_ticket_metrics(const ticket_key_ring& ring, ticket_metrics& m,
                             core::metrics_registry& metrics) {
  m.issued = &metrics.add_counter("tlsfront_tickets_issued_total", "Session tickets sealed");
  const char* roles[3] = {"next", "current", "previous"};
  for (int r = 0; r < 3; ++r) {
    m.opened[r] = &metrics.add_counter("tlsfront_tickets_opened_total",
                                       "Tickets that resumed a session, by the role of their key",
                                       std::string("role=\"") + roles[r] + "\"");
  }
  const char* versions[2] = {"1.2", "1.3"};
  for (int v = 0; v < 2; ++v) {
    m.renewed[v] = &metrics.add_counter(
        "tlsfront_tickets_renewed_total",
        "Resumptions with a ticket under a no longer current key whose session got a ticket "
        "under the current key (TLS 1.2: the ticket re-sealed; TLS 1.3: the new tickets)",
        std::string("version=\"") + versions[v] + "\"");
  }
  m.unknown_key = &metrics.add_counter("tlsfront_tickets_unknown_key_total",
                                       "Tickets under a key the ring does not hold (or dropped)");
  m.rejected = &metrics.add_counter(
      "tlsfront_tickets_rejected_total",
      "Tickets under a known key that did not resume: corrupt, tampered, expired or other vhost");
  m.malformed = &metrics.add_counter(
      "tlsfront_tickets_malformed_total",
      "Tickets offered but too short or malformed for their key to be looked up");
  metrics.add_gauge_fn(
      "tlsfront_ticket_keys",
      "Ticket keys held that can still seal or open tickets (next, current, previous)", "",
      [&ring] { return static_cast<double>(ring.list().size()); });
  metrics.add_gauge_fn("tlsfront_ticket_current_key_age_seconds",
                       "Seconds since the current ticket key started encrypting", "", [&ring] {
                         auto s = ring.latest();
                         std::int64_t now = ring.clock().now_s();
                         auto k = ticket_key_ring::current(*s, now);
                         return k ? static_cast<double>(now - k->not_before) : -1.0;
                       });
}

}  // namespace tlsfront::tls
