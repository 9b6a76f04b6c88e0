#include "proxy/session_revocation.h"

#include <spdlog/spdlog.h>

#include <new>
#include <random>
#include <string>

namespace tlsfront::proxy {
namespace {

cache::handle_policy policy_of(const revocation_options& o) {
  cache::handle_policy p;
  p.max_age_gens =
      static_cast<std::uint32_t>((o.handle_max_age.count() + p.gen_seconds - 1) / p.gen_seconds);
  return p;
}

std::uint64_t random_seed() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

}  // namespace

session_revocation::session_revocation(const revocation_options& o, const core::clock& clock,
                                       core::metrics_registry* metrics)
    : set_(o.capacity, policy_of(o), random_seed()), guard_(set_, clock, metrics) {
  if (metrics == nullptr) {
    return;
  }
  metrics->add_gauge_fn("tlsfront_revoked_handles",
                        "Revoked session handles held (that something could still resume with)", "",
                        [this] { return static_cast<double>(set_.live(guard_.now_generation())); });
  metrics->add_gauge_fn("tlsfront_revoked_handles_capacity",
                        "Revoked session handles the set holds at most ([revocation] capacity)", "",
                        [this] { return static_cast<double>(set_.capacity()); });
  metrics->add_counter_fn("tlsfront_revocation_floor_raises_total",
                          "Times a full revoked set refused the oldest generations wholesale "
                          "(fail closed) to make room",
                          "", [this] { return static_cast<double>(set_.floor_raises()); });
  metrics->add_gauge_fn("tlsfront_revocation_floor_generation",
                        "Handles of a generation below this are refused (minutes since "
                        "2025-01-01 UTC; 0: none)",
                        "", [this] { return static_cast<double>(set_.floor()); });
  static constexpr const char* sources[] = {"backend", "admin", "purge"};
  for (int s = 0; s < 3; ++s) {
    revocations_[s] = &metrics->add_counter(
        "tlsfront_revocations_total",
        "Session handles revoked on this instance, by who asked: a backend's logout header, "
        "the admin API, a purge",
        std::string("source=\"") + sources[s] + "\"");
  }
}

void session_revocation::revoke(std::uint64_t handle, revocation_source source) noexcept {
  if (handle == 0) {
    return;
  }
  guard_.revoke(handle);
  count(source);
  if (fleet_ != nullptr) {
    try {
      fleet_->revoke_handle(handle);
    } catch (const std::bad_alloc&) {
      spdlog::error("session handle revocation not sent to the fleet: out of memory");
    }
  }
}

void session_revocation::count(revocation_source source) noexcept {
  if (core::counter* c = revocations_[static_cast<int>(source)]) {
    c->inc();
  }
}

}  // namespace tlsfront::proxy
