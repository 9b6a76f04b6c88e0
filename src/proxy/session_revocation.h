// proxy/session_revocation.h — the process's session-handle revocation (issue 14): the revoked
// set every resumption path checks (cache/revoked_handles.h), the guard the TLS layer asks
// (tls/session_handle.h), and the revoker the data plane and admin call (proxy/handle_revoker.h),
// with tlsfront_revocations_total{source}.
//
// Thread-safety: every member may be called from any thread (the set and guard are lock-free).
// Ownership: the server owns one for its lifetime; the guard and set live as long as it does;
// the fleet sync attached must outlive the last revoke().
// Failure: construction throws std::bad_alloc only (the set is allocated once); nothing else
// fails.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

#include "cache/revoked_handles.h"
#include "cluster/revocation.h"
#include "core/clock.h"
#include "core/metrics.h"
#include "proxy/handle_revoker.h"
#include "proxy/options.h"
#include "tls/session_handle.h"

namespace tlsfront::proxy {

class session_revocation final : public handle_revoker {
 public:
  session_revocation(const revocation_options& o, const core::clock& clock,
                     core::metrics_registry* metrics);

  // Enforced here at once; with a fleet attached, also written to Redis and published (queued
  // while Redis is unreachable). Never waits.
  void revoke(std::uint64_t handle, revocation_source source) noexcept override;
  // The fleet's side ([cluster]); set once before the workers run.
  void attach_fleet(cluster::revocation_sync* fleet) noexcept { fleet_ = fleet; }
  cluster::revocation_sync* fleet() const noexcept { return fleet_; }
  // Counts one revocation by `source` (a purge counts once).
  void count(revocation_source source) noexcept;

  tls::resumption_guard& guard() noexcept { return guard_; }
  cache::revoked_handles& set() noexcept { return set_; }

 private:
  cache::revoked_handles set_;
  tls::resumption_guard guard_;
  core::counter* revocations_[3] = {};  // by revocation_source
  cluster::revocation_sync* fleet_ = nullptr;
};

}  // namespace tlsfront::proxy
