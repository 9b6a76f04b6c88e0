// The revocation check on the resumption path (cache/revoked_handles.h): check() of a handle that
// is not revoked (the common case) and of one that is, with the set half and completely full
// (at capacity), from 1 and 2 threads, next to one atomic acquire load as the floor of what any
// check can cost. The budget: at most 1 % of a resumed TLS 1.2 handshake (about 14-16 µs
// in bench/tls, so 140 ns).
#include <benchmark/benchmark.h>

#include <atomic>
#include <memory>
#include <random>
#include <vector>

#include "cache/revoked_handles.h"

namespace tlsfront::cache {
namespace {

constexpr std::uint32_t now = 1000;
constexpr std::size_t capacity = 262144;  // the default

// One set per fill level, shared by the benchmark's threads (built once).
revoked_handles& set_filled(int percent) {
  static std::unique_ptr<revoked_handles> sets[2];
  auto& s = sets[percent == 100 ? 1 : 0];
  if (!s) {
    s = std::make_unique<revoked_handles>(capacity, handle_policy{60, 1440}, 42);
    const std::size_t n = capacity * static_cast<std::size_t>(percent) / 100;
    for (std::size_t i = 0; i < n; ++i) {
      s->insert(make_handle(now - static_cast<std::uint32_t>(i % 1000), i + 1), now);
    }
  }
  return *s;
}

void BM_RevokedHandles_Check_Miss(benchmark::State& state) {
  revoked_handles& s = set_filled(static_cast<int>(state.range(0)));
  std::mt19937_64 rng(static_cast<std::uint64_t>(state.thread_index()) + 7);
  std::vector<std::uint64_t> probes(4096);
  for (auto& p : probes) {
    p = make_handle(now, (rng() | (std::uint64_t{1} << 39)));  // never inserted
  }
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.check(probes[i++ & 4095], now));
  }
}
BENCHMARK(BM_RevokedHandles_Check_Miss)->Arg(50)->Arg(100)->Threads(1)->Threads(2);

void BM_RevokedHandles_Check_Hit(benchmark::State& state) {
  revoked_handles& s = set_filled(static_cast<int>(state.range(0)));
  std::mt19937_64 rng(static_cast<std::uint64_t>(state.thread_index()) + 11);
  const std::size_t n = capacity * static_cast<std::size_t>(state.range(0)) / 100;
  std::vector<std::uint64_t> probes(4096);
  for (auto& p : probes) {
    const std::size_t j = rng() % (n / 2);  // the newer half: not pushed out by a floor raise
    const std::size_t k = n - 1 - j;
    p = make_handle(now - static_cast<std::uint32_t>(k % 1000), k + 1);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(s.check(probes[i++ & 4095], now));
  }
}
BENCHMARK(BM_RevokedHandles_Check_Hit)->Arg(50)->Arg(100)->Threads(1)->Threads(2);

void BM_RevokedHandles_Baseline_Load(benchmark::State& state) {
  static std::atomic<std::uint64_t> word{1};
  for (auto _ : state) {
    benchmark::DoNotOptimize(word.load(std::memory_order_acquire));
  }
}
BENCHMARK(BM_RevokedHandles_Baseline_Load)->Threads(1)->Threads(2);

}  // namespace
}  // namespace tlsfront::cache
