// tests/support/ticket_ring_clock.h — a ticket key ring's tests' view of it under a manual
// clock: the role of a key now, the key that seals now, a key looked up by name. Header-only;
// the ring's own thread rules apply (these read view(), the handshake path's snapshot).
#pragma once

#include <chrono>
#include <memory>

#include "core/clock.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::test {

struct ticket_ring_clock {
  core::manual_clock clock{1'700'000'000'000};
  std::int64_t t0 = clock.now_s();
  void advance(std::chrono::seconds s) { clock.advance(s); }
  tls::key_role role(tls::ticket_key_ring& r, const std::shared_ptr<const tls::ticket_key>& k) {
    auto s = r.view();
    return tls::ticket_key_ring::role_of(*s, *k, clock.now_s());
  }
  std::shared_ptr<const tls::ticket_key> current(tls::ticket_key_ring& r) {
    return tls::ticket_key_ring::current(*r.view(), clock.now_s());
  }
  std::shared_ptr<const tls::ticket_key> find(tls::ticket_key_ring& r, const tls::ticket_key& k) {
    return tls::ticket_key_ring::find(*r.view(), k.name.data());
  }
};

}  // namespace tlsfront::test
