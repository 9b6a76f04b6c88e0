// cluster/cluster_router.h — a redis_client's cluster mode: the slot map of a Redis Cluster, one
// connection per master (a plain redis_client each) and the routing of every command to the
// master of its slot.
//
// The map is read with CLUSTER SLOTS from one node after another (the known masters and
// replicas first, then the seeds) until one answers with a valid map. It is read again after a
// MOVED, a CLUSTERDOWN, a lost node connection (a failover may have promoted its replica: the
// map is then read every reconnect_min doubling to one second until every master is connected
// again) and every map_refresh anyway. A MOVED moves its slot at once and sends the command again
// to the new owner; an ASK sends ASKING and the command to the importing node, leaving the map
// as it is; TRYAGAIN (keys of one slot half migrated) retries after a short pause, and so does a
// redirection to a node whose connection is still being made. At most five redirections or
// retries per command; then its caller gets the last error reply (or not_connected).
//
// Ready (the owner's on_ready hooks run) once a map was read and every master's first
// connection attempt has ended; the map is kept across failures (its nodes' connections
// reconnect on their own), so the owner never goes back to not ready.
//
// Thread-safety: none; the owner's io_context thread. A cluster_stats may be shared by the
// routers of every worker (its own mutex; touched on node events and redirects, not per command).
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cluster/cluster_slots.h"
#include "cluster/redis_asker.h"
#include "cluster/redis_client.h"

namespace tlsfront::cluster {

// What the routers of a process saw of each node, for metrics (per-node series).
class cluster_stats {
 public:
  struct node_view {
    int connections_up = 0;        // worker connections ready now
    std::uint64_t moved = 0;       // MOVED redirections to this node
    std::uint64_t ask = 0;         // ASK redirections to this node
    std::uint64_t promotions = 0;  // times a map showed it master after it was seen a replica
    bool master = false;           // in the last map read
    bool seen_replica = false;     // listed as a replica in some map
  };
  void connection(const redis_endpoint& node, int delta);
  void redirected(const redis_endpoint& to, bool ask);
  // Records the roles in a map that was just read; counts replicas seen promoted.
  void roles(const std::vector<slot_range>& map);
  void map_read() { maps_read_.fetch_add(1, std::memory_order_relaxed); }
  std::map<std::string, node_view> nodes() const;
  std::uint64_t maps_read() const { return maps_read_.load(std::memory_order_relaxed); }

 private:
  mutable std::mutex mu_;
  std::map<std::string, node_view> nodes_;
  std::atomic<std::uint64_t> maps_read_{0};
};

class cluster_router {
 public:
  using handler = redis_client::handler;

  // `opts`: cluster_nodes (the seeds), password and timeouts; `ready` runs once, when the router
  // first becomes ready. `stats` may be null.
  cluster_router(asio::io_context& ioc, redis_options opts, std::function<void()> ready,
                 std::shared_ptr<cluster_stats> stats);
  ~cluster_router();
  cluster_router(const cluster_router&) = delete;
  cluster_router& operator=(const cluster_router&) = delete;

  void start();
  bool ready() const noexcept { return ready_; }
  // As redis_client::command: `h` runs once, never inside this call.
  void command(std::vector<std::string> argv, handler h);
  // The masters of the current map; command_at() sends to one of them (SCAN).
  std::vector<redis_endpoint> masters() const;
  void command_at(const redis_endpoint& node, std::vector<std::string> argv, handler h);
  std::uint64_t redirects() const noexcept { return redirects_; }

 private:
  struct node {
    redis_endpoint ep;
    std::unique_ptr<redis_client> client;
    bool settled = false;  // its first connection attempt ended
    bool up = false;
    bool retired = false;  // no longer in the map: its client's hooks do nothing
  };
  static constexpr std::uint16_t kNoNode = 0xffff;
  static constexpr int kMaxHops = 5;

  void refresh();
  void refresh_soon();
  void schedule_refresh(std::chrono::milliseconds after);
  void apply(std::vector<slot_range> map);
  node& node_at(const redis_endpoint& ep);
  std::uint16_t index_of(const redis_endpoint& ep) const;
  void check_ready();
  bool all_up() const;
  void send(node& n, std::shared_ptr<std::vector<std::string>> argv, handler h, int hops,
            bool asking);
  void on_reply(const redis_endpoint& from, std::shared_ptr<std::vector<std::string>> argv,
                handler h, int hops, const error_code& ec, const redis_reply& r);
  void to_slot(std::uint16_t slot, std::shared_ptr<std::vector<std::string>> argv, handler h,
               int hops);
  void split(std::vector<std::string> argv, handler h);
  void fail_later(handler h, redis_errc e);
  void retire(std::unique_ptr<node> n);
  // Runs f after `delay` unless the router is gone by then.
  void after(std::chrono::milliseconds delay, std::function<void()> f);
  // A retry: f(h) after a 20 ms pause; h(shutting_down) if the router is gone by then.
  void later(handler h, std::function<void(handler)> f);

  asio::io_context& ioc_;
  redis_options opts_;
  std::function<void()> on_ready_;
  std::shared_ptr<cluster_stats> stats_;
  std::vector<std::unique_ptr<node>> nodes_;  // index: slots_'s value; kept while in a map
  std::array<std::uint16_t, kClusterSlots> slots_;
  std::vector<redis_endpoint> masters_;
  std::vector<redis_endpoint> replicas_;    // of the current map: asked after the masters
  std::optional<redis_endpoint> answered_;  // the node that gave the last map: asked first
  // Nodes out of the map, kept for command_timeout so that replies already on their way
  // (possibly redirections) still arrive; destroyed with the router at the latest.
  std::vector<std::unique_ptr<node>> retired_;
  bool have_map_ = false, ready_ = false, started_ = false;
  redis_asker asker_;
  std::optional<std::vector<slot_range>> read_;  // the accepted answer of the running round
  bool refresh_wanted_ = false;
  asio::steady_timer refresh_timer_;
  std::chrono::steady_clock::time_point refresh_at_;  // when the armed timer fires
  std::chrono::milliseconds retry_;                   // after a failed read
  std::chrono::milliseconds degraded_;                // while a master is not connected
  std::size_t any_next_ = 0;
  std::string last_error_;
  std::uint64_t redirects_ = 0;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tlsfront::cluster
