// proxy/server.h — the serving core: N worker threads, each with its own io_context
// (concurrency hint 1) and its own SO_REUSEPORT acceptor per listener, so a connection is
// accepted, served and closed on one thread with no locks on its path.
//
// Thread-safety: create()/start()/drain()/stop()/wait() are called from the main thread.
// Workers share only immutable state (the snapshot: TLS contexts, router, pool definitions)
// and lock-free counters. Ownership: server owns workers, snapshot and acceptors; connections
// are owned by their coroutine frames on their worker.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cluster/fleet_key_source.h"
#include "cluster/fleet_secret.h"
#include "cluster/redis_client.h"
#include "cluster/revocation.h"
#include "cluster/session_store.h"
#include "cluster/ticket_key_sync.h"
#include "core/metrics.h"
#include "log/rate_limit.h"
#include "proxy/accepted_socket.h"
#include "proxy/backend_pool.h"
#include "proxy/health_checker.h"
#include "proxy/options.h"
#include "proxy/router.h"
#include "tls/key_source.h"
#include "tls/server_context.h"

namespace tlsfront::proxy {

namespace asio = boost::asio;
class client_connection;

struct listener_runtime {
  listener_options opts;
  std::shared_ptr<tls::server_context> tls;
  asio::ip::tcp::endpoint bound;  // after bind (port 0 resolved)
  core::counter* connections = nullptr;
  core::counter* handshake_failures = nullptr;
  core::counter* handshake_timeouts = nullptr;
  core::counter* handshakes[2][3] = {};  // [TLS 1.2, 1.3][none, id, ticket]
  core::histogram* handshake_us = nullptr;
  core::counter* proxy_header_errors = nullptr;  // bad or missing PROXY headers from trusted peers
  int pool = -1;                                 // tcp mode: index of the pool in the snapshot
  // Connections refused or cut for lack of resources (server.cc, register_limit_metrics()).
  core::counter* rejected = nullptr;               // closed at accept: max_connections reached
  core::counter* accept_errors[3] = {};            // accept(2) failed: [EMFILE, ENFILE, other]
  core::counter* accept_shed = nullptr;            // accepted and closed at once: no descriptors
  core::counter* client_write_timeouts = nullptr;  // the client took nothing for too long
};

// Everything a connection reads from the configuration; immutable once built, replaced whole on
// reload. A connection keeps the snapshot it was accepted under until it closes.
struct snapshot {
  server_options opts;
  std::vector<listener_runtime> listeners;
  std::vector<std::unique_ptr<backend_pool>> pools;
  std::unique_ptr<router> routes;
  // [worker][pool]: idle keep-alive backend connections. Each worker touches only its own row
  // (hence mutable in an otherwise immutable snapshot), and only while this snapshot is the
  // worker's current one: connections finishing under an older snapshot close theirs.
  mutable std::vector<std::vector<idle_cache>> idle;
};

// One listening socket of one worker. The accept loop holds it; the worker's `slots` too, until
// a reload removes its listener.
struct acceptor_slot {
  explicit acceptor_slot(asio::io_context& ioc) : acc(ioc) {}
  asio::ip::tcp::socket acc;  // listening (proxy/accepted_socket.h)
  std::size_t listener = 0;   // index in the worker's current snapshot; set on the worker thread
  // Accept failures of this listener, all workers together: one line per interval at most.
  std::shared_ptr<log::rate_limiter> accept_log;
};

struct proxy_metrics {
  core::gauge* active = nullptr;
  core::counter* local_responses[6] = {};  // proxy-generated, by status class
  core::counter* bad_requests = nullptr;
  core::counter* backend_errors = nullptr;
  core::counter* backend_timeouts = nullptr;
};

// Member order matters: `live` and `snap` are declared before `ioc` because destroying the
// io_context destroys suspended connection coroutines, whose destructors unregister from `live`
// and whose snapshots hold sockets of this io_context (the idle caches); the acceptors are
// declared after `ioc` so they close before it goes. Everything here is used on the worker's
// thread only, once it runs (a reload posts its changes to it).
struct worker {
  explicit worker(unsigned i) : index(i), ioc(1), sweep(ioc) {}
  unsigned index;
  std::unordered_set<client_connection*> live;  // for drain
  std::shared_ptr<const snapshot> snap;         // what new connections are accepted under
  asio::io_context ioc;
  std::vector<std::shared_ptr<acceptor_slot>> slots;  // one per listener
  core::counter* accepted = nullptr;                  // connections this worker accepted
  // Released to shed connections when out of descriptors (proxy/accepted_socket.h).
  spare_descriptor spare;
  asio::steady_timer sweep;
  // The fleet store of this worker ([cluster] only): its own Redis connection, used only on
  // this thread. `l2` is declared after `redis` so it goes first.
  std::unique_ptr<cluster::redis_client> redis;
  std::unique_ptr<cluster::session_store> l2;
  // Worker 0 only: the fleet's revocation channel (a connection in subscriber mode) and the
  // ticket key list's poller (on `redis`).
  std::unique_ptr<cluster::redis_client> subscriber;
  std::unique_ptr<cluster::ticket_key_sync> key_sync;
  std::chrono::milliseconds lookup_timeout{5};
  std::thread thread;
};

class server {
 public:
  // Builds TLS contexts and pools and binds every listener on every worker. On failure returns
  // nullptr and sets `error` (one line: which listener/pool and why).
  static std::unique_ptr<server> create(const server_options& opts, core::metrics_registry& metrics,
                                        std::string& error);
  ~server();

  void start();
  // Swaps in a new configuration for new connections: TLS contexts (certificates), routes,
  // pools and limits. Listeners with the same address and port keep their sockets (nothing is
  // refused), new ones are bound, removed ones stop accepting while their connections finish.
  // The session cache, ticket keys, threads and the fleet store stay as they are. On failure
  // (a certificate, a pool, a bind) nothing changes and `error` says why. Any thread, one at a
  // time (serialized inside).
  bool reload(const server_options& opts, std::string& error);
  // Fleet-wide revocation ([cluster] only; false without it): deletes the session from Redis
  // under every certificate context and publishes the ID, so every instance (this one included)
  // drops it from its cache. Asynchronous: returns once queued. Any thread.
  bool revoke_in_fleet(const std::string& session_id);
  // Stops accepting, lets in-flight requests finish (idle keep-alive connections are closed),
  // and returns once no connection is left or `timeout` passed; then stops the workers.
  void drain(std::chrono::milliseconds timeout);
  // Stops at once (in-flight connections are cut).
  void stop();
  void wait();

  // The configuration in force (for new connections). Any thread.
  std::shared_ptr<const snapshot> current() const {
    std::lock_guard lock(snap_mu_);
    return snap_;
  }
  unsigned threads() const { return static_cast<unsigned>(workers_.size()); }
  std::int64_t open_connections() const { return open_.load(std::memory_order_relaxed); }
  // The session-ID cache, or nullptr when disabled.
  cache::session_cache* sessions() const { return sessions_.get(); }
  // The session-ticket key ring (always present; used by listeners with tickets on).
  tls::ticket_key_ring& tickets() const { return *tickets_; }
  // Where the ring's keys come from (rotation on request, reload of key files). Any thread.
  tls::key_source& ticket_source() const { return *key_source_; }

  // Used by client_connection.
  proxy_metrics& metrics() { return metrics_; }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  void connection_closed() { open_.fetch_sub(1, std::memory_order_relaxed); }

 private:
  server() = default;
  asio::awaitable<void> accept_loop(worker& w, std::shared_ptr<acceptor_slot> slot);
  // Builds what a snapshot holds (TLS contexts, pools, routes, listener metrics); no sockets.
  std::shared_ptr<snapshot> build(const server_options& opts, std::string& error);
  // Opens `lo`'s listening socket on every worker (port 0: the first worker's port for all).
  bool open_listener(const listener_options& lo, asio::ip::tcp::endpoint& bound,
                     std::vector<std::shared_ptr<acceptor_slot>>& slots, std::string& error);
  // Starts the active health checks of worker 0's current snapshot (on worker 0's thread).
  void start_health_checks_on(worker& w0);
  // Runs `f` on `w`'s thread and waits for it (directly before the workers run).
  void run_on(worker& w, const std::function<void()>& f);
  void schedule_sweep(worker& w);

  // Declaration order is destruction order reversed: connections (in workers_) reference the
  // snapshot, the metrics and the counters, and TLS contexts reference the session cache, so
  // workers_ is declared last and the cache first.
  std::unique_ptr<cache::session_cache> sessions_;
  std::unique_ptr<tls::ticket_key_ring> tickets_;
  std::unique_ptr<tls::key_source> key_source_;        // drives tickets_
  cluster::fleet_key_source* fleet_keys_ = nullptr;  // key_source_ when the keys are the fleet's
  std::unique_ptr<cluster::sealer> session_sealer_;  // shared by the workers' L2 stores
  std::unique_ptr<cluster::sealer> ticket_sealer_;   // the fleet's ticket key list
  tls::ticket_metrics ticket_metrics_;
  core::metrics_registry* registry_ = nullptr;
  std::unique_ptr<health_registry> health_;
  std::set<std::string> pool_gauges_;  // pools whose servers-up gauge exists (reload_mu_)
  mutable std::mutex snap_mu_;         // guards snap_ (control threads: main, admin)
  std::shared_ptr<const snapshot> snap_;
  std::mutex reload_mu_;  // one reload at a time; guards started_ and listening_
  bool started_ = false;
  proxy_metrics metrics_;
  // Relaxed: a connection-count limit and a drain flag are hints; no data is published
  // through them (each connection reads its own state on its own thread).
  std::atomic<std::int64_t> open_{0};
  std::atomic<bool> draining_{false};
  // The fleet's revocation channel ([cluster] with a session cache), on worker 0's subscriber.
  std::unique_ptr<cluster::revocation_subscriber> revocations_;
  std::vector<std::unique_ptr<worker>> workers_;
  // The listening sockets, one entry per listener of the current snapshot, in its order.
  // Declared after workers_: dropped before the io_contexts go.
  struct listening {
    std::string key;  // address|port (|name for port 0)
    asio::ip::tcp::endpoint bound;
    std::vector<std::shared_ptr<acceptor_slot>> slots;  // [worker]
  };
  std::vector<listening> listening_;
};

}  // namespace tlsfront::proxy
