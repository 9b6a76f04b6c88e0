// proxy/watchdog.h — one timer per connection side that enforces a moving deadline without
// re-arming the timer on every I/O: arm() only records the new deadline; when the timer fires
// it either calls the expiry action (deadline passed) or sleeps again until the deadline.
// Thread-safety: none; lives on its connection's io_context thread.
// Ownership: the pending timer handler holds the state through a shared_ptr, so destroying the
// watchdog while a wait is pending is safe (the action is dropped first).
#pragma once

#include <boost/asio/steady_timer.hpp>
#include <chrono>
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
    state_->deadline = clock::now() + d;
    state_->fired = false;
    if (!state_->waiting) {
      start(state_);
    } else if (state_->deadline < state_->timer.expiry()) {
      state_->timer.expires_at(state_->deadline);  // wakes the pending wait, which re-arms
    }
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
  };

  static void start(const std::shared_ptr<state>& s) {
    s->waiting = true;
    s->timer.expires_at(s->deadline);
    s->timer.async_wait([s](const boost::system::error_code&) {
      s->waiting = false;
      if (!s->action || s->deadline == clock::time_point::max()) {
        return;  // destroyed or disarmed: nothing to watch
      }
      if (clock::now() >= s->deadline) {
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
