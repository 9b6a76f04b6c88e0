#include "tls/socket_bio.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <new>

namespace tlsfront::tls {
namespace {

bool would_block(int e) {
  return e == EAGAIN || e == EWOULDBLOCK;
}

ssize_t send_fd(socket_bio_state& s, const void* in, std::size_t n, int flags) {
  ssize_t r;
  ++s.sends;
  do {
    r = ::send(s.fd, in, n, MSG_NOSIGNAL | MSG_DONTWAIT | flags);
  } while (r < 0 && errno == EINTR);
  if (r > 0) {
    s.bytes_sent += static_cast<std::uint64_t>(r);
  }
  return r;
}

int bio_read(BIO* bio, char* out, int len) {
  auto* s = static_cast<socket_bio_state*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) {
    return 0;
  }
  if (s->begin < s->end) {
    std::size_t n = std::min(static_cast<std::size_t>(len), s->end - s->begin);
    std::memcpy(out, s->buf.get() + s->begin, n);
    s->begin += n;
    if (s->begin == s->end) {
      s->buf.reset();  // nothing unread: an idle connection holds no buffer
      s->begin = s->end = 0;
    }
    return static_cast<int>(n);
  }
  if (s->eof) {
    return 0;  // end of stream
  }
  if (s->error != 0) {
    errno = s->error;
    s->error = 0;
    return -1;
  }
  // Nothing buffered: the owner fills the buffer when the socket has bytes (fill_read_ahead).
  BIO_set_retry_read(bio);
  return -1;
}

int bio_write(BIO* bio, const char* in, int len) {
  auto* s = static_cast<socket_bio_state*>(BIO_get_data(bio));
  BIO_clear_retry_flags(bio);
  if (len <= 0) {
    return 0;
  }
  if (s->hold || s->output_pending()) {
    // Held (or queued behind held bytes, which must leave first): sent by flush_output().
    if (s->out_begin == s->out.size()) {
      s->out.clear();
      s->out_begin = 0;
    }
    s->out.insert(s->out.end(), in, in + len);
    return len;
  }
  ssize_t r = send_fd(*s, in, static_cast<std::size_t>(len), 0);
  if (r >= 0) {
    return static_cast<int>(r);
  }
  if (would_block(errno)) {
    BIO_set_retry_write(bio);
  }
  return -1;
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  // BoringSSL flushes after each flight; held output leaves when the owner flushes it.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
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

recv_result fill_read_ahead(void* state, int fd) noexcept {
  auto* s = static_cast<socket_bio_state*>(state);
  recv_result r;
  if (!s->buf) {
    s->buf.reset(new (std::nothrow) std::uint8_t[socket_bio_state::kReadAhead]);
    if (!s->buf) {
      r.n = -1;
      r.error = s->error = ENOMEM;
      return r;
    }
  }
  ++s->reads;
  r = recv_with_inq(fd, s->buf.get(), socket_bio_state::kReadAhead);
  r.drained = r.drained && s->edge;
  if (r.n > 0) {
    s->begin = 0;
    s->end = static_cast<std::size_t>(r.n);
  } else if (r.n == 0) {
    s->eof = true;
  } else if (!would_block(r.error)) {
    s->error = r.error;
  }
  return r;
}

int flush_output(socket_bio_state& s, bool more) noexcept {
  while (s.output_pending()) {
    ssize_t r =
        send_fd(s, s.out.data() + s.out_begin, s.out.size() - s.out_begin, more ? MSG_MORE : 0);
    if (r < 0) {
      return would_block(errno) ? 0 : -1;
    }
    s.out_begin += static_cast<std::size_t>(r);
  }
  s.out.clear();  // keeps its capacity: the next connection phase reuses it
  s.out_begin = 0;
  return 1;
}

}  // namespace tlsfront::tls
