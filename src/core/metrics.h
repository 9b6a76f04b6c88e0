// core/metrics.h — counters, gauges and histograms that the hot path bumps without contention,
// and the registry that renders them in Prometheus text format.
//
// Thread-safety: every metric keeps one cache-line-sized slot per worker thread (the slot index
// is set once per thread with set_metrics_slot()); a worker only touches its own slot, with a
// relaxed fetch_add, so there is no shared cache line on the hot path. Threads without a slot
// (main, admin) share slot 0, still correct because the add is atomic. Readers sum all slots;
// a sum may be a few increments stale, never torn.
// Ownership: the registry owns every metric; references it hands out live as long as it does.
// Registration (creating metrics) is control-plane work guarded by a mutex; incrementing is not.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace tlsfront::core {

inline constexpr unsigned max_metric_slots = 64;  // slot 0 shared, 1..63 one per worker

// Sets the calling thread's slot (1 + worker index, wrapped into 1..max_metric_slots-1).
void set_metrics_slot(unsigned worker_index) noexcept;
unsigned metrics_slot() noexcept;

class counter {
 public:
  void inc(std::uint64_t n = 1) noexcept {
    // Relaxed: counters order nothing; readers want an eventually-consistent sum.
    slots_[metrics_slot()].v.fetch_add(n, std::memory_order_relaxed);
  }
  std::uint64_t value() const noexcept;

 private:
  struct alignas(64) slot {
    std::atomic<std::uint64_t> v{0};
  };
  std::array<slot, max_metric_slots> slots_{};
};

// Up/down value (open connections); per-thread slots as for counter, summed as signed.
class gauge {
 public:
  void add(std::int64_t n) noexcept {
    // Relaxed: as for counter.
    slots_[metrics_slot()].v.fetch_add(n, std::memory_order_relaxed);
  }
  void inc() noexcept { add(1); }
  void dec() noexcept { add(-1); }
  std::int64_t value() const noexcept;

 private:
  struct alignas(64) slot {
    std::atomic<std::int64_t> v{0};
  };
  std::array<slot, max_metric_slots> slots_{};
};

// Fixed upper bounds (in microseconds by convention of the caller), cumulative on render.
class histogram {
 public:
  explicit histogram(std::vector<double> bounds);
  void observe(double v) noexcept;
  struct snapshot {
    std::vector<std::uint64_t> buckets;  // per bound, non-cumulative, plus +Inf last
    std::uint64_t count = 0;
    double sum = 0;
  };
  snapshot read() const;
  const std::vector<double>& bounds() const noexcept { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::size_t width_;  // bounds_.size() + 1 (for +Inf) + 1 (sum, as fixed-point 1/1000)
  std::unique_ptr<std::atomic<std::uint64_t>[]> cells_;  // max_metric_slots * width_, slot-major
};

class metrics_registry {
 public:
  // `labels` is the Prometheus label set without braces, e.g. `version="1.3",resumed="ticket"`.
  // Asking twice for the same name and labels returns the same metric.
  counter& add_counter(const std::string& name, const std::string& help,
                       const std::string& labels = "");
  gauge& add_gauge(const std::string& name, const std::string& help,
                   const std::string& labels = "");
  histogram& add_histogram(const std::string& name, const std::string& help,
                           std::vector<double> bounds, const std::string& labels = "");

  // A value computed when rendered (sums kept elsewhere, e.g. the session cache's per-shard
  // counters). `fn` runs on the admin thread and must be thread-safe.
  void add_counter_fn(const std::string& name, const std::string& help, const std::string& labels,
                      std::function<double()> fn);
  void add_gauge_fn(const std::string& name, const std::string& help, const std::string& labels,
                    std::function<double()> fn);
  // Series whose label sets are known only when rendered (one per Redis Cluster node, say):
  // `fn` returns (labels, value) pairs; same thread-safety as above.
  using labeled_values = std::vector<std::pair<std::string, double>>;
  void add_counter_set_fn(const std::string& name, const std::string& help,
                          std::function<labeled_values()> fn);
  void add_gauge_set_fn(const std::string& name, const std::string& help,
                        std::function<labeled_values()> fn);

  // Prometheus text exposition format 0.0.4, families in registration order.
  std::string render() const;

 private:
  enum class kind { counter, gauge, histogram };
  struct series {
    std::string labels;
    counter* c = nullptr;
    gauge* g = nullptr;
    histogram* h = nullptr;
    std::function<double()> fn;
    std::function<labeled_values()> set_fn;
  };
  struct family {
    std::string name, help;
    kind k;
    std::vector<series> members;
  };
  family& family_for(const std::string& name, const std::string& help, kind k);
  series* find(family& f, const std::string& labels);

  mutable std::mutex mu_;  // registration and render only; never taken on the hot path
  std::deque<family> families_;
  std::deque<counter> counters_;
  std::deque<gauge> gauges_;
  std::deque<histogram> histograms_;
};

}  // namespace tlsfront::core
