#include "tls/socket_bio.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace tlsfront::tls {
namespace {

bool would_block(int e) {
  return e == EAGAIN || e == EWOULDBLOCK;
}

ssize_t read_fd(int fd, void* out, std::size_t n) {
  ssize_t r;
  do {
    r = ::read(fd, out, n);
  } while (r < 0 && errno == EINTR);
  return r;
}

int bio_read(BIO* bio, char* out, int len) {
  auto* s = static_cast<socket_bio_state*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) {
    return 0;
  }
  const auto want = static_cast<std::size_t>(len);
  if (s->begin < s->end) {
    std::size_t n = std::min(want, s->end - s->begin);
    std::memcpy(out, s->buf.get() + s->begin, n);
    s->begin += n;
    return static_cast<int>(n);
  }
  ssize_t r;
  ++s->reads;
  if (want >= socket_bio_state::kReadAhead) {
    r = read_fd(s->fd, out, want);
    if (r > 0) {
      return static_cast<int>(r);
    }
  } else {
    if (!s->buf) {
      s->buf = std::make_unique<std::uint8_t[]>(socket_bio_state::kReadAhead);
    }
    r = read_fd(s->fd, s->buf.get(), socket_bio_state::kReadAhead);
    if (r > 0) {
      s->begin = 0;
      s->end = static_cast<std::size_t>(r);
      std::size_t n = std::min(want, s->end);
      std::memcpy(out, s->buf.get(), n);
      s->begin = n;
      return static_cast<int>(n);
    }
  }
  if (r == 0) {
    return 0;  // end of stream
  }
  if (would_block(errno)) {
    BIO_set_retry_read(bio);
  }
  return -1;
}

int bio_write(BIO* bio, const char* in, int len) {
  auto* s = static_cast<socket_bio_state*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) {
    return 0;
  }
  ssize_t r;
  do {
    r = ::send(s->fd, in, static_cast<std::size_t>(len), MSG_NOSIGNAL);
  } while (r < 0 && errno == EINTR);
  if (r >= 0) {
    return static_cast<int>(r);
  }
  if (would_block(errno)) {
    BIO_set_retry_write(bio);
  }
  return -1;
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;  // writes are never buffered here
}

const BIO_METHOD* socket_bio_method() {
  // Created once, never freed (as BoringSSL's own built-in methods).
  static const BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tlsfront socket");
    if (m) {
      BIO_meth_set_read(m, bio_read);
      BIO_meth_set_write(m, bio_write);
      BIO_meth_set_ctrl(m, bio_ctrl);
    }
    return m;
  }();
  return method;
}

}  // namespace

bssl::UniquePtr<BIO> make_socket_bio(socket_bio_state* state) {
  const BIO_METHOD* m = socket_bio_method();
  if (!m) {
    return nullptr;
  }
  bssl::UniquePtr<BIO> bio(BIO_new(m));
  if (bio) {
    BIO_set_data(bio.get(), state);
    BIO_set_init(bio.get(), 1);
  }
  return bio;
}

}  // namespace tlsfront::tls
