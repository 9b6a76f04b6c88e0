// Concurrency: readers and writers on overlapping keys; every value carries its key and a
// checksum, so a torn or misdelivered copy is detected. Parameterised over threads and value
// sizes; runs under the tsan preset in CI (scripts/test).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/session_cache.h"

namespace tlsfront::cache {
namespace {

std::uint64_t fnv(const std::uint8_t* p, std::size_t n) {
  std::uint64_t h = 14695981039346656037ull;
  for (std::size_t i = 0; i < n; ++i) {
    h = (h ^ p[i]) * 1099511628211ull;
  }
  return h;
}

// Value: [key:4][writer:4][serial:8][filler...][fnv of everything before:8]
std::string make_value(std::uint32_t key, std::uint32_t writer, std::uint64_t serial,
                       std::size_t size) {
  std::string v(size, '\0');
  std::memcpy(v.data(), &key, 4);
  std::memcpy(v.data() + 4, &writer, 4);
  std::memcpy(v.data() + 8, &serial, 8);
  for (std::size_t i = 16; i + 8 < size; ++i) {
    v[i] = static_cast<char>((serial + i) * 31);
  }
  std::uint64_t h = fnv(reinterpret_cast<const std::uint8_t*>(v.data()), size - 8);
  std::memcpy(v.data() + size - 8, &h, 8);
  return v;
}

std::string key_id(std::uint32_t key) {
  std::string id(32, 'k');
  std::memcpy(id.data(), &key, 4);
  return id;
}

struct params {
  int threads;
  std::size_t value_size;
};

class SessionCacheStress : public ::testing::TestWithParam<params> {};

TEST_P(SessionCacheStress, NoTornReadsNoLostInvariants) {
  const params p = GetParam();
  core::manual_clock clock;
  // Small on purpose: 64 keys over 8 buckets (64 slots) keeps writers and readers colliding.
  session_cache cache({64, 2, 256}, clock);
  const std::uint32_t keys = 96;
  const int ops = 40000;
  std::atomic<std::uint64_t> torn{0}, wrong_key{0}, hits{0}, bad_len{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < p.threads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t) * 7919u + 1);
      std::array<std::uint8_t, 4096> buf;
      std::uint64_t serial = 0;
      for (int i = 0; i < ops; ++i) {
        std::uint32_t key = rng() % keys;
        std::uint32_t op = rng() % 10;
        if (op < 3) {
          std::string v = make_value(key, static_cast<std::uint32_t>(t), ++serial, p.value_size);
          cache.insert(7, key_id(key), v, clock.now_s() + 300);
        } else if (op == 3 && t == 0 && i % 97 == 0) {
          cache.remove(7, key_id(key));
        } else {
          std::size_t n = cache.lookup(7, key_id(key), buf.data(), buf.size());
          if (n == 0) {
            continue;
          }
          hits.fetch_add(1, std::memory_order_relaxed);
          if (n != p.value_size) {
            bad_len.fetch_add(1, std::memory_order_relaxed);
            continue;
          }
          std::uint64_t stored;
          std::memcpy(&stored, buf.data() + n - 8, 8);
          if (stored != fnv(buf.data(), n - 8)) {
            torn.fetch_add(1, std::memory_order_relaxed);
          }
          std::uint32_t got_key;
          std::memcpy(&got_key, buf.data(), 4);
          if (got_key != key) {
            wrong_key.fetch_add(1, std::memory_order_relaxed);
          }
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_EQ(wrong_key.load(), 0u);
  EXPECT_EQ(bad_len.load(), 0u);
  EXPECT_GT(hits.load(), 0u);
  auto st = cache.total_stats();
  EXPECT_EQ(st.hits, hits.load());
  EXPECT_LE(cache.entries_in_use(), cache.slot_count());
  // Quiescent now: every key present reads back whole.
  std::array<std::uint8_t, 4096> buf;
  for (std::uint32_t key = 0; key < keys; ++key) {
    std::size_t n = cache.lookup(7, key_id(key), buf.data(), buf.size());
    if (n != 0) {
      std::uint64_t stored;
      std::memcpy(&stored, buf.data() + n - 8, 8);
      EXPECT_EQ(stored, fnv(buf.data(), n - 8));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ThreadsAndSizes, SessionCacheStress,
                         ::testing::Values(params{2, 24}, params{2, 256}, params{4, 24},
                                           params{4, 160}, params{8, 256}),
                         [](const auto& param_info) {
                           return "t" + std::to_string(param_info.param.threads) + "_b" +
                                  std::to_string(param_info.param.value_size);
                         });

}  // namespace
}  // namespace tlsfront::cache
