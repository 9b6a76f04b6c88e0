// admin/admin_server.h — the admin endpoint: plain HTTP/1.1 on its own thread and io_context
// (never on a worker), serving /healthz, /metrics (Prometheus text) and whatever other modules
// register with handle().
//
// Thread-safety: handle() before start(); handlers run on the admin thread and must only touch
// thread-safe state (metrics, atomics, posting to workers).
// Bind it to loopback: it has no authentication.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "admin/options.h"
#include "core/metrics.h"

namespace tlsfront::admin {

namespace asio = boost::asio;

struct admin_request {
  std::string method;
  std::string path;  // without the query
  std::string body;
};

struct admin_response {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

class admin_server {
 public:
  using handler = std::function<admin_response(const admin_request&)>;

  // Binds. On failure returns nullptr and sets `error`.
  static std::unique_ptr<admin_server> create(const admin_options& opts,
                                              core::metrics_registry& metrics,
                                              std::string& error);
  ~admin_server();

  // Routes requests whose path equals `path` (or starts with it when it ends in '/') and whose
  // method is `method`. Registered before the built-ins are consulted.
  void handle(std::string method, std::string path, handler h);

  void start();
  void stop();
  asio::ip::tcp::endpoint endpoint() const { return bound_; }

 private:
  admin_server(core::metrics_registry& metrics) : metrics_(metrics), acceptor_(ioc_) {}
  asio::awaitable<void> accept_loop();
  asio::awaitable<void> serve(asio::ip::tcp::socket s);
  admin_response dispatch(const admin_request& r) const;

  struct route {
    std::string method, path;
    handler h;
  };
  core::metrics_registry& metrics_;
  asio::io_context ioc_{1};
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::endpoint bound_;
  std::vector<route> routes_;
  std::thread thread_;
};

}  // namespace tlsfront::admin
