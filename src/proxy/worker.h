// proxy/worker.h — what a connection sees of the serving core: its worker thread (io_context,
// live connections for drain, idle backend caches through the snapshot, fleet store), the
// configuration snapshot it was accepted under and its listener's runtime state. Connection
// code includes this header, never proxy/server.h; the few server-wide things a connection
// touches (proxy metrics, the drain flag, the open-connection count) it reaches through
// worker::server (server_link), which the server fills in before the worker runs.
//
// Thread-safety: a worker and everything it points to is used on the worker's own thread once it
// runs, except the snapshot (immutable, shared) and the atomics behind server_link (relaxed
// hints). Ownership: the server owns workers and snapshots; connections are owned by their
// coroutine frames on their worker. Failure: nothing here fails; these are plain data.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <thread>
#include <unordered_set>
#include <vector>

#include "cluster/redis_client.h"
#include "cluster/revocation.h"
#include "cluster/sentinel_watch.h"
#include "cluster/session_store.h"
#include "cluster/ticket_key_sync.h"
#include "core/metrics.h"
#include "log/rate_limit.h"
#include "proxy/accepted_socket.h"
#include "proxy/backend_pool.h"
#include "proxy/handle_revoker.h"
#include "proxy/options.h"
#include "proxy/router.h"
#include "tls/client_auth.h"
#include "tls/server_context.h"

namespace tlsfront::proxy {

namespace asio = boost::asio;
class connection;

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
  // Mutual TLS (tls/client_auth.h): handshakes by what became of the client's certificate;
  // all null when the listener's client_auth is off.
  core::counter* client_certs[tls::client_cert_result_count] = {};
  int pool = -1;  // tcp mode: index of the pool in the snapshot
  // Connections refused or cut for lack of resources (server.cc, register_limit_metrics()).
  core::counter* rejected = nullptr;               // closed at accept: max_connections reached
  core::counter* accept_errors[3] = {};            // accept(2) failed: [EMFILE, ENFILE, other]
  core::counter* accept_shed = nullptr;            // accepted and closed at once: no descriptors
  core::counter* client_write_timeouts = nullptr;  // the client took nothing for too long
  // 0-RTT: the listener's options and the process's strike register (tls/early_data.h).
  tls::early_data_policy early;
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
  // Requests answered to clients (by the backend or by tlsfront), [h1, h2][status class 1..5].
  core::counter* client_requests[2][6] = {};
  // HTTP/2: connections and streams open now; streams reset [by the client, by tlsfront];
  // connections ended by a GOAWAY error [ENHANCE_YOUR_CALM (abuse rules), any other code].
  core::gauge* h2_connections = nullptr;
  core::gauge* h2_streams = nullptr;
  core::counter* h2_resets[2] = {};
  core::counter* h2_goaway_errors[2] = {};
  // TLS 1.3 early data (issue 15): ClientHellos that offered it, accepted, not accepted by
  // reason (tls::early_reason); requests forwarded before the handshake completed, requests
  // that waited for it, and 425 (Too Early) answers retried after it.
  core::counter* early_offered = nullptr;
  core::counter* early_accepted = nullptr;
  core::counter* early_rejected[tls::early_reason_count] = {};
  core::counter* early_requests = nullptr;
  core::counter* early_waited = nullptr;
  core::counter* early_retries = nullptr;
};

// The server-wide state connections share, owned by the server (which outlives its workers).
// Relaxed atomics: a connection-count limit and a drain flag are hints; no data is published
// through them.
struct server_link {
  proxy_metrics* metrics = nullptr;
  const std::atomic<bool>* draining_flag = nullptr;
  std::atomic<std::int64_t>* open = nullptr;
  handle_revoker* revoker = nullptr;  // session handles (logout); nullptr: revocation unavailable
  tls::resumption_guard* guard = nullptr;  // checks and mints session handles in handshakes

  bool draining() const { return draining_flag->load(std::memory_order_relaxed); }
  void connection_closed() const { open->fetch_sub(1, std::memory_order_relaxed); }
};

// Member order matters: `live` and `snap` are declared before `ioc` because destroying the
// io_context destroys suspended connection coroutines, whose destructors unregister from `live`
// and whose snapshots hold sockets of this io_context (the idle caches); the acceptors are
// declared after `ioc` so they close before it goes. Everything here is used on the worker's
// thread only, once it runs (a reload posts its changes to it).
struct worker {
  explicit worker(unsigned i) : index(i), ioc(1), sweep(ioc) {}
  unsigned index;
  server_link server;                    // what connections reach of the server
  std::unordered_set<connection*> live;  // for drain
  std::shared_ptr<const snapshot> snap;  // what new connections are accepted under
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
  // Worker 0 only: the fleet's revocations (on `redis` and `subscriber`; its timer is on this
  // io_context, so it goes before it).
  std::unique_ptr<cluster::revocation_sync> revocation;
  // Worker 0 only, with Redis Sentinel: the sentinels' +switch-master, passed to every worker's
  // `redis` and to `subscriber` (declared after them: it goes first).
  std::unique_ptr<cluster::sentinel_watch> sentinel_watch;
  std::chrono::milliseconds lookup_timeout{5};
  std::thread thread;
};

}  // namespace tlsfront::proxy
