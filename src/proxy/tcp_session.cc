#include "proxy/tcp_session.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/proxy_protocol.h"
#include "proxy/tunnel.h"

namespace tlsfront::proxy {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

asio::awaitable<int> tcp_session::connect_any(backend_pool& pool, request_record& rec,
                                              bool& tried_any, int& failure_status) {
  std::uint64_t tried = 0;
  for (int attempts = 1 + std::max(0, pool.options().retries); attempts > 0; --attempts) {
    const int si = pool.pick(tried);
    if (si < 0) {
      break;
    }
    tried |= std::uint64_t{1} << si;
    rec.server = si;
    if (!co_await backend_.connect(pool, si, failure_status)) {
      continue;
    }
    pool.note_success(static_cast<std::size_t>(si));
    tried_any = true;
    co_return si;
  }
  tried_any = tried != 0;
  co_return -1;
}

asio::awaitable<void> tcp_session::run() {
  const listener_runtime& listener = conn_.listener();
  request_record rec;
  rec.method = "TCP";
  rec.protocol = "tcp";
  rec.pool = listener.pool;
  backend_pool& pool = *conn_.snap().pools[static_cast<std::size_t>(rec.pool)];
  const pool_options& po = pool.options();
  bool tried = false;
  int failure_status = 502;
  const int connected = co_await connect_any(pool, rec, tried, failure_status);
  if (connected < 0) {
    conn_.record_request(rec, tried ? failure_status : 503);  // nothing to relay to
    co_return;
  }
  backend_server& bs = pool.server(static_cast<std::size_t>(connected));
  bs.active.fetch_add(1, std::memory_order_relaxed);
  if (listener.opts.send_proxy != listener_options::proxy_header::none &&
      !co_await send_proxy_header(po)) {
    bs.active.fetch_sub(1, std::memory_order_relaxed);
    conn_.metrics().backend_errors->inc();
    conn_.record_request(rec, 502);
    co_return;
  }
  tunnel t(conn_, backend_, po.read_timeout);
  rec.aborted = !co_await t.run();
  rec.bytes_received = t.to_backend();
  rec.bytes_sent = t.to_client();
  bs.active.fetch_sub(1, std::memory_order_relaxed);
  conn_.record_request(rec, 0);  // relayed: no HTTP status
}

asio::awaitable<bool> tcp_session::send_proxy_header(const pool_options& po) {
  const listener_runtime& listener = conn_.listener();
  tls::stream& tls = conn_.tls();
  boost::system::error_code ignored;
  const asio::ip::tcp::endpoint dst = conn_.proxied_destination().port() != 0
                                          ? conn_.proxied_destination()
                                          : tls.socket().local_endpoint(ignored);
  const tls::handshake_info& info = tls.info();
  std::string header;
  if (listener.opts.send_proxy == listener_options::proxy_header::v1) {
    header = build_proxy_v1(conn_.client_endpoint(), dst);
  } else {
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(tls.native(), &alpn, &alpn_len);
    header = build_proxy_v2(
        conn_.client_endpoint(), dst,
        proxy_tls_info{info.version, info.cipher, info.server_name,
                       std::string_view(reinterpret_cast<const char*>(alpn), alpn_len)});
  }
  backend_.wd().arm(po.read_timeout);
  auto [ec, n] = co_await asio::async_write(backend_.socket(), asio::buffer(header), use_tuple);
  backend_.wd().disarm();
  co_return !ec;
}

}  // namespace tlsfront::proxy
