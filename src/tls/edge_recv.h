// tls/edge_recv.h — an asynchronous receive that spends no system call finding a socket empty.
//
// Asio's reactor (epoll, edge-triggered) keeps, per descriptor, whether an event may have
// arrived since the last receive that drained the socket ("try speculative"). Its own
// async_read_some treats only end of stream as drained, so every wait for more data starts with
// a recv(2) that says EAGAIN; async_wait instead re-arms the descriptor with EPOLL_CTL_MOD on
// every wait. On a VM where entering the kernel is expensive each costs as much as a small read.
//
// async_edge_recv() is a reactor operation whose receive can report "drained": the reactor then
// queues the next receive without trying it and without re-arming, until the next epoll event
// for the descriptor. So after a handshake flight, a response, or a request sent to a backend,
// waiting for the answer costs nothing until the answer is there, and then one recv(2) takes it.
//
// When is a socket drained? Not whenever a read is short: bytes and a FIN (or an RST) that
// arrive before the reactor looks raise one event, and the read that takes the bytes stops at
// the FIN, which no later event would announce. recv_with_inq() asks the kernel instead: with
// TCP_INQ on the socket (enable_inq(); accepted sockets inherit it from their listener) every
// receive reports how many bytes are still queued, and 1 while a FIN is pending. Zero means
// drained, and every byte that arrives later raises a new event, which the reactor (on this same
// thread) sees before it could wait on the descriptor again. Without the option (no report) a
// read is never taken as draining: the operation behaves like Asio's own receive. An RST queued
// behind bytes is not reported by TCP_INQ; it surfaces at the next send, which fails (every
// tlsfront exchange sends before it waits for an answer); tunnels, whose waits send nothing,
// use plain receives.
//
// Built on Asio's reactor interface (boost/asio/detail/epoll_reactor.hpp, reactor_op.hpp) of
// Boost 1.81, the version this project builds with; the rest of Asio (cancel(), close(),
// io_context shutdown) treats it like any of its own operations: a cancelled or closed socket
// completes it with operation_aborted, a destroyed io_context destroys it without a call.
//
// Thread-safety: start it on the socket's io_context thread; one receive at a time per socket.
// Failure: the handler gets asio::error::eof at end of stream, or the recv(2) error.
#pragma once

#include <sys/socket.h>

// Asio's public headers first: its detail headers rely on what they declare.
#include <boost/asio/async_result.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/execution/context.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/query.hpp>
#include <boost/asio/socket_base.hpp>
// Then the reactor interface this operation plugs into.
#include <boost/asio/detail/reactor.hpp>
#include <boost/asio/detail/reactor_op.hpp>
#include <cerrno>
#include <cstddef>
#include <type_traits>
#include <utility>

namespace tlsfront::tls {

namespace asio = boost::asio;

// What a receive did: n > 0 bytes, 0 end of stream, -1 error with `error` (errno); `drained`:
// the kernel said nothing more is queued (see above).
struct recv_result {
  long n = 0;
  int error = 0;
  bool drained = false;
};

// Turns TCP_INQ on for `fd` (best effort; without it no read counts as draining).
void enable_inq(int fd) noexcept;
// One non-blocking recvmsg(2) of up to `size` bytes into `data`, with the TCP_INQ report.
recv_result recv_with_inq(int fd, void* data, std::size_t size) noexcept;
// Performs one non-blocking receive on `fd` for `ctx` (called by the reactor on the socket's
// thread, possibly at once when the operation starts).
using recv_fn = recv_result (*)(void* ctx, int fd) noexcept;

#if defined(BOOST_ASIO_HAS_IO_URING_AS_DEFAULT)
// Built with Asio's io_uring backend (cmake -DTLSFRONT_IO_URING=ON, for measuring it against
// epoll; see bench/load/README.md): there is no reactor to tell "drained", so every receive
// first waits for readiness (a poll request in the ring, submitted with the scheduler's next
// io_uring_enter, answered at once when bytes are already queued) and then performs `fn`.
template <typename IoObject, typename Token>
auto async_edge_recv(IoObject& s, recv_fn fn, void* ctx, Token&& token) {
  return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      [&s, fn, ctx](auto handler) {
        struct waiter {
          IoObject& s;
          recv_fn fn;
          void* ctx;
          std::decay_t<decltype(handler)> h;
          void start() { s.async_wait(asio::socket_base::wait_read, std::move(*this)); }
          void operator()(const boost::system::error_code& ec) {
            if (ec) {
              std::move(h)(ec, 0);
              return;
            }
            const recv_result r = fn(ctx, s.native_handle());
            if (r.n > 0) {
              std::move(h)(boost::system::error_code(), static_cast<std::size_t>(r.n));
            } else if (r.n == 0) {
              std::move(h)(asio::error::eof, 0);
            } else if (r.error == EAGAIN || r.error == EWOULDBLOCK) {
              start();
            } else {
              std::move(h)(boost::system::error_code(r.error, boost::system::system_category()), 0);
            }
          }
        };
        waiter{s, fn, ctx, std::move(handler)}.start();
      },
      token);
}
#else
namespace detail {

// Access to a socket's or acceptor's Asio implementation (descriptor and reactor registration):
// a pointer to a protected member named through a derived class is usable on any such object.
template <typename IoObject>
struct impl_access : IoObject {
  static auto& of(IoObject& s) { return (s.*(&impl_access::impl_)).get_implementation(); }
};

template <typename Handler>
class edge_recv_op : public asio::detail::reactor_op {
 public:
  edge_recv_op(int fd, recv_fn fn, void* ctx, Handler&& h)
      : reactor_op(boost::system::error_code(), &edge_recv_op::do_perform,
                   &edge_recv_op::do_complete),
        fd_(fd),
        fn_(fn),
        ctx_(ctx),
        handler_(std::move(h)) {}

 private:
  static status do_perform(reactor_op* base) {
    auto* o = static_cast<edge_recv_op*>(base);
    recv_result r = o->fn_(o->ctx_, o->fd_);
    if (r.n > 0) {
      o->bytes_transferred_ = static_cast<std::size_t>(r.n);
      // Drained: the next receive waits for an event untried.
      return r.drained ? done_and_exhausted : done;
    }
    if (r.n == 0) {
      o->ec_ = asio::error::eof;
      return done_and_exhausted;
    }
    if (r.error == EAGAIN || r.error == EWOULDBLOCK) {
      return not_done;
    }
    o->ec_ = boost::system::error_code(r.error, boost::system::system_category());
    return done;
  }

  // owner == nullptr: the io_context is being destroyed; free without calling the handler.
  static void do_complete(void* owner, asio::detail::operation* base,
                          const boost::system::error_code&, std::size_t) {
    auto* o = static_cast<edge_recv_op*>(base);
    Handler h(std::move(o->handler_));
    const boost::system::error_code ec = o->ec_;
    const std::size_t n = o->bytes_transferred_;
    delete o;
    if (owner != nullptr) {
      std::move(h)(ec, n);
    }
  }

  int fd_;
  recv_fn fn_;
  void* ctx_;
  Handler handler_;
};

}  // namespace detail

// Starts a receive on `s` (a tcp::socket, or a tcp::acceptor for an accept) performed by
// `fn(ctx, fd)`; completes with (error_code, bytes).
template <typename IoObject, typename Token>
auto async_edge_recv(IoObject& s, recv_fn fn, void* ctx, Token&& token) {
  return asio::async_initiate<Token, void(boost::system::error_code, std::size_t)>(
      [&s, fn, ctx](auto handler) {
        using handler_type = std::decay_t<decltype(handler)>;
        auto& impl = detail::impl_access<IoObject>::of(s);
        auto& reactor = asio::use_service<asio::detail::reactor>(
            asio::query(s.get_executor(), asio::execution::context));
        auto* op =
            new detail::edge_recv_op<handler_type>(impl.socket_, fn, ctx, std::move(handler));
        reactor.start_op(asio::detail::reactor::read_op, impl.socket_, impl.reactor_data_, op,
                         /*is_continuation=*/false, /*allow_speculative=*/true);
      },
      token);
}

#endif  // BOOST_ASIO_HAS_IO_URING_AS_DEFAULT

// A receive into a fixed buffer; `target` must stay valid until the operation completes.
struct recv_buffer {
  void* data = nullptr;
  std::size_t size = 0;
};
recv_result recv_into(void* target, int fd) noexcept;

template <typename Token>
auto async_edge_recv(asio::ip::tcp::socket& s, recv_buffer& target, Token&& token) {
  return async_edge_recv(s, &recv_into, &target, std::forward<Token>(token));
}

}  // namespace tlsfront::tls
