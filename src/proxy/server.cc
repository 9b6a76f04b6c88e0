#include "proxy/server.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <chrono>
#include <ctime>
#include <functional>
#include <future>
#include <thread>
#include <utility>

#include "cache/session_cache_metrics.h"
#include "cluster/fleet_key_source.h"
#include "cluster/fleet_metrics.h"
#include "cluster/revocation.h"
#include "proxy/accepted_socket.h"
#include "proxy/connection.h"
#include "tls/ticket_metrics.h"
#include "tls/x509_fields.h"

namespace tlsfront::proxy {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) {
    out += (out.empty() ? "" : ", ") + n;
  }
  return out;
}

// tlsfront_certificate_expiry_seconds{name}: seconds left until each served certificate's
// notAfter (negative once past), read from the snapshot in force when rendered.
void register_certificate_metrics(const server& srv, core::metrics_registry& metrics) {
  metrics.add_gauge_set_fn(
      "tlsfront_certificate_expiry_seconds",
      "Seconds until each served certificate expires (its notAfter; negative once past), by "
      "certificate name",
      [&srv] {
        core::metrics_registry::labeled_values out;
        const std::shared_ptr<const snapshot> snap = srv.current();
        if (!snap) {
          return out;
        }
        const auto now = static_cast<double>(std::time(nullptr));
        std::set<std::string> seen;
        for (const listener_runtime& lr : snap->listeners) {
          for (const tls::certificate_options& co : lr.opts.tls.certificates) {
            if (co.loaded && seen.insert(co.name).second) {
              out.emplace_back("name=\"" + co.name + "\"",
                               static_cast<double>(co.loaded->not_after) - now);
            }
          }
        }
        return out;
      });
}

// Raises `a` to `v` if below it (a CAS max); true if it did.
template <typename T>
bool raise_to(std::atomic<T>& a, T v) {
  T cur = a.load(std::memory_order_relaxed);
  while (cur < v) {
    if (a.compare_exchange_weak(cur, v, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// A listener's counters of connections refused or cut for lack of resources: max_connections,
// accept(2) failures (descriptors, memory), write timeouts.
void register_limit_metrics(listener_runtime& lr, const std::string& l,
                            core::metrics_registry& metrics) {
  lr.rejected = &metrics.add_counter(
      "tlsfront_connections_rejected_total",
      "Client connections closed at accept because max_connections was reached", l);
  static const char* reasons[3] = {"emfile", "enfile", "other"};
  for (int r = 0; r < 3; ++r) {
    lr.accept_errors[r] = &metrics.add_counter(
        "tlsfront_accept_errors_total",
        "accept(2) failures: out of descriptors (process: emfile, system: enfile) or other",
        l + ",reason=\"" + reasons[r] + "\"");
  }
  lr.accept_shed = &metrics.add_counter(
      "tlsfront_accept_shed_total",
      "Connections accepted and closed at once because the process was out of descriptors", l);
  lr.client_write_timeouts = &metrics.add_counter(
      "tlsfront_client_write_timeouts_total",
      "Client connections cut because the client took no byte for client_write_timeout", l);
}

// accept(2) failed on `slot` (after adopt(), any failure to take the connection). Out of
// descriptors, the connections waiting are shed (shed_waiting()) rather than left to time out.
// Counted per listener and reason, logged at most once per interval (with the count of lines
// held back), then the accept loop pauses for `backoff`: 10 ms after the first failure, doubling
// up to 1 s while failures go on; the caller resets it after an accept succeeds.
asio::awaitable<void> after_accept_error(worker& w, acceptor_slot& slot,
                                         const boost::system::error_code& ec,
                                         std::chrono::milliseconds& backoff) {
  const listener_runtime& lr = w.snap->listeners[slot.listener];
  const bool system_error = ec.category() == boost::system::system_category();
  const int reason = system_error && ec.value() == EMFILE   ? 0
                     : system_error && ec.value() == ENFILE ? 1
                                                            : 2;
  lr.accept_errors[reason]->inc();
  std::size_t shed = 0;
  if (reason < 2) {
    shed = shed_waiting(slot.acc, w.spare);
    lr.accept_shed->inc(shed);
  }
  using std::chrono::milliseconds;
  backoff = backoff.count() == 0 ? milliseconds(10) : std::min(backoff * 2, milliseconds(1000));
  log::limited(*slot.accept_log, spdlog::level::warn,
               "accept on {}: {}; {} waiting connection(s) shed, accepting again in {} ms",
               lr.opts.name, ec.message(), shed, backoff.count());
  asio::steady_timer t(w.ioc, backoff);
  co_await t.async_wait(use_tuple);
}

}  // namespace

std::shared_ptr<snapshot> server::build(const server_options& given, std::string& error) {
  core::metrics_registry& metrics = *registry_;
  // Each certificate gets the OCSP cell its handshakes staple from (kept across reloads for
  // the same certificate); a must-staple one needs a good response before it is served.
  server_options opts = given;
  ocsp_->set_options(opts.ocsp);
  for (listener_options& lo : opts.listeners) {
    for (tls::certificate_options& co : lo.tls.certificates) {
      if (co.loaded && !ocsp_->attach(co, error)) {
        error = "listener " + lo.name + ": " + error;
        return nullptr;
      }
    }
  }
  if (!ocsp_->wait_ready(opts, error)) {
    return nullptr;
  }
  auto snap = std::make_shared<snapshot>();
  snap->opts = opts;
  std::vector<std::string> pool_names;
  for (const pool_options& po : opts.pools) {
    auto pool = backend_pool::create(po, metrics, *health_, error);
    if (!pool) {
      return nullptr;
    }
    if (pool_gauges_.insert(po.name).second) {
      metrics.add_gauge_fn("tlsfront_pool_servers_up",
                           "Servers of the pool taking requests now (0: it answers 503)",
                           "pool=\"" + po.name + "\"", [this, name = po.name] {
                             auto now = current();
                             for (const auto& p : now->pools) {
                               if (p->options().name == name) {
                                 return static_cast<double>(p->servers_up());
                               }
                             }
                             return 0.0;  // removed by a reload
                           });
    }
    snap->pools.push_back(std::move(pool));
    pool_names.push_back(po.name);
  }
  snap->routes = std::make_unique<router>(opts.routes, pool_names);
  snap->idle.resize(workers_.size());
  for (auto& row : snap->idle) {
    for (const pool_options& po : opts.pools) {
      row.emplace_back(po.servers.size(), po.max_idle, po.idle_timeout);
    }
  }

  static const char* versions[2] = {"TLSv1.2", "TLSv1.3"};
  static const char* kinds[3] = {"none", "id", "ticket"};
  for (const listener_options& lo : opts.listeners) {
    listener_runtime lr;
    lr.opts = lo;
    lr.tls =
        tls::server_context::create(lo.tls, error, sessions_.get(), core::real_clock::instance(),
                                    tickets_.get(), &ticket_metrics_);
    if (!lr.tls) {
      error = "listener " + lo.name + ": " + error;
      return nullptr;
    }
    // The registry returns the existing series for a name and labels: a listener that stays
    // across a reload keeps counting where it was.
    std::string l = "listener=\"" + lo.name + "\"";
    lr.connections =
        &metrics.add_counter("tlsfront_connections_total", "Client TCP connections accepted", l);
    lr.handshake_failures =
        &metrics.add_counter("tlsfront_handshake_failures_total", "TLS handshakes that failed", l);
    lr.handshake_timeouts = &metrics.add_counter(
        "tlsfront_handshake_timeouts_total",
        "Connections closed because the TLS handshake did not finish in time", l);
    for (int v = 0; v < 2; ++v) {
      for (int k = 0; k < 3; ++k) {
        lr.handshakes[v][k] = &metrics.add_counter(
            "tlsfront_handshakes_total",
            "Completed TLS handshakes by protocol version and resumption kind",
            l + ",version=\"" + versions[v] + "\",resumed=\"" + kinds[k] + "\"");
      }
    }
    lr.handshake_us = &metrics.add_histogram(
        "tlsfront_handshake_duration_us", "TLS handshake duration in microseconds",
        {50, 100, 250, 500, 1000, 2500, 5000, 10000, 50000, 250000}, l);
    lr.early = tls::early_data_policy{lo.tls.early_data, strikes_.get()};
    lr.proxy_header_errors = &metrics.add_counter(
        "tlsfront_proxy_protocol_errors_total",
        "Connections from trusted proxies closed for a missing or malformed PROXY header", l);
    if (lo.tls.client_auth.mode != tls::client_auth_options::mode_kind::off) {
      for (std::size_t r = 1; r < tls::client_cert_result_count; ++r) {
        lr.client_certs[r] = &metrics.add_counter(
            "tlsfront_client_certificates_total",
            "TLS handshakes by what became of the client certificate (failures by reason)",
            l + ",result=\"" +
                tls::client_cert_result_name(static_cast<tls::client_cert_result>(r)) + "\"");
      }
    }
    register_limit_metrics(lr, l, metrics);
    if (lo.mode == listener_options::mode_kind::tcp) {
      auto it = std::find(pool_names.begin(), pool_names.end(), lo.pool);
      if (it == pool_names.end()) {
        error = "listener " + lo.name + ": unknown pool " + lo.pool;
        return nullptr;
      }
      lr.pool = static_cast<int>(it - pool_names.begin());
    }
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(lo.address, ec);
    if (ec) {
      error = "listener " + lo.name + ": invalid address " + lo.address;
      return nullptr;
    }
    lr.bound = asio::ip::tcp::endpoint(addr, lo.port);
    snap->listeners.push_back(std::move(lr));
  }
  return snap;
}

void server::run_on(worker& w, const std::function<void()>& f) {
  if (!started_) {
    f();
    return;
  }
  std::promise<void> done;
  asio::post(w.ioc, [&] {
    f();
    done.set_value();
  });
  done.get_future().wait();
}

static std::string listening_key(const listener_options& lo);

bool server::open_listener(const listener_options& lo, asio::ip::tcp::endpoint& bound,
                           std::vector<std::shared_ptr<acceptor_slot>>& slots, std::string& error) {
  slots.clear();
  auto accept_log = std::make_shared<log::rate_limiter>(1, std::chrono::seconds(5));
  // Sockets handed over by the process this one replaces: the same sockets (their accept
  // queues, their reuseport group), so nothing is refused while one process hands over to the
  // other.
  std::vector<int> handed;
  if (inherit_ != nullptr) {
    if (auto it = inherit_->find(listening_key(lo)); it != inherit_->end()) {
      handed = std::move(it->second);
      inherit_->erase(it);
    }
  }
  if (handed.size() > workers_.size()) {
    spdlog::warn(
        "listener {}: {} listening sockets handed over, {} worker threads here: the extra ones "
        "are closed (connections queued on them at this instant are reset; keep [server] "
        "threads the same across upgrades)",
        lo.name, handed.size(), workers_.size());
    for (std::size_t i = workers_.size(); i < handed.size(); ++i) {
      ::close(handed[i]);
    }
    handed.resize(workers_.size());
  }
  for (auto& w : workers_) {
    auto slot = std::make_shared<acceptor_slot>(w->ioc);
    slot->accept_log = accept_log;
    bool ok = false;
    const int fd = w->index < handed.size() ? handed[w->index] : -1;
    run_on(*w, [&] {
      if (fd >= 0) {
        ok = adopt_listener(slot->acc, fd, bound, error);
        return;
      }
      ok = proxy::open_listener(slot->acc, bound, error);
      if (ok && bound.port() == 0) {
        bound = slot->acc.local_endpoint();  // the others bind to the port it got
      }
    });
    if (!ok) {
      error = "listener " + lo.name + ": " + error;
      for (std::size_t i = 0; i < slots.size(); ++i) {
        run_on(*workers_[i], [&] {
          boost::system::error_code ignored;
          slots[i]->acc.close(ignored);
        });
      }
      slots.clear();
      return false;
    }
    slots.push_back(std::move(slot));
  }
  return true;
}

static std::string listening_key(const listener_options& lo) {
  // Port 0 (any free port, tests) names no socket: such a listener is matched by its name.
  return lo.address + "|" + std::to_string(lo.port) + (lo.port == 0 ? "|" + lo.name : "");
}

std::unique_ptr<server> server::create(const server_options& opts, core::metrics_registry& metrics,
                                       std::string& error, inherited_sockets* inherit) {
  std::unique_ptr<server> srv(new server());
  srv->inherit_ = inherit;
  srv->registry_ = &metrics;
  srv->health_ = std::make_unique<health_registry>(metrics);
  srv->ocsp_ = std::make_unique<ocsp_stapler>(opts.ocsp, metrics);

  if (opts.session_cache_enabled) {
    try {
      srv->sessions_ =
          std::make_unique<cache::session_cache>(opts.session_cache, core::real_clock::instance());
    } catch (const std::exception& e) {
      error = std::string("session cache: ") + e.what();
      return nullptr;
    }
    cache::register_session_cache_metrics(*srv->sessions_, metrics);
  }

  srv->revocation_ =
      std::make_unique<session_revocation>(opts.revocation, core::real_clock::instance(), &metrics);
  srv->start_generation_ = srv->revocation_->guard().now_generation();
  srv->tickets_ =
      std::make_unique<tls::ticket_key_ring>(opts.tickets, core::real_clock::instance());
  srv->strikes_ = std::make_unique<tls::strike_register>(opts.tickets.early_data_strikes);
  // Where the keys come from: a local source (memory, file), else the fleet's list.
  srv->key_source_ = tls::make_local_key_source(*srv->tickets_);
  if (!srv->key_source_) {
    auto fleet = std::make_unique<cluster::fleet_key_source>(*srv->tickets_);
    srv->fleet_keys_ = fleet.get();
    srv->key_source_ = std::move(fleet);
  }
  if (!srv->key_source_->start(error)) {
    error = "ticket keys: " + error;
    return nullptr;
  }
  tls::register_ticket_metrics(*srv->tickets_, srv->ticket_metrics_, metrics);

  srv->metrics_.active =
      &metrics.add_gauge("tlsfront_connections_active", "Client connections open now");
  for (int c = 1; c <= 5; ++c) {
    srv->metrics_.local_responses[c] = &metrics.add_counter(
        "tlsfront_requests_total", "Requests answered, by backend pool and status class",
        "pool=\"-\",class=\"" + std::to_string(c) + "xx\"");
  }
  for (int p = 0; p < 2; ++p) {
    for (int c = 1; c <= 5; ++c) {
      srv->metrics_.client_requests[p][c] =
          &metrics.add_counter("tlsfront_client_requests_total",
                               "Requests answered to clients (by a backend or by tlsfront), by "
                               "protocol and status class",
                               std::string("protocol=\"") + (p == 0 ? "h1" : "h2") + "\",class=\"" +
                                   std::to_string(c) + "xx\"");
    }
  }
  srv->metrics_.h2_connections =
      &metrics.add_gauge("tlsfront_h2_connections_active", "HTTP/2 client connections open now");
  srv->metrics_.h2_streams =
      &metrics.add_gauge("tlsfront_h2_streams_active", "HTTP/2 streams being served now");
  for (int b = 0; b < 2; ++b) {
    srv->metrics_.h2_resets[b] = &metrics.add_counter(
        "tlsfront_h2_stream_resets_total",
        "HTTP/2 streams ended by RST_STREAM, by who sent it (client, or tlsfront itself)",
        b == 0 ? "by=\"client\"" : "by=\"server\"");
    srv->metrics_.h2_goaway_errors[b] = &metrics.add_counter(
        "tlsfront_h2_goaway_errors_total",
        "HTTP/2 connections tlsfront ended with a GOAWAY error: enhance_your_calm (an abuse "
        "rule: rapid reset, floods) or protocol (any other error code)",
        b == 0 ? "reason=\"enhance_your_calm\"" : "reason=\"protocol\"");
  }
  srv->metrics_.early_offered = &metrics.add_counter(
      "tlsfront_early_data_offered_total", "TLS 1.3 ClientHellos that offered early data (0-RTT)");
  srv->metrics_.early_accepted = &metrics.add_counter(
      "tlsfront_early_data_accepted_total",
      "Handshakes whose early data was accepted (at most once per ticket in the fleet)");
  for (int r = 1; r < tls::early_reason_count; ++r) {
    srv->metrics_.early_rejected[r] = &metrics.add_counter(
        "tlsfront_early_data_rejected_total",
        "Early data not accepted (the handshake goes on as 1-RTT), or the part of it past "
        "max_early_data (too_large), by reason",
        std::string("reason=\"") + tls::early_reason_name(static_cast<tls::early_reason>(r)) +
            "\"");
  }
  srv->metrics_.early_requests = &metrics.add_counter(
      "tlsfront_early_requests_total",
      "Requests forwarded before the handshake completed (with Early-Data: 1)");
  srv->metrics_.early_waited = &metrics.add_counter(
      "tlsfront_early_requests_waited_total",
      "Requests received in early data that waited for the handshake (method not allowed "
      "early on the route, a body, or past max_early_data)");
  srv->metrics_.early_retries = &metrics.add_counter(
      "tlsfront_early_data_retries_total",
      "425 (Too Early) answers to early requests, retried once after the handshake");
  srv->metrics_.bad_requests = &metrics.add_counter(
      "tlsfront_bad_requests_total", "Requests refused as malformed or over the limits");
  srv->metrics_.backend_errors = &metrics.add_counter(
      "tlsfront_backend_errors_total", "Backend connections that broke or sent a bad response");
  srv->metrics_.backend_timeouts = &metrics.add_counter("tlsfront_backend_timeouts_total",
                                                        "Backend reads or writes that timed out");

  unsigned n = opts.threads != 0 ? opts.threads : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < n; ++i) {
    auto w = std::make_unique<worker>(i);
    w->server = server_link{&srv->metrics_, &srv->draining_, &srv->open_, srv->revocation_.get(),
                            &srv->revocation_->guard()};
    w->accepted = &metrics.add_counter("tlsfront_worker_connections_total",
                                       "Client connections accepted, by worker thread",
                                       "worker=\"" + std::to_string(i) + "\"");
    srv->workers_.push_back(std::move(w));
  }
  if (opts.cluster) {
    const cluster::cluster_options& co = *opts.cluster;
    cluster::redis_options worker_redis = co.redis;
    if (!co.redis.cluster_nodes.empty()) {
      // Redis Cluster: what every worker's router sees of each node, per node.
      worker_redis.node_stats = std::make_shared<cluster::cluster_stats>();
      cluster::register_cluster_metrics(worker_redis.node_stats, metrics);
    }
    for (auto& w : srv->workers_) {
      w->redis = std::make_unique<cluster::redis_client>(w->ioc, worker_redis);
    }
    std::vector<const cluster::redis_client*> clients;
    for (const auto& w : srv->workers_) {
      clients.push_back(w->redis.get());
    }
    cluster::register_redis_connection_metrics(std::move(clients), metrics);
    // The fleet store: session-ID sessions (with the session cache) and the 0-RTT single-use
    // claims (always: without it a ticket shared by the fleet would get early data once per
    // instance).
    {
      srv->session_sealer_ = std::make_unique<cluster::sealer>(co.secret, "tlsfront session v1");
      for (auto& w : srv->workers_) {
        w->l2 = std::make_unique<cluster::session_store>(
            *w->redis, *srv->session_sealer_, co.key_prefix, co.max_pending_writes, co.write_queue);
        w->lookup_timeout = co.lookup_timeout;
      }
      std::vector<const cluster::session_store*> stores;
      for (const auto& w : srv->workers_) {
        stores.push_back(w->l2.get());
      }
      cluster::register_session_store_metrics(std::move(stores), metrics);
    }
    // Worker 0 writes the revocations and hears the fleet's on a connection of its own
    // (subscriber mode).
    worker& w0 = *srv->workers_.front();
    w0.subscriber =
        std::make_unique<cluster::redis_client>(w0.ioc, cluster::subscriber_options(co.redis));
    if (!co.redis.sentinels.empty()) {
      w0.sentinel_watch = std::make_unique<cluster::sentinel_watch>(w0.ioc, co.redis);
      for (auto& w : srv->workers_) {
        w0.sentinel_watch->follow(w->ioc, *w->redis);
      }
      w0.sentinel_watch->follow(w0.ioc, *w0.subscriber);
      std::vector<const cluster::redis_client*> followed;
      for (const auto& w : srv->workers_) {
        followed.push_back(w->redis.get());
      }
      cluster::register_sentinel_metrics(std::move(followed), *w0.sentinel_watch, metrics);
    }
    server* s = srv.get();
    cluster::revocation_hooks hooks;
    if (srv->sessions_) {
      hooks.drop_id = [s](std::string_view id) { return s->sessions_->remove_all_contexts(id); };
    }
    hooks.flushed = [s](std::int64_t unix_s) {
      s->revocation_->guard().set_flush_before(unix_s);
      const std::size_t flushed = s->sessions_ ? s->sessions_->entries_in_use() : 0;
      if (s->sessions_) {
        s->sessions_->clear();
      }
      spdlog::info("fleet: session cache flushed ({} sessions)", flushed);
    };
    hooks.purged = [s](std::uint32_t gen, std::uint64_t keys_version) {
      // Heard on the channel or read back (an instance that missed it): applied once per
      // purge, and its fleet key list installed once.
      if (gen <= s->start_generation_) {
        // Purged before this process started (read back from Redis): nothing it holds, keys
        // or sessions, predates the purge.
        raise_to(s->purged_floor_, gen);
        raise_to(s->purged_keys_version_, keys_version);
        return;
      }
      const bool new_purge = raise_to(s->purged_floor_, gen);
      const bool new_keys = keys_version != 0 && s->fleet_keys_ != nullptr &&
                            raise_to(s->purged_keys_version_, keys_version);
      if (new_purge && s->sessions_) {
        s->sessions_->clear();
      }
      if (new_purge || new_keys) {
        const std::string keys = s->key_source_->purge(true, new_keys ? keys_version : 0);
        spdlog::warn(
            "fleet: purge heard: sessions of generations below {} refused, cache "
            "emptied, ticket keys: {}",
            gen, keys);
      }
    };
    const std::chrono::seconds marker_ttl =
        opts.revocation.handle_max_age + std::chrono::minutes(2);
    w0.revocation = std::make_unique<cluster::revocation_sync>(
        w0.ioc, *w0.redis, *w0.subscriber, srv->revocation_->guard(), co.key_prefix,
        opts.revocation.capacity, marker_ttl, std::move(hooks));
    srv->fleet_revocation_ = w0.revocation.get();
    srv->fleet_revocation_->register_metrics(metrics);
    srv->revocation_->attach_fleet(srv->fleet_revocation_);
    if (srv->fleet_keys_ != nullptr) {
      srv->ticket_sealer_ = std::make_unique<cluster::sealer>(co.secret, "tlsfront ticket keys v1");
      w0.key_sync = std::make_unique<cluster::ticket_key_sync>(
          w0.ioc, *w0.redis, *srv->ticket_sealer_, *srv->tickets_, co.key_prefix, co.poll_interval);
      srv->fleet_keys_->attach(*w0.key_sync);
      w0.key_sync->on_purged([s](std::uint64_t version) {
        // This instance's purge is the fleet's list now: tell the fleet to install it alone.
        raise_to(s->purged_keys_version_, version);
        s->own_purge_version_.store(version, std::memory_order_relaxed);
        const std::uint32_t gen = s->purged_floor_.load(std::memory_order_relaxed);
        s->fleet_revocation_->purge(gen, core::real_clock::instance().now_s(), version);
      });
      cluster::register_key_sync_metrics(*w0.key_sync, *srv->tickets_, metrics);
    }
  }

  register_certificate_metrics(*srv, metrics);
  auto snap = srv->build(opts, error);
  if (!snap) {
    return nullptr;
  }
  srv->config_opts_ = opts;
  for (listener_runtime& lr : snap->listeners) {
    listening l;
    l.key = listening_key(lr.opts);
    if (!srv->open_listener(lr.opts, lr.bound, l.slots, error)) {
      return nullptr;
    }
    l.bound = lr.bound;
    srv->listening_.push_back(std::move(l));
  }
  for (auto& w : srv->workers_) {
    w->snap = snap;
    for (std::size_t li = 0; li < srv->listening_.size(); ++li) {
      auto& slot = srv->listening_[li].slots[w->index];
      slot->listener = li;
      w->slots.push_back(slot);
    }
  }
  srv->snap_ = std::move(snap);
  return srv;
}

bool server::reload(const server_options& opts, std::string& error) {
  std::lock_guard reload_lock(reload_mu_);
  return reload_locked(opts, /*announce=*/true, error);
}

server_options server::with_replacements(const server_options& opts, bool announce) const {
  server_options out = opts;
  for (listener_options& lo : out.listeners) {
    for (tls::certificate_options& co : lo.tls.certificates) {
      auto r = replaced_.find(co.name);
      if (r == replaced_.end()) {
        continue;
      }
      if (announce && co.loaded && co.loaded->sha256 != r->second->sha256) {
        spdlog::info(
            "certificate '{}': serving the one installed through the admin API (sha256 {}), "
            "not {} (restart or PUT it to serve the file)",
            co.name, r->second->sha256, co.cert_file);
      }
      co.loaded = r->second;
      co.source = tls::certificate_options::source_kind::admin;
    }
  }
  return out;
}

void server::forget_replacements_not_in(const server_options& opts) {
  std::set<std::string> present;
  for (const listener_options& lo : opts.listeners) {
    for (const tls::certificate_options& co : lo.tls.certificates) {
      present.insert(co.name);
    }
  }
  for (auto it = replaced_.begin(); it != replaced_.end();) {
    if (present.count(it->first) == 0) {
      spdlog::info("certificate '{}': no longer in the config; its admin replacement is dropped",
                   it->first);
      it = replaced_.erase(it);
    } else {
      ++it;
    }
  }
}

server::replace_outcome server::replace_certificate(
    const std::string& name, std::shared_ptr<const tls::loaded_certificate> cert,
    std::string& error) {
  std::lock_guard reload_lock(reload_mu_);
  // The names each entry of `name` answers for now (its server_names, else the DNS names of
  // the certificate it serves) must stay covered: a replacement never moves a name elsewhere.
  bool found = false;
  const std::shared_ptr<const snapshot> now = current();
  for (const listener_runtime& lr : now->listeners) {
    for (const tls::certificate_options& co : lr.opts.tls.certificates) {
      if (co.name != name) {
        continue;
      }
      found = true;
      const std::vector<std::string>& served =
          !co.server_names.empty() || !co.loaded ? co.server_names : co.loaded->names;
      for (const std::string& sn : served) {
        if (!tls::covers(cert->names, sn)) {
          error = "the certificate does not cover " + sn + ", which listener '" + lr.opts.name +
                  "' serves it for (its DNS names: " +
                  (cert->names.empty() ? std::string("none") : joined(cert->names)) + ")";
          return replace_outcome::refused;
        }
      }
    }
  }
  if (!found) {
    error = "no certificate is named '" + name + "'";
    return replace_outcome::unknown_name;
  }
  auto previous = replaced_.find(name);
  std::shared_ptr<const tls::loaded_certificate> before =
      previous != replaced_.end() ? previous->second : nullptr;
  replaced_[name] = std::move(cert);
  const server_options opts = config_opts_;
  if (!reload_locked(opts, /*announce=*/false, error)) {
    if (before) {
      replaced_[name] = std::move(before);
    } else {
      replaced_.erase(name);
    }
    return replace_outcome::refused;
  }
  return replace_outcome::replaced;
}

bool server::reload_locked(const server_options& config_opts, bool announce, std::string& error) {
  if (draining()) {
    error = "shutting down";
    return false;
  }
  const server_options opts = with_replacements(config_opts, announce);
  // A reload refused after build() attached its certificates to the stapler leaves the
  // stapler as the snapshot in force has it: no fetching for certificates never served.
  auto undo_ocsp = [this] {
    if (const std::shared_ptr<const snapshot> now = current()) {
      ocsp_->set_options(now->opts.ocsp);
      ocsp_->retain(now->opts);
    }
  };
  auto snap = build(opts, error);
  if (!snap) {
    undo_ocsp();
    return false;
  }
  // Listening sockets: kept by key, opened for new listeners (any failure: nothing changes).
  std::vector<listening> next;
  std::vector<std::size_t> opened;  // indexes in `next` of sockets opened by this reload
  for (listener_runtime& lr : snap->listeners) {
    const std::string key = listening_key(lr.opts);
    auto kept = std::find_if(listening_.begin(), listening_.end(),
                             [&](const listening& l) { return l.key == key; });
    if (kept != listening_.end()) {
      lr.bound = kept->bound;
      next.push_back(*kept);
      continue;
    }
    listening l;
    l.key = key;
    if (!open_listener(lr.opts, lr.bound, l.slots, error)) {
      for (std::size_t i : opened) {
        for (auto& w : workers_) {
          run_on(*w, [&] {
            boost::system::error_code ignored;
            next[i].slots[w->index]->acc.close(ignored);
          });
        }
      }
      undo_ocsp();
      return false;
    }
    l.bound = lr.bound;
    opened.push_back(next.size());
    next.push_back(std::move(l));
  }
  // Each worker switches in one step on its own thread: new connections get the new snapshot
  // and listener indexes; connections in flight keep theirs.
  for (auto& wp : workers_) {
    worker& w = *wp;
    run_on(w, [&] {
      std::vector<std::shared_ptr<acceptor_slot>> slots;
      for (std::size_t li = 0; li < next.size(); ++li) {
        auto& slot = next[li].slots[w.index];
        slot->listener = li;
        slots.push_back(slot);
        if (std::find(w.slots.begin(), w.slots.end(), slot) == w.slots.end() && started_ &&
            !draining()) {
          asio::co_spawn(w.ioc, accept_loop(w, slot), asio::detached);
        }
      }
      for (auto& old : w.slots) {
        if (std::find(slots.begin(), slots.end(), old) == slots.end()) {
          boost::system::error_code ignored;
          old->acc.close(ignored);  // removed: stops accepting; its connections finish
        }
      }
      // Connections of a removed listener drain (HTTP/2: GOAWAY; HTTP/1.1: close after the
      // response in flight).
      for (connection* c : w.live) {
        const std::string key = listening_key(c->listener().opts);
        if (std::none_of(next.begin(), next.end(),
                         [&](const listening& l) { return l.key == key; })) {
          c->retire();
        }
      }
      w.slots = std::move(slots);
      if (w.snap) {
        for (auto& c : w.snap->idle[w.index]) {
          c.clear();  // the old snapshot's pooled connections; in-flight ones close on their own
        }
      }
      w.snap = snap;
      if (w.index == 0 && started_) {
        start_health_checks_on(w);  // the old snapshot's checks end at their next wake-up
      }
    });
  }
  listening_ = std::move(next);
  config_opts_ = config_opts;
  forget_replacements_not_in(config_opts);
  {
    std::lock_guard lock(snap_mu_);
    snap_ = snap;
  }
  ocsp_->retain(snap->opts);
  return true;
}

server::~server() {
  stop();
  wait();
  // Nothing may post to worker 0's revocation sync once the workers go.
  revocation_->attach_fleet(nullptr);
  fleet_revocation_ = nullptr;
  // The threads are gone: pooled backend sockets close here, before their io_contexts.
  for (auto& w : workers_) {
    if (w->snap) {
      for (auto& c : w->snap->idle[w->index]) {
        c.clear();
      }
    }
  }
}

asio::awaitable<void> server::accept_loop(worker& w, std::shared_ptr<acceptor_slot> slot) {
  listener_socket& acc = slot->acc;
  asio::ip::tcp::endpoint peer;  // filled by accept(2): no getpeername per connection
  std::chrono::milliseconds backoff{0};
  while (acc.is_open()) {
    auto [ec, fd] = co_await accept_next(acc, peer);
    if (ec == asio::error::operation_aborted || !acc.is_open()) {
      break;
    }
    asio::ip::tcp::socket sock(w.ioc);
    if (!ec) {
      sock = adopt(w.ioc, peer, fd, ec);
    }
    if (ec) {
      if (!acc.is_open()) {
        break;
      }
      // EMFILE/ENFILE/ENOBUFS: shed, count, back off instead of spinning.
      co_await after_accept_error(w, *slot, ec, backoff);
      continue;
    }
    backoff = std::chrono::milliseconds(0);
    serve(w, *slot, std::move(sock), peer);
  }
}

void server::serve(worker& w, const acceptor_slot& slot, asio::ip::tcp::socket sock,
                   const asio::ip::tcp::endpoint& peer) {
  w.accepted->inc();
  std::shared_ptr<const snapshot> snap = w.snap;
  const auto max_conn = static_cast<std::int64_t>(snap->opts.limits.max_connections);
  if (open_.fetch_add(1, std::memory_order_relaxed) >= max_conn) {
    open_.fetch_sub(1, std::memory_order_relaxed);
    snap->listeners[slot.listener].rejected->inc();
    return;  // `sock` closes here
  }
  asio::co_spawn(
      w.ioc,
      [](worker* wk, std::shared_ptr<const snapshot> sn, std::size_t index, asio::ip::tcp::socket s,
         asio::ip::tcp::endpoint from) -> asio::awaitable<void> {
        connection conn(*wk, std::move(sn), index, std::move(s), from);
        co_await conn.run();
      }(&w, std::move(snap), slot.listener, std::move(sock), peer),
      asio::detached);
}

void server::take_queued(worker& w, acceptor_slot& slot) {
  // Closing a listening socket resets every connection in its accept queue: the clients had
  // finished their TCP handshake and were sending their ClientHello. They are taken and served
  // (and drained) instead. What completes its TCP handshake between the last accept and the
  // close is still reset: microseconds on the worker's own thread.
  for (;;) {
    asio::ip::tcp::endpoint peer;
    boost::system::error_code ec;
    const int fd = accept_one(slot.acc, peer, ec);
    if (fd < 0) {
      return;  // would_block: the queue is empty (or an error: nothing more to take)
    }
    asio::ip::tcp::socket sock = adopt(w.ioc, peer, fd, ec);
    if (!ec) {
      serve(w, slot, std::move(sock), peer);
    }
  }
}

void server::schedule_sweep(worker& w) {
  w.sweep.expires_after(std::chrono::seconds(1));
  w.sweep.async_wait([this, &w](const boost::system::error_code& ec) {
    if (ec) {
      return;
    }
    for (auto& c : w.snap->idle[w.index]) {
      c.sweep();
    }
    if (w.index == 0) {
      key_source_->maintain();  // rotation: publish the next key when due, drop expired ones
    }
    // Refreshes this worker's snapshot even without handshakes, so a dropped key's last
    // reference goes (and the key is wiped) within a second.
    tickets_->view();
    schedule_sweep(w);
  });
}

void server::start_health_checks_on(worker& w0) {
  std::shared_ptr<const snapshot> snap = w0.snap;
  for (const auto& pool : snap->pools) {
    start_health_checks(w0.ioc, snap, *pool, [this, &w0, in_force = snap.get()] {
      return w0.snap.get() == in_force && !draining();
    });
  }
}

void server::start() {
  start_health_checks_on(*workers_.front());  // queued: they run once worker 0 does
  for (auto& wp : workers_) {
    worker& w = *wp;
    for (auto& slot : w.slots) {
      asio::co_spawn(w.ioc, accept_loop(w, slot), asio::detached);
    }
    schedule_sweep(w);
    if (w.redis) {
      w.redis->start();  // before the thread runs: nothing else touches it yet
    }
    if (w.revocation) {
      w.revocation->start();  // subscribes before the subscriber connects
    }
    if (w.subscriber) {
      w.subscriber->start();
    }
    if (w.sentinel_watch) {
      w.sentinel_watch->start();
    }
    if (w.key_sync) {
      w.key_sync->start();  // its first read queues behind the connect
    }
    w.thread = std::thread([&w] {
      core::set_metrics_slot(w.index);
      w.ioc.run();
    });
  }
  std::lock_guard lock(reload_mu_);
  started_ = true;
}

namespace {

// Starts a fleet operation whose callback (on worker 0) completes `answer`, and waits for it.
std::pair<std::string, long long> await_fleet(
    const std::function<void(cluster::revocation_sync::ack)>& start,
    std::chrono::milliseconds wait) {
  auto done = std::make_shared<std::promise<std::pair<std::string, long long>>>();
  auto answer = done->get_future();
  start([done](cluster::fleet_ack a, long long n) { done->set_value({cluster::to_string(a), n}); });
  if (answer.wait_for(wait) != std::future_status::ready) {
    return {"no answer", 0};
  }
  return answer.get();
}

}  // namespace

server::id_revocation server::revoke_session_id(const std::string& session_id) {
  id_revocation out;
  const auto snap = current();
  std::vector<std::uint64_t> contexts;
  for (const listener_runtime& lr : snap->listeners) {
    const auto& ids = lr.tls->context_ids();
    contexts.insert(contexts.end(), ids.begin(), ids.end());
  }
  if (sessions_) {
    // The entry's handle first: revoking it also refuses the tickets issued on that session's
    // connections (TLS 1.2 renewals, TLS 1.3 tickets), which the ID alone does not reach.
    std::vector<std::uint8_t> entry(cache::session_cache::max_slot_bytes);
    for (std::uint64_t ctx : contexts) {
      const std::size_t n = sessions_->lookup(ctx, session_id, entry.data(), entry.size());
      std::uint64_t h = 0;
      if (n != 0 &&
          !tls::decode_entry(std::string_view(reinterpret_cast<const char*>(entry.data()), n), h)
               .empty() &&
          h != 0) {
        out.handle = h;
        break;
      }
    }
    out.removed_local = sessions_->remove_all_contexts(session_id);
  }
  tls::resumption_guard& guard = revocation_->guard();
  if (out.handle != 0 && guard.set().check(out.handle, guard.now_generation()) ==
                             cache::revoked_handles::verdict::ok) {
    guard.revoke(out.handle);
    revocation_->count(revocation_source::admin);
    out.handle_fleet = revoke_handle_in_fleet(out.handle);
  } else if (out.handle != 0) {
    out.handle_fleet = fleet_revocation_ != nullptr ? "not needed" : "off";  // refused already
  }
  const auto& co = snap->opts.cluster;
  if (!co || !fleet_revocation_) {
    return out;
  }
  auto commands = cluster::revocation_commands(co->key_prefix, contexts, session_id);
  auto [fleet, deleted] = await_fleet(
      [&](cluster::revocation_sync::ack a) {
        fleet_revocation_->revoke_id(std::move(commands), std::move(a));
      },
      kFleetWait);
  out.fleet = fleet;
  out.fleet_deleted = deleted;
  return out;
}

std::string server::revoke_handle_in_fleet(std::uint64_t handle) {
  if (!fleet_revocation_) {
    return "off";
  }
  return await_fleet(
             [&](cluster::revocation_sync::ack a) {
               fleet_revocation_->revoke_handle(handle, std::move(a));
             },
             kFleetWait)
      .first;
}

server::flush_report server::flush_sessions(bool fleet_wide) {
  std::lock_guard lock(purge_mu_);
  flush_report out;
  // One second ahead: SSL_SESSION times are whole seconds, and a session of this second may
  // be older than the call.
  const std::int64_t before = core::real_clock::instance().now_s() + 1;
  revocation_->guard().set_flush_before(before);
  if (sessions_) {
    out.local = sessions_->entries_in_use();
    sessions_->clear();
  }
  if (fleet_wide && fleet_revocation_) {
    out.fleet = await_fleet(
                    [&](cluster::revocation_sync::ack a) {
                      fleet_revocation_->flush(before, std::move(a));
                    },
                    kFleetWait)
                    .first;
    fleet_revocation_->unlink_sessions();  // refused already; this frees Redis
  }
  spdlog::info("admin: session cache flushed ({} sessions here; fleet: {})", out.local, out.fleet);
  return out;
}

server::purge_report server::purge() {
  std::lock_guard lock(purge_mu_);
  purge_report out;
  tls::resumption_guard& guard = revocation_->guard();
  // Past every handle minted so far here, and past any earlier purge's (which may be ahead of
  // the clock): new handles are minted at the floor, so new sessions resume at once.
  out.floor = std::max(guard.now_generation(), guard.set().floor()) + 1;
  guard.set().raise_floor(out.floor);
  raise_to(purged_floor_, out.floor);
  // The floor refuses every session-ID entry too (each carries its handle); emptying the cache
  // frees it.
  const std::int64_t now = core::real_clock::instance().now_s();
  if (sessions_) {
    out.local = sessions_->entries_in_use();
    sessions_->clear();
  }
  revocation_->count(revocation_source::purge);
  const std::uint64_t version_before = own_purge_version_.load(std::memory_order_relaxed);
  out.ticket_keys = key_source_->purge(false, 0);
  if (fleet_revocation_) {
    out.fleet = await_fleet(
                    [&](cluster::revocation_sync::ack a) {
                      fleet_revocation_->purge(out.floor, now, 0, std::move(a));
                    },
                    kFleetWait)
                    .first;
    if (fleet_keys_ != nullptr) {
      // The new keys become the fleet's list on worker 0's next poll: wait a little for it.
      const auto deadline = std::chrono::steady_clock::now() + kFleetWait;
      while (own_purge_version_.load(std::memory_order_relaxed) == version_before &&
             std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
      const std::uint64_t v = own_purge_version_.load(std::memory_order_relaxed);
      if (v != version_before) {
        out.keys_version = v;
        out.ticket_keys = "replaced in the fleet";
      } else {
        out.ticket_keys = "replaced here; the fleet list follows when Redis answers";
      }
    }
    fleet_revocation_->unlink_sessions();
  }
  spdlog::warn(
      "admin: PURGE: handles below generation {} refused, {} cached sessions dropped, "
      "ticket keys {}, fleet {}",
      out.floor, out.local, out.ticket_keys, out.fleet);
  return out;
}

void server::stop_accepting() {
  {
    std::lock_guard lock(reload_mu_);  // no reload half-way; none after this
    if (draining_.exchange(true, std::memory_order_relaxed)) {
      // Done already (an upgrade's handover, then its drain): a worker left with nothing to
      // do has returned from its run(), and a run_on() would wait for it forever.
      return;
    }
  }
  for (auto& wp : workers_) {
    worker& w = *wp;
    run_on(w, [this, &w] {
      for (auto& slot : w.slots) {
        take_queued(w, *slot);
        boost::system::error_code ec;
        slot->acc.close(ec);
      }
      w.sweep.cancel();
      for (auto& c : w.snap->idle[w.index]) {
        c.clear();
      }
      for (connection* c : w.live) {
        c->on_drain();
      }
    });
  }
}

std::vector<std::pair<std::string, int>> server::listening_sockets() {
  std::lock_guard lock(reload_mu_);  // the slots stay as they are meanwhile
  std::vector<std::pair<std::string, int>> out;
  const std::shared_ptr<const snapshot> snap = current();
  for (auto& wp : workers_) {
    run_on(*wp, [&] {
      for (const auto& slot : wp->slots) {
        if (slot->acc.is_open() && slot->listener < snap->listeners.size()) {
          out.emplace_back(listening_key(snap->listeners[slot->listener].opts),
                           slot->acc.native_handle());
        }
      }
    });
  }
  return out;
}

void server::drain(std::chrono::milliseconds timeout) {
  stop_accepting();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (open_.load(std::memory_order_relaxed) > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (open_.load(std::memory_order_relaxed) > 0) {
    spdlog::warn("drain timeout: closing {} connection(s)", open_.load(std::memory_order_relaxed));
  }
  stop();
}

void server::stop() {
  for (auto& w : workers_) {
    w->ioc.stop();
  }
}

void server::wait() {
  for (auto& w : workers_) {
    if (w->thread.joinable()) {
      w->thread.join();
    }
  }
}

}  // namespace tlsfront::proxy
