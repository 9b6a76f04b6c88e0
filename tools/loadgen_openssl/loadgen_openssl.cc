// tlsfront-loadgen-openssl: tools/loadgen's resumption-aware TLS load generator built on Debian's
// OpenSSL 3 (libssl.so.3) instead of tlsfront's BoringSSL, so a benchmark can drive a server with
// the TLS library most clients in the field use (wrk, curl). Same command line, same text line and
// same JSON keys as tlsfront-loadgen, so scripts swap the binary. N concurrent connections for a
// fixed time, each looping connect → handshake → one HTTP/1.1 request with "Connection: close" →
// read until the server closes (close_notify or EOF) → close. What each handshake offers:
//   full      never offers a session (TLS 1.2 or 1.3 per --tls)
//   id        TLS 1.2 with SSL_OP_NO_TICKET: resumes by session ID
//   ticket12  TLS 1.2 session tickets
//   ticket13  TLS 1.3 PSK-DHE resumption with the newest ticket the server sent
//   early13   the same, with the request as 0-RTT early data (SSL_write_early_data) when the
//             ticket allows it; sent again after the handshake if the server rejected it
// Each connection slot keeps the newest session the server gave it (SSL_CTX_sess_set_new_cb;
// OpenSSL's internal client cache stores nothing). Groups X25519 then P-256, ALPN http/1.1, SNI,
// no certificate verification (self-signed benchmark certificates), OpenSSL's default ciphers.
// It verifies every response (a 200 containing --expect), counts the handshakes that really
// resumed, and reports handshakes/s, resumed share, p50/p99/p99.9 latency (connect to close),
// errors and its own CPU time (text and, with --json, a JSON file).
// One difference: a connection still open 10 s after --duration counts as an error and is
// dropped (tlsfront-loadgen waits for it forever).
//
// Threads: each --threads thread runs one edge-triggered epoll loop over its own connections and
// its own SSL_CTX; OpenSSL reads and writes the non-blocking sockets itself (SSL_set_fd, read-ahead
// on, so a record header and its body are not two reads). Threads share only the options.
// Benchmark client only: OpenSSL is never linked into tlsfront or any tlsfront:: library. The
// command line, the text line and the JSON file come from tools/loadgen/loadgen_common.h (plain
// C++, no TLS headers), shared with tlsfront-loadgen.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/opensslv.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loadgen/loadgen_common.h"

#if !defined(OPENSSL_VERSION_MAJOR) || OPENSSL_VERSION_MAJOR < 3 || defined(OPENSSL_IS_BORINGSSL)
#error "tlsfront-loadgen-openssl builds against OpenSSL 3 (libssl-dev), never BoringSSL"
#endif

namespace {

using tlsfront::loadgen::clock_type;
using tlsfront::loadgen::mode;
using tlsfront::loadgen::options;
using tlsfront::loadgen::thread_stats;

// A connection still running this long after --duration ends counts as an error (a server that
// never closes must not hang the benchmark).
constexpr std::chrono::seconds drain_limit{10};
constexpr std::chrono::milliseconds connect_retry{10};

struct ssl_ctx_free {
  void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};
struct ssl_free {
  void operator()(SSL* p) const noexcept { SSL_free(p); }
};
struct ssl_session_free {
  void operator()(SSL_SESSION* p) const noexcept { SSL_SESSION_free(p); }
};
using ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_free>;
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;
using session_ptr = std::unique_ptr<SSL_SESSION, ssl_session_free>;

struct endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
};

// Where one connection slot stands: starting begins the next round (or ends the slot after
// --duration); backoff waits after a failed connect, as tlsfront-loadgen does.
enum class phase { starting, connecting, handshaking, writing, reading, backoff, done };

struct connection {
  session_ptr session;  // the newest resumable session for this slot (from on_new_session)
  ssl_ptr ssl;
  int fd = -1;
  phase state = phase::starting;
  std::size_t turn = 0;  // which port the next round uses
  bool resumed = false;
  bool early_sent = false;  // early13: the request went as early data on this round
  clock_type::time_point start;
  clock_type::time_point wake;  // end of the backoff
  std::string response;
};

int slot_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

// OpenSSL calls this with each new session: after a full TLS 1.2 handshake, and for each TLS 1.3
// NewSessionTicket (read along with the response). Returning 1 keeps the reference.
int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* c = static_cast<connection*>(SSL_get_ex_data(ssl, slot_index()));
  if (c == nullptr) {
    return 0;
  }
  c->session.reset(session);
  return 1;
}

void print_ssl_errors(const char* what) {
  std::fprintf(stderr, "tlsfront-loadgen-openssl: %s\n", what);
  ERR_print_errors_fp(stderr);
}

// The client context for the mode; nullptr (after printing OpenSSL's errors) on failure.
ctx_ptr make_ctx(const options& o) {
  ctx_ptr ctx(SSL_CTX_new(TLS_client_method()));
  if (!ctx) {
    print_ssl_errors("SSL_CTX_new failed");
    return nullptr;
  }
  const int version = tlsfront::loadgen::uses_tls12(o) ? TLS1_2_VERSION : TLS1_3_VERSION;
  static const unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  if (SSL_CTX_set_min_proto_version(ctx.get(), version) != 1 ||
      SSL_CTX_set_max_proto_version(ctx.get(), version) != 1 ||
      SSL_CTX_set1_groups_list(ctx.get(), "X25519:P-256") != 1 ||
      SSL_CTX_set_alpn_protos(ctx.get(), alpn, sizeof alpn) != 0) {  // 0 is success here
    print_ssl_errors("cannot configure the client context");
    return nullptr;
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  // An EOF without close_notify ends the response like close_notify does; without this flag
  // OpenSSL 3 turns it into a fatal error that also marks the slot's session not resumable.
  std::uint64_t opts = SSL_OP_IGNORE_UNEXPECTED_EOF;
  if (tlsfront::loadgen::disables_tickets(o)) {
    opts |= SSL_OP_NO_TICKET;
  }
  SSL_CTX_set_options(ctx.get(), opts);
  SSL_CTX_set_session_cache_mode(
      ctx.get(), o.m == mode::full ? SSL_SESS_CACHE_OFF
                                   : SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx.get(), &on_new_session);
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  return ctx;
}

// One thread's share of the connections, driven by one epoll loop until --duration has passed
// and every connection has finished its round.
class worker {
 public:
  worker(const options& o, SSL_CTX* ctx, const std::vector<endpoint>& eps,
         clock_type::time_point end, int connections, thread_stats& st)
      : o_(o),
        ctx_(ctx),
        eps_(eps),
        end_(end),
        st_(st),
        conns_(static_cast<std::size_t>(connections)),
        buf_(16384),
        request_(tlsfront::loadgen::make_request(o)) {}

  // False (after printing why) if the loop could not run at all.
  bool run() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) {
      std::perror("tlsfront-loadgen-openssl: epoll_create1");
      return false;
    }
    live_ = conns_.size();
    for (auto& c : conns_) {
      drive(c, 0);
    }
    std::vector<epoll_event> events(64);
    const auto hard_stop = end_ + drain_limit;
    while (live_ > 0) {
      auto now = clock_type::now();
      if (now >= hard_stop) {
        abandon_all();
        break;
      }
      auto wake = hard_stop;
      if (backoffs_ > 0) {
        for (auto& c : conns_) {
          if (c.state == phase::backoff && c.wake <= now) {
            --backoffs_;
            c.state = phase::starting;
            drive(c, 0);
          }
          if (c.state == phase::backoff) {
            wake = std::min(wake, c.wake);
          }
        }
        if (live_ == 0) {
          break;
        }
      }
      auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count() + 1;
      int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()),
                         static_cast<int>(std::min<long long>(wait_ms, 60000)));
      if (n < 0) {
        if (errno == EINTR) {
          continue;
        }
        std::perror("tlsfront-loadgen-openssl: epoll_wait");
        abandon_all();
        break;
      }
      // Each connection has one fd, registered once, so it appears at most once per batch, and
      // handling one connection never touches another's fd.
      for (int i = 0; i < n; ++i) {
        drive(*static_cast<connection*>(events[i].data.ptr), events[i].events);
      }
    }
    ::close(epoll_fd_);
    return true;
  }

 private:
  // Runs the connection's state machine until it waits for the socket (or the slot is done).
  // `events` are the epoll events that woke it (0 when not woken by epoll).
  void drive(connection& c, std::uint32_t events) {
    bool more = true;  // false once the connection waits for the socket or the slot is done
    while (more) {
      switch (c.state) {
        case phase::starting:
          begin(c);
          events = 0;  // they were for the previous round's socket
          break;
        case phase::connecting:
          more = (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0 && connected(c);
          break;
        case phase::handshaking:
          more = handshake(c);
          break;
        case phase::writing:
          more = write_request(c);
          break;
        case phase::reading:
          more = read_response(c);
          break;
        case phase::backoff:
        case phase::done:
          more = false;
          break;
      }
    }
  }

  // Starts a round: socket, SSL (offering the slot's session per mode), non-blocking connect.
  void begin(connection& c) {
    c.start = clock_type::now();
    if (c.start >= end_) {
      c.state = phase::done;
      --live_;
      return;
    }
    const endpoint& ep = eps_[c.turn++ % eps_.size()];
    c.fd = ::socket(ep.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      connect_failed(c);
      return;
    }
    int one = 1;
    ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c.ssl.reset(SSL_new(ctx_));
    if (!c.ssl || SSL_set_fd(c.ssl.get(), c.fd) != 1 ||
        SSL_set_tlsext_host_name(c.ssl.get(), o_.sni.c_str()) != 1 ||
        SSL_set_ex_data(c.ssl.get(), slot_index(), &c) != 1 ||
        (o_.m != mode::full && c.session && SSL_set_session(c.ssl.get(), c.session.get()) != 1)) {
      fail(c);
      return;
    }
    SSL_set_connect_state(c.ssl.get());
    c.early_sent = false;
    phase next = phase::handshaking;
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) {
      if (errno != EINPROGRESS) {
        connect_failed(c);
        return;
      }
      next = phase::connecting;
    }
    // Registered once for both directions, edge-triggered: OpenSSL reports WANT_READ or
    // WANT_WRITE only after the socket said EAGAIN, so the next edge is never missed.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLET;
    ev.data.ptr = &c;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
      fail(c);
      return;
    }
    c.state = next;
  }

  // The connect finished: on to the handshake, or back off on a connect error. False if the
  // connection waits.
  bool connected(connection& c) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      connect_failed(c);
      return false;
    }
    c.state = phase::handshaking;
    return true;
  }

  // False while the handshake waits for the socket.
  bool handshake(connection& c) {
    if (o_.m == mode::early13 && !c.early_sent && c.session &&
        SSL_SESSION_get_max_early_data(c.session.get()) >= request_.size()) {
      std::size_t written = 0;
      const int w = SSL_write_early_data(c.ssl.get(), request_.data(), request_.size(), &written);
      if (w != 1) {
        if (wants_io(c, w)) {
          return false;
        }
        fail(c);
        return true;
      }
      c.early_sent = true;
    }
    int r = SSL_connect(c.ssl.get());
    if (r == 1) {
      c.resumed = SSL_session_reused(c.ssl.get()) == 1;
      if (c.resumed && o_.fresh_sessions) {
        c.session.reset();  // the next handshake is a full one that makes a new session
      }
      const bool accepted =
          c.early_sent && SSL_get_early_data_status(c.ssl.get()) == SSL_EARLY_DATA_ACCEPTED;
      if (accepted) {
        ++st_.early_accepted;
        c.response.clear();
      }
      c.state = accepted ? phase::reading : phase::writing;
      return true;
    }
    if (wants_io(c, r)) {
      return false;
    }
    fail(c);
    return true;
  }

  bool write_request(connection& c) {
    int r = SSL_write(c.ssl.get(), request_.data(), static_cast<int>(request_.size()));
    if (r > 0) {
      c.response.clear();
      c.state = phase::reading;
      return true;
    }
    if (wants_io(c, r)) {
      return false;  // SSL_write is retried with the same arguments
    }
    fail(c);
    return true;
  }

  // Reads until the server closes; TLS 1.3 tickets arrive here too (on_new_session).
  bool read_response(connection& c) {
    for (;;) {
      int r = SSL_read(c.ssl.get(), buf_.data(), static_cast<int>(buf_.size()));
      if (r > 0) {
        if (c.response.empty()) {
          st_.add_first_byte(c.start);
        }
        c.response.append(buf_.data(), static_cast<std::size_t>(r));
        continue;
      }
      int err = SSL_get_error(c.ssl.get(), r);
      if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
        return false;
      }
      complete(c, err == SSL_ERROR_ZERO_RETURN);  // any other error also ends the response
      return true;
    }
  }

  // The server closed: check the response, count the round, close.
  void complete(connection& c, bool clean_close) {
    if (!tlsfront::loadgen::response_ok(o_, c.response)) {
      ++st_.bad_responses;
      fail(c);
      return;
    }
    if (clean_close) {
      SSL_shutdown(c.ssl.get());  // one non-blocking attempt; the result does not matter
    }
    st_.add_round(c.resumed, c.start);
    close(c);
    c.state = phase::starting;
  }

  bool wants_io(connection& c, int r) {
    int err = SSL_get_error(c.ssl.get(), r);
    return err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE;
  }

  void fail(connection& c) {
    ++st_.errors;
    close(c);
    c.state = phase::starting;
  }

  void connect_failed(connection& c) {
    ++st_.errors;
    close(c);
    c.state = phase::backoff;
    c.wake = clock_type::now() + connect_retry;
    ++backoffs_;
  }

  void close(connection& c) {
    c.ssl.reset();  // SSL_set_fd's BIO does not own the fd
    if (c.fd >= 0) {
      ::close(c.fd);  // also leaves the epoll set
      c.fd = -1;
    }
    ERR_clear_error();
  }

  // Past the drain limit: whatever still runs counts as an error.
  void abandon_all() {
    for (auto& c : conns_) {
      if (c.state != phase::done) {
        if (c.state != phase::backoff) {
          ++st_.errors;
        }
        close(c);
        c.state = phase::done;
      }
    }
    live_ = 0;
  }

  const options& o_;
  SSL_CTX* ctx_;
  const std::vector<endpoint>& eps_;
  clock_type::time_point end_;
  thread_stats& st_;
  std::vector<connection> conns_;  // never resized: epoll data points into it
  std::vector<char> buf_;
  std::string request_;
  int epoll_fd_ = -1;
  std::size_t live_ = 0;      // connections not done
  std::size_t backoffs_ = 0;  // connections in backoff
};

// --host (IPv4 or IPv6 literal) with each port; nothing if the host is not an address.
std::optional<std::vector<endpoint>> make_endpoints(const options& o) {
  std::vector<endpoint> eps;
  for (unsigned short port : o.ports) {
    endpoint ep;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ep.addr);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
    if (inet_pton(AF_INET, o.host.c_str(), &v4->sin_addr) == 1) {
      v4->sin_family = AF_INET;
      v4->sin_port = htons(port);
      ep.len = sizeof(sockaddr_in);
    } else if (inet_pton(AF_INET6, o.host.c_str(), &v6->sin6_addr) == 1) {
      v6->sin6_family = AF_INET6;
      v6->sin6_port = htons(port);
      ep.len = sizeof(sockaddr_in6);
    } else {
      return std::nullopt;
    }
    eps.push_back(ep);
  }
  return eps;
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<options> parsed = tlsfront::loadgen::parse_args(argc, argv);
  if (!parsed) {
    return tlsfront::loadgen::usage("tlsfront-loadgen-openssl");
  }
  const options& o = *parsed;
  std::optional<std::vector<endpoint>> eps = make_endpoints(o);
  if (!eps) {
    std::fprintf(stderr, "tlsfront-loadgen-openssl: bad --host %s\n", o.host.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);  // OpenSSL's socket BIO writes with write(2)
  slot_index();                   // allocated once, before any thread runs
  std::vector<ctx_ptr> ctxs;
  for (int t = 0; t < o.threads; ++t) {
    ctxs.push_back(make_ctx(o));
    if (!ctxs.back()) {
      return 1;
    }
  }
  return tlsfront::loadgen::run_and_report(
      o, [&](int thread, int connections, clock_type::time_point end, thread_stats& st) {
        worker w(o, ctxs[static_cast<std::size_t>(thread)].get(), *eps, end, connections, st);
        w.run();  // a loop that cannot start says why and leaves its stats at zero
      });
}
