// log/rate_limit.h — keeps data-plane warnings from flooding the error log: a rate_limiter lets
// at most `burst` messages through per `interval`; the ones after are dropped and counted, and
// the next message let through says how many were dropped before it ("... (suppressed K similar
// messages)"). One limiter per call site (a function-local static) or per key (e.g. one per
// listener, held next to what it is about); limited() logs through one.
//
// Thread-safety: allow() may be called from any number of threads at once; it takes no lock
// (atomics only). At a window boundary, threads racing on it may each let one extra message
// through: the bound is `burst` per interval plus at most one per racing thread.
// Failure: none; a dropped message is only counted.
#pragma once

#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

namespace tlsfront::log {

class rate_limiter {
 public:
  using clock = std::chrono::steady_clock;

  // `burst` messages at most per `interval` (burst 0 means 1).
  explicit rate_limiter(std::uint32_t burst = 5,
                        clock::duration interval = std::chrono::seconds(10)) noexcept;
  rate_limiter(const rate_limiter&) = delete;
  rate_limiter& operator=(const rate_limiter&) = delete;

  // True: log the message now; `suppressed` is then the number of messages dropped since the
  // last one let through (0 if none). False: drop it (it is counted).
  bool allow(std::uint64_t& suppressed, clock::time_point now = clock::now()) noexcept;

 private:
  const std::uint32_t burst_;
  const std::int64_t interval_ns_;
  // All relaxed: the limiter publishes no data; each field is a count or a time on its own,
  // and a message let through one too many at a window boundary is acceptable (see above).
  std::atomic<std::int64_t> window_start_ns_;
  std::atomic<std::uint64_t> in_window_{0};  // messages tried in this window (64 bits: no wrap)
  std::atomic<std::uint64_t> dropped_{0};    // dropped since the last message let through
};

// Logs `format` at `level` through `limiter`: dropped while over the limit, else written with
// " (suppressed K similar messages)" appended when K > 0 were dropped before it.
template <typename... Args>
void limited(rate_limiter& limiter, spdlog::level::level_enum level,
             spdlog::format_string_t<Args...> format, Args&&... args) {
  if (!spdlog::should_log(level)) {
    return;
  }
  std::uint64_t suppressed = 0;
  if (!limiter.allow(suppressed)) {
    return;
  }
  std::string text = fmt::format(format, std::forward<Args>(args)...);
  if (suppressed > 0) {
    spdlog::log(level, "{} (suppressed {} similar messages)", text, suppressed);
  } else {
    spdlog::log(level, "{}", text);
  }
}

}  // namespace tlsfront::log
