// core/clock.h — the source of time for everything that expires or rotates (sessions, ticket
// keys), so tests can move time without sleeping.
// Thread-safety: real_clock is stateless; manual_clock's reads and writes are atomic, so a test
// thread may advance it while workers read it.
#pragma once

#include <time.h>

#include <atomic>
#include <chrono>
#include <cstdint>

namespace tlsfront::core {

class clock {
 public:
  virtual ~clock() = default;
  // Wall-clock time as milliseconds since the Unix epoch.
  virtual std::int64_t now_ms() const noexcept = 0;
  // Whole seconds; may be served from a coarse (millisecond-resolution) clock, since everything
  // that asks in seconds (session expiry) needs no more.
  virtual std::int64_t now_s() const noexcept { return now_ms() / 1000; }
};

class real_clock final : public clock {
 public:
  std::int64_t now_ms() const noexcept override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // CLOCK_REALTIME_COARSE: a vDSO read of the last tick, several times cheaper than a precise
  // read; it is on the session cache's lookup path.
  std::int64_t now_s() const noexcept override {
    timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    return static_cast<std::int64_t>(ts.tv_sec);
  }
  // The process-wide instance.
  static const real_clock& instance() noexcept {
    static const real_clock c;
    return c;
  }
};

class manual_clock final : public clock {
 public:
  explicit manual_clock(std::int64_t start_ms = 1'700'000'000'000) : now_(start_ms) {}
  // Relaxed is enough: the clock orders nothing else; readers only need some recent value.
  std::int64_t now_ms() const noexcept override { return now_.load(std::memory_order_relaxed); }
  void advance(std::chrono::milliseconds d) noexcept {
    now_.fetch_add(d.count(), std::memory_order_relaxed);
  }
  void set_ms(std::int64_t ms) noexcept { now_.store(ms, std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> now_;
};

}  // namespace tlsfront::core
