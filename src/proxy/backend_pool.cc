#include "proxy/backend_pool.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "tls/edge_recv.h"

namespace tlsfront::proxy {
namespace {

struct probe_result {
  bool tried = false;
  long n = 0;
  int error = 0;
};

tls::recv_result peek_into(void* target, int fd) noexcept {
  auto* p = static_cast<probe_result*>(target);
  p->tried = true;
  char byte;
  tls::recv_result r;
  r.n = ::recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  r.error = r.n < 0 ? errno : 0;
  p->n = r.n;
  p->error = r.error;
  return r;
}

// Whether a pooled connection is still open and silent. The probe is a peek started as an
// edge-triggered reactor receive (tls/edge_recv.h): when the connection's last receive drained it
// and no epoll event came since (the backend sent nothing: no FIN, no bytes), the reactor does not
// even try it, so the common case costs no system call; otherwise one MSG_PEEK says. The probe is
// then cancelled (no system call either) and its completion does nothing.
bool still_open(asio::ip::tcp::socket& s) {
  probe_result p;
#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
  peek_into(&p, s.native_handle());  // no reactor state to consult: peek every time
#else
  tls::async_edge_recv(s, &peek_into, &p, asio::detached);
  boost::system::error_code ignored;
  s.cancel(ignored);
  if (!p.tried) {
    return true;
  }
#endif
  return p.n < 0 && (p.error == EAGAIN || p.error == EWOULDBLOCK);
}

std::int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

std::shared_ptr<backend_health> health_registry::get(const std::string& pool,
                                                     const std::string& server) {
  std::lock_guard lock(mu_);
  auto& h = by_name_[pool + "\n" + server];
  if (!h) {
    h = std::make_shared<backend_health>();
    const std::string l = "pool=\"" + pool + "\",server=\"" + server + "\"";
    h->checks_ok = &metrics_.add_counter("tlsfront_backend_health_checks_total",
                                         "Active health checks, by result", l + ",result=\"ok\"");
    h->checks_failed =
        &metrics_.add_counter("tlsfront_backend_health_checks_total",
                              "Active health checks, by result", l + ",result=\"failed\"");
    h->ejections = &metrics_.add_counter(
        "tlsfront_backend_ejections_total",
        "Times a server was taken out of rotation by passive health (max_fails in a row)", l);
    metrics_.add_gauge_fn("tlsfront_backend_up",
                          "1 if the server takes requests now (health checks up, not ejected)", l,
                          [hp = h.get()] { return hp->usable(steady_ms()) ? 1.0 : 0.0; });
  }
  return h;
}

std::unique_ptr<backend_pool> backend_pool::create(const pool_options& opts,
                                                   core::metrics_registry& metrics,
                                                   health_registry& health, std::string& error) {
  std::unique_ptr<backend_pool> p(new backend_pool());
  p->opts_ = opts;
  if (opts.servers.empty() || opts.servers.size() > 64) {
    error = "pool " + opts.name + " needs 1 to 64 servers";
    return nullptr;
  }
  asio::io_context resolver_ctx;
  asio::ip::tcp::resolver resolver(resolver_ctx);
  for (const backend_server_options& s : opts.servers) {
    auto srv = std::make_unique<backend_server>();
    srv->name = s.host + ":" + std::to_string(s.port);
    boost::system::error_code ec;
    auto results = resolver.resolve(s.host, std::to_string(s.port),
                                    asio::ip::resolver_base::numeric_service, ec);
    if (ec || results.empty()) {
      error = "pool " + opts.name + ": cannot resolve " + srv->name + ": " + ec.message();
      return nullptr;
    }
    srv->endpoint = results.begin()->endpoint();
    srv->host = s.host;
    srv->health = health.get(opts.name, srv->name);
    if (opts.health.type == health_check_options::kind::none) {
      srv->health->up.store(true, std::memory_order_relaxed);  // checks removed by a reload
    }
    p->servers_.push_back(std::move(srv));
  }
  std::string pool_label = "pool=\"" + opts.name + "\"";
  p->stats_.connects = &metrics.add_counter("tlsfront_backend_connects_total",
                                            "New connections opened to backends", pool_label);
  p->stats_.connect_errors =
      &metrics.add_counter("tlsfront_backend_connect_errors_total",
                           "Backend connections refused, unreachable or timed out", pool_label);
  p->stats_.reused =
      &metrics.add_counter("tlsfront_backend_reused_total",
                           "Requests sent on a pooled keep-alive connection", pool_label);
  p->stats_.retries =
      &metrics.add_counter("tlsfront_backend_retries_total",
                           "Requests retried on another connection or server", pool_label);
  for (int c = 1; c <= 5; ++c) {
    p->requests_[c] = &metrics.add_counter("tlsfront_requests_total",
                                           "Requests answered, by backend pool and status class",
                                           pool_label + ",class=\"" + std::to_string(c) + "xx\"");
  }
  return p;
}

int backend_pool::pick(std::uint64_t tried) {
  const std::int64_t now = steady_ms();
  const std::size_t n = servers_.size();
  auto usable = [&](std::size_t i) {
    // Relaxed: a stale cool-down read only means one extra or one skipped attempt.
    return (tried & (std::uint64_t{1} << i)) == 0 && servers_[i]->health->usable(now);
  };
  if (opts_.balance == balance_policy::least_connections) {
    int best = -1;
    int best_active = 0;
    // Start at a rotating offset so ties spread instead of piling onto server 0.
    unsigned start = cursor_.fetch_add(1, std::memory_order_relaxed);
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = (start + k) % n;
      if (!usable(i)) {
        continue;
      }
      int a = servers_[i]->active.load(std::memory_order_relaxed);
      if (best < 0 || a < best_active) {
        best = static_cast<int>(i);
        best_active = a;
      }
    }
    return best;
  }
  unsigned start = cursor_.fetch_add(1, std::memory_order_relaxed);
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t i = (start + k) % n;
    if (usable(i)) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

void backend_pool::note_failure(std::size_t i) {
  backend_health& h = *servers_[i]->health;
  if (opts_.max_fails <= 0) {
    return;
  }
  if (h.fails.fetch_add(1, std::memory_order_relaxed) + 1 >= opts_.max_fails) {
    h.fails.store(0, std::memory_order_relaxed);
    h.ejected_until.store(steady_ms() + opts_.cooldown.count(), std::memory_order_relaxed);
    h.ejections->inc();
  }
}

void backend_pool::note_success(std::size_t i) {
  servers_[i]->health->fails.store(0, std::memory_order_relaxed);
}

std::size_t backend_pool::servers_up() const {
  const std::int64_t now = steady_ms();
  std::size_t n = 0;
  for (const auto& s : servers_) {
    n += s->health->usable(now) ? 1 : 0;
  }
  return n;
}

idle_cache::idle_cache(std::size_t servers, std::size_t max_idle,
                       std::chrono::milliseconds idle_timeout)
    : idle_(servers), max_idle_(max_idle), idle_timeout_(idle_timeout) {
  for (auto& q : idle_) {
    q.reserve(std::min<std::size_t>(max_idle_, 1024));
  }
}

bool idle_cache::take(std::size_t i, asio::ip::tcp::socket& out) {
  auto& q = idle_[i];
  const auto now = std::chrono::steady_clock::now();
  while (!q.empty()) {
    entry e = std::move(q.back());  // most recently used first: warmest, least likely closed
    q.pop_back();
    if (now - e.since > idle_timeout_) {
      continue;  // the socket closes as `e` goes out of scope
    }
    if (!still_open(e.socket)) {
      continue;  // closed by the backend, unexpected bytes, or broken
    }
    out = std::move(e.socket);
    return true;
  }
  return false;
}

void idle_cache::put(std::size_t i, asio::ip::tcp::socket s) {
  auto& q = idle_[i];
  if (q.size() >= max_idle_) {
    return;  // full: `s` closes here
  }
  q.push_back(entry{std::move(s), std::chrono::steady_clock::now()});
}

void idle_cache::sweep() {
  const auto now = std::chrono::steady_clock::now();
  for (auto& q : idle_) {
    auto fresh = std::find_if(q.begin(), q.end(),
                              [&](const entry& e) { return now - e.since <= idle_timeout_; });
    q.erase(q.begin(), fresh);  // the stale ones close here
  }
}

void idle_cache::clear() {
  for (auto& q : idle_) {
    q.clear();
  }
}

}  // namespace tlsfront::proxy
