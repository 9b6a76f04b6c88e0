#include "proxy/accepted_socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

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

void tune_listener(asio::ip::tcp::acceptor& acc, boost::system::error_code& ec) noexcept {
  acc.non_blocking(true, ec);  // accept_one() must never block the worker
  int seconds = 1;
  ::setsockopt(acc.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &seconds, sizeof seconds);
}

int accept_one(asio::ip::tcp::acceptor& acc, asio::ip::tcp::endpoint& peer,
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

}  // namespace tlsfront::proxy
