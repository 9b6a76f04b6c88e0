// proxy/tcp_session.h — tcp mode: after the handshake, one backend connection from the listener's
// pool (a server picked by the pool's policy, retried on connect failure), a PROXY header first
// when the listener sends one (v1, or v2 carrying TLS version, cipher, SNI and ALPN), then a
// tunnel until both sides are done. One access-log line per connection (method "TCP").
//
// Thread-safety: none; lives in its connection's coroutine frame. Ownership: owns the backend
// link; borrows the connection. Failure: never throws; no server reachable logs 503 (none up) or
// 502/504, a failed PROXY header write 502, and the connection closes.
#pragma once

#include <boost/asio/awaitable.hpp>

#include "proxy/backend_link.h"
#include "proxy/connection.h"

namespace tlsfront::proxy {

class tcp_session {
 public:
  explicit tcp_session(connection& c) : conn_(c), backend_(c.owner().ioc) {}

  asio::awaitable<void> run();

 private:
  // Picks and connects a server, retrying as the pool allows; the server's index or -1.
  // `tried` says whether any server was tried at all.
  asio::awaitable<int> connect_any(backend_pool& pool, request_record& rec, bool& tried,
                                   int& failure_status);
  asio::awaitable<bool> send_proxy_header(const pool_options& po);

  connection& conn_;
  backend_link backend_;
};

}  // namespace tlsfront::proxy
