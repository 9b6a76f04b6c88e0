#include "core/metrics.h"

#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace tlsfront::core {
namespace {
thread_local unsigned this_thread_slot = 0;

std::string format_double(double v) {
  if (std::isinf(v)) {
    return v > 0 ? "+Inf" : "-Inf";
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string series_name(const std::string& name, const std::string& labels,
                        const std::string& extra = "") {
  std::string all = labels;
  if (!extra.empty()) {
    all = all.empty() ? extra : all + "," + extra;
  }
  return all.empty() ? name : name + "{" + all + "}";
}
}  // namespace

void set_metrics_slot(unsigned worker_index) noexcept {
  this_thread_slot = 1 + worker_index % (max_metric_slots - 1);
}
unsigned metrics_slot() noexcept {
  return this_thread_slot;
}

std::uint64_t counter::value() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& s : slots_) {
    sum += s.v.load(std::memory_order_relaxed);  // pairs with nothing: see class comment
  }
  return sum;
}

std::int64_t gauge::value() const noexcept {
  std::int64_t sum = 0;
  for (const auto& s : slots_) {
    sum += s.v.load(std::memory_order_relaxed);
  }
  return sum;
}

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      width_(bounds_.size() + 2),
      cells_(new std::atomic<std::uint64_t>[max_metric_slots * (bounds_.size() + 2)]) {
  for (std::size_t i = 0; i < max_metric_slots * width_; ++i) {
    cells_[i].store(0, std::memory_order_relaxed);
  }
}

void histogram::observe(double v) noexcept {
  std::size_t b = 0;
  while (b < bounds_.size() && v > bounds_[b]) {
    ++b;
  }
  std::atomic<std::uint64_t>* row = &cells_[metrics_slot() * width_];
  // Relaxed: as for counter; count and sum may be momentarily inconsistent to a reader.
  row[b].fetch_add(1, std::memory_order_relaxed);
  double milli = v * 1000.0;
  row[width_ - 1].fetch_add(milli > 0 ? static_cast<std::uint64_t>(milli) : 0,
                            std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.buckets.assign(bounds_.size() + 1, 0);
  std::uint64_t sum_milli = 0;
  for (unsigned slot = 0; slot < max_metric_slots; ++slot) {
    const std::atomic<std::uint64_t>* row = &cells_[slot * width_];
    for (std::size_t b = 0; b <= bounds_.size(); ++b) {
      s.buckets[b] += row[b].load(std::memory_order_relaxed);
    }
    sum_milli += row[width_ - 1].load(std::memory_order_relaxed);
  }
  for (auto c : s.buckets) {
    s.count += c;
  }
  s.sum = static_cast<double>(sum_milli) / 1000.0;
  return s;
}

metrics_registry::family& metrics_registry::family_for(const std::string& name,
                                                       const std::string& help, kind k) {
  for (auto& f : families_) {
    if (f.name == name) {
      if (f.k != k) {
        throw std::logic_error("metric " + name + " registered with two types");
      }
      return f;
    }
  }
  families_.push_back(family{name, help, k, {}});
  return families_.back();
}

metrics_registry::series* metrics_registry::find(family& f, const std::string& labels) {
  for (auto& s : f.members) {
    if (s.labels == labels) {
      return &s;
    }
  }
  return nullptr;
}

counter& metrics_registry::add_counter(const std::string& name, const std::string& help,
                                       const std::string& labels) {
  std::lock_guard lock(mu_);
  family& f = family_for(name, help, kind::counter);
  if (series* s = find(f, labels)) {
    return *s->c;
  }
  counters_.emplace_back();
  f.members.push_back(series{labels, &counters_.back(), nullptr, nullptr, {}, {}});
  return counters_.back();
}

gauge& metrics_registry::add_gauge(const std::string& name, const std::string& help,
                                   const std::string& labels) {
  std::lock_guard lock(mu_);
  family& f = family_for(name, help, kind::gauge);
  if (series* s = find(f, labels)) {
    return *s->g;
  }
  gauges_.emplace_back();
  f.members.push_back(series{labels, nullptr, &gauges_.back(), nullptr, {}, {}});
  return gauges_.back();
}

histogram& metrics_registry::add_histogram(const std::string& name, const std::string& help,
                                           std::vector<double> bounds, const std::string& labels) {
  std::lock_guard lock(mu_);
  family& f = family_for(name, help, kind::histogram);
  if (series* s = find(f, labels)) {
    return *s->h;
  }
  histograms_.emplace_back(std::move(bounds));
  f.members.push_back(series{labels, nullptr, nullptr, &histograms_.back(), {}, {}});
  return histograms_.back();
}

void metrics_registry::add_counter_fn(const std::string& name, const std::string& help,
                                      const std::string& labels, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  family& f = family_for(name, help, kind::counter);
  f.members.push_back(series{labels, nullptr, nullptr, nullptr, std::move(fn), {}});
}

void metrics_registry::add_gauge_fn(const std::string& name, const std::string& help,
                                    const std::string& labels, std::function<double()> fn) {
  std::lock_guard lock(mu_);
  family& f = family_for(name, help, kind::gauge);
  f.members.push_back(series{labels, nullptr, nullptr, nullptr, std::move(fn), {}});
}

void metrics_registry::add_counter_set_fn(const std::string& name, const std::string& help,
                                          std::function<labeled_values()> fn) {
  std::lock_guard lock(mu_);
  family& f = family_for(name, help, kind::counter);
  f.members.push_back(series{"", nullptr, nullptr, nullptr, {}, std::move(fn)});
}

void metrics_registry::add_gauge_set_fn(const std::string& name, const std::string& help,
                                        std::function<labeled_values()> fn) {
  std::lock_guard lock(mu_);
  family& f = family_for(name, help, kind::gauge);
  f.members.push_back(series{"", nullptr, nullptr, nullptr, {}, std::move(fn)});
}

std::string metrics_registry::render() const {
  std::lock_guard lock(mu_);
  std::string out;
  out.reserve(8192);
  for (const auto& f : families_) {
    out += "# HELP " + f.name + " " + f.help + "\n";
    out += "# TYPE " + f.name + " ";
    out += f.k == kind::counter ? "counter\n" : f.k == kind::gauge ? "gauge\n" : "histogram\n";
    for (const auto& s : f.members) {
      if (s.set_fn) {
        for (const auto& [labels, v] : s.set_fn()) {
          out += series_name(f.name, labels) + " " + format_double(v) + "\n";
        }
      } else if (s.fn) {
        out += series_name(f.name, s.labels) + " " + format_double(s.fn()) + "\n";
      } else if (s.c) {
        out += series_name(f.name, s.labels) + " " + std::to_string(s.c->value()) + "\n";
      } else if (s.g) {
        out += series_name(f.name, s.labels) + " " + std::to_string(s.g->value()) + "\n";
      } else if (s.h) {
        histogram::snapshot snap = s.h->read();
        std::uint64_t cumulative = 0;
        const auto& bounds = s.h->bounds();
        for (std::size_t b = 0; b <= bounds.size(); ++b) {
          cumulative += snap.buckets[b];
          std::string le = b < bounds.size() ? format_double(bounds[b]) : "+Inf";
          out += series_name(f.name + "_bucket", s.labels, "le=\"" + le + "\"") + " " +
                 std::to_string(cumulative) + "\n";
        }
        out += series_name(f.name + "_sum", s.labels) + " " + format_double(snap.sum) + "\n";
        out += series_name(f.name + "_count", s.labels) + " " + std::to_string(snap.count) + "\n";
      }
    }
  }
  return out;
}

}  // namespace tlsfront::core
