#include "admin/admin_server.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <future>

#include "http/error_response.h"
#include "http/message_parser.h"
#include "log/rate_limit.h"

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
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 413:
      return "Content Too Large";
    case 429:
      return "Too Many Requests";
    case 503:
      return "Service Unavailable";
    default:
      return status < 400 ? "OK" : "Error";
  }
}
}  // namespace

std::unique_ptr<admin_server> admin_server::create(const admin_options& opts,
                                                   core::metrics_registry& metrics,
                                                   std::string& error, int inherited_fd) {
  std::unique_ptr<admin_server> a(new admin_server(opts, metrics));
  boost::system::error_code ec;
  if (inherited_fd >= 0) {
    asio::ip::tcp::endpoint ep;
    socklen_t len = static_cast<socklen_t>(ep.capacity());
    int listening = 0;
    socklen_t ll = sizeof listening;
    if (::getsockname(inherited_fd, ep.data(), &len) != 0 ||
        ::getsockopt(inherited_fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ll) != 0 ||
        listening != 1 || (ep.data()->sa_family != AF_INET && ep.data()->sa_family != AF_INET6)) {
      ::close(inherited_fd);
      error = "admin: the handed-over descriptor is not a listening TCP socket";
      return nullptr;
    }
    ep.resize(len);
    a->acceptor_.assign(ep.protocol(), inherited_fd, ec);
    if (ec) {
      ::close(inherited_fd);
      error = "admin: cannot adopt the handed-over socket: " + ec.message();
      return nullptr;
    }
    a->bound_ = ep;
    a->listener_fd_ = inherited_fd;
    return a;
  }
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
  a->listener_fd_ = a->acceptor_.native_handle();
  return a;
}

admin_server::admin_server(const admin_options& opts, core::metrics_registry& metrics)
    : opts_(opts),
      metrics_(metrics),
      guard_{opts.address, opts.allowed_hosts, opts.token},
      connections_(metrics.add_gauge("tlsfront_admin_connections",
                                     "Connections to the admin endpoint open now")),
      acceptor_(ioc_) {
  opts_.token.clear();  // the guard holds the one copy
  for (const char* reason :
       {"host", "cross_site", "no_token", "bad_token", "connections", "rate_limited"}) {
    refused(reason);  // every series present from the start, at 0
  }
}

admin_server::~admin_server() {
  stop();
}

core::counter& admin_server::refused(const char* reason) {
  return metrics_.add_counter("tlsfront_admin_refused_total",
                              "Admin requests and connections refused, by reason",
                              std::string("reason=\"") + reason + "\"");
}

void admin_server::set_token(std::string token) {
  std::lock_guard lock(guard_mu_);
  guard_.token = std::move(token);
}

std::optional<admin_response> admin_server::refuse(const http::message_head& head,
                                                   const std::string& peer) {
  guard_verdict v;
  {
    std::lock_guard lock(guard_mu_);
    v = check_admin_request(guard_, head);
  }
  if (v == guard_verdict::allowed) {
    return std::nullopt;
  }
  refused(verdict_name(v)).inc();
  log::limited(refusal_log_, spdlog::level::warn, "admin: {} {} from {} refused ({})", head.method,
               head.target, peer, verdict_name(v));
  if (v == guard_verdict::no_token || v == guard_verdict::bad_token) {
    return admin_response{401, "text/plain; charset=utf-8", "a valid bearer token is required\n",
                          "WWW-Authenticate: Bearer realm=\"tlsfront-admin\"\r\n"};
  }
  if (v == guard_verdict::bad_host) {
    return admin_response{403, "text/plain; charset=utf-8",
                          "Host is not this admin endpoint (see admin.allowed_hosts)\n"};
  }
  return admin_response{403, "text/plain; charset=utf-8", "cross-site request refused\n"};
}

void admin_server::handle(std::string method, std::string path, handler h) {
  routes_.push_back(route{std::move(method), std::move(path), std::move(h)});
}

void admin_server::start() {
  asio::co_spawn(ioc_, accept_loop(), asio::detached);
  thread_ = std::thread([this] { ioc_.run(); });
}

void admin_server::stop_accepting() {
  if (!thread_.joinable()) {
    boost::system::error_code ec;
    acceptor_.close(ec);
    return;
  }
  std::promise<void> done;
  asio::post(ioc_, [&] {
    boost::system::error_code ec;
    acceptor_.close(ec);
    done.set_value();
  });
  done.get_future().wait();
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
    if (open_ >= opts_.max_connections) {
      // Full: say so without waiting for the peer (one non-blocking send), then close.
      refused("connections").inc();
      static constexpr std::string_view busy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      ::send(sock.native_handle(), busy.data(), busy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      continue;
    }
    asio::co_spawn(ioc_, serve(std::move(sock)), asio::detached);
  }
}

asio::awaitable<void> admin_server::serve(asio::ip::tcp::socket s) {
  ++open_;
  connections_.inc();
  struct leave {
    admin_server& a;
    ~leave() {
      --a.open_;
      a.connections_.dec();
    }
  } on_exit{*this};
  boost::system::error_code peer_ec;
  const auto peer_ep = s.remote_endpoint(peer_ec);
  const std::string peer =
      peer_ec ? std::string("?")
              : (peer_ep.address().is_v6() ? "[" + peer_ep.address().to_string() + "]"
                                           : peer_ep.address().to_string()) +
                    ":" + std::to_string(peer_ep.port());
  http::message_parser parser(http::message_parser::kind::request, {16 * 1024, 100});
  std::vector<char> buf(16 * 1024);
  std::size_t begin = 0, end = 0;
  asio::steady_timer deadline(ioc_);
  bool timed_out = false;
  for (;;) {
    parser.reset_for_next();
    admin_request req;
    parser.set_body_output(&req.body, http::body_framing::none);
    bool head = false;
    bool started = begin != end;  // bytes of this request arrived (pipelined or read)
    std::optional<admin_response> refusal;
    bool need_input = begin == end;
    // The whole request (head and body) must arrive within request_timeout of the connection
    // being ready for it: a client sending a byte every few seconds is cut all the same.
    deadline.expires_after(opts_.request_timeout);
    deadline.async_wait([&s, &timed_out](const boost::system::error_code& e) {
      if (!e) {
        timed_out = true;
        boost::system::error_code ignored;
        s.cancel(ignored);
      }
    });
    for (;;) {
      if (need_input) {
        begin = end = 0;  // need_more: the parser took every byte
        auto [ec, n] = co_await s.async_read_some(asio::buffer(buf), use_tuple);
        if (ec) {
          if (timed_out && started) {
            log::limited(refusal_log_, spdlog::level::warn,
                         "admin: request from {} not complete within {} ms, closed", peer,
                         opts_.request_timeout.count());
          }
          co_return;
        }
        started = true;
        end = n;
      }
      need_input = false;
      std::size_t consumed = 0;
      auto st = parser.feed(std::string_view(buf.data() + begin, end - begin), consumed);
      begin += consumed;
      if (st == http::message_parser::status::error || req.body.size() > max_admin_body) {
        deadline.cancel();
        std::string_view r = http::error_response(400, false);
        co_await asio::async_write(s, asio::buffer(r), use_tuple);
        co_return;
      }
      if (st == http::message_parser::status::head_done) {
        head = true;
        req.method.assign(parser.head().method);
        std::string_view target = parser.head().target;
        const std::size_t q = target.find('?');
        req.path.assign(target.substr(0, q));
        req.query.assign(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
        // Judged on the head alone: a refused request's body is never waited for.
        refusal = refuse(parser.head(), peer);
        if (refusal) {
          break;
        }
        continue;
      }
      if (st == http::message_parser::status::message_done && head) {
        break;
      }
      need_input = st == http::message_parser::status::need_more;
    }
    deadline.cancel();
    admin_response resp = refusal ? std::move(*refusal) : dispatch(req);
    if (resp.status == 429) {
      refused("rate_limited").inc();
    }
    if (!refusal && is_state_changing(req.method)) {
      spdlog::info("admin: {} {} from {}: {}", req.method, req.path, peer, resp.status);
    }
    // After a refusal the rest of the request (its body) was not read: close.
    bool keep = parser.head().keep_alive && !refusal;
    std::string out = "HTTP/1.1 " + std::to_string(resp.status) + " " + reason(resp.status) +
                      "\r\nContent-Type: " + resp.content_type +
                      "\r\nContent-Length: " + std::to_string(resp.body.size()) + "\r\n" +
                      resp.extra_headers + (keep ? "\r\n" : "Connection: close\r\n\r\n");
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
