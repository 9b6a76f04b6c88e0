// proxy/watchdog.h — one timer per connection side that enforces a moving deadline without
// re-arming the timer on every I/O: arm() only records the new deadline; when the timer fires
// it either calls the expiry action (deadline passed) or sleeps again until the deadline.
// arm_progress() watches an operation's progress instead (a write to a slow reader): the action
// runs only once a progress count has not moved for the whole duration.
// Thread-safety: none; lives on its connection's io_context thread.
// Ownership: the pending timer handler holds the state through a shared_ptr, so destroying the
// watchdog while a wait is pending is safe (the action is dropped first).
#pragma once

#include <algorithm>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

namespace tlsfront::proxy {

class watchdog {
 public:
  using clock = std::chrono::steady_clock;

  // `on_expire` runs on the io_context thread when an armed deadline passes.
  watchdog(boost::asio::any_io_executor ex, std::function<void()> on_expire)
      : state_(std::make_shared<state>(ex, std::move(on_expire))) {}
  ~watchdog() {
    state_->action = nullptr;
    state_->timer.cancel();
  }
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;

  void arm(clock::duration d) {
    state_->probe = nullptr;
    state_->deadline = clock::now() + d;
    state_->fired = false;
    wake_by(state_->deadline);
  }
  // A count that grows while the watched operation advances (e.g. bytes a peer took).
  using probe_fn = std::uint64_t (*)(void* ctx) noexcept;
  // Like arm(d), but every sample of `probe(ctx)` that finds the count moved pushes the deadline
  // to d after that sample. Sampling starts d/4 after this call and repeats every d/4, so an
  // operation that ends sooner costs no probe at all; the first sample counts as progress (what
  // happened before it is unknown). So the action runs between d and d + d/4 after the last
  // progress, never sooner.
  void arm_progress(clock::duration d, probe_fn probe, void* ctx) {
    const clock::time_point now = clock::now();
    state_->probe = probe;
    state_->probe_ctx = ctx;
    state_->period = d;
    state_->step = std::max<clock::duration>(d / 4, std::chrono::milliseconds(1));
    state_->sampled = false;
    state_->next_sample = now + state_->step;
    state_->deadline = now + d;
    state_->fired = false;
    wake_by(state_->next_sample);
  }
  void disarm() { state_->deadline = clock::time_point::max(); }
  // True if the deadline passed since the last arm().
  bool fired() const { return state_->fired; }

 private:
  struct state {
    state(boost::asio::any_io_executor ex, std::function<void()> f)
        : timer(ex), action(std::move(f)) {}
    boost::asio::steady_timer timer;
    std::function<void()> action;
    clock::time_point deadline = clock::time_point::max();
    bool waiting = false;
    bool fired = false;
    // Progress mode (arm_progress): probe != nullptr.
    probe_fn probe = nullptr;
    void* probe_ctx = nullptr;
    clock::duration period{}, step{};
    clock::time_point next_sample{};
    std::uint64_t last = 0;
    bool sampled = false;  // `last` holds a sample
  };

  // The pending wait (started if there is none) wakes no later than `t`.
  void wake_by(clock::time_point t) {
    if (!state_->waiting) {
      start(state_);
    } else if (t < state_->timer.expiry()) {
      state_->timer.expires_at(t);  // wakes the pending wait, which re-arms
    }
  }

  static void sample(state& s, clock::time_point now) {
    const std::uint64_t v = s.probe(s.probe_ctx);
    if (!s.sampled || v != s.last) {
      s.deadline = std::max(s.deadline, now + s.period);
      s.last = v;
      s.sampled = true;
    }
    s.next_sample = now + s.step;
  }

  static void start(const std::shared_ptr<state>& s) {
    s->waiting = true;
    s->timer.expires_at(s->probe ? std::min(s->deadline, s->next_sample) : s->deadline);
    s->timer.async_wait([s](const boost::system::error_code&) {
      s->waiting = false;
      if (!s->action || s->deadline == clock::time_point::max()) {
        return;  // destroyed or disarmed: nothing to watch
      }
      const clock::time_point now = clock::now();
      if (s->probe && now >= s->next_sample) {
        sample(*s, now);
      }
      if (now >= s->deadline) {
        s->deadline = clock::time_point::max();
        s->fired = true;
        s->action();
        return;
      }
      start(s);  // the deadline moved later (or the wait was woken early): sleep again
    });
  }

  std::shared_ptr<state> state_;
};

}  // namespace tlsfront::proxy
