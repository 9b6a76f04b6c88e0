// Request and connection totals of tlsfront-echo-backend, kept per worker thread and summed when
// /__stats is served.
//
// Thread-safety: each worker_stats has exactly one writer (its worker thread) and any number of
// readers. Counters are relaxed atomics: a reader needs no ordering with other memory, only an
// untorn value; a test that reads /__stats after receiving a response is ordered after the
// increment by the network round trip (the increment happens before the response is written).
// Ownership: stats_registry owns all workers' counters and outlives every connection.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace tlsfront::echo_backend {

struct alignas(64) worker_stats {
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> connections{0};

  // Single writer, so load+store is enough (no locked read-modify-write on the hot path).
  void count_request() noexcept {
    requests.store(requests.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void count_connection() noexcept {
    connections.store(connections.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
};

class stats_registry {
 public:
  explicit stats_registry(std::size_t workers)
      : workers_(std::make_unique<worker_stats[]>(workers)), count_(workers) {}

  worker_stats& worker(std::size_t index) noexcept { return workers_[index]; }

  std::uint64_t total_requests() const noexcept {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      sum += workers_[i].requests.load(std::memory_order_relaxed);
    }
    return sum;
  }
  std::uint64_t total_connections() const noexcept {
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < count_; ++i) {
      sum += workers_[i].connections.load(std::memory_order_relaxed);
    }
    return sum;
  }

 private:
  std::unique_ptr<worker_stats[]> workers_;
  std::size_t count_;
};

}  // namespace tlsfront::echo_backend
