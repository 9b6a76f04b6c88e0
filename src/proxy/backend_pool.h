// proxy/backend_pool.h — backend servers of one pool: balancing, cool-down after refused
// connections, and a per-worker-thread cache of idle keep-alive connections.
//
// Thread-safety: backend_pool (shared by all workers) holds only atomics that are read and
// updated without locks (active counts, cool-down deadlines, the round-robin cursor; relaxed,
// since they are hints that order nothing else). idle_cache is owned by one worker thread and
// never touched by another.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "proxy/options.h"

namespace tlsfront::proxy {

namespace asio = boost::asio;

struct backend_server {
  std::string name;  // "host:port" as configured
  asio::ip::tcp::endpoint endpoint;
  std::atomic<int> active{0};               // requests in flight on it, all workers
  std::atomic<std::int64_t> down_until{0};  // steady-clock ms; refused → skipped until then
};

class backend_pool {
 public:
  // Resolves every server (names once, at start). On failure returns nullptr and sets `error`.
  static std::unique_ptr<backend_pool> create(const pool_options& opts,
                                              core::metrics_registry& metrics,
                                              std::string& error);

  const pool_options& options() const { return opts_; }
  std::size_t size() const { return servers_.size(); }
  backend_server& server(std::size_t i) { return *servers_[i]; }

  // Picks a server by the pool's policy among those not cooling down and not in `tried`
  // (bit i = server i already tried for this request). -1 if none is available.
  int pick(std::uint64_t tried);
  // The server refused or timed out a connection: skip it for the cool-down.
  void mark_down(std::size_t i);

  struct counters {
    core::counter* connects;        // new backend connections
    core::counter* connect_errors;  // refused / unreachable / timed out
    core::counter* reused;          // requests sent on a pooled connection
    core::counter* retries;
  };
  const counters& stats() const { return stats_; }
  // Requests by response status class (index 1..5) on this pool.
  core::counter& requests(int status_class) { return *requests_[status_class]; }

 private:
  backend_pool() = default;
  pool_options opts_;
  std::vector<std::unique_ptr<backend_server>> servers_;
  std::atomic<unsigned> cursor_{0};
  counters stats_{};
  core::counter* requests_[6] = {};
};

// One worker's idle keep-alive connections, per server of one pool.
class idle_cache {
 public:
  idle_cache(std::size_t servers, std::size_t max_idle, std::chrono::milliseconds idle_timeout)
      : idle_(servers), max_idle_(max_idle), idle_timeout_(idle_timeout) {}

  // A live idle connection to server i, or an empty optional. Connections that went stale or
  // that the backend closed (checked with a non-blocking peek) are dropped on the way.
  bool take(std::size_t i, asio::ip::tcp::socket& out);
  // Keeps a connection that finished a response cleanly (closes it if the cache is full).
  void put(std::size_t i, asio::ip::tcp::socket s);
  // Closes connections idle longer than the idle timeout. Called periodically.
  void sweep();
  void clear();

 private:
  struct entry {
    asio::ip::tcp::socket socket;
    std::chrono::steady_clock::time_point since;
  };
  std::vector<std::deque<entry>> idle_;
  std::size_t max_idle_;
  std::chrono::milliseconds idle_timeout_;
};

}  // namespace tlsfront::proxy
