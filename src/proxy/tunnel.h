// proxy/tunnel.h — the two-way relay between a client (TLS) and a backend (plain TCP) used by tcp
// mode (tcp_session) and by upgraded connections (a 101 answer, http1_session): bytes flow both
// ways untouched, half-closes are passed on (the client's close_notify/FIN becomes a backend
// SHUT_WR; the backend's FIN becomes close_notify + FIN to the client), until both directions
// ended or nothing moved for `idle`. A write to the client in flight is movement: it is bounded by
// client_write_timeout instead (connection::arm_write_timeout()). Bytes already buffered on
// either side (connection::in(), backend_link::in()) go first.
//
// Thread-safety: none; runs on its connection's thread. Ownership: borrows the connection and the
// backend link for the call. Failure: never throws; an error or timeout on either side closes the
// backend and cancels the client's socket, and run() reports it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>

#include "proxy/backend_link.h"
#include "proxy/connection.h"

namespace tlsfront::proxy {

class tunnel {
 public:
  tunnel(connection& client, backend_link& backend, std::chrono::milliseconds idle)
      : client_(client), backend_(backend), idle_(idle) {}

  // Relays until both directions ended. True if both ended cleanly (not cut by a timeout or an
  // error).
  asio::awaitable<bool> run();
  std::uint64_t to_backend() const { return to_backend_; }
  std::uint64_t to_client() const { return to_client_; }

 private:
  asio::awaitable<void> pump_to_backend();
  asio::awaitable<void> pump_to_client();
  void abort();

  connection& client_;
  backend_link& backend_;
  std::chrono::milliseconds idle_;
  watchdog* wd_ = nullptr;
  std::uint64_t to_backend_ = 0, to_client_ = 0;
  bool failed_ = false;
  bool writing_to_client_ = false;
};

}  // namespace tlsfront::proxy
