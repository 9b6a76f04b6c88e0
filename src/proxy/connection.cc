#include "proxy/connection.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <type_traits>

#include "log/access_log.h"
#include "log/logging.h"
#include "proxy/exchange.h"
#include "proxy/h2_session.h"
#include "proxy/http1_session.h"
#include "proxy/proxy_protocol.h"
#include "proxy/tcp_session.h"
#include "tls/early_data.h"
#include "tls/session_handle.h"

namespace tlsfront::proxy {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t buffer_size = 16 * 1024;

std::int64_t micros_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t)
      .count();
}

}  // namespace

connection::connection(worker& w, std::shared_ptr<const snapshot> snap, std::size_t listener_index,
                       asio::ip::tcp::socket socket, const asio::ip::tcp::endpoint& ep)
    : worker_(w),
      snap_holder_(std::move(snap)),
      snap_(*snap_holder_),
      listener_(snap_.listeners[listener_index]),
      tls_(std::move(socket), listener_.tls->new_ssl()),
      client_wd_(w.ioc.get_executor(),
                 [this] {
                   boost::system::error_code ec;
                   tls_.socket().cancel(ec);
                 }),
      in_(buffer_size) {
  if (w.l2) {
    tls_.set_remote_store(w.l2.get(), w.lookup_timeout);
  }
  tls_.set_guard(w.server.guard);
  tls_.set_early_data(&listener_.early);
  set_peer(ep);
  worker_.live.insert(this);
  metrics().active->inc();
  listener_.connections->inc();
}

connection::~connection() {
  worker_.live.erase(this);
  metrics().active->dec();
  worker_.server.connection_closed();
}

void connection::set_peer(const asio::ip::tcp::endpoint& ep) {
  client_ep_ = ep;
  asio::ip::address a = ep.address();
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  peer_ip_ = a.to_string();
  peer_ = a.is_v6() ? "[" + peer_ip_ + "]:" + std::to_string(ep.port())
                    : peer_ip_ + ":" + std::to_string(ep.port());
}

void connection::on_drain() {
  if (drain_hook_ != nullptr) {
    drain_hook_->on_drain();
  }
}

asio::awaitable<void> connection::run() {
  if (!tls_.native()) {
    co_return;
  }
  client_wd_.arm(listener_.opts.tls.handshake_timeout);
  const auto& trusted = listener_.opts.trusted_proxies;
  if (std::any_of(trusted.begin(), trusted.end(),
                  [&](const network& n) { return in_network(client_ep_.address(), n); })) {
    trusted_peer_ = true;
    if (!co_await read_proxy_header()) {
      client_wd_.disarm();
      listener_.proxy_header_errors->inc();
      co_return;
    }
  }
  if (!co_await handshake()) {
    co_return;
  }
  co_await dispatch();
  if (tls_.in_early_data()) {
    co_await settle_handshake();
  }
  // close_notify (unless the last response carried it); the socket's close(2) sends the FIN,
  // in the same segment as the last bytes when they were written with write_last().
  tls_.shutdown();
}

asio::awaitable<bool> connection::handshake() {
  boost::system::error_code ec = co_await tls_.handshake();
  client_wd_.disarm();
  count_early_data();  // a replayed flight fails its handshake: its refusal still counts
  if (ec) {
    if (client_wd_.fired()) {
      listener_.handshake_timeouts->inc();
    } else {
      listener_.handshake_failures->inc();
    }
    spdlog::debug("{}: handshake failed: {}", peer_, client_wd_.fired() ? "timeout" : ec.message());
    const tls::client_cert_result cert = tls_.info().client_cert;
    if (tls::is_client_cert_failure(cert) && client_auth_on()) {
      listener_.client_certs[static_cast<int>(cert)]->inc();
      request_record rec;
      rec.protocol = "-";
      record_request(rec, 0);  // the access-log line of a refused client certificate
    }
    co_return false;
  }
  const tls::handshake_info& info = tls_.info();
  if (core::counter* c = listener_.client_certs[static_cast<int>(info.client_cert)]) {
    c->inc();  // verified or none (null for not_asked)
  }
  int v = SSL_version(tls_.native()) >= TLS1_3_VERSION ? 1 : 0;
  listener_.handshakes[v][static_cast<int>(info.resumed)]->inc();
  listener_.handshake_us->observe(static_cast<double>(info.handshake_us));
  co_return true;
}

void connection::count_early_data() {
  const tls::handshake_info& info = tls_.info();
  if (!info.early_offered) {
    return;
  }
  metrics().early_offered->inc();
  const tls::early_reason why = tls::early_outcome(tls_.native(), info);
  if (why == tls::early_reason::none) {
    metrics().early_accepted->inc();
    return;
  }
  metrics().early_rejected[static_cast<int>(why)]->inc();
  spdlog::debug("{}: early data not accepted: {} ({})", peer_, tls::early_reason_name(why),
                SSL_early_data_reason_string(SSL_get_early_data_reason(tls_.native())));
}

connection::early_plan connection::plan_early(const router::target& route, std::string_view method,
                                              bool has_body) {
  if (!tls_.in_early_data()) {
    return early_plan::confirmed;
  }
  const bool allowed = std::find(route.early_methods.begin(), route.early_methods.end(), method) !=
                       route.early_methods.end();
  const bool within = tls_.early_bytes() <= listener_.early.opts.max_bytes;
  if (allowed && !has_body && within) {
    metrics().early_requests->inc();
    return early_plan::early;
  }
  if (!within && !too_large_counted_) {
    too_large_counted_ = true;
    metrics().early_rejected[static_cast<int>(tls::early_reason::too_large)]->inc();
  }
  metrics().early_waited->inc();
  return early_plan::wait;
}

asio::awaitable<bool> connection::wait_for_handshake() {
  // A full buffer cannot stop it: early data is at most 14336 bytes of a 16 KiB buffer. Each
  // co_await's result is kept in a variable first (see http1_session::run(): GCC 12).
  // One deadline for the whole wait, however the client's bytes trickle in.
  const auto deadline = std::chrono::steady_clock::now() + snap_.opts.limits.client_read_timeout;
  bool ok = true;
  while (ok && tls_.in_early_data()) {
    const auto left = std::max<std::chrono::steady_clock::duration>(
        deadline - std::chrono::steady_clock::now(), std::chrono::milliseconds(1));
    const bool got = co_await read_client(left);
    ok = got && std::chrono::steady_clock::now() < deadline;
  }
  co_return ok;
}

void connection::session_fields(const router::target& route, http::forwarded_info& fwd,
                                backend_request& req) {
  const session_header_options& names = snap_.opts.session_headers;
  const std::uint64_t h = tls_.info().handle;
  req.session_handle = h;
  req.session_header = names.session_header;
  req.logout_header = names.logout_header;
  if (client_auth_on()) {
    const bool verified = tls_.info().client_cert == tls::client_cert_result::verified;
    fwd.client_verify_header = names.client_verify_header;
    fwd.client_verify = verified ? "SUCCESS" : "NONE";
    if (verified && !client_cert_made_) {
      tls::describe_client_certificate(tls_.native(), client_cert_text_);
      client_cert_made_ = true;
    }
    fwd.client_cert_header = names.client_cert_header;
    fwd.client_cert = client_cert_text_;
  }
  if (!route.send_session_handle || h == 0) {
    return;
  }
  if (!handle_hex_made_) {
    tls::format_handle(h, handle_hex_);
    handle_hex_made_ = true;
  }
  fwd.session_header = names.session_header;
  fwd.session_handle = std::string_view(handle_hex_, sizeof handle_hex_);
}

asio::awaitable<void> connection::dispatch() {
  switch (listener_.opts.mode) {
    case listener_options::mode_kind::tcp:
      co_await serve<tcp_session>();
      break;
    case listener_options::mode_kind::http: {
      // The protocol the handshake's ALPN chose; without ALPN a client speaks HTTP/1.1 (RFC 9113
      // §3.3: HTTP/2 over TLS needs "h2"; a prior-knowledge preface is refused by the HTTP/1.1
      // parser as a bad request).
      const unsigned char* alpn = nullptr;
      unsigned alpn_len = 0;
      SSL_get0_alpn_selected(tls_.native(), &alpn, &alpn_len);
      if (alpn_len == 2 && alpn[0] == 'h' && alpn[1] == '2') {
        co_await serve<h2_session>();
      } else {
        co_await serve<http1_session>();
      }
      break;
    }
  }
}

template <class Session>
asio::awaitable<void> connection::serve() {
  Session session(*this);
  if constexpr (std::is_base_of_v<drain_hook, Session>) {
    set_drain_hook(&session);
  }
  co_await session.run();
  set_drain_hook(nullptr);
}

asio::awaitable<bool> connection::read_proxy_header() {
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

asio::awaitable<bool> connection::read_client(std::chrono::steady_clock::duration wait) {
  in_.make_room();
  if (in_.free_size() == 0) {
    co_return false;  // cannot happen: the parser consumes everything it is given
  }
  client_wd_.arm(wait);
  auto [ec, n] = co_await tls_.read_some(in_.free_space(), in_.free_size());
  client_wd_.disarm();
  if (ec) {
    co_return false;
  }
  in_.end += n;
  co_return true;
}

asio::awaitable<void> connection::linger() {
  tls_.shutdown();
  boost::system::error_code ec;
  tls_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  std::size_t drained = 0;
  client_wd_.arm(std::chrono::seconds(1));
  while (drained < 1024 * 1024) {
    auto [rec, n] = co_await tls_.read_some(in_.bytes.data(), in_.bytes.size());
    if (rec) {
      break;
    }
    drained += n;
  }
  client_wd_.disarm();
  in_.clear();
}

asio::awaitable<void> connection::settle_handshake() {
  client_wd_.arm(std::chrono::seconds(1));
  bool more = true;
  while (more && tls_.in_early_data()) {
    in_.clear();
    auto [ec, n] = co_await tls_.read_some(in_.bytes.data(), in_.bytes.size());
    more = !ec;
  }
  client_wd_.disarm();
  in_.clear();
}

void connection::arm_write_timeout() {
  // Cut only when the client took nothing for client_write_timeout (tls::stream's output
  // progress), however long the whole write takes.
  client_wd_.arm_progress(
      snap_.opts.limits.client_write_timeout,
      [](void* self) noexcept { return static_cast<connection*>(self)->tls_.output_progress(); },
      this);
}

bool connection::write_timed_out() {
  if (!client_wd_.fired()) {
    return false;
  }
  listener_.client_write_timeouts->inc();
  spdlog::debug("{}: cut: the client took nothing for {} ms", peer_,
                snap_.opts.limits.client_write_timeout.count());
  return true;
}

asio::awaitable<bool> connection::write_client(std::string_view data, bool last) {
  arm_write_timeout();
  boost::system::error_code ec = last ? co_await tls_.write_last(data.data(), data.size())
                                      : co_await tls_.write_all(data.data(), data.size());
  client_wd_.disarm();
  if (ec) {
    write_timed_out();
  }
  co_return !ec;
}

void connection::record_request(const request_record& rec, int status) {
  if (status >= 100 && status < 600 && rec.protocol[0] == 'h') {
    metrics().client_requests[rec.protocol[1] == '2' ? 1 : 0][status / 100]->inc();
  }
  if (log::access_logger() == nullptr) {
    return;
  }
  const tls::handshake_info& info = tls_.info();
  std::string upstream = "-";
  if (rec.pool >= 0 && rec.server >= 0) {
    upstream = snap_.pools[rec.pool]->server(static_cast<std::size_t>(rec.server)).name;
  }
  log::access_record r;
  r.client = peer_;
  r.sni = info.server_name;
  r.tls_version = info.version;
  r.cipher = info.cipher;
  r.resumed = tls::resumption_name(info.resumed);
  r.handshake_us = info.handshake_us;
  r.early = rec.early;
  r.protocol = rec.protocol;
  r.method = rec.method.empty() ? std::string_view("-") : std::string_view(rec.method);
  r.path = rec.path.empty() ? std::string_view("-") : std::string_view(rec.path);
  r.status = status;
  r.bytes_sent = rec.bytes_sent;
  r.bytes_received = rec.bytes_received;
  r.aborted = rec.aborted;
  r.upstream = upstream;
  r.duration_us = micros_since(rec.start);
  if (client_auth_on()) {
    r.client_cert = tls::client_cert_result_name(info.client_cert);
    r.client_subject = info.client_subject;
  }
  log::write_access(r);
}

}  // namespace tlsfront::proxy
