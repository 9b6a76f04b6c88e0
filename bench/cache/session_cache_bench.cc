// The session cache against lock-based baselines holding the same serialized sessions:
// std::mutex + std::unordered_map and std::shared_mutex + std::unordered_map. Same key set,
// same value size (a real TLS 1.2 session serializes to ~150-190 bytes; see bench/tls), same
// thread counts.
#include <benchmark/benchmark.h>

#include <array>
#include <cstring>
#include <mutex>
#include <random>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/session_cache.h"

namespace {

using tlsfront::cache::session_cache;
// 16384 live sessions (about 4 MiB of cache): a busy edge node's hot set. The ids live in one
// flat array so the benchmark's own key fetch stays cheap for every contender alike.
constexpr std::size_t key_count = 1 << 14;
constexpr std::size_t value_size = 176;
constexpr std::uint64_t context = 0x1234;

std::string id_of(std::uint64_t n) {
  std::string id(32, '\0');
  std::uint64_t x = n * 0x9e3779b97f4a7c15ull + 1;
  for (int i = 0; i < 4; ++i) {
    x ^= x >> 31;
    x *= 0xbf58476d1ce4e5b9ull;
    std::memcpy(id.data() + i * 8, &x, 8);
  }
  return id;
}

// Second half: never inserted (misses).
struct id_table {
  std::vector<std::array<char, 32>> flat;
  id_table() : flat(2 * key_count) {
    for (std::size_t i = 0; i < flat.size(); ++i) {
      std::string id = id_of(i);
      std::memcpy(flat[i].data(), id.data(), 32);
    }
  }
  std::string_view operator[](std::size_t i) const { return {flat[i].data(), 32}; }
};

const id_table& ids() {
  static const id_table t;
  return t;
}

const std::string& value() {
  static const std::string v(value_size, 'v');
  return v;
}

// --- the lock-free cache ---
// The cache is not movable; build it in place instead.
struct cache_holder {
  tlsfront::core::real_clock clock;
  session_cache c{{key_count * 2, 64, 192}, clock};
  cache_holder() {
    for (std::size_t i = 0; i < key_count; ++i) {
      c.insert(context, ids()[i], value(), clock.now_s() + 86400);
    }
  }
};
session_cache& the_cache() {
  static cache_holder h;
  return h.c;
}

template <class Op>
void run(benchmark::State& state, Op op) {
  std::mt19937_64 rng(static_cast<std::uint64_t>(state.thread_index()) * 7919 + 1);
  std::array<std::uint8_t, 4096> buf;
  for (auto _ : state) {
    op(rng, buf);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_SessionCache_Lookup_Hit(benchmark::State& state) {
  session_cache& c = the_cache();
  run(state, [&](auto& rng, auto& buf) {
    benchmark::DoNotOptimize(c.lookup(context, ids()[rng() % key_count], buf.data(), buf.size()));
  });
}

void BM_SessionCache_Lookup_Miss(benchmark::State& state) {
  session_cache& c = the_cache();
  run(state, [&](auto& rng, auto& buf) {
    benchmark::DoNotOptimize(
        c.lookup(context, ids()[key_count + rng() % key_count], buf.data(), buf.size()));
  });
}

void BM_SessionCache_Insert(benchmark::State& state) {
  session_cache& c = the_cache();
  const std::int64_t expires = tlsfront::core::real_clock::instance().now_s() + 86400;
  run(state, [&](auto& rng, auto&) {
    benchmark::DoNotOptimize(c.insert(context, ids()[rng() % key_count], value(), expires));
  });
}

void BM_SessionCache_Mixed_90_10(benchmark::State& state) {
  session_cache& c = the_cache();
  const std::int64_t expires = tlsfront::core::real_clock::instance().now_s() + 86400;
  run(state, [&](auto& rng, auto& buf) {
    std::uint64_t r = rng();
    std::string_view id = ids()[(r >> 8) % key_count];
    if (r % 10 == 0) {
      benchmark::DoNotOptimize(c.insert(context, id, value(), expires));
    } else {
      benchmark::DoNotOptimize(c.lookup(context, id, buf.data(), buf.size()));
    }
  });
}

// --- baselines: one lock around an unordered_map of the same serialized sessions ---
template <class Mutex>
struct locked_map {
  Mutex mu;
  std::unordered_map<std::string, std::string> map;
  locked_map() {
    map.reserve(key_count * 2);
    for (std::size_t i = 0; i < key_count; ++i) {
      map.emplace(key(ids()[i]), value());
    }
  }
  static std::string key(std::string_view id) {
    std::string k(8 + id.size(), '\0');
    std::memcpy(k.data(), &context, 8);
    std::memcpy(k.data() + 8, id.data(), id.size());
    return k;
  }
  std::size_t lookup(std::string_view id, std::uint8_t* out) {
    std::string k = key(id);
    if constexpr (std::is_same_v<Mutex, std::shared_mutex>) {
      std::shared_lock lock(mu);
      auto it = map.find(k);
      if (it == map.end()) {
        return 0;
      }
      std::memcpy(out, it->second.data(), it->second.size());
      return it->second.size();
    } else {
      std::lock_guard lock(mu);
      auto it = map.find(k);
      if (it == map.end()) {
        return 0;
      }
      std::memcpy(out, it->second.data(), it->second.size());
      return it->second.size();
    }
  }
  void insert(std::string_view id) {
    std::string k = key(id);
    std::lock_guard lock(mu);
    map.insert_or_assign(std::move(k), value());
  }
};

template <class Mutex>
locked_map<Mutex>& baseline() {
  static locked_map<Mutex> m;
  return m;
}

template <class Mutex>
void BM_Baseline_Lookup_Hit(benchmark::State& state) {
  auto& m = baseline<Mutex>();
  run(state, [&](auto& rng, auto& buf) {
    benchmark::DoNotOptimize(m.lookup(ids()[rng() % key_count], buf.data()));
  });
}

template <class Mutex>
void BM_Baseline_Lookup_Miss(benchmark::State& state) {
  auto& m = baseline<Mutex>();
  run(state, [&](auto& rng, auto& buf) {
    benchmark::DoNotOptimize(m.lookup(ids()[key_count + rng() % key_count], buf.data()));
  });
}

template <class Mutex>
void BM_Baseline_Insert(benchmark::State& state) {
  auto& m = baseline<Mutex>();
  run(state, [&](auto& rng, auto&) { m.insert(ids()[rng() % key_count]); });
}

template <class Mutex>
void BM_Baseline_Mixed_90_10(benchmark::State& state) {
  auto& m = baseline<Mutex>();
  run(state, [&](auto& rng, auto& buf) {
    std::uint64_t r = rng();
    std::string_view id = ids()[(r >> 8) % key_count];
    if (r % 10 == 0) {
      m.insert(id);
    } else {
      benchmark::DoNotOptimize(m.lookup(id, buf.data()));
    }
  });
}

#define TLSFRONT_THREADS ->Threads(1)->Threads(2)->Threads(4)->UseRealTime()

BENCHMARK(BM_SessionCache_Lookup_Hit) TLSFRONT_THREADS;
BENCHMARK(BM_SessionCache_Lookup_Miss) TLSFRONT_THREADS;
BENCHMARK(BM_SessionCache_Insert) TLSFRONT_THREADS;
BENCHMARK(BM_SessionCache_Mixed_90_10) TLSFRONT_THREADS;
BENCHMARK_TEMPLATE(BM_Baseline_Lookup_Hit, std::mutex) TLSFRONT_THREADS;
BENCHMARK_TEMPLATE(BM_Baseline_Lookup_Hit, std::shared_mutex) TLSFRONT_THREADS;
BENCHMARK_TEMPLATE(BM_Baseline_Lookup_Miss, std::mutex) TLSFRONT_THREADS;
BENCHMARK_TEMPLATE(BM_Baseline_Lookup_Miss, std::shared_mutex) TLSFRONT_THREADS;
BENCHMARK_TEMPLATE(BM_Baseline_Insert, std::mutex) TLSFRONT_THREADS;
BENCHMARK_TEMPLATE(BM_Baseline_Insert, std::shared_mutex) TLSFRONT_THREADS;
BENCHMARK_TEMPLATE(BM_Baseline_Mixed_90_10, std::mutex) TLSFRONT_THREADS;
BENCHMARK_TEMPLATE(BM_Baseline_Mixed_90_10, std::shared_mutex) TLSFRONT_THREADS;

}  // namespace
