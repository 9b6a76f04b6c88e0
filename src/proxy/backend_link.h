// proxy/backend_link.h — the backend side of one client connection: a plain TCP socket to one
// server of a pool (new or taken from the worker's idle cache), its watchdog (connect, read and
// write timeouts) and its receive buffer. Used by exchange (HTTP requests) and tcp_session.
//
// Thread-safety: none; lives on its connection's worker thread. Ownership: owns the socket in use;
// drop() closes it (a socket handed to the idle cache is moved out first).
// Failure: never throws; connect() counts the failure, notes the server's passive health and says
// which status a client would be told (502 refused/unreachable, 504 timed out).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>

#include "proxy/backend_pool.h"
#include "proxy/read_buffer.h"
#include "proxy/watchdog.h"

namespace tlsfront::proxy {

class backend_link {
 public:
  explicit backend_link(asio::io_context& ioc);
  backend_link(const backend_link&) = delete;
  backend_link& operator=(const backend_link&) = delete;

  asio::ip::tcp::socket& socket() { return socket_; }
  watchdog& wd() { return wd_; }
  read_buffer& in() { return in_; }

  // A new connection to server `server_index` of `pool` (TCP_NODELAY, SO_INQ set). On failure:
  // counted, passive health noted, a rate-limited warning, `failure_status` set to 502 or 504,
  // false.
  asio::awaitable<bool> connect(backend_pool& pool, int server_index, int& failure_status);
  // Reads what the backend sent into in(), after its unread bytes; `n` is how many. Waiting costs
  // no system call until bytes are there (tls/edge_recv.h). asio::error::timed_out once wd()
  // fired.
  asio::awaitable<boost::system::error_code> read(std::size_t& n);
  // Closes the connection in use (a fresh, closed socket takes its place).
  void drop() { socket_ = asio::ip::tcp::socket(*ioc_); }

 private:
  asio::io_context* ioc_;
  asio::ip::tcp::socket socket_;
  watchdog wd_;
  read_buffer in_;
};

}  // namespace tlsfront::proxy
