// proxy/wakeup.h — a one-waiter event for coroutines on one io_context thread: one coroutine
// waits (with an optional deadline) until another part of the same thread calls notify(). A
// notify() with nobody waiting is kept, so the next wait() returns at once; several notify()
// calls before a wait count as one. The HTTP/2 session uses one per stream (request bytes came,
// output room, the stream closed) and one for its writer (output is queued).
//
// Thread-safety: none; waiter and notifier run on the same thread.
// Ownership: owns its timer; destroying it while a wait is pending cancels the wait.
// Failure: none; a wait ends by notify() (true) or by the deadline or a cancel (false).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>

namespace tlsfront::proxy {

class wakeup {
 public:
  explicit wakeup(const boost::asio::any_io_executor& ex)
      : timer_(ex, std::chrono::steady_clock::time_point::max()) {}
  wakeup(const wakeup&) = delete;
  wakeup& operator=(const wakeup&) = delete;

  void notify() {
    if (!signaled_) {
      signaled_ = true;
      timer_.cancel();
    }
  }
  // Forgets a notify() nobody waited for (before the object serves something new).
  void reset() { signaled_ = false; }
  // True once notified (at once if notify() came since the last wait), false at `deadline`.
  boost::asio::awaitable<bool> wait(
      std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max()) {
    if (!signaled_) {
      timer_.expires_at(deadline);
      [[maybe_unused]] auto [ec] =
          co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
    }
    const bool got = signaled_;
    signaled_ = false;
    co_return got;
  }

 private:
  boost::asio::steady_timer timer_;
  bool signaled_ = false;
};

}  // namespace tlsfront::proxy
