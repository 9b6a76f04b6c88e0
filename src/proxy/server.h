// proxy/server.h — the serving core: N worker threads, each with its own io_context
// (concurrency hint 1) and its own SO_REUSEPORT acceptor per listener, so a connection is
// accepted, served and closed on one thread with no locks on its path.
//
// Thread-safety: create()/start()/drain()/stop()/wait() are called from the main thread.
// Workers share only immutable state (the snapshot: TLS contexts, router, pool definitions)
// and lock-free counters. Ownership: server owns workers, snapshot and acceptors; connections
// are owned by their coroutine frames on their worker. What connections see of this (worker,
// snapshot, listener state) is in proxy/worker.h; connection code does not include this header.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
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
#include "proxy/ocsp_stapler.h"
#include "proxy/options.h"
#include "proxy/router.h"
#include "proxy/session_revocation.h"
#include "proxy/worker.h"
#include "tls/certificate.h"
#include "tls/key_source.h"
#include "tls/server_context.h"

namespace tlsfront::proxy {

class server {
 public:
  // Builds TLS contexts and pools and binds every listener on every worker. On failure returns
  // nullptr and sets `error` (one line: which listener/pool and why).
  // `inherit` (a binary upgrade, daemon/handover.h): listening sockets handed over by the
  // process this one replaces, by listener key (listening_sockets()); a listener whose key is
  // there takes those sockets (one per worker) instead of binding, and the ones it takes are
  // removed from the map.
  using inherited_sockets = std::map<std::string, std::vector<int>>;
  static std::unique_ptr<server> create(const server_options& opts, core::metrics_registry& metrics,
                                        std::string& error, inherited_sockets* inherit = nullptr);
  ~server();

  void start();
  // Swaps in a new configuration for new connections: TLS contexts (certificates), routes,
  // pools and limits. Listeners with the same address and port keep their sockets (nothing is
  // refused), new ones are bound, removed ones stop accepting while their connections finish.
  // The session cache, ticket keys, threads and the fleet store stay as they are. On failure
  // (a certificate, a pool, a bind) nothing changes and `error` says why. Any thread, one at a
  // time (serialized inside).
  bool reload(const server_options& opts, std::string& error);
  // Certificates replaced without a reload (admin PUT /certificates/<name>): `cert` (parsed and
  // checked by tls::parse_certificate_pem and check_certificate_chain) is served from now on,
  // on every listener whose certificate entry has that name, to new handshakes on every
  // worker (the snapshot is rebuilt as a reload does; listening sockets are kept). Every
  // server name the entries answer for must be among the new certificate's DNS names. The
  // replacement is kept across reloads (a reload's config files do not undo it) until the
  // process ends; with [admin] certificate_dir the admin route persists it there too. Sessions
  // made under the old certificate do not resume under the new one (the session-ID context is
  // the certificate's digest). Admin thread; one at a time with reloads.
  enum class replace_outcome { replaced, unknown_name, refused };
  replace_outcome replace_certificate(const std::string& name,
                                      std::shared_ptr<const tls::loaded_certificate> cert,
                                      std::string& error);
  // The admin API's revocations (issue 14). Each acts here at once, then with [cluster] waits
  // at most kFleetWait for Redis; `fleet` says how it stands there: "off" (no [cluster]),
  // "accepted" (in Redis and published), "queued" (Redis unreachable: written when it
  // returns), "unavailable" (session IDs: not queued), "no answer" (Redis slower than the
  // wait; still in flight). Admin or main thread.
  static constexpr std::chrono::milliseconds kFleetWait{2000};
  struct id_revocation {
    std::size_t removed_local = 0;  // entries of this instance's cache (every context)
    long long fleet_deleted = 0;    // copies deleted from Redis
    std::string fleet = "off";
    std::uint64_t handle = 0;          // the session's handle, from this cache's entry (0: none)
    std::string handle_fleet = "off";  // the handle's revocation in the fleet
  };
  // A session ID: dropped from this cache; with [cluster] deleted from Redis under every
  // certificate context and published, so every instance drops it too. When this cache held
  // it, its handle is revoked as well (so the session's tickets stop resuming too).
  id_revocation revoke_session_id(const std::string& session_id);
  // A handle, after session_revocation::revoke (source admin): the fleet's answer.
  std::string revoke_handle_in_fleet(std::uint64_t handle);
  struct flush_report {
    std::size_t local = 0;  // sessions dropped from this cache
    std::string fleet = "off";
  };
  // Every cached session ID made before now stops resuming: this cache is emptied, and with
  // `fleet_wide` ([cluster]) every instance's cache and Redis too.
  flush_report flush_sessions(bool fleet_wide);
  struct purge_report {
    std::uint32_t floor = 0;         // handles of older generations are refused everywhere
    std::size_t local = 0;           // sessions dropped from this cache
    std::string ticket_keys;         // what happened to the ticket keys
    std::uint64_t keys_version = 0;  // the fleet key list that replaced them (0: none yet)
    std::string fleet = "off";
  };
  // Suspected compromise: nothing issued before it resumes anywhere (the generation floor is
  // raised past every handle minted so far, in the fleet too), every cache is emptied, every
  // ticket key replaced (memory and fleet sources; key files are the operator's). Logged.
  purge_report purge();
  // Stops accepting, lets in-flight requests finish (idle keep-alive connections are closed),
  // and returns once no connection is left or `timeout` passed; then stops the workers.
  void drain(std::chrono::milliseconds timeout);
  // The first half of drain(): no more accepting (the connections queued on the listeners are
  // taken and served first), every connection told to drain. Returns once every worker did it.
  void stop_accepting();

  // The binary upgrade's handover (daemon/handover.h). Every worker's listening socket, with
  // its listener's key: descriptors this process keeps owning (the receiver gets duplicates).
  std::vector<std::pair<std::string, int>> listening_sockets();
  // What clients would lose with this process, serialized: the session cache's live entries,
  // the ticket keys (memory source), the revoked handles and generation floor, the 0-RTT
  // strikes. Any thread.
  std::string export_state() const;
  // Takes in what export_state() wrote (another process of any version: unknown records are
  // skipped). False + `error` on a damaged stream (what came before the damage is kept).
  struct imported {
    std::size_t sessions = 0, ticket_keys = 0, revoked = 0, strikes = 0, skipped = 0;
  };
  bool import_state(std::string_view bytes, imported& counts, std::string& error);
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
  // Session handles and their revocation (always present).
  session_revocation& revocation() const { return *revocation_; }
  // The session-ID cache, or nullptr when disabled.
  cache::session_cache* sessions() const { return sessions_.get(); }
  // The session-ticket key ring (always present; used by listeners with tickets on).
  tls::ticket_key_ring& tickets() const { return *tickets_; }
  // Where the ring's keys come from (rotation on request, reload of key files). Any thread.
  tls::key_source& ticket_source() const { return *key_source_; }
  bool draining() const { return draining_.load(std::memory_order_relaxed); }
  // OCSP stapling's state per certificate (GET /certificates).
  const ocsp_stapler& ocsp() const { return *ocsp_; }

 private:
  server() = default;
  asio::awaitable<void> accept_loop(worker& w, std::shared_ptr<acceptor_slot> slot);
  // An accepted connection on `slot`'s listener: counted, refused past max_connections, else
  // run under the worker's current snapshot. On the worker's thread.
  void serve(worker& w, const acceptor_slot& slot, asio::ip::tcp::socket sock,
             const asio::ip::tcp::endpoint& peer);
  // Accepts and serves every connection waiting in `slot`'s accept queue (before it is closed).
  void take_queued(worker& w, acceptor_slot& slot);
  // reload() with reload_mu_ held: `opts` as config made them; the replacements are applied.
  // `announce`: log where a replacement hides a changed config file (a reload's, not a PUT's).
  bool reload_locked(const server_options& opts, bool announce, std::string& error);
  // `opts` with every certificate replaced through the admin API in place of the config's
  // (reload_mu_).
  server_options with_replacements(const server_options& opts, bool announce) const;
  // After a reload took effect: drops the replacements whose names `opts` no longer has (a
  // refused reload forgets nothing) (reload_mu_).
  void forget_replacements_not_in(const server_options& opts);
  // Builds what a snapshot holds (TLS contexts, pools, routes, listener metrics); no sockets.
  std::shared_ptr<snapshot> build(const server_options& opts, std::string& error);
  // Opens `lo`'s listening socket on every worker (port 0: the first worker's port for all).
  inherited_sockets* inherit_ = nullptr;  // during create() only
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
  std::unique_ptr<session_revocation> revocation_;  // handles: set, guard, revoker
  std::unique_ptr<tls::ticket_key_ring> tickets_;
  // 0-RTT single use without [cluster] (with it, each worker's fleet store claims in Redis).
  std::unique_ptr<tls::strike_register> strikes_;
  std::unique_ptr<tls::key_source> key_source_;      // drives tickets_
  cluster::fleet_key_source* fleet_keys_ = nullptr;  // key_source_ when the keys are the fleet's
  std::unique_ptr<cluster::sealer> session_sealer_;  // shared by the workers' L2 stores
  std::unique_ptr<cluster::sealer> ticket_sealer_;   // the fleet's ticket key list
  tls::ticket_metrics ticket_metrics_;
  core::metrics_registry* registry_ = nullptr;
  std::unique_ptr<health_registry> health_;
  std::unique_ptr<ocsp_stapler> ocsp_;  // fills each certificate's OCSP cell
  std::set<std::string> pool_gauges_;   // pools whose servers-up gauge exists (reload_mu_)
  mutable std::mutex snap_mu_;          // guards snap_ (control threads: main, admin)
  std::shared_ptr<const snapshot> snap_;
  std::mutex reload_mu_;        // one reload at a time; guards started_, listening_, the two below
  server_options config_opts_;  // the options the config gave last (without replacements)
  std::map<std::string, std::shared_ptr<const tls::loaded_certificate>> replaced_;
  bool started_ = false;
  proxy_metrics metrics_;
  // Relaxed: a connection-count limit and a drain flag are hints; no data is published
  // through them (each connection reads its own state on its own thread).
  std::atomic<std::int64_t> open_{0};
  std::atomic<bool> draining_{false};
  // The fleet's revocations ([cluster]): owned by worker 0 (worker::revocation), or nullptr.
  cluster::revocation_sync* fleet_revocation_ = nullptr;
  std::mutex purge_mu_;  // one admin flush or purge at a time
  // The newest purge's floor applied here (worker 0 and the admin thread): a purge heard again
  // (its own, a read-back) does not replace the keys twice.
  std::atomic<std::uint32_t> purged_floor_{0};
  // The newest fleet key list a purge installed (this instance's or one heard): a purge heard
  // again does not re-install it.
  std::atomic<std::uint64_t> purged_keys_version_{0};
  std::atomic<std::uint64_t> own_purge_version_{0};  // the list this instance's purge wrote
  std::uint32_t start_generation_ = 0;  // purges below it came before this process (read-back)
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
