// admin/admin_server.h — the admin endpoint: plain HTTP/1.1 on its own thread and io_context
// (never on a worker), serving /healthz, /metrics (Prometheus text) and whatever other modules
// register with handle().
//
// Every request first passes admin/request_guard.h (Host, cross-site, bearer token); every
// state-changing request and every refusal is logged with the peer's address and the outcome.
// At most `max_connections` connections are served at once (one more is answered 503), and a
// whole request must arrive within `request_timeout`.
//
// Thread-safety: handle() before start(); handlers run on the admin thread and must only touch
// thread-safe state (metrics, atomics, posting to workers). set_token() from any thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "admin/options.h"
#include "admin/request_guard.h"
#include "core/metrics.h"
#include "log/rate_limit.h"

namespace tlsfront::admin {

namespace asio = boost::asio;

struct admin_request {
  std::string method;
  std::string path;   // without the query
  std::string query;  // after '?', as sent ("" when none)
  std::string body;
};

struct admin_response {
  admin_response() = default;
  admin_response(int st, std::string type, std::string text, std::string extra = {})
      : status(st),
        content_type(std::move(type)),
        body(std::move(text)),
        extra_headers(std::move(extra)) {}

  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  std::string extra_headers;  // whole lines, each ending in \r\n (e.g. "Retry-After: 5\r\n")
};

class admin_server {
 public:
  using handler = std::function<admin_response(const admin_request&)>;

  // Binds, or takes over `inherited_fd` (a listening socket handed over by the process this
  // one replaces: daemon/handover.h). On failure returns nullptr and sets `error`.
  static std::unique_ptr<admin_server> create(const admin_options& opts,
                                              core::metrics_registry& metrics, std::string& error,
                                              int inherited_fd = -1);
  ~admin_server();

  // Routes requests whose path equals `path` (or starts with it when it ends in '/') and whose
  // method is `method`. Registered before the built-ins are consulted.
  void handle(std::string method, std::string path, handler h);

  void start();
  void stop();
  // The listening socket (kept; the handover sends a duplicate) and, once the successor
  // serves, no more accepting: connections already open are served to their end.
  int listener_fd() const { return listener_fd_; }
  void stop_accepting();
  asio::ip::tcp::endpoint endpoint() const { return bound_; }
  const admin_options& options() const { return opts_; }
  // Replaces the bearer token (a reload re-read the token file); empty: none required.
  void set_token(std::string token);

 private:
  admin_server(const admin_options& opts, core::metrics_registry& metrics);
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(asio::ip::tcp::socket s);
  admin_response dispatch(const admin_request& r) const;
  // The guard's verdict on a request head, counted and logged when it refuses.
  std::optional<admin_response> refuse(const http::message_head& head, const std::string& peer);
  core::counter& refused(const char* reason);

  struct route {
    std::string method, path;
    handler h;
  };
  admin_options opts_;
  core::metrics_registry& metrics_;
  mutable std::mutex guard_mu_;  // guards guard_.token (set_token() may run on another thread)
  guard_settings guard_;
  std::size_t open_ = 0;  // connections being served (admin thread only)
  log::rate_limiter refusal_log_{20, std::chrono::seconds(10)};  // refusals and timeouts
  core::gauge& connections_;
  asio::io_context ioc_{1};
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::endpoint bound_;
  int listener_fd_ = -1;
  std::vector<route> routes_;
  std::thread thread_;
};

}  // namespace tlsfront::admin
