#include "log/rate_limit.h"

namespace tlsfront::log {

rate_limiter::rate_limiter(std::uint32_t burst, clock::duration interval) noexcept
    : burst_(burst == 0 ? 1 : burst),
      interval_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(interval).count()),
      // The first window opens now.
      window_start_ns_(
          std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now().time_since_epoch())
              .count()) {}

bool rate_limiter::allow(std::uint64_t& suppressed, clock::time_point now) noexcept {
  const std::int64_t t =
      std::chrono::duration_cast<std::chrono::nanoseconds>(now.time_since_epoch()).count();
  std::int64_t start = window_start_ns_.load(std::memory_order_relaxed);
  if (t - start >= interval_ns_ &&
      window_start_ns_.compare_exchange_strong(start, t, std::memory_order_relaxed)) {
    in_window_.store(0, std::memory_order_relaxed);  // this thread opened the new window
  }
  if (in_window_.fetch_add(1, std::memory_order_relaxed) < burst_) {
    suppressed = dropped_.exchange(0, std::memory_order_relaxed);
    return true;
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

}  // namespace tlsfront::log
