// cache/revoked_handles.h — the set of revoked session handles (issue 14) that every resumption
// path checks before it lets a session resume, plus a generation floor below which every handle
// counts as revoked.
//
// HANDLES
// A handle is 64 bits: a 24-bit generation (the minute it was minted, counted from
// 2025-01-01 00:00 UTC) in the top bits, then 40 random bits; never 0. Every session a handshake
// creates gets a fresh one; every resumption of it, and every ticket issued on such a connection,
// inherits it (tls/session_handle.h). Its generation bounds how long anything carrying it can
// still resume: `max_age_gens` generations (handle_max_age) after it was minted, nothing does.
//
// CONTRACT
// - check() is the hot path: no lock, no allocation, at most 16 acquire loads in two cache lines.
// - Memory is allocated once, in the constructor, from `capacity`; insert() and sweep() never
//   allocate.
// - Nothing is ever forgotten early: when both buckets of a handle hold only live entries, the
//   insert raises the floor past the oldest of them (fail closed: those entries' sessions, and
//   every other session of their generation or older, are refused from then on), which frees
//   at least one slot; counted in floor_raises().
// - A slot is dead (reusable) once its handle's generation is below the floor or older than
//   max_age_gens; sweep() zeroes dead slots and returns the live count.
//
// HOW IT IS RACE-FREE
// Each bucket is one cache line of 8 std::atomic<uint64_t>; a slot's word is the whole datum
// (the handle, 0 = empty). Each handle may sit in either of two buckets chosen by a seeded hash;
// there is no probing beyond them, so a slot may be zeroed at any time without breaking a chain.
// insert() claims a slot in the emptier of the two buckets (two choices keep overflow at half
// load vanishingly rare) with a release CAS (empty or dead → h); sweep() zeroes with a CAS
// (dead → 0), never a plain store, so it cannot wipe a concurrent insert; check() uses acquire
// loads, so a thread that learnt of a revocation through any synchronising path (a promise, a
// posted handler) sees it. Two writers racing on the same handle may both insert it: that only
// wastes a slot. The floor is an atomic raised by a CAS loop (fetch-max).
//
// Thread-safety: every member may be called from any thread at once.
// Failure: none; a full table raises the floor rather than failing.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace tlsfront::cache {

// Generation arithmetic (one generation = gen_seconds, 60 in production).
inline constexpr std::int64_t handle_epoch_unix = 1735689600;  // 2025-01-01T00:00:00Z
inline constexpr unsigned handle_gen_bits = 24;
inline constexpr unsigned handle_random_bits = 40;
inline constexpr std::uint32_t handle_generation(std::uint64_t h) noexcept {
  return static_cast<std::uint32_t>(h >> handle_random_bits);
}
inline constexpr std::uint64_t make_handle(std::uint32_t gen, std::uint64_t random) noexcept {
  return (static_cast<std::uint64_t>(gen & ((1u << handle_gen_bits) - 1)) << handle_random_bits) |
         (random & ((std::uint64_t{1} << handle_random_bits) - 1));
}

struct handle_policy {
  std::uint32_t gen_seconds = 60;        // length of one generation
  std::uint32_t max_age_gens = 24 * 60;  // handle_max_age / gen_seconds (default 24 h)
  // The generation of unix time `unix_s` (0 before the epoch).
  std::uint32_t generation_at(std::int64_t unix_s) const noexcept {
    return unix_s <= handle_epoch_unix
               ? 0
               : static_cast<std::uint32_t>((unix_s - handle_epoch_unix) / gen_seconds);
  }
};

class revoked_handles {
 public:
  enum class verdict { ok, revoked, floor, expired, invalid };
  enum class insert_result { inserted, present, raised_floor };

  // Allocates every bucket: next power of two of ceil(2 * capacity / 8) buckets (load ≤ 50 %).
  // `seed` keys the bucket hash (random in production, fixed in tests).
  revoked_handles(std::size_t capacity, handle_policy policy, std::uint64_t seed);
  revoked_handles(const revoked_handles&) = delete;
  revoked_handles& operator=(const revoked_handles&) = delete;
  ~revoked_handles();

  // In order: generation below the floor → floor; older than max_age_gens → expired; more than
  // one generation past max(now_gen, floor) (clock skew allowance) → invalid; in the set →
  // revoked; else ok. h == 0 → invalid.
  verdict check(std::uint64_t h, std::uint32_t now_gen) const noexcept;
  bool contains(std::uint64_t h) const noexcept;
  // Adds `h` (any thread, lock-free). A handle that check() would already refuse for floor or
  // expiry is not stored (answers `present`).
  insert_result insert(std::uint64_t h, std::uint32_t now_gen) noexcept;
  // Every handle of a generation below `gen` is refused from now on (never lowers the floor).
  void raise_floor(std::uint32_t gen) noexcept;
  std::uint32_t floor() const noexcept { return floor_.load(std::memory_order_acquire); }
  // Zeroes dead slots; returns how many live entries remain (control thread, any time).
  std::size_t sweep(std::uint32_t now_gen) noexcept;
  // Live entries, counted without changing anything (a scan of every slot: metrics).
  std::size_t live(std::uint32_t now_gen) const noexcept;
  // Calls `f` with every live handle (the upgrade handover: daemon/handover.h).
  void for_each_live(std::uint32_t now_gen, const std::function<void(std::uint64_t)>& f) const;

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t slots() const noexcept { return (mask_ + 1) * 8; }
  std::uint64_t floor_raises() const noexcept {
    return floor_raises_.load(std::memory_order_relaxed);
  }
  const handle_policy& policy() const noexcept { return policy_; }

 private:
  struct alignas(64) bucket {
    std::atomic<std::uint64_t> slot[8];
  };
  void buckets_of(std::uint64_t h, std::size_t& b1, std::size_t& b2) const noexcept;
  bool dead(std::uint64_t v, std::uint32_t now_gen, std::uint32_t floor) const noexcept;

  std::size_t capacity_;
  handle_policy policy_;
  std::uint64_t seed_;
  std::size_t mask_;
  std::unique_ptr<bucket[]> buckets_;
  std::atomic<std::uint32_t> floor_{0};
  std::atomic<std::uint64_t> floor_raises_{0};  // relaxed: a count for metrics
};

}  // namespace tlsfront::cache
