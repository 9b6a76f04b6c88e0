// The revoked session-handle set (cache/revoked_handles.h): the order of check()'s verdicts,
// inserts, the fail-closed floor raise when both buckets of a handle are full, sweep() and
// live(), sizing; and concurrency (RevokedHandlesThreads, under the tsan preset in CI): writers
// insert while readers check, every handle is seen once its insert returned, and a handle never
// inserted is never reported revoked unless the floor rose past it.
#include "cache/revoked_handles.h"

#include <gtest/gtest.h>

#include <atomic>
#include <random>
#include <thread>
#include <tuple>
#include <vector>

namespace tlsfront::cache {
namespace {

using verdict = revoked_handles::verdict;
using insert_result = revoked_handles::insert_result;

constexpr std::uint32_t now = 1000;  // generation "now" in these tests
const handle_policy policy{60, 100};  // handles live 100 generations

TEST(RevokedHandles, VerdictsInOrder) {
  revoked_handles s(1024, policy, 7);
  const std::uint64_t h = make_handle(now, 12345);
  EXPECT_EQ(s.check(h, now), verdict::ok);
  EXPECT_EQ(s.check(0, now), verdict::invalid);
  EXPECT_EQ(s.check(make_handle(now + 1, 1), now), verdict::ok) << "one generation of skew";
  EXPECT_EQ(s.check(make_handle(now + 2, 1), now), verdict::invalid) << "from the future";
  EXPECT_EQ(s.check(make_handle(now - 100, 1), now), verdict::ok) << "exactly max_age old";
  EXPECT_EQ(s.check(make_handle(now - 101, 1), now), verdict::expired);
  EXPECT_EQ(s.insert(h, now), insert_result::inserted);
  EXPECT_EQ(s.insert(h, now), insert_result::present);
  EXPECT_TRUE(s.contains(h));
  EXPECT_EQ(s.check(h, now), verdict::revoked);
  s.raise_floor(now + 1);
  EXPECT_EQ(s.check(h, now), verdict::floor) << "the floor comes first";
  EXPECT_EQ(s.check(make_handle(now + 2, 1), now), verdict::ok)
      << "the skew allowance counts from the floor after a purge";
  s.raise_floor(now - 5);
  EXPECT_EQ(s.floor(), now + 1u) << "never lowered";
}

TEST(RevokedHandles, HandlesAlreadyRefusedAreNotStored) {
  revoked_handles s(64, policy, 7);
  s.raise_floor(now);
  EXPECT_EQ(s.insert(make_handle(now - 1, 5), now), insert_result::present);
  EXPECT_EQ(s.insert(make_handle(now - 200, 5), now + 200), insert_result::present);
  EXPECT_FALSE(s.contains(make_handle(now - 1, 5)));
  EXPECT_EQ(s.insert(0, now), insert_result::present);
  EXPECT_EQ(s.live(now), 0u);
}

TEST(RevokedHandles, SizedForAtMostHalfLoad) {
  EXPECT_EQ(revoked_handles(1, policy, 1).slots(), 16u) << "at least two buckets";
  EXPECT_EQ(revoked_handles(1000, policy, 1).slots(), 2048u);
  EXPECT_EQ(revoked_handles(1024, policy, 1).slots(), 2048u);
  EXPECT_EQ(revoked_handles(1025, policy, 1).slots(), 4096u);
  EXPECT_EQ(revoked_handles(1000, policy, 1).capacity(), 1000u);
}

TEST(RevokedHandles, AFullTableRaisesTheFloorAndForgetsNothing) {
  revoked_handles s(8, policy, 3);  // 2 buckets, 16 slots
  std::vector<std::uint64_t> revoked;
  // Older generations first, so the floor raises cut the oldest.
  for (std::uint32_t i = 0; i < 200; ++i) {
    const std::uint64_t h = make_handle(now - 50 + i / 4, i + 1);
    s.insert(h, now);
    revoked.push_back(h);
    for (std::uint64_t r : revoked) {
      ASSERT_NE(s.check(r, now), verdict::ok) << "handle " << r << " forgotten after " << i;
    }
  }
  EXPECT_GT(s.floor_raises(), 0u);
  EXPECT_GT(s.floor(), now - 50);
  EXPECT_LE(s.live(now), s.slots());
  EXPECT_EQ(s.check(make_handle(now, 999999), now), verdict::ok)
      << "a handle of the current generation that was never revoked still resumes";
}

TEST(RevokedHandles, SweepZeroesOnlyDeadSlots) {
  revoked_handles s(1024, policy, 9);
  for (std::uint32_t i = 0; i < 10; ++i) {
    s.insert(make_handle(now - 90, i + 1), now);  // expire 11 generations from now
    s.insert(make_handle(now, i + 1), now);
  }
  EXPECT_EQ(s.live(now), 20u);
  EXPECT_EQ(s.sweep(now), 20u);
  EXPECT_EQ(s.live(now + 11), 10u) << "the older ten are past max_age";
  EXPECT_EQ(s.sweep(now + 11), 10u);
  EXPECT_FALSE(s.contains(make_handle(now - 90, 1))) << "zeroed";
  EXPECT_TRUE(s.contains(make_handle(now, 1)));
  s.raise_floor(now + 1);
  EXPECT_EQ(s.sweep(now + 11), 0u);
  EXPECT_FALSE(s.contains(make_handle(now, 1)));
}

// Writers insert disjoint handles and publish how far they got; readers check that every handle
// below a published mark is refused (seen), and that handles of a set no writer touches never
// are (the floor stays put: the table is sized for them all).
class RevokedHandlesThreads
    : public ::testing::TestWithParam<std::tuple<unsigned /*writers*/, std::size_t /*capacity*/>> {};

TEST_P(RevokedHandlesThreads, InsertsAreSeenAndNothingElseIs) {
  const auto [writers, capacity] = GetParam();
  revoked_handles s(capacity, policy, 0xfeed);
  const std::size_t per_writer = capacity / writers;
  std::vector<std::atomic<std::size_t>> done(writers);
  for (auto& d : done) {
    d.store(0);
  }
  const auto handle_of = [](unsigned w, std::size_t i) {
    return make_handle(now, (std::uint64_t{w + 1} << 32) | (i + 1));
  };
  const auto never = [](std::size_t i) { return make_handle(now, (std::uint64_t{0xff} << 32) | (i + 1)); };
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> misses{0}, false_hits{0};
  std::vector<std::thread> threads;
  for (unsigned w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (std::size_t i = 0; i < per_writer; ++i) {
        s.insert(handle_of(w, i), now);
        done[w].store(i + 1, std::memory_order_release);
      }
    });
  }
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(r) + 1);
      while (!stop.load(std::memory_order_relaxed)) {
        const unsigned w = static_cast<unsigned>(rng() % writers);
        const std::size_t upto = done[w].load(std::memory_order_acquire);
        if (upto > 0 && s.check(handle_of(w, rng() % upto), now) != verdict::revoked) {
          misses.fetch_add(1);
        }
        if (s.check(never(rng() % 100000), now) != verdict::ok) {
          false_hits.fetch_add(1);
        }
      }
    });
  }
  for (unsigned w = 0; w < writers; ++w) {
    threads[w].join();
  }
  stop.store(true);
  for (std::size_t t = writers; t < threads.size(); ++t) {
    threads[t].join();
  }
  EXPECT_EQ(misses.load(), 0u);
  EXPECT_EQ(s.floor(), 0u) << "sized for every insert: no floor raise";
  EXPECT_EQ(false_hits.load(), 0u);
  EXPECT_EQ(s.live(now), per_writer * writers);
}

INSTANTIATE_TEST_SUITE_P(RevokedHandles, RevokedHandlesThreads,
                         ::testing::Combine(::testing::Values(1u, 2u, 4u),
                                            ::testing::Values(std::size_t{4096},
                                                              std::size_t{65536})));

}  // namespace
}  // namespace tlsfront::cache
