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
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/metrics.h"
#include "proxy/options.h"

namespace tlsfront::proxy {

namespace asio = boost::asio;

// The health of one server of one pool, by name: it outlives reloads (a pool rebuilt by a
// reload finds its servers as they were), and its metrics are registered once.
// Relaxed atomics: verdicts and counts that order nothing else; a stale read costs one extra or
// one skipped attempt.
struct backend_health {
  std::atomic<bool> up{true};                  // the active checks' verdict (true without checks)
  std::atomic<int> fails{0};                   // passive failures in a row
  std::atomic<std::int64_t> ejected_until{0};  // steady-clock ms
  core::counter* checks_ok = nullptr;
  core::counter* checks_failed = nullptr;
  core::counter* ejections = nullptr;
  bool usable(std::int64_t now_ms) const {
    return up.load(std::memory_order_relaxed) &&
           ejected_until.load(std::memory_order_relaxed) <= now_ms;
  }
};

// Every backend_health the process has, keyed by pool and server name. Thread-safety: get() is
// called while building a snapshot (control thread) under the registry's mutex.
class health_registry {
 public:
  explicit health_registry(core::metrics_registry& metrics) : metrics_(metrics) {}
  std::shared_ptr<backend_health> get(const std::string& pool, const std::string& server);

 private:
  core::metrics_registry& metrics_;
  std::mutex mu_;
  std::map<std::string, std::shared_ptr<backend_health>> by_name_;
};

struct backend_server {
  std::string name;  // "host:port" as configured
  std::string host;  // as configured (the default Host of HTTP health checks)
  asio::ip::tcp::endpoint endpoint;
  std::atomic<int> active{0};  // requests in flight on it, all workers
  std::shared_ptr<backend_health> health;
};

class backend_pool {
 public:
  // Resolves every server (names once, at start). On failure returns nullptr and sets `error`.
  static std::unique_ptr<backend_pool> create(const pool_options& opts,
                                              core::metrics_registry& metrics,
                                              health_registry& health, std::string& error);

  const pool_options& options() const { return opts_; }
  std::size_t size() const { return servers_.size(); }
  backend_server& server(std::size_t i) { return *servers_[i]; }

  // Picks a server by the pool's policy among the healthy ones (active checks up, not ejected)
  // not in `tried` (bit i = server i already tried for this request). -1 if none is.
  int pick(std::uint64_t tried);
  // Passive health: a failed attempt (refused, unreachable, timed out, broken before a response
  // head) and a response head received. max_fails failures in a row eject for the cool-down.
  void note_failure(std::size_t i);
  void note_success(std::size_t i);
  // Servers usable now.
  std::size_t servers_up() const;

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
  idle_cache(std::size_t servers, std::size_t max_idle, std::chrono::milliseconds idle_timeout);

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
  // Per server, oldest first; used as a stack at the back. Reserved up front (up to max_idle), so
  // returning a connection to the cache allocates nothing.
  std::vector<std::vector<entry>> idle_;
  std::size_t max_idle_;
  std::chrono::milliseconds idle_timeout_;
};

}  // namespace tlsfront::proxy
