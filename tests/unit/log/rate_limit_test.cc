#include "log/rate_limit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace tlsfront::log {
namespace {

using namespace std::chrono_literals;
using clock = rate_limiter::clock;

TEST(RateLimiter, LetsTheBurstThroughThenDropsAndReportsTheCount) {
  rate_limiter l(3, 1s);
  const clock::time_point t0 = clock::now();
  std::uint64_t suppressed = 99;
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(l.allow(suppressed, t0 + i * 1ms)) << i;
    EXPECT_EQ(suppressed, 0u);
  }
  for (int i = 0; i < 10; ++i) {
    EXPECT_FALSE(l.allow(suppressed, t0 + 500ms));
  }
  // Next window: the first message carries the count of those dropped before it, once.
  EXPECT_TRUE(l.allow(suppressed, t0 + 1s));
  EXPECT_EQ(suppressed, 10u);
  EXPECT_TRUE(l.allow(suppressed, t0 + 1s + 1ms));
  EXPECT_EQ(suppressed, 0u);
}

TEST(RateLimiter, ALongFloodLetsBurstPerIntervalThrough) {
  rate_limiter l(2, 100ms);
  const clock::time_point t0 = clock::now();
  int allowed = 0;
  std::uint64_t reported = 0;
  // 10 000 messages over one second (10 windows), one every 100 µs.
  for (int i = 0; i < 10000; ++i) {
    std::uint64_t s = 0;
    if (l.allow(s, t0 + i * 100us)) {
      ++allowed;
      reported += s;
    }
  }
  // Ten windows of 100 ms (eleven when the first one, opened at construction, ends early).
  EXPECT_GE(allowed, 20);
  EXPECT_LE(allowed, 22);
  // Every dropped message was reported on a later line, except those after the last one.
  EXPECT_LE(reported, 10000u - 20u);
  EXPECT_GE(reported, 10000u - 22u - 1000u);
}

TEST(RateLimiter, ZeroBurstMeansOne) {
  rate_limiter l(0, 1s);
  const clock::time_point t0 = clock::now();
  std::uint64_t s = 0;
  EXPECT_TRUE(l.allow(s, t0));
  EXPECT_FALSE(l.allow(s, t0));
}

TEST(RateLimiter, QuietSourceIsNeverLimited) {
  rate_limiter l(1, 1s);
  const clock::time_point t0 = clock::now();
  std::uint64_t s = 0;
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(l.allow(s, t0 + i * 2s));
    EXPECT_EQ(s, 0u);
  }
}

class RateLimiterThreads : public ::testing::TestWithParam<int> {};

TEST_P(RateLimiterThreads, ConcurrentCallersStayWithinTheBound) {
  const int threads = GetParam();
  rate_limiter l(5, 1h);  // one window for the whole test
  std::atomic<int> allowed{0};
  std::atomic<std::uint64_t> attempts{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        std::uint64_t s = 0;
        attempts.fetch_add(1, std::memory_order_relaxed);
        if (l.allow(s)) {
          allowed.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (auto& t : ts) {
    t.join();
  }
  EXPECT_EQ(allowed.load(), 5);  // within one window the bound is exact
  std::uint64_t s = 0;
  EXPECT_FALSE(l.allow(s));
}

INSTANTIATE_TEST_SUITE_P(Threads, RateLimiterThreads, ::testing::Values(1, 2, 4, 8));

}  // namespace
}  // namespace tlsfront::log
