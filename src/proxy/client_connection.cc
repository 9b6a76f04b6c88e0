#include "proxy/client_connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "http/error_response.h"
#include "http/header_rewrite.h"
#include "http/path_normalize.h"
#include "log/access_log.h"
#include "log/logging.h"
#include "log/rate_limit.h"
#include "proxy/proxy_protocol.h"
#include "tls/edge_recv.h"

namespace tlsfront::proxy {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t buffer_size = 16 * 1024;

std::int64_t micros_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t)
      .count();
}

}  // namespace

struct client_connection::exchange {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::string method, path;
  std::string upgrade;  // the protocol asked of the backend ("websocket"), or empty
  int pool = -1;
  int server = -1;
  int status = 0;
  bool reused = false;
  bool continue_sent = false;
  bool request_body_started = false;
  // The response broke off after its head (backend framing error or close, client gone or too
  // slow): the client got `bytes_sent` body bytes of it, not what the head announced.
  bool aborted = false;
  std::uint64_t bytes_sent = 0;  // body bytes the client's socket took
  std::uint64_t bytes_received = 0;
  // What the client is told if every attempt fails before a response head arrived.
  int failure_status = 502;
};

client_connection::client_connection(server& srv, worker& w, std::shared_ptr<const snapshot> snap,
                                     std::size_t listener_index, asio::ip::tcp::socket socket,
                                     const asio::ip::tcp::endpoint& ep)
    : srv_(srv),
      worker_(w),
      snap_holder_(std::move(snap)),
      snap_(*snap_holder_),
      listener_(snap_.listeners[listener_index]),
      tls_(std::move(socket), listener_.tls->new_ssl()),
      client_wd_(w.ioc.get_executor(),
                 [this] {
                   boost::system::error_code ec;
                   tls_.socket().cancel(ec);
                 }),
      in_(buffer_size),
      request_(http::message_parser::kind::request,
               {snap_.opts.limits.max_header_bytes, snap_.opts.limits.max_header_count}),
      backend_(w.ioc),
      backend_wd_(w.ioc.get_executor(),
                  [this] {
                    boost::system::error_code ec;
                    backend_.cancel(ec);
                  }),
      bin_(buffer_size),
      response_(http::message_parser::kind::response,
                {snap_.opts.limits.max_header_bytes * 4, snap_.opts.limits.max_header_count * 2}) {
  if (w.l2) {
    tls_.set_remote_store(w.l2.get(), w.lookup_timeout);
  }
  set_peer(ep);
  worker_.live.insert(this);
  srv_.metrics().active->inc();
  listener_.connections->inc();
}

client_connection::~client_connection() {
  worker_.live.erase(this);
  srv_.metrics().active->dec();
  srv_.connection_closed();
}

void client_connection::set_peer(const asio::ip::tcp::endpoint& ep) {
  client_ep_ = ep;
  asio::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  peer_ip_ = a.to_string();
  peer_ = a.is_v6() ? "[" + peer_ip_ + "]:" + std::to_string(ep.port())
                    : peer_ip_ + ":" + std::to_string(ep.port());
}

asio::awaitable<bool> client_connection::read_proxy_header() {
  std::string got;
  char buf[kMaxProxyHeader];
  const int fd = tls_.socket().native_handle();
  while (got.size() < kMaxProxyHeader) {
    const ssize_t n = ::recv(fd, buf, kMaxProxyHeader - got.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      co_return false;  // closed or broken before a whole header
    }
    if (n < 0) {
      auto [ec] = co_await tls_.socket().async_wait(asio::ip::tcp::socket::wait_read, use_tuple);
      if (ec) {
        co_return false;  // the handshake timeout cancelled the wait
      }
      continue;
    }
    // Consume what is surely header: up to its end when it is whole, everything seen so far
    // while it is not (a connection from a trusted peer starts with one).
    const proxy_parse r = parse_proxy_header(got + std::string(buf, static_cast<std::size_t>(n)));
    if (r.result == proxy_parse::status::invalid) {
      spdlog::debug("{}: {}", peer_, r.error);
      co_return false;
    }
    const std::size_t take =
        r.result == proxy_parse::status::done ? r.length - got.size() : static_cast<std::size_t>(n);
    const ssize_t consumed = ::recv(fd, buf, take, MSG_DONTWAIT);
    if (consumed != static_cast<ssize_t>(take)) {
      co_return false;
    }
    got.append(buf, take);
    if (r.result == proxy_parse::status::done) {
      if (r.has_source) {
        set_peer(r.source);
        proxied_dst_ = r.destination;
      }
      co_return true;
    }
  }
  co_return false;
}

asio::awaitable<void> client_connection::serve_tcp() {
  exchange ex;
  ex.method = "TCP";
  ex.pool = listener_.pool;
  backend_pool& pool = *snap_.pools[static_cast<std::size_t>(ex.pool)];
  const pool_options& po = pool.options();
  std::uint64_t tried = 0;
  int connected = -1;
  for (int attempts = 1 + std::max(0, po.retries); attempts > 0 && connected < 0; --attempts) {
    const int si = pool.pick(tried);
    if (si < 0) {
      break;
    }
    tried |= std::uint64_t{1} << si;
    ex.server = si;
    if (!co_await connect_backend(ex, si)) {
      continue;
    }
    pool.note_success(static_cast<std::size_t>(si));
    connected = si;
  }
  if (connected < 0) {
    log_access(ex, tried == 0 ? 503 : ex.failure_status);  // nothing to relay to
    co_return;
  }
  backend_server& bs = pool.server(static_cast<std::size_t>(connected));
  bs.active.fetch_add(1, std::memory_order_relaxed);
  if (listener_.opts.send_proxy != listener_options::proxy_header::none) {
    boost::system::error_code ignored;
    const asio::ip::tcp::endpoint dst =
        proxied_dst_.port() != 0 ? proxied_dst_ : tls_.socket().local_endpoint(ignored);
    const tls::handshake_info& info = tls_.info();
    std::string header;
    if (listener_.opts.send_proxy == listener_options::proxy_header::v1) {
      header = build_proxy_v1(client_ep_, dst);
    } else {
      const unsigned char* alpn = nullptr;
      unsigned alpn_len = 0;
      SSL_get0_alpn_selected(tls_.native(), &alpn, &alpn_len);
      header = build_proxy_v2(
          client_ep_, dst,
          proxy_tls_info{info.version, info.cipher, info.server_name,
                         std::string_view(reinterpret_cast<const char*>(alpn), alpn_len)});
    }
    backend_wd_.arm(po.read_timeout);
    auto [ec, n] = co_await asio::async_write(backend_, asio::buffer(header), use_tuple);
    backend_wd_.disarm();
    if (ec) {
      bs.active.fetch_sub(1, std::memory_order_relaxed);
      srv_.metrics().backend_errors->inc();
      log_access(ex, 502);
      co_return;
    }
  }
  ex.aborted = !co_await tunnel(po.read_timeout, ex.bytes_received, ex.bytes_sent);
  bs.active.fetch_sub(1, std::memory_order_relaxed);
  log_access(ex, 0);  // relayed: no HTTP status
}

void client_connection::on_drain() {
  if (idle_) {
    boost::system::error_code ec;
    tls_.socket().cancel(ec);
  }
}

asio::awaitable<void> client_connection::run() {
  if (!tls_.native()) {
    co_return;
  }
  client_wd_.arm(listener_.opts.tls.handshake_timeout);
  const auto& trusted = listener_.opts.trusted_proxies;
  if (std::any_of(trusted.begin(), trusted.end(),
                  [&](const network& n) { return in_network(client_ep_.address(), n); })) {
    if (!co_await read_proxy_header()) {
      client_wd_.disarm();
      listener_.proxy_header_errors->inc();
      co_return;
    }
  }
  boost::system::error_code ec = co_await tls_.handshake();
  client_wd_.disarm();
  if (ec) {
    if (client_wd_.fired()) {
      listener_.handshake_timeouts->inc();
    } else {
      listener_.handshake_failures->inc();
    }
    spdlog::debug("{}: handshake failed: {}", peer_, client_wd_.fired() ? "timeout" : ec.message());
    co_return;
  }
  const tls::handshake_info& info = tls_.info();
  int v = SSL_version(tls_.native()) >= TLS1_3_VERSION ? 1 : 0;
  listener_.handshakes[v][static_cast<int>(info.resumed)]->inc();
  listener_.handshake_us->observe(static_cast<double>(info.handshake_us));

  if (listener_.opts.mode == listener_options::mode_kind::tcp) {
    co_await serve_tcp();
  }
  while (!closing_ && listener_.opts.mode == listener_options::mode_kind::http) {
    if (co_await serve_request() == outcome::close) {
      break;
    }
  }
  // close_notify (unless the last response carried it); the socket's close(2) sends the FIN,
  // in the same segment as the last bytes when they were written with write_last().
  tls_.shutdown();
}

asio::awaitable<bool> client_connection::read_client(bool idle) {
  if (in_begin_ == in_end_) {
    in_begin_ = in_end_ = 0;
  } else if (in_end_ == in_.size()) {
    std::memmove(in_.data(), in_.data() + in_begin_, in_end_ - in_begin_);
    in_end_ -= in_begin_;
    in_begin_ = 0;
  }
  if (in_end_ == in_.size()) {
    co_return false;  // cannot happen: the parser consumes everything it is given
  }
  const auto& limits = snap_.opts.limits;
  std::chrono::steady_clock::duration wait =
      idle ? limits.client_idle_timeout : limits.client_read_timeout;
  if (!idle && head_deadline_ != std::chrono::steady_clock::time_point::max()) {
    wait = std::min(wait, head_deadline_ - std::chrono::steady_clock::now());
    if (wait <= std::chrono::steady_clock::duration::zero()) {
      wait = std::chrono::milliseconds(1);  // due now: the watchdog fires at once
    }
  }
  client_wd_.arm(wait);
  auto [ec, n] = co_await tls_.read_some(in_.data() + in_end_, in_.size() - in_end_);
  client_wd_.disarm();
  if (ec) {
    co_return false;
  }
  in_end_ += n;
  co_return true;
}

void client_connection::arm_write_timeout() {
  // Cut only when the client took nothing for client_write_timeout (tls::stream's output
  // progress), however long the whole write takes.
  client_wd_.arm_progress(
      snap_.opts.limits.client_write_timeout,
      [](void* self) noexcept {
        return static_cast<client_connection*>(self)->tls_.output_progress();
      },
      this);
}

bool client_connection::write_timed_out() {
  if (!client_wd_.fired()) {
    return false;
  }
  listener_.client_write_timeouts->inc();
  spdlog::debug("{}: cut: the client took nothing for {} ms", peer_,
                snap_.opts.limits.client_write_timeout.count());
  return true;
}

asio::awaitable<bool> client_connection::write_client(const std::string& data, bool last) {
  arm_write_timeout();
  boost::system::error_code ec = last ? co_await tls_.write_last(data.data(), data.size())
                                      : co_await tls_.write_all(data.data(), data.size());
  client_wd_.disarm();
  if (ec) {
    write_timed_out();
  }
  co_return !ec;
}

http::message_parser::status client_connection::feed_request() {
  std::size_t consumed = 0;
  auto st = request_.feed(std::string_view(in_.data() + in_begin_, in_end_ - in_begin_), consumed);
  in_begin_ += consumed;
  return st;
}

http::message_parser::status client_connection::feed_response() {
  std::size_t consumed = 0;
  auto st =
      response_.feed(std::string_view(bin_.data() + bin_begin_, bin_end_ - bin_begin_), consumed);
  bin_begin_ += consumed;
  return st;
}

int client_connection::status_for(http::parse_error e) const {
  switch (e) {
    case http::parse_error::header_too_large:
      return 431;
    case http::parse_error::not_implemented:
      return 501;
    default:
      return 400;
  }
}

asio::awaitable<client_connection::outcome> client_connection::respond_local(int status,
                                                                             bool keep_alive,
                                                                             exchange& ex) {
  ex.status = status;
  std::string_view r = http::error_response(status, keep_alive);
  bool will_keep = keep_alive && r.find("Connection: close") == std::string_view::npos;
  to_client_.assign(r);
  bool ok = co_await write_client(to_client_, !will_keep);
  // Its body went out whole, or (write failed) nothing is known to have.
  ex.bytes_sent = ok ? r.size() - (r.find("\r\n\r\n") + 4) : 0;
  ex.aborted = !ok;
  srv_.metrics().local_responses[status / 100]->inc();
  log_access(ex, status);
  if (!ok || !will_keep) {
    closing_ = true;
    if (ok) {
      co_await linger();
    }
    co_return outcome::close;
  }
  co_return outcome::keep_alive;
}

asio::awaitable<void> client_connection::linger() {
  // Closing a socket with unread input sends a TCP reset, which can destroy the error response
  // before the client reads it. Say goodbye (close_notify, FIN), then drain what the client is
  // still sending for a short while.
  tls_.shutdown();
  boost::system::error_code ec;
  tls_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  std::size_t drained = 0;
  client_wd_.arm(std::chrono::seconds(1));
  while (drained < 1024 * 1024) {
    auto [rec, n] = co_await tls_.read_some(in_.data(), in_.size());
    if (rec) {
      break;
    }
    drained += n;
  }
  client_wd_.disarm();
  in_begin_ = in_end_ = 0;
}

asio::awaitable<client_connection::outcome> client_connection::serve_request() {
  exchange ex;
  request_.reset_for_next();
  idle_ = in_begin_ == in_end_;
  if (idle_ && srv_.draining() && requests_ > 0) {
    co_return outcome::close;  // between requests while draining; a first request is served
  }
  ++requests_;
  // --- the request head ---
  for (;;) {
    if (in_begin_ == in_end_) {
      bool was_idle = idle_;
      if (!co_await read_client(was_idle)) {
        if (was_idle || !client_wd_.fired()) {
          co_return outcome::close;  // closed between requests, or went away mid-head
        }
        co_return co_await respond_local(408, false, ex);
      }
      if (idle_) {
        idle_ = false;
        ex.start = std::chrono::steady_clock::now();
        // The whole head must arrive within client_read_timeout of its first byte, however
        // slowly it trickles in (slowloris).
        head_deadline_ = ex.start + snap_.opts.limits.client_read_timeout;
      }
    }
    auto st = feed_request();
    if (st == http::message_parser::status::head_done) {
      break;
    }
    if (st == http::message_parser::status::error) {
      srv_.metrics().bad_requests->inc();
      spdlog::debug("{}: bad request: {}", peer_, request_.error_reason());
      co_return co_await respond_local(status_for(request_.error()), false, ex);
    }
  }
  idle_ = false;
  head_deadline_ = std::chrono::steady_clock::time_point::max();
  const http::message_head& h = request_.head();
  ex.method.assign(h.method);
  ex.path.assign(h.target);
  bool request_has_body = h.chunked || h.content_length.value_or(0) > 0;
  bool keep_alive = h.keep_alive && h.version_minor == 1 && !srv_.draining();

  // Routing and the backend see the normalized path; a path that cannot be normalized safely
  // (climbs above the root, encoded slash, bad escape, NUL) is refused.
  target_.clear();
  if (h.target == "*") {
    target_.assign(h.target);
  } else if (http::path_error pe = http::normalize_target(
                 h.target, http::path_options{listener_.opts.allow_encoded_slashes}, target_);
             pe != http::path_error::none) {
    srv_.metrics().bad_requests->inc();
    spdlog::debug("{}: bad request path: {}", peer_, http::describe(pe));
    co_return co_await respond_local(400, false, ex);
  }
  // An HTTP/1.0 request may lack Host: route it (and name it to the backend) by its SNI name.
  const router::target* route = snap_.routes->match(
      h.host.empty() ? std::string_view(tls_.info().server_name) : h.host, target_);
  if (route == nullptr) {
    co_return co_await respond_local(404, keep_alive && !request_has_body, ex);
  }
  ex.pool = route->pool;
  ex.upgrade = upgrade_for(h, *route);
  std::uint64_t max_body = snap_.opts.limits.max_body_bytes;
  if (max_body > 0 && h.content_length.value_or(0) > max_body) {
    co_return co_await respond_local(413, false, ex);
  }

  int status = co_await forward(ex);
  if (status < 0) {
    // The error response (if one could be sent) is out; the connection cannot continue.
    closing_ = true;
    co_return outcome::close;
  }
  co_return closing_ || !keep_alive ? outcome::close : outcome::keep_alive;
}

std::string client_connection::upgrade_for(const http::message_head& h,
                                           const router::target& route) {
  // An upgrade is a GET/1.1 with "Connection: upgrade" and an Upgrade protocol the route
  // allows. h2c is never one: HTTP/2 over TLS is negotiated by ALPN (RFC 9113 section 3.2).
  // Anything else is dropped from the request, which then goes on as a plain one.
  if (!h.upgrade || h.method != "GET" || h.version_minor != 1 ||
      !http::names_in_connection(h, "upgrade")) {
    return {};
  }
  for (const http::header_field& f : h.headers) {
    if (!http::iequals(f.name, "upgrade")) {
      continue;
    }
    for (const std::string& protocol : http::header_tokens(f.value)) {
      if (protocol != "h2c" && std::find(route.upgrades.begin(), route.upgrades.end(), protocol) !=
                                   route.upgrades.end()) {
        return protocol;
      }
    }
  }
  return {};
}

asio::awaitable<bool> client_connection::tunnel(std::chrono::milliseconds idle,
                                                std::uint64_t& to_backend,
                                                std::uint64_t& to_client) {
  tunnel_state t;
  t.idle = idle;
  tls_.set_edge_reads(false);  // waits here send nothing first (tls/edge_recv.h on RSTs)
  watchdog wd(worker_.ioc.get_executor(), [this, &t] {
    if (t.writing_to_client) {
      t.wd->arm(t.idle);  // not idle: the write in flight has client_write_timeout for a bound
      return;
    }
    abort_tunnel(t);
  });
  t.wd = &wd;
  wd.arm(idle);
  using namespace asio::experimental::awaitable_operators;
  co_await (pump_to_backend(t) && pump_to_client(t));
  to_backend = t.to_backend;
  to_client = t.to_client;
  co_return !t.failed;
}

void client_connection::abort_tunnel(tunnel_state& t) {
  t.failed = true;
  boost::system::error_code ignored;
  backend_.close(ignored);
  tls_.socket().cancel(ignored);
}

asio::awaitable<void> client_connection::pump_to_backend(tunnel_state& t) {
  // Bytes the client sent after its request head (or first, in TCP mode) go first.
  while (!t.failed) {
    if (in_begin_ == in_end_) {
      auto [ec, n] = co_await tls_.read_some(in_.data(), in_.size());
      if (ec || t.failed) {
        if (ec == asio::error::eof && !t.failed) {
          // The client is done sending (close_notify or FIN): half-close towards the backend,
          // whose answer may still be coming.
          boost::system::error_code ignored;
          backend_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        } else {
          abort_tunnel(t);
        }
        co_return;
      }
      in_begin_ = 0;
      in_end_ = n;
    }
    t.wd->arm(t.idle);
    const std::size_t len = in_end_ - in_begin_;
    auto [wec, written] =
        co_await asio::async_write(backend_, asio::buffer(in_.data() + in_begin_, len), use_tuple);
    in_begin_ = in_end_ = 0;
    if (wec) {
      abort_tunnel(t);
      co_return;
    }
    t.to_backend += written;
  }
}

asio::awaitable<void> client_connection::pump_to_client(tunnel_state& t) {
  while (!t.failed) {
    if (bin_begin_ == bin_end_) {
      // A plain receive: this wait sends nothing first (tls/edge_recv.h on RSTs).
      auto [ec, n] = co_await backend_.async_read_some(asio::buffer(bin_), use_tuple);
      if (ec || t.failed) {
        if (ec == asio::error::eof && !t.failed) {
          // The backend is done: tell the client (close_notify, FIN); its side may still send.
          tls_.shutdown();
          boost::system::error_code ignored;
          tls_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        } else {
          abort_tunnel(t);
        }
        co_return;
      }
      bin_begin_ = 0;
      bin_end_ = n;
    }
    t.wd->arm(t.idle);
    const std::size_t len = bin_end_ - bin_begin_;
    // While the client takes these bytes the tunnel is not idle; the write is cut only if the
    // client takes nothing for client_write_timeout.
    t.writing_to_client = true;
    arm_write_timeout();
    boost::system::error_code wec = co_await tls_.write_all(bin_.data() + bin_begin_, len);
    client_wd_.disarm();
    t.writing_to_client = false;
    t.wd->arm(t.idle);
    bin_begin_ = bin_end_ = 0;
    if (wec) {
      write_timed_out();
      abort_tunnel(t);
      co_return;
    }
    t.to_client += len;
  }
}

asio::awaitable<bool> client_connection::connect_backend(exchange& ex, int server_index) {
  backend_pool& pool = *snap_.pools[ex.pool];
  const auto si = static_cast<std::size_t>(server_index);
  backend_ = asio::ip::tcp::socket(worker_.ioc);
  backend_wd_.arm(pool.options().connect_timeout);
  auto [ec] = co_await backend_.async_connect(pool.server(si).endpoint, use_tuple);
  backend_wd_.disarm();
  if (backend_wd_.fired()) {
    ec = asio::error::timed_out;
  }
  if (ec) {
    pool.stats().connect_errors->inc();
    pool.note_failure(si);
    ex.failure_status = ec == asio::error::timed_out ? 504 : 502;
    static log::rate_limiter connect_log;
    log::limited(connect_log, spdlog::level::warn, "pool {}: connect to {} failed: {}",
                 pool.options().name, pool.server(si).name, ec.message());
    co_return false;
  }
  boost::system::error_code ignored;
  backend_.set_option(asio::ip::tcp::no_delay(true), ignored);
  tls::enable_inq(backend_.native_handle());  // waits for responses cost no recv (tls/edge_recv.h)
  pool.stats().connects->inc();
  co_return true;
}

asio::awaitable<boost::system::error_code> client_connection::read_backend(std::size_t& n) {
  if (bin_begin_ == bin_end_) {
    bin_begin_ = bin_end_ = 0;
  } else if (bin_end_ == bin_.size()) {
    std::memmove(bin_.data(), bin_.data() + bin_begin_, bin_end_ - bin_begin_);
    bin_end_ -= bin_begin_;
    bin_begin_ = 0;
  }
  // Waiting for a response costs no system call until it is there (tls/edge_recv.h).
  tls::recv_buffer target{bin_.data() + bin_end_, bin_.size() - bin_end_};
  auto [ec, got] = co_await tls::async_edge_recv(backend_, target, use_tuple);
  if (backend_wd_.fired()) {
    ec = asio::error::timed_out;
  }
  bin_end_ += got;
  n = got;
  co_return ec;
}

asio::awaitable<int> client_connection::forward(exchange& ex) {
  backend_pool& pool = *snap_.pools[ex.pool];
  idle_cache& cache = snap_.idle[worker_.index][static_cast<std::size_t>(ex.pool)];
  // Pooled connections go back only into the worker's current snapshot (a reload clears the
  // old one's and nothing may refill it).
  const bool current_config = worker_.snap.get() == &snap_;
  const pool_options& po = pool.options();
  const http::message_head& h = request_.head();
  const bool has_body = h.chunked || h.content_length.value_or(0) > 0;
  const bool idempotent = http::is_idempotent(h.method);
  const http::body_framing req_framing =
      h.chunked
          ? http::body_framing::chunked
          : (h.content_length ? http::body_framing::content_length : http::body_framing::none);
  const bool head_request = h.method == "HEAD";
  const std::uint64_t max_body = snap_.opts.limits.max_body_bytes;

  // The head for the backend, then whatever body bytes already arrived with it, parsed before
  // any backend is touched: a malformed body that came in the same read never reaches one.
  std::string& prefix = prefix_;  // a member: its capacity serves every request
  prefix.clear();
  http::build_backend_request(
      h,
      http::forwarded_info{peer_ip_, "https", tls_.info().server_name, ex.upgrade, target_,
                           listener_.opts.drop_client_headers},
      req_framing, prefix);
  request_.set_body_output(&prefix, req_framing);
  bool whole_request_buffered = false;
  {
    auto st = feed_request();
    if (st == http::message_parser::status::error) {
      srv_.metrics().bad_requests->inc();
      co_await respond_local(status_for(request_.error()), false, ex);
      co_return -1;
    }
    if (max_body > 0 && request_.body_bytes() > max_body) {
      co_await respond_local(413, false, ex);
      co_return -1;
    }
    whole_request_buffered = st == http::message_parser::status::message_done;
  }
  ex.request_body_started = request_.body_bytes() > 0;

  std::uint64_t tried = 0;
  int attempts_left = 1 + std::max(0, po.retries);
  while (attempts_left-- > 0) {
    int si = pool.pick(tried);
    if (si < 0) {
      break;
    }
    if (tried != 0) {
      pool.stats().retries->inc();  // a second (or later) attempt really starts
    }
    tried |= std::uint64_t{1} << si;
    ex.server = si;
    backend_server& bs = pool.server(static_cast<std::size_t>(si));

    // --- a connection ---
    ex.reused = cache.take(static_cast<std::size_t>(si), backend_);
    if (ex.reused) {
      pool.stats().reused->inc();
    } else {
      if (!co_await connect_backend(ex, si)) {
        continue;  // nothing was sent: any request may go to the next server
      }
    }
    bs.active.fetch_add(1, std::memory_order_relaxed);
    struct active_guard {
      backend_server& s;
      ~active_guard() { s.active.fetch_sub(1, std::memory_order_relaxed); }
    } guard{bs};

    // --- the request head, then the body streamed from the client ---
    if (h.expect_continue && has_body && h.version_minor == 1 && !ex.continue_sent) {
      ex.continue_sent = true;
      to_client_.assign(http::continue_response());
      if (!co_await write_client(to_client_)) {
        co_return -1;
      }
    }
    // `prefix` (head + the body bytes that came with it) is kept whole until a backend took it,
    // so a write failure on a pooled connection the backend had closed can be retried.
    bool request_sent = false;
    bool stale = false;
    backend_wd_.arm(po.read_timeout);
    auto [prefix_ec, prefix_n] =
        co_await asio::async_write(backend_, asio::buffer(prefix), use_tuple);
    backend_wd_.disarm();
    if (prefix_ec && backend_wd_.fired()) {
      srv_.metrics().backend_timeouts->inc();
      backend_ = asio::ip::tcp::socket(worker_.ioc);
      ex.failure_status = 504;
      break;
    } else if (prefix_ec) {
      stale = ex.reused;
    } else if (whole_request_buffered) {
      request_sent = true;
    } else {
      // Stream the rest of the body from the client.
      out_.clear();
      request_.set_body_output(&out_, req_framing);
      for (;;) {
        if (in_begin_ == in_end_ && !co_await read_client(false)) {
          backend_ = asio::ip::tcp::socket(worker_.ioc);
          if (client_wd_.fired()) {
            co_await respond_local(408, false, ex);
          }
          co_return -1;  // the client went away mid-body
        }
        auto st = feed_request();
        ex.request_body_started = true;
        if (st == http::message_parser::status::error) {
          srv_.metrics().bad_requests->inc();
          backend_ = asio::ip::tcp::socket(worker_.ioc);  // half a request went out: discard
          co_await respond_local(status_for(request_.error()), false, ex);
          co_return -1;
        }
        if (max_body > 0 && request_.body_bytes() > max_body) {
          backend_ = asio::ip::tcp::socket(worker_.ioc);
          co_await respond_local(413, false, ex);
          co_return -1;
        }
        if (!out_.empty()) {
          backend_wd_.arm(po.read_timeout);
          auto [ec, n] = co_await asio::async_write(backend_, asio::buffer(out_), use_tuple);
          backend_wd_.disarm();
          out_.clear();
          if (ec) {
            break;
          }
        }
        if (st == http::message_parser::status::message_done) {
          request_sent = true;
          break;
        }
      }
    }
    ex.bytes_received = request_.body_bytes();
    request_.set_body_output(nullptr, http::body_framing::none);
    if (!request_sent) {
      backend_ = asio::ip::tcp::socket(worker_.ioc);
      if (stale && idempotent) {
        ++attempts_left;  // a stale pooled connection does not use up an attempt
        tried &= ~(std::uint64_t{1} << si);
        continue;
      }
      srv_.metrics().backend_errors->inc();
      ex.failure_status = 502;
      break;
    }

    // --- the response head ---
    response_.reset_for_next();
    response_.set_no_body_expected(head_request);
    response_.set_upgrade_expected(!ex.upgrade.empty());
    bin_begin_ = bin_end_ = 0;
    bool got_any = false;
    bool head_ok = false;
    bool retry = false;
    backend_wd_.arm(po.read_timeout);
    for (;;) {
      if (bin_begin_ == bin_end_) {
        std::size_t n = 0;
        boost::system::error_code ec = co_await read_backend(n);
        if (ec) {
          if (ec == asio::error::timed_out) {
            srv_.metrics().backend_timeouts->inc();
            ex.failure_status = 504;
          } else if (!got_any && ex.reused && idempotent && whole_request_buffered) {
            retry = true;  // a pooled connection closed under us: the request was not seen
          } else {
            srv_.metrics().backend_errors->inc();
            ex.failure_status = 502;
          }
          break;
        }
        got_any = true;
        backend_wd_.arm(po.read_timeout);
      }
      auto st = feed_response();
      if (st == http::message_parser::status::error) {
        srv_.metrics().backend_errors->inc();
        static log::rate_limiter bad_response_log;
        log::limited(bad_response_log, spdlog::level::warn, "pool {}: bad response from {}: {}",
                     po.name, bs.name, response_.error_reason());
        ex.failure_status = 502;
        break;
      }
      if (st == http::message_parser::status::head_done) {
        int s = response_.head().status;
        if (s >= 100 && s < 200 && s != 101) {
          // Interim response (100, 102, 103): tlsfront answered Expect itself; drop it.
          feed_response();  // completes the interim message
          response_.reset_for_next();
          response_.set_no_body_expected(head_request);
          response_.set_upgrade_expected(!ex.upgrade.empty());
          continue;
        }
        head_ok = true;
        break;
      }
    }
    if (!head_ok) {
      backend_wd_.disarm();
      backend_ = asio::ip::tcp::socket(worker_.ioc);
      if (retry) {
        ++attempts_left;
        tried &= ~(std::uint64_t{1} << si);
        continue;
      }
      pool.note_failure(static_cast<std::size_t>(si));
      break;
    }
    pool.note_success(static_cast<std::size_t>(si));
    if (response_.head().status == 101) {
      // Switched (only possible when this request asked for it): the 101 goes to the client,
      // then bytes flow both ways untouched until both sides are done or idle too long.
      const http::message_head& uh = response_.head();
      ex.status = 101;
      to_client_.clear();
      http::build_client_response(uh, http::body_framing::none, false, to_client_,
                                  uh.find("upgrade").value_or(std::string_view(ex.upgrade)));
      backend_wd_.disarm();
      ex.aborted = true;
      if (co_await write_client(to_client_)) {
        ex.aborted = !co_await tunnel(po.read_timeout, ex.bytes_received, ex.bytes_sent);
      }
      backend_ = asio::ip::tcp::socket(worker_.ioc);
      pool.requests(1).inc();
      log_access(ex, 101);
      closing_ = true;
      co_return 101;
    }

    // --- the response, streamed to the client ---
    const http::message_head& rh = response_.head();
    ex.status = rh.status;
    const bool no_body = head_request || rh.status == 204 || rh.status == 304;
    http::body_framing head_framing = http::body_framing::none;
    http::body_framing body_framing = http::body_framing::none;
    if (rh.chunked || response_.body_until_close()) {
      head_framing = body_framing = http::body_framing::chunked;
    } else if (rh.content_length) {
      head_framing = body_framing = http::body_framing::content_length;
    }
    if (no_body) {
      body_framing = http::body_framing::none;
      if (rh.status == 204 || rh.status == 304) {
        head_framing = http::body_framing::none;
      }
    }
    bool close_client = !h.keep_alive || h.version_minor == 0 || srv_.draining();
    if (h.version_minor == 0 && head_framing == http::body_framing::chunked) {
      // HTTP/1.0 has no chunked coding: the body ends when tlsfront closes the connection.
      head_framing = body_framing = http::body_framing::none;
    }
    to_client_.clear();
    http::build_client_response(rh, head_framing, close_client, to_client_);
    response_.set_body_output(no_body ? nullptr : &to_client_, body_framing);
    bool complete = false;
    bool client_ok = true;
    bool head_written = false;  // a body error before any byte left answers 502 instead
    bool bad_before_client = false;
    for (;;) {
      auto st = feed_response();
      if (st == http::message_parser::status::error) {
        srv_.metrics().backend_errors->inc();
        bad_before_client = !head_written;
        break;
      }
      if (!to_client_.empty() &&
          (to_client_.size() >= 8192 || st == http::message_parser::status::message_done ||
           bin_begin_ == bin_end_)) {
        const bool last = close_client && st == http::message_parser::status::message_done;
        head_written = true;
        if (!co_await write_client(to_client_, last)) {
          client_ok = false;
          break;
        }
        to_client_.clear();
        ex.bytes_sent = response_.body_bytes();  // all parsed so far was in to_client_
      }
      if (st == http::message_parser::status::message_done) {
        complete = true;
        break;
      }
      if (bin_begin_ == bin_end_) {
        std::size_t n = 0;
        backend_wd_.arm(po.read_timeout);
        boost::system::error_code ec = co_await read_backend(n);
        if (ec == asio::error::eof && response_.body_until_close()) {
          if (response_.finish() == http::message_parser::status::message_done) {
            if (!to_client_.empty() && !co_await write_client(to_client_, close_client)) {
              client_ok = false;
            }
            complete = client_ok;
            if (client_ok) {
              ex.bytes_sent = response_.body_bytes();
            }
          }
          break;
        }
        if (ec) {
          if (ec == asio::error::timed_out) {
            srv_.metrics().backend_timeouts->inc();
          } else {
            srv_.metrics().backend_errors->inc();
          }
          break;
        }
      }
    }
    backend_wd_.disarm();
    if (bad_before_client) {
      // The response broke (bad chunk framing, ...) before anything of it reached the client.
      spdlog::debug("pool {}: bad response body from {}: {}", po.name, bs.name,
                    response_.error_reason());
      backend_ = asio::ip::tcp::socket(worker_.ioc);
      to_client_.clear();
      ex.failure_status = 502;
      break;
    }
    ex.aborted = !complete;
    if (!complete && client_ok) {
      static log::rate_limiter broke_off_log;
      log::limited(
          broke_off_log, spdlog::level::warn,
          "pool {}: response from {} broke off after {} body bytes: {}", po.name, bs.name,
          response_.body_bytes(),
          response_.error_reason().empty() ? "closed or timed out" : response_.error_reason());
    }
    bool reusable = complete && rh.keep_alive && !response_.body_until_close() &&
                    bin_begin_ == bin_end_ && rh.version_minor == 1;
    if (reusable && current_config) {
      cache.put(static_cast<std::size_t>(si), std::move(backend_));
      backend_ = asio::ip::tcp::socket(worker_.ioc);
    } else {
      backend_ = asio::ip::tcp::socket(worker_.ioc);
    }
    pool.requests(rh.status / 100 >= 1 && rh.status / 100 <= 5 ? rh.status / 100 : 5).inc();
    log_access(ex, rh.status);
    if (!complete || !client_ok || close_client) {
      closing_ = true;
    }
    co_return rh.status;
  }

  // Every attempt failed before a response head: tlsfront answers.
  if (tried == 0 && ex.server < 0) {
    ex.failure_status = 503;  // every server is cooling down
  }
  // The client's connection stays usable only if its whole request was read.
  bool keep = (whole_request_buffered || !has_body) && h.keep_alive && h.version_minor == 1 &&
              !srv_.draining();
  co_await respond_local(ex.failure_status, keep, ex);
  co_return closing_ ? -1 : ex.failure_status;
}

void client_connection::log_access(const exchange& ex, int status) {
  if (log::access_logger() == nullptr) {
    return;
  }
  const tls::handshake_info& info = tls_.info();
  std::string upstream = "-";
  if (ex.pool >= 0 && ex.server >= 0) {
    upstream = snap_.pools[ex.pool]->server(static_cast<std::size_t>(ex.server)).name;
  }
  log::access_record r;
  r.client = peer_;
  r.sni = info.server_name;
  r.tls_version = info.version;
  r.cipher = info.cipher;
  r.resumed = tls::resumption_name(info.resumed);
  r.handshake_us = info.handshake_us;
  r.method = ex.method.empty() ? std::string_view("-") : std::string_view(ex.method);
  r.path = ex.path.empty() ? std::string_view("-") : std::string_view(ex.path);
  r.status = status;
  r.bytes_sent = ex.bytes_sent;
  r.bytes_received = ex.bytes_received;
  r.aborted = ex.aborted;
  r.upstream = upstream;
  r.duration_us = micros_since(ex.start);
  log::write_access(r);
}

}  // namespace tlsfront::proxy
