#include "cache/revoked_handles.h"

#include <algorithm>
#include <bit>
#include <limits>

namespace tlsfront::cache {
namespace {

std::uint64_t splitmix64(std::uint64_t x) noexcept {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::size_t bucket_count(std::size_t capacity) {
  const std::size_t want =
      std::max<std::size_t>(2, (2 * std::max<std::size_t>(capacity, 1) + 7) / 8);
  return std::bit_ceil(want);
}

}  // namespace

revoked_handles::revoked_handles(std::size_t capacity, handle_policy policy, std::uint64_t seed)
    : capacity_(capacity),
      policy_(policy),
      seed_(seed),
      mask_(bucket_count(capacity) - 1),
      buckets_(new bucket[mask_ + 1]) {
  for (std::size_t b = 0; b <= mask_; ++b) {
    for (auto& s : buckets_[b].slot) {
      s.store(0, std::memory_order_relaxed);
    }
  }
}

revoked_handles::~revoked_handles() = default;

void revoked_handles::buckets_of(std::uint64_t h, std::size_t& b1, std::size_t& b2) const noexcept {
  const std::uint64_t x = splitmix64(h ^ seed_);
  b1 = static_cast<std::size_t>(x) & mask_;
  b2 = static_cast<std::size_t>(x >> 32) & mask_;
  if (b2 == b1) {
    b2 = b1 ^ 1;  // at least two buckets exist
  }
}

bool revoked_handles::dead(std::uint64_t v, std::uint32_t now_gen,
                           std::uint32_t floor) const noexcept {
  const std::uint32_t g = handle_generation(v);
  return g < floor || static_cast<std::uint64_t>(g) + policy_.max_age_gens < now_gen;
}

bool revoked_handles::contains(std::uint64_t h) const noexcept {
  if (h == 0) {
    return false;
  }
  std::size_t b1 = 0, b2 = 0;
  buckets_of(h, b1, b2);
  for (std::size_t b : {b1, b2}) {
    for (const auto& s : buckets_[b].slot) {
      if (s.load(std::memory_order_acquire) == h) {
        return true;
      }
    }
  }
  return false;
}

revoked_handles::verdict revoked_handles::check(std::uint64_t h,
                                                std::uint32_t now_gen) const noexcept {
  if (h == 0) {
    return verdict::invalid;
  }
  const std::uint32_t g = handle_generation(h);
  const std::uint32_t fl = floor();
  if (g < fl) {
    return verdict::floor;
  }
  if (static_cast<std::uint64_t>(g) + policy_.max_age_gens < now_gen) {
    return verdict::expired;
  }
  if (g > std::max(now_gen, fl) + 1) {
    return verdict::invalid;  // minted in the future: one generation of clock skew is allowed
  }
  return contains(h) ? verdict::revoked : verdict::ok;
}

revoked_handles::insert_result revoked_handles::insert(std::uint64_t h,
                                                       std::uint32_t now_gen) noexcept {
  if (h == 0 || contains(h)) {
    return insert_result::present;
  }
  bool raised = false;
  std::size_t b1 = 0, b2 = 0;
  buckets_of(h, b1, b2);
  // Each round claims a slot, loses one to another writer, or raises the floor past the oldest
  // live entry of the two buckets (which makes at least one slot dead); a few rounds suffice
  // unless other writers keep taking the freed slots (then the floor keeps rising: still fail
  // closed).
  for (int round = 0; round < 64; ++round) {
    const std::uint32_t fl = floor();
    if (dead(h, now_gen, fl)) {
      return raised ? insert_result::raised_floor : insert_result::present;  // refused anyway
    }
    // Two choices: the bucket with more free (empty or dead) slots takes it, which keeps
    // overflow at half load vanishingly rare.
    std::uint32_t oldest = std::numeric_limits<std::uint32_t>::max();
    int free_count[2] = {0, 0};
    int first_free[2] = {-1, -1};
    const std::size_t pick[2] = {b1, b2};
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 8; ++j) {
        const std::uint64_t v = buckets_[pick[i]].slot[j].load(std::memory_order_acquire);
        if (v == h) {
          return raised ? insert_result::raised_floor : insert_result::present;
        }
        if (v == 0 || dead(v, now_gen, fl)) {
          if (free_count[i]++ == 0) {
            first_free[i] = j;
          }
        } else {
          oldest = std::min(oldest, handle_generation(v));
        }
      }
    }
    if (free_count[0] + free_count[1] > 0) {
      const int i = free_count[1] > free_count[0] ? 1 : 0;
      auto& slot = buckets_[pick[i]].slot[first_free[i]];
      std::uint64_t v = slot.load(std::memory_order_relaxed);
      if ((v == 0 || dead(v, now_gen, fl)) &&
          slot.compare_exchange_strong(v, h, std::memory_order_release,
                                       std::memory_order_relaxed)) {
        return raised ? insert_result::raised_floor : insert_result::inserted;
      }
      continue;  // another writer took it: look again
    }
    raise_floor(oldest + 1);
    floor_raises_.fetch_add(1, std::memory_order_relaxed);
    raised = true;
  }
  // Writers kept refilling both buckets: refuse everything up to h's own generation.
  raise_floor(handle_generation(h) + 1);
  floor_raises_.fetch_add(1, std::memory_order_relaxed);
  return insert_result::raised_floor;
}

void revoked_handles::raise_floor(std::uint32_t gen) noexcept {
  std::uint32_t cur = floor_.load(std::memory_order_relaxed);
  while (cur < gen && !floor_.compare_exchange_weak(cur, gen, std::memory_order_release,
                                                    std::memory_order_relaxed)) {
  }
}

std::size_t revoked_handles::sweep(std::uint32_t now_gen) noexcept {
  std::size_t live = 0;
  const std::uint32_t fl = floor();
  for (std::size_t b = 0; b <= mask_; ++b) {
    for (auto& s : buckets_[b].slot) {
      std::uint64_t v = s.load(std::memory_order_acquire);
      if (v == 0) {
        continue;
      }
      if (dead(v, now_gen, fl)) {
        s.compare_exchange_strong(v, 0, std::memory_order_relaxed, std::memory_order_relaxed);
      } else {
        ++live;
      }
    }
  }
  return live;
}

std::size_t revoked_handles::live(std::uint32_t now_gen) const noexcept {
  std::size_t n = 0;
  const std::uint32_t fl = floor();
  for (std::size_t b = 0; b <= mask_; ++b) {
    for (const auto& s : buckets_[b].slot) {
      const std::uint64_t v = s.load(std::memory_order_relaxed);
      n += v != 0 && !dead(v, now_gen, fl);
    }
  }
  return n;
}

void revoked_handles::for_each_live(std::uint32_t now_gen,
                                    const std::function<void(std::uint64_t)>& f) const {
  const std::uint32_t fl = floor();
  for (std::size_t b = 0; b <= mask_; ++b) {
    for (const auto& s : buckets_[b].slot) {
      // Acquire pairs with insert()'s release CAS, as check() reads.
      const std::uint64_t v = s.load(std::memory_order_acquire);
      if (v != 0 && !dead(v, now_gen, fl)) {
        f(v);
      }
    }
  }
}

}  // namespace tlsfront::cache
