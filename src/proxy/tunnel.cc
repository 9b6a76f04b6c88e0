#include "proxy/tunnel.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace tlsfront::proxy {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

asio::awaitable<bool> tunnel::run() {
  tls::stream& tls = client_.tls();
  tls.set_edge_reads(false);  // waits here send nothing first (tls/edge_recv.h on RSTs)
  watchdog wd(client_.owner().ioc.get_executor(), [this] {
    if (writing_to_client_) {
      wd_->arm(idle_);  // not idle: the write in flight has client_write_timeout for a bound
      return;
    }
    abort();
  });
  wd_ = &wd;
  wd.arm(idle_);
  using namespace asio::experimental::awaitable_operators;
  co_await (pump_to_backend() && pump_to_client());
  wd_ = nullptr;
  co_return !failed_;
}

void tunnel::abort() {
  failed_ = true;
  boost::system::error_code ignored;
  backend_.socket().close(ignored);
  client_.tls().socket().cancel(ignored);
}

asio::awaitable<void> tunnel::pump_to_backend() {
  // Bytes the client sent after its request head (or first, in TCP mode) go first.
  tls::stream& tls = client_.tls();
  read_buffer& in = client_.in();
  while (!failed_) {
    if (in.empty()) {
      auto [ec, n] = co_await tls.read_some(in.bytes.data(), in.bytes.size());
      if (ec || failed_) {
        if (ec == asio::error::eof && !failed_) {
          // The client is done sending (close_notify or FIN): half-close towards the backend,
          // whose answer may still be coming.
          boost::system::error_code ignored;
          backend_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        } else {
          abort();
        }
        co_return;
      }
      in.begin = 0;
      in.end = n;
    }
    wd_->arm(idle_);
    auto [wec, written] = co_await asio::async_write(
        backend_.socket(), asio::buffer(in.bytes.data() + in.begin, in.end - in.begin), use_tuple);
    in.clear();
    if (wec) {
      abort();
      co_return;
    }
    to_backend_ += written;
  }
}

asio::awaitable<void> tunnel::pump_to_client() {
  tls::stream& tls = client_.tls();
  read_buffer& bin = backend_.in();
  while (!failed_) {
    if (bin.empty()) {
      // A plain receive: this wait sends nothing first (tls/edge_recv.h on RSTs).
      auto [ec, n] = co_await backend_.socket().async_read_some(asio::buffer(bin.bytes.data(), bin.bytes.size()), use_tuple);
      if (ec || failed_) {
        if (ec == asio::error::eof && !failed_) {
          // The backend is done: tell the client (close_notify, FIN); its side may still send.
          tls.shutdown();
          boost::system::error_code ignored;
          tls.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
        } else {
          abort();
        }
        co_return;
      }
      bin.begin = 0;
      bin.end = n;
    }
    wd_->arm(idle_);
    const std::size_t len = bin.end - bin.begin;
    // While the client takes these bytes the tunnel is not idle; the write is cut only if the
    // client takes nothing for client_write_timeout.
    writing_to_client_ = true;
    client_.arm_write_timeout();
    boost::system::error_code wec = co_await tls.write_all(bin.bytes.data() + bin.begin, len);
    client_.client_wd().disarm();
    writing_to_client_ = false;
    wd_->arm(idle_);
    bin.clear();
    if (wec) {
      client_.write_timed_out();
      abort();
      co_return;
    }
    to_client_ += len;
  }
}

}  // namespace tlsfront::proxy
