#include "admin/admin_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "http/error_response.h"
#include "http/message_parser.h"

namespace tlsfront::admin {
namespace {
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_admin_body = 1 << 20;

const char* reason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 413:
      return "Content Too Large";
    case 503:
      return "Service Unavailable";
    default:
      return status < 400 ? "OK" : "Error";
  }
}
}  // namespace

std::unique_ptr<admin_server> admin_server::create(const admin_options& opts,
                                                   core::metrics_registry& metrics,
                                                   std::string& error) {
  std::unique_ptr<admin_server> a(new admin_server(metrics));
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(opts.address, ec);
  if (ec) {
    error = "admin: invalid address " + opts.address;
    return nullptr;
  }
  asio::ip::tcp::endpoint ep(addr, opts.port);
  a->acceptor_.open(ep.protocol(), ec);
  if (!ec) {
    a->acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    a->acceptor_.bind(ep, ec);
  }
  if (!ec) {
    a->acceptor_.listen(64, ec);
  }
  if (ec) {
    error = "admin: cannot listen on " + opts.address + ":" + std::to_string(opts.port) + ": " +
            ec.message();
    return nullptr;
  }
  a->bound_ = a->acceptor_.local_endpoint();
  return a;
}

admin_server::~admin_server() {
  stop();
}

void admin_server::handle(std::string method, std::string path, handler h) {
  routes_.push_back(route{std::move(method), std::move(path), std::move(h)});
}

void admin_server::start() {
  asio::co_spawn(ioc_, accept_loop(), asio::detached);
  thread_ = std::thread([this] { ioc_.run(); });
}

void admin_server::stop() {
  ioc_.stop();
  if (thread_.joinable()) {
    thread_.join();
  }
}

admin_response admin_server::dispatch(const admin_request& r) const {
  for (const route& rt : routes_) {
    bool prefix = !rt.path.empty() && rt.path.back() == '/';
    bool path_ok = prefix ? r.path.rfind(rt.path, 0) == 0 : r.path == rt.path;
    if (path_ok && r.method == rt.method) {
      return rt.h(r);
    }
  }
  if (r.path == "/healthz") {
    return admin_response{200, "text/plain; charset=utf-8", "ok\n"};
  }
  if (r.path == "/metrics" && (r.method == "GET" || r.method == "HEAD")) {
    return admin_response{200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render()};
  }
  for (const route& rt : routes_) {
    bool prefix = !rt.path.empty() && rt.path.back() == '/';
    if (prefix ? r.path.rfind(rt.path, 0) == 0 : r.path == rt.path) {
      return admin_response{405, "text/plain; charset=utf-8", "method not allowed\n"};
    }
  }
  return admin_response{404, "text/plain; charset=utf-8", "not found\n"};
}

asio::awaitable<void> admin_server::accept_loop() {
  while (acceptor_.is_open()) {
    auto [ec, sock] = co_await acceptor_.async_accept(use_tuple);
    if (ec) {
      if (ec == asio::error::operation_aborted) {
        break;
      }
      asio::steady_timer t(ioc_, std::chrono::milliseconds(50));
      co_await t.async_wait(use_tuple);
      continue;
    }
    asio::co_spawn(ioc_, serve(std::move(sock)), asio::detached);
  }
}

asio::awaitable<void> admin_server::serve(asio::ip::tcp::socket s) {
  http::message_parser parser(http::message_parser::kind::request, {16 * 1024, 100});
  std::vector<char> buf(16 * 1024);
  std::size_t begin = 0, end = 0;
  asio::steady_timer deadline(ioc_);
  for (;;) {
    parser.reset_for_next();
    admin_request req;
    parser.set_body_output(&req.body, http::body_framing::none);
    bool head = false;
    bool need_input = begin == end;
    for (;;) {
      if (need_input) {
        begin = end = 0;
        // A slow admin client gets 10 s per read; the admin thread is not a worker.
        deadline.expires_after(std::chrono::seconds(10));
        deadline.async_wait([&s](const boost::system::error_code& e) {
          if (!e) {
            boost::system::error_code ignored;
            s.cancel(ignored);
          }
        });
        auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_tuple);
        deadline.cancel();
        if (ec) {
          co_return;
        }
        end = n;
      }
      need_input = false;
      std::size_t consumed = 0;
      auto st = parser.feed(std::string_view(buf.data() + begin, end - begin), consumed);
      begin += consumed;
      if (st == http::message_parser::status::error || req.body.size() > max_admin_body) {
        std::string_view r = http::error_response(400, false);
        co_await asio::async_write(s, asio::buffer(r), use_tuple);
        co_return;
      }
      if (st == http::message_parser::status::head_done) {
        head = true;
        req.method.assign(parser.head().method);
        std::string_view target = parser.head().target;
        req.path.assign(target.substr(0, target.find('?')));
        continue;
      }
      if (st == http::message_parser::status::message_done && head) {
        break;
      }
      need_input = st == http::message_parser::status::need_more;
    }
    admin_response resp = dispatch(req);
    bool keep = parser.head().keep_alive;
    std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + reason(resp.status) +
                      "\r\nContent-Type: " + resp.content_type +
                      "\r\nContent-Length: " + std::to_string(resp.body.size()) +
                      (keep ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n");
    if (req.method != "HEAD") {
      out += resp.body;
    }
    auto [ec, n] = co_await asio::async_write(s, asio::buffer(out), use_tuple);
    if (ec || !keep) {
      co_return;
    }
  }
}

}  // namespace tlsfront::admin
