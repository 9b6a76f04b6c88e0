#include "proxy/accepted_socket.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>

#include "tls/edge_recv.h"

namespace tlsfront::proxy {
namespace {

// Asio keeps per-socket state bits (boost/asio/detail/socket_ops.hpp) that it cannot know for a
// descriptor it did not create: assign() assumes a possibly duplicated, blocking descriptor. Ours
// comes from accept4(SOCK_NONBLOCK) and is never duplicated, so say so: Asio then needs no
// ioctl(FIONBIO) before its first wait and no EPOLL_CTL_DEL before close(2) (closing the only
// descriptor removes it from epoll). Checked against Boost 1.81, the version this project builds
// with (scripts/install-deps).
class adopted_socket : public asio::ip::tcp::socket {
 public:
  using asio::ip::tcp::socket::socket;
  void mark_sole_non_blocking() {
    namespace ops = asio::detail::socket_ops;
    auto& state = impl_.get_implementation().state_;
    state |= ops::user_set_non_blocking | ops::internal_non_blocking;
    state &= static_cast<ops::state_type>(~ops::possible_dup);
  }
};

}  // namespace

bool open_listener(listener_socket& l, const asio::ip::tcp::endpoint& ep, std::string& error) {
  using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
  boost::system::error_code ec;
  l.open(ep.protocol(), ec);
  if (!ec) {
    l.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    l.set_option(reuse_port(true), ec);
  }
  if (!ec) {
    l.set_option(asio::ip::tcp::no_delay(true), ec);
  }
  if (!ec && ep.protocol() == asio::ip::tcp::v6()) {
    l.set_option(asio::ip::v6_only(false), ec);
    ec.clear();
  }
  if (!ec) {
    l.bind(ep, ec);
  }
  if (!ec && ::listen(l.native_handle(), SOMAXCONN) != 0) {
    ec = boost::system::error_code(errno, boost::system::system_category());
  }
  if (!ec) {
    tune_listener(l, ec);
  }
  if (ec) {
    error = "cannot listen on " + ep.address().to_string() + ":" + std::to_string(ep.port()) +
            ": " + ec.message();
    l.close(ec);
    return false;
  }
  return true;
}

bool adopt_listener(listener_socket& l, int fd, asio::ip::tcp::endpoint& bound,
                    std::string& error) {
  int listening = 0, type = 0;
  socklen_t len = sizeof listening;
  const bool is_listener =
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening == 1 &&
      (len = sizeof type, ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) &&
      type == SOCK_STREAM;
  asio::ip::tcp::endpoint ep;
  socklen_t ep_len = static_cast<socklen_t>(ep.capacity());
  if (!is_listener || ::getsockname(fd, ep.data(), &ep_len) != 0 ||
      (ep.data()->sa_family != AF_INET && ep.data()->sa_family != AF_INET6)) {
    error = "a handed-over descriptor is not a listening TCP socket";
    ::close(fd);
    return false;
  }
  ep.resize(ep_len);
  if (bound.port() != 0 && ep.port() != bound.port()) {
    error = "a handed-over socket listens on port " + std::to_string(ep.port()) + ", not " +
            std::to_string(bound.port());
    ::close(fd);
    return false;
  }
  boost::system::error_code ec;
  l.assign(ep.protocol(), fd, ec);
  if (ec) {
    error = "cannot adopt a handed-over socket: " + ec.message();
    ::close(fd);
    return false;
  }
  tune_listener(l, ec);
  if (ec) {
    error = "cannot adopt a handed-over socket: " + ec.message();
    l.close(ec);
    return false;
  }
  bound = ep;
  return true;
}

void tune_listener(listener_socket& acc, boost::system::error_code& ec) noexcept {
  acc.non_blocking(true, ec);  // accept_one() must never block the worker
  int seconds = 1;
  ::setsockopt(acc.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds);
  tls::enable_inq(acc.native_handle());  // accepted sockets inherit it (tls/edge_recv.h)
}

int accept_one(listener_socket& acc, asio::ip::tcp::endpoint& peer,
               boost::system::error_code& ec) noexcept {
  for (;;) {
    socklen_t len = static_cast<socklen_t>(peer.capacity());
    int fd = ::accept4(acc.native_handle(), peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      peer.resize(len);
      ec.clear();
      return fd;
    }
    if (errno == EINTR || errno == ECONNABORTED) {
      continue;  // a connection reset while queued: take the next one
    }
    ec = boost::system::error_code(errno, boost::system::system_category());
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      ec = asio::error::would_block;
    }
    return -1;
  }
}

namespace {

struct accept_target {
  asio::ip::tcp::endpoint* peer;
  int fd = -1;
};

tls::recv_result accept_into(void* target, int listen_fd) noexcept {
  auto* t = static_cast<accept_target*>(target);
  tls::recv_result r;  // never "drained": the next accept is tried at once
  for (;;) {
    socklen_t len = static_cast<socklen_t>(t->peer->capacity());
    int fd = ::accept4(listen_fd, t->peer->data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      t->peer->resize(len);
      t->fd = fd;
      r.n = 1;
      return r;
    }
    if (errno != EINTR && errno != ECONNABORTED) {
      r.n = -1;
      r.error = errno;
      return r;
    }
  }
}

}  // namespace

asio::awaitable<std::pair<boost::system::error_code, int>> accept_next(
    listener_socket& acc, asio::ip::tcp::endpoint& peer) {
  accept_target t{&peer};
  auto [ec, n] =
      co_await tls::async_edge_recv(acc, &accept_into, &t, asio::as_tuple(asio::use_awaitable));
  co_return std::pair{ec, ec ? -1 : t.fd};
}

asio::ip::tcp::socket adopt(asio::io_context& ioc, const asio::ip::tcp::endpoint& peer, int fd,
                            boost::system::error_code& ec) {
  adopted_socket s(ioc);
  s.assign(peer.protocol(), fd, ec);
  if (ec) {
    ::close(fd);
    return asio::ip::tcp::socket(ioc);
  }
  s.mark_sole_non_blocking();
  return asio::ip::tcp::socket(std::move(s));
}

void spare_descriptor::release() noexcept {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

bool spare_descriptor::reopen() noexcept {
  if (fd_ < 0) {
    fd_ = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  return fd_ >= 0;
}

std::size_t shed_waiting(listener_socket& l, spare_descriptor& spare, std::size_t max) noexcept {
  spare.release();
  std::size_t shed = 0;
  while (shed < max) {
    // No address wanted: the connection is closed unread.
    const int fd = ::accept4(l.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      break;  // EAGAIN: none left; EMFILE: another thread took the slot
    }
    ::close(fd);
    ++shed;
  }
  spare.reopen();
  return shed;
}

}  // namespace tlsfront::proxy
