#include "proxy/backend_link.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "log/rate_limit.h"
#include "tls/edge_recv.h"

namespace tlsfront::proxy {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t buffer_size = 16 * 1024;

}  // namespace

backend_link::backend_link(asio::io_context& ioc)
    : ioc_(&ioc),
      socket_(ioc),
      wd_(ioc.get_executor(),
          [this] {
            boost::system::error_code ec;
            socket_.cancel(ec);
          }),
      in_(buffer_size) {}

asio::awaitable<bool> backend_link::connect(backend_pool& pool, int server_index,
                                            int& failure_status) {
  const auto si = static_cast<std::size_t>(server_index);
  drop();
  wd_.arm(pool.options().connect_timeout);
  auto [ec] = co_await socket_.async_connect(pool.server(si).endpoint, use_tuple);
  wd_.disarm();
  if (wd_.fired()) {
    ec = asio::error::timed_out;
  }
  if (ec) {
    pool.stats().connect_errors->inc();
    pool.note_failure(si);
    failure_status = ec == asio::error::timed_out ? 504 : 502;
    static log::rate_limiter connect_log;
    log::limited(connect_log, spdlog::level::warn, "pool {}: connect to {} failed: {}",
                 pool.options().name, pool.server(si).name, ec.message());
    co_return false;
  }
  boost::system::error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
  tls::enable_inq(socket_.native_handle());  // waits for responses cost no recv (tls/edge_recv.h)
  pool.stats().connects->inc();
  co_return true;
}

asio::awaitable<boost::system::error_code> backend_link::read(std::size_t& n) {
  in_.make_room();
  // Waiting for a response costs no system call until it is there (tls/edge_recv.h).
  tls::recv_buffer target{in_.free_space(), in_.free_size()};
  auto [ec, got] = co_await tls::async_edge_recv(socket_, target, use_tuple);
  if (wd_.fired()) {
    ec = asio::error::timed_out;
  }
  in_.end += got;
  n = got;
  co_return ec;
}

}  // namespace tlsfront::proxy
