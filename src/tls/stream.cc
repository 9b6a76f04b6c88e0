#include "tls/stream.h"

#include <linux/sockios.h>
#include <openssl/err.h>
#include <sys/ioctl.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <chrono>

#include "tls/edge_recv.h"
#include "tls/session_handle.h"
#include "tls/ticket_keys.h"

namespace tlsfront::tls {
namespace {

class tls_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "tls"; }
  std::string message(int ev) const override {
    switch (static_cast<tls_errc>(ev)) {
      case tls_errc::handshake_failed:
        return "TLS handshake failed";
      case tls_errc::protocol_error:
        return "TLS protocol error";
      case tls_errc::internal:
        return "TLS internal error";
    }
    return "unknown TLS error";
  }
};

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

const boost::system::error_category& tls_category() noexcept {
  static const tls_category_impl c;
  return c;
}

const char* resumption_name(resumption r) noexcept {
  switch (r) {
    case resumption::none:
      return "none";
    case resumption::id:
      return "id";
    case resumption::ticket:
      return "ticket";
  }
  return "none";
}

stream::stream(asio::ip::tcp::socket socket, bssl::UniquePtr<SSL> ssl)
    : socket_(std::move(socket)), ssl_(std::move(ssl)) {
  bio_state_.fd = socket_.native_handle();
  bssl::UniquePtr<BIO> bio = ssl_ ? make_socket_bio(&bio_state_) : nullptr;
  if (!bio) {  // out of memory: the owner sees native() == nullptr and closes
    ssl_.reset();
    return;
  }
  BIO* b = bio.release();
  SSL_set_bio(ssl_.get(), b, b);  // the same BIO both ways: the SSL takes the one reference
  SSL_set_app_data(ssl_.get(), &info_);
}

handshake_info* info_of(const SSL* ssl) noexcept {
  return static_cast<handshake_info*>(SSL_get_app_data(ssl));
}

stream::~stream() = default;

asio::awaitable<error_code> stream::wait_for(int ssl_error) {
  if (ssl_error == SSL_ERROR_WANT_WRITE) {
    auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_write, use_tuple);
    co_return ec;
  }
  // The peer answers only what it has seen: send what is held first (a handshake flight).
  if (bio_state_.output_pending()) {
    if (error_code ec = co_await flush(false)) {
      co_return ec;
    }
  }
  // One recv(2) into the BIO's read-ahead buffer once the socket has bytes: none is tried while
  // the reactor knows the socket is still empty (tls/edge_recv.h). End of stream and errors are
  // left in the BIO state, for BoringSSL to see on its next read (a close_notify before the FIN
  // is still read as one); only a cancelled wait (a timeout) is returned.
  auto [ec, n] = co_await async_edge_recv(socket_, &fill_read_ahead, &bio_state_, use_tuple);
  if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
    co_return ec;
  }
  co_return error_code{};
}

asio::awaitable<error_code> stream::flush(bool more) {
  for (;;) {
    int r = flush_output(bio_state_, more);
    if (r > 0) {
      co_return error_code{};
    }
    if (r < 0) {
      co_return error_code(errno, boost::system::system_category());
    }
    auto [ec] = co_await socket_.async_wait(asio::ip::tcp::socket::wait_write, use_tuple);
    if (ec) {
      co_return ec;
    }
  }
}

error_code stream::classify(int ssl_error, int ret) noexcept {
  int saved_errno = errno;
  error_code ec;
  switch (ssl_error) {
    case SSL_ERROR_ZERO_RETURN:
      ec = asio::error::eof;
      break;
    case SSL_ERROR_SYSCALL:
      // ret == 0: the peer closed the TCP connection without close_notify.
      ec = ret == 0 || saved_errno == 0 ? error_code(asio::error::eof)
                                        : error_code(saved_errno, boost::system::system_category());
      break;
    case SSL_ERROR_SSL:
      ec = tls_errc::protocol_error;
      break;
    default:
      ec = tls_errc::internal;
      break;
  }
  ERR_clear_error();
  return ec;
}

asio::awaitable<error_code> stream::handshake() {
  auto start = std::chrono::steady_clock::now();
  SSL* ssl = ssl_.get();
  // Each flight leaves as one send when BoringSSL waits for the peer; what is written at the end
  // (TLS 1.3 tickets) waits for the first response, or for the next wait for the peer.
  bio_state_.hold = true;
  for (;;) {
    int r = SSL_do_handshake(ssl);
    if (r == 1) {
      break;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (error_code ec = co_await wait_for(e)) {
        co_return ec;
      }
      continue;
    }
    if (e == SSL_ERROR_PENDING_SESSION) {
      co_await wait_for_lookup();
      continue;  // the get callback runs again and takes the answer (or a miss)
    }
    if (e == SSL_ERROR_PENDING_CERTIFICATE) {
      co_await wait_for_claim();
      continue;  // the certificate callback runs again and takes the 0-RTT claim's answer
    }
    note_client_cert_failure(ssl, info_);  // before classify() clears the error queue
    error_code ec = classify(e, r);
    bio_state_.hold = false;
    flush_output(bio_state_, false);  // the alert, if the socket takes it now
    co_return ec == tls_errc::protocol_error ? error_code(tls_errc::handshake_failed) : ec;
  }
  bio_state_.hold = false;
  if (SSL_in_early_data(ssl) && bio_state_.output_pending()) {
    // 0-RTT: the server's flight goes now, so the client's Finished (which completes the
    // handshake for requests that wait for it) races the backend, not follows it.
    const error_code sent = co_await flush(false);
    if (sent) {
      co_return sent;
    }
  }
  info_.handshake_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::steady_clock::now() - start)
                           .count();
  if (const char* sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
    info_.server_name = sni;
  }
  info_.version = SSL_get_version(ssl);
  if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
    info_.cipher = SSL_CIPHER_standard_name(c);
  }
  if (SSL_session_reused(ssl)) {
    // TLS 1.3 resumes only by PSK (a ticket). In TLS 1.2 the session came either from the
    // session-ID cache (its get callback marks cache_hit) or from a ticket.
    info_.resumed =
        SSL_version(ssl) < TLS1_3_VERSION && info_.cache_hit ? resumption::id : resumption::ticket;
  }
  note_client_cert(ssl, info_);
  session_handle_of(ssl, info_);  // tickets and cache entries resolved it already, if any
  account_ticket_use(ssl, info_);
  co_return error_code{};
}

template <class Pending>
asio::awaitable<bool> stream::wait_answer(const std::shared_ptr<Pending>& p) {
  if (!p || p->done) {
    co_return false;
  }
  // The store's callback cancels the timer; the timer expiring first is the lookup timeout.
  asio::steady_timer t(socket_.get_executor(), info_.lookup_timeout);
  p->wake = [&t] { t.cancel(); };
  struct forget {  // however this frame ends, the answer can no longer reach the timer
    Pending& p;
    ~forget() { p.wake = nullptr; }
  } guard{*p};
  co_await t.async_wait(use_tuple);
  if (!p->done) {
    p->done = true;
    p->timed_out = true;
    co_return true;
  }
  co_return false;
}

asio::awaitable<void> stream::wait_for_lookup() {
  const bool timed_out = co_await wait_answer(info_.lookup);
  if (timed_out && info_.remote) {
    info_.remote->lookup_timed_out();
  }
}

asio::awaitable<void> stream::wait_for_claim() {
  co_await wait_answer(info_.claim);  // timed out: refused as unavailable (tls/early_data.h)
}

asio::awaitable<std::pair<error_code, std::size_t>> stream::read_some(void* data,
                                                                      std::size_t size) {
  SSL* ssl = ssl_.get();
  int want = static_cast<int>(std::min<std::size_t>(size, 1 << 30));
  const bool early = SSL_in_early_data(ssl) != 0;
  for (;;) {
    int r = SSL_read(ssl, data, want);
    if (r > 0) {
      if (early && SSL_in_early_data(ssl)) {
        early_bytes_ += static_cast<std::size_t>(r);
      }
      co_return std::pair{error_code{}, static_cast<std::size_t>(r)};
    }
    int e = SSL_get_error(ssl, r);
    if (early && e == SSL_ERROR_WANT_READ && !SSL_in_init(ssl)) {
      co_return std::pair{error_code{}, std::size_t{0}};  // the handshake completed
    }
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (error_code ec = co_await wait_for(e)) {
        co_return std::pair{ec, std::size_t{0}};
      }
      continue;
    }
    co_return std::pair{classify(e, r), std::size_t{0}};
  }
}

asio::awaitable<error_code> stream::write_all(const void* data, std::size_t size) {
  if (error_code ec = co_await write_records(data, size)) {
    co_return ec;
  }
  co_return bio_state_.output_pending() ? co_await flush(false) : error_code{};
}

asio::awaitable<error_code> stream::write_last(const void* data, std::size_t size) {
  bio_state_.hold = true;
  error_code ec = co_await write_records(data, size);
  // In 0-RTT the close waits for the client's Finished (proxy::connection::settle_handshake()):
  // the response must not wait in the kernel for it (MSG_MORE), and close_notify comes later.
  const bool confirmed = SSL_is_init_finished(ssl_.get()) != 0;
  if (!ec && confirmed) {
    SSL_shutdown(ssl_.get());  // close_notify joins the response
    ERR_clear_error();
  }
  bio_state_.hold = false;
  if (!ec) {
    ec = co_await flush(confirmed);
  }
  co_return ec;
}

asio::awaitable<error_code> stream::write_records(const void* data, std::size_t size) {
  SSL* ssl = ssl_.get();
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    int chunk = static_cast<int>(std::min<std::size_t>(size, 1 << 30));
    int r = SSL_write(ssl, p, chunk);
    if (r > 0) {
      p += r;
      size -= static_cast<std::size_t>(r);
      continue;
    }
    int e = SSL_get_error(ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      if (error_code ec = co_await wait_for(e)) {
        co_return ec;
      }
      continue;
    }
    co_return classify(e, r);
  }
  co_return error_code{};
}

std::uint64_t stream::output_progress() const noexcept {
  int queued = 0;  // sent but not acknowledged, plus not sent yet
  const std::uint64_t sent = bio_state_.bytes_sent;
  if (::ioctl(bio_state_.fd, SIOCOUTQ, &queued) != 0 || queued < 0) {
    return sent;
  }
  const std::uint64_t acked =
      sent - std::min<std::uint64_t>(sent, static_cast<std::uint64_t>(queued));
  return sent + acked;  // both only grow
}

void stream::shutdown() noexcept {
  if (SSL_is_init_finished(ssl_.get())) {
    SSL_shutdown(ssl_.get());  // one non-blocking attempt; the result does not matter
  }
  ERR_clear_error();
  flush_output(bio_state_, false);  // held bytes (tickets, close_notify), if the socket takes them
}

}  // namespace tlsfront::tls
