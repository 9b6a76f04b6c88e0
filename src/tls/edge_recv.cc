#include "tls/edge_recv.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>

#include <cstring>

namespace tlsfront::tls {

void enable_inq(int fd) noexcept {
  int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_INQ, &on, sizeof on);
}

recv_result recv_with_inq(int fd, void* data, std::size_t size) noexcept {
  iovec iov{data, size};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  recv_result r;
  do {
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    r.n = ::recvmsg(fd, &msg, MSG_DONTWAIT);
  } while (r.n < 0 && errno == EINTR);
  if (r.n < 0) {
    r.error = errno;
    return r;
  }
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ &&
        c->cmsg_len >= CMSG_LEN(sizeof(int))) {
      int inq = 0;
      std::memcpy(&inq, CMSG_DATA(c), sizeof inq);
      r.drained = r.n > 0 && inq == 0;
    }
  }
  return r;
}

recv_result recv_into(void* target, int fd) noexcept {
  auto* b = static_cast<recv_buffer*>(target);
  return recv_with_inq(fd, b->data, b->size);
}

}  // namespace tlsfront::tls
