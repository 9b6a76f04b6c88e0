#include "proxy/health_checker.h"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "proxy/watchdog.h"

namespace tlsfront::proxy {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// "HTTP/1.x NNN ..." → NNN; -1 if the line is not a status line.
int status_of(std::string_view line) {
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || line[8] != ' ') {
    return -1;
  }
  int status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (line[i] < '0' || line[i] > '9') {
      return -1;
    }
    status = status * 10 + (line[i] - '0');
  }
  return line.size() == 12 || line[12] == ' ' ? status : -1;
}

asio::awaitable<void> check_loop(asio::io_context& ioc, std::shared_ptr<const void> keep_alive,
                                 backend_pool& pool, std::size_t index,
                                 std::function<bool()> in_force) {
  const pool_options& po = pool.options();
  const health_check_options& o = po.health;
  backend_server& s = pool.server(index);
  backend_health& h = *s.health;
  int ok_run = 0, fail_run = 0;
  asio::steady_timer pause(ioc);
  while (in_force()) {
    std::string why = co_await probe_server(ioc, s, o);
    if (!in_force()) {
      break;
    }
    // Relaxed: see backend_health.
    const bool up = h.up.load(std::memory_order_relaxed);
    if (why.empty()) {
      h.checks_ok->inc();
      fail_run = 0;
      if (!up && ++ok_run >= o.rise) {
        h.up.store(true, std::memory_order_relaxed);
        spdlog::info("pool {}: server {} is up again ({} good checks)", po.name, s.name, ok_run);
      }
    } else {
      h.checks_failed->inc();
      ok_run = 0;
      if (up && ++fail_run >= o.fall) {
        h.up.store(false, std::memory_order_relaxed);
        spdlog::warn("pool {}: server {} is down: {} ({} failed checks)", po.name, s.name, why,
                     fail_run);
      }
    }
    pause.expires_after(o.interval);
    co_await pause.async_wait(use_tuple);
  }
  (void)keep_alive;  // held until here: the pool lives as long as its checks
}

}  // namespace

asio::awaitable<std::string> probe_server(asio::io_context& ioc, const backend_server& server,
                                          const health_check_options& opts) {
  asio::ip::tcp::socket sock(ioc);
  watchdog wd(ioc.get_executor(), [&sock] {
    boost::system::error_code ignored;
    sock.close(ignored);
  });
  wd.arm(opts.timeout);
  auto [cec] = co_await sock.async_connect(server.endpoint, use_tuple);
  if (cec) {
    co_return wd.fired() ? "connect: timed out" : "connect: " + cec.message();
  }
  if (opts.type != health_check_options::kind::http) {
    co_return "";
  }
  const std::string request =
      "GET " + opts.path + " HTTP/1.1\r\nHost: " + (opts.host.empty() ? server.name : opts.host) +
      "\r\nUser-Agent: tlsfront-health-check\r\nConnection: close\r\n\r\n";
  auto [wec, written] = co_await asio::async_write(sock, asio::buffer(request), use_tuple);
  if (wec) {
    co_return wd.fired() ? "request: timed out" : "request: " + wec.message();
  }
  std::string got;
  char buf[512];
  while (got.find("\r\n") == std::string::npos && got.size() < 1024) {
    auto [rec, n] = co_await sock.async_read_some(asio::buffer(buf), use_tuple);
    got.append(buf, n);
    if (rec) {
      if (got.find("\r\n") != std::string::npos) {
        break;
      }
      co_return wd.fired()
          ? "response: timed out"
          : "response: " + (rec == asio::error::eof ? std::string("closed early") : rec.message());
    }
  }
  const std::size_t eol = got.find("\r\n");
  const int status =
      eol == std::string::npos ? -1 : status_of(std::string_view(got).substr(0, eol));
  if (status < 0) {
    co_return "response: not an HTTP/1.x status line";
  }
  if (status < opts.expect_min || status > opts.expect_max) {
    co_return "status " + std::to_string(status);
  }
  co_return "";
}

void start_health_checks(asio::io_context& ioc, std::shared_ptr<const void> keep_alive,
                         backend_pool& pool, std::function<bool()> in_force) {
  if (pool.options().health.type == health_check_options::kind::none) {
    return;
  }
  for (std::size_t i = 0; i < pool.size(); ++i) {
    asio::co_spawn(ioc, check_loop(ioc, keep_alive, pool, i, in_force), asio::detached);
  }
}

}  // namespace tlsfront::proxy
