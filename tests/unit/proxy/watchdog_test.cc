// proxy/watchdog.h: arm() fires once its deadline passes, disarm() stops it; arm_progress() never
// fires while the probed count keeps moving, however long that lasts, and fires once the count
// stopped moving for the whole duration (never sooner).
#include "proxy/watchdog.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>

#include "support/run_until.h"

namespace tlsfront::proxy {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

struct progress {
  std::uint64_t count = 0;
  static std::uint64_t probe(void* self) noexcept { return static_cast<progress*>(self)->count; }
};

TEST(Watchdog, ArmFiresAfterTheDeadlineAndDisarmStopsIt) {
  boost::asio::io_context ioc(1);
  int fired = 0;
  watchdog wd(ioc.get_executor(), [&] { ++fired; });
  wd.arm(50ms);
  wd.disarm();
  test::run_until(
      ioc, [] { return false; }, 200ms);
  EXPECT_EQ(fired, 0);
  const auto start = clock::now();
  wd.arm(50ms);
  ASSERT_TRUE(test::run_until(ioc, [&] { return fired == 1; }));
  EXPECT_GE(clock::now() - start, 50ms);
  EXPECT_TRUE(wd.fired());
}

TEST(Watchdog, ProgressKeepsItFromFiringForManyDurationsThenItFiresAfterOneMore) {
  boost::asio::io_context ioc(1);
  int fired = 0;
  clock::time_point fired_at{};
  watchdog wd(ioc.get_executor(), [&] {
    ++fired;
    fired_at = clock::now();
  });
  progress p;
  wd.arm_progress(200ms, &progress::probe, &p);
  // The count moves every 50 ms for 1 s: five times the duration.
  boost::asio::steady_timer tick(ioc);
  clock::time_point last_progress = clock::now();
  const clock::time_point stop = clock::now() + 1s;
  std::function<void()> step = [&] {
    tick.expires_after(50ms);
    tick.async_wait([&](const boost::system::error_code& ec) {
      if (ec || clock::now() >= stop) {
        return;
      }
      ++p.count;
      last_progress = clock::now();
      step();
    });
  };
  step();
  ASSERT_TRUE(test::run_until(
      ioc, [&] { return fired == 1; }, 10s));
  EXPECT_GE(last_progress, stop - 100ms) << "it fired while the count was moving";
  EXPECT_GE(fired_at - last_progress, 200ms) << "it fired sooner than a duration after progress";
}

TEST(Watchdog, ProgressModeWithNoProgressFiresAndArmReturnsToAPlainDeadline) {
  boost::asio::io_context ioc(1);
  int fired = 0;
  watchdog wd(ioc.get_executor(), [&] { ++fired; });
  progress p;
  const auto start = clock::now();
  wd.arm_progress(100ms, &progress::probe, &p);
  ASSERT_TRUE(test::run_until(ioc, [&] { return fired == 1; }));
  EXPECT_GE(clock::now() - start, 100ms);
  // A plain arm() afterwards ignores the probe: it fires although the count moves.
  wd.arm(100ms);
  p.count = 1000;
  ASSERT_TRUE(test::run_until(ioc, [&] { return fired == 2; }));
}

}  // namespace
}  // namespace tlsfront::proxy
