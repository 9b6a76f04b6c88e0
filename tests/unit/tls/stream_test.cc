// tls::stream on a real loopback TCP connection: a server stream and a client stream (both
// tls::stream, as tools/loadgen uses it) run as coroutines on one io_context. Checked: TLS 1.2
// (full, resumed by session ID) and TLS 1.3 (full, resumed by ticket) handshakes complete; each
// flight costs one send(2); what a handshake writes last (the client's Finished in TLS 1.3 and
// in TLS 1.2 resumption, the server's CCS+Finished in a TLS 1.2 full handshake) is held and
// joins the next write or leaves before the next wait, instead of costing a send of its own
// (the server's TLS 1.3 tickets join its first write: BoringSSL defers them to it, and the
// stream must not add a send); no recv(2) is made that finds the socket empty once a read has
// drained it (tls/edge_recv.h: both sockets have TCP_INQ, as in production, where the server's
// socket inherits it from the listener); write_last() sends the response, close_notify and
// (with the close that follows) the FIN in one send and one TCP segment; a failed handshake
// still sends its alert.
//
// How the recv(2) counts come about. The client starts first, so its ClientHello is queued
// before the server's first receive, which takes it with the speculative try at the start (the
// epoll event its arrival raised is dropped by the kernel at the next epoll_wait, the socket no
// longer being readable, so it does not make the reactor try the next receive).
// Every other receive waits behind a flight its side has just sent, and on loopback nothing of
// the answer is there yet: with edge reads the wait makes no recv(2) (the last read drained the
// socket: TCP_INQ said 0 left) until the epoll event for the answer, and then one takes all of
// it. A receive on a socket not yet read from (the client's first, right after its ClientHello)
// has no such knowledge and says EAGAIN once. Without edge reads each wait behind a flight costs
// that EAGAIN; EdgeReadsSpendNoRecvFindingTheSocketEmpty runs the same connections with edge
// reads off on the server and with no TCP_INQ, and checks those counts.
//
// The send counts quoted as "without the hold" were checked against mutated copies of src/
// (outside the tree), with the handshake hold removed.
#include "tls/stream.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "support/run_until.h"
#include "support/test_env.h"
#include "tls/edge_recv.h"

namespace tlsfront::tls {
namespace {

namespace ip = asio::ip;

const std::string kRequest = "GET / HTTP/1.1\r\nHost: a.example\r\n\r\n";
const std::string kResponse = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

// The client's newest session (TLS 1.2: at the end of the handshake; TLS 1.3: from the last
// NewSessionTicket). Tests run on one thread.
bssl::UniquePtr<SSL_SESSION> g_session;

int on_new_session(SSL*, SSL_SESSION* session) {
  g_session.reset(session);  // takes the reference
  return 1;
}

// Alerts the client received (their description bytes), from the message callback.
std::vector<int> g_alerts_received;

void on_message(int is_write, int, int content_type, const void* buf, size_t len, SSL*, void*) {
  if (!is_write && content_type == SSL3_RT_ALERT && len == 2) {
    g_alerts_received.push_back(static_cast<const std::uint8_t*>(buf)[1]);
  }
}

bssl::UniquePtr<SSL_CTX> make_server_ctx(std::uint16_t max_version, bool tickets) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  const std::string dir = test::certs_dir();
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx.get(), max_version) ||
      !SSL_CTX_use_certificate_chain_file(ctx.get(), (dir + "/a.crt").c_str()) ||
      !SSL_CTX_use_PrivateKey_file(ctx.get(), (dir + "/a.key").c_str(), SSL_FILETYPE_PEM)) {
    ADD_FAILURE() << "server SSL_CTX set-up failed";
    return nullptr;
  }
  static const std::uint8_t sid_ctx[] = {'t', 'e', 's', 't'};
  SSL_CTX_set_session_id_context(ctx.get(), sid_ctx, sizeof sid_ctx);
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_SERVER);  // BoringSSL's own cache
  if (!tickets) {
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  }
  return ctx;
}

bssl::UniquePtr<SSL_CTX> make_client_ctx(std::uint16_t min_version, std::uint16_t max_version,
                                         bool tickets) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx || !SSL_CTX_set_min_proto_version(ctx.get(), min_version) ||
      !SSL_CTX_set_max_proto_version(ctx.get(), max_version)) {
    ADD_FAILURE() << "client SSL_CTX set-up failed";
    return nullptr;
  }
  if (!tickets) {
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  }
  SSL_CTX_set_session_cache_mode(ctx.get(), SSL_SESS_CACHE_CLIENT);
  SSL_CTX_sess_set_new_cb(ctx.get(), &on_new_session);
  SSL_CTX_set_msg_callback(ctx.get(), &on_message);
  return ctx;  // no verification: these tests are about the transport, not the PKI
}

// tcpi_segs_in (Linux >= 4.2) sits past the end of glibc's struct tcp_info.
struct tcp_info_with_segs {
  tcp_info base;
  std::uint64_t pacing_rate, max_pacing_rate, bytes_acked, bytes_received;
  std::uint32_t segs_out, segs_in;
};
static_assert(sizeof(tcp_info) == 104, "glibc's tcp_info ends at tcpi_total_retrans");

// TCP segments received so far on `fd`, or -1 if the kernel does not say.
long segments_in(int fd) {
  tcp_info_with_segs info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) != 0 ||
      len < offsetof(tcp_info_with_segs, segs_in) + sizeof info.segs_in) {
    return -1;
  }
  return static_cast<long>(info.segs_in);
}

// How the connection is set up. As in production by default: TCP_INQ on the server's socket,
// inherited from the listener (proxy::tune_listener sets it there), and on the client's, as
// tlsfront sets it on its own client sockets to backends (backend_link::connect);
// edge reads on.
struct setup {
  bool inq = true;
  bool server_edge_reads = true;  // stream::set_edge_reads on the server
};

// The socket's TCP_INQ option (1 on, 0 off), or -1 if the kernel does not know it.
int inq_option(int fd) {
  int on = -1;
  socklen_t len = sizeof on;
  return ::getsockopt(fd, IPPROTO_TCP, TCP_INQ, &on, &len) == 0 ? on : -1;
}

// What one connection did, as seen from both ends.
struct observed {
  bool server_done = false, client_done = false;
  error_code server_handshake, client_handshake;
  std::uint64_t server_sends_after_handshake = 0, server_reads_after_request = 0;
  std::uint64_t server_sends = 0;  // through the response (write_all) or write_last
  std::uint64_t client_sends = 0;  // through the request
  std::uint64_t client_reads = 0;  // through the response (until read_some() ended)
  bool server_reused = false, client_reused = false;
  std::string server_version, request_seen, response_seen;
  error_code client_end;  // how the client's reading ended
  bool client_got_close_notify = false;
  ssize_t client_raw_recv = -2;  // a recv(2) on the client's descriptor after the end
  long segments_for_last_write = -1;
  std::uint64_t sends_for_last_write = 0;
};

class TlsStream : public ::testing::Test {
 protected:
  void SetUp() override {
    g_session.reset();
    g_alerts_received.clear();
  }
  void TearDown() override { g_session.reset(); }

  // A connected loopback TCP pair (blocking descriptors, as Asio's synchronous accept and
  // connect leave them: the stream's system calls are non-blocking by flag). With `inq`, the
  // listener has TCP_INQ (the server's socket inherits it) and the client sets it.
  void connect_pair(ip::tcp::socket& server, ip::tcp::socket& client, bool inq = true) {
    ip::tcp::acceptor acc(ioc_, ip::tcp::endpoint(ip::address_v4::loopback(), 0));
    if (inq) {
      enable_inq(acc.native_handle());
    }
    client.connect(acc.local_endpoint());
    if (inq) {
      enable_inq(client.native_handle());
    }
    server = acc.accept();
    EXPECT_EQ(inq_option(server.native_handle()), inq ? 1 : 0);
    EXPECT_EQ(inq_option(client.native_handle()), inq ? 1 : 0);
  }

  // One connection: handshake, the client sends kRequest, the server answers kResponse with
  // write_all (or write_last followed by a close), the client reads until the server's end.
  observed exchange(SSL_CTX* server_ctx, SSL_CTX* client_ctx, SSL_SESSION* resume, bool last_write,
                    setup how = {}) {
    observed o;
    ip::tcp::socket server_sock(ioc_), client_sock(ioc_);
    connect_pair(server_sock, client_sock, how.inq);
    const int client_fd = client_sock.native_handle();
    bssl::UniquePtr<SSL> server_ssl(SSL_new(server_ctx));
    bssl::UniquePtr<SSL> client_ssl(SSL_new(client_ctx));
    if (!server_ssl || !client_ssl) {
      ADD_FAILURE() << "SSL_new failed";
      return o;
    }
    SSL_set_accept_state(server_ssl.get());
    SSL_set_connect_state(client_ssl.get());
    SSL_set_tlsext_host_name(client_ssl.get(), "a.example");
    if (resume) {
      SSL_set_session(client_ssl.get(), resume);
    }
    stream server(std::move(server_sock), std::move(server_ssl));
    stream client(std::move(client_sock), std::move(client_ssl));
    server.set_edge_reads(how.server_edge_reads);

    // The client starts first (its ClientHello is queued before the server's first read), so
    // the server's recv(2) count is deterministic.
    asio::co_spawn(ioc_, run_client(client, client_fd, o), asio::detached);
    asio::co_spawn(ioc_, run_server(server, client_fd, last_write, o), asio::detached);
    const auto both_done = [&] { return o.server_done && o.client_done; };
    if (!test::run_until(ioc_, both_done, std::chrono::seconds(5))) {
      ADD_FAILURE() << "the exchange did not finish";
      // Abort the waits so that no coroutine outlives the streams it refers to.
      error_code ignored;
      server.socket().close(ignored);
      client.socket().close(ignored);
      test::run_until(ioc_, both_done, std::chrono::seconds(1));
    }
    if (last_write || o.server_handshake) {
      o.server_sends = server.socket_sends();
    }
    return o;
  }

  static asio::awaitable<void> run_server(stream& s, int client_fd, bool last_write, observed& o) {
    o.server_handshake = co_await s.handshake();
    o.server_sends_after_handshake = s.socket_sends();
    if (o.server_handshake) {
      error_code ignored;
      s.socket().close(ignored);
      o.server_done = true;
      co_return;
    }
    o.server_reused = SSL_session_reused(s.native()) != 0;
    o.server_version = s.info().version;
    char buf[1024];
    while (o.request_seen.size() < kRequest.size()) {
      auto [ec, n] = co_await s.read_some(buf, sizeof buf);
      if (ec) {
        break;
      }
      o.request_seen.append(buf, n);
    }
    o.server_reads_after_request = s.socket_reads();
    if (last_write) {
      // Everything the client has been sent so far has arrived (loopback delivers within the
      // send), so what it receives from here on is what write_last() and the close produce.
      const long segs_before = segments_in(client_fd);
      const std::uint64_t sends_before = s.socket_sends();
      error_code ec = co_await s.write_last(kResponse.data(), kResponse.size());
      EXPECT_FALSE(ec) << ec.message();
      o.sends_for_last_write = s.socket_sends() - sends_before;
      error_code ignored;
      s.socket().close(ignored);  // the FIN joins the corked (MSG_MORE) response and close_notify
      pollfd p{client_fd, POLLIN, 0};
      ::poll(&p, 1, 1000);
      const long segs_after = segments_in(client_fd);
      if (segs_before >= 0 && segs_after >= 0) {
        o.segments_for_last_write = segs_after - segs_before;
      }
    } else {
      error_code ec = co_await s.write_all(kResponse.data(), kResponse.size());
      EXPECT_FALSE(ec) << ec.message();
      o.server_sends = s.socket_sends();  // before the close_notify
      s.shutdown();
      error_code ignored;
      s.socket().close(ignored);
    }
    o.server_done = true;
  }

  static asio::awaitable<void> run_client(stream& c, int fd, observed& o) {
    o.client_handshake = co_await c.handshake();
    if (o.client_handshake) {
      o.client_done = true;
      co_return;
    }
    o.client_reused = SSL_session_reused(c.native()) != 0;
    if (error_code ec = co_await c.write_all(kRequest.data(), kRequest.size())) {
      ADD_FAILURE() << "client write: " << ec.message();
      o.client_done = true;
      co_return;
    }
    o.client_sends = c.socket_sends();
    char buf[1024];
    for (;;) {
      auto [ec, n] = co_await c.read_some(buf, sizeof buf);
      if (ec) {
        o.client_end = ec;
        break;
      }
      o.response_seen.append(buf, n);
    }
    o.client_reads = c.socket_reads();
    o.client_got_close_notify = (SSL_get_shutdown(c.native()) & SSL_RECEIVED_SHUTDOWN) != 0;
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, 1000);
    char b;
    o.client_raw_recv = ::recv(fd, &b, 1, MSG_DONTWAIT);
    o.client_done = true;
  }

  asio::io_context ioc_{1};
};

// Guards stream change 2 on the TLS 1.3 full handshake. The client's Finished, written at the
// end of its handshake, is held and leaves with the request in one send: client 2 sends (without
// the hold: 3, and the request then waits behind the unacknowledged Finished for Nagle). The
// server's flight (ServerHello .. Finished) is one send and its tickets leave with the response:
// 2 sends in all. Receives: the server reads the ClientHello (already there when it starts) and
// Finished+request with one recv(2) each, and none finds its socket empty: 2 (without edge
// reads: 3, an EAGAIN after its flight). The client: one EAGAIN right after its ClientHello (its
// socket has not been read yet), the server's flight, then tickets+response+close_notify, which
// the server sent before the client ran again: 3 (without TCP_INQ: 4, an EAGAIN after
// Finished+request).
TEST_F(TlsStream, Tls13FullHandshakeCostsOneSendPerFlightAndTicketsJoinTheResponse) {
  auto sctx = make_server_ctx(TLS1_3_VERSION, true);
  auto cctx = make_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION, true);
  ASSERT_TRUE(sctx && cctx);
  observed o = exchange(sctx.get(), cctx.get(), nullptr, false);
  ASSERT_FALSE(o.server_handshake) << o.server_handshake.message();
  ASSERT_FALSE(o.client_handshake) << o.client_handshake.message();
  EXPECT_EQ(o.server_version, "TLSv1.3");
  EXPECT_FALSE(o.server_reused);
  EXPECT_EQ(o.request_seen, kRequest);
  EXPECT_EQ(o.response_seen, kResponse);
  EXPECT_EQ(o.server_sends_after_handshake, 1u) << "SH..Finished in one send, tickets held";
  EXPECT_EQ(o.server_sends, 2u) << "the tickets must not cost a send of their own";
  EXPECT_EQ(o.server_reads_after_request, 2u) << "ClientHello, then Finished+request";
  EXPECT_EQ(o.client_sends, 2u) << "ClientHello, then Finished+request";
  EXPECT_EQ(o.client_reads, 3u) << "EAGAIN, the server's flight, the response";
  EXPECT_NE(g_session, nullptr) << "the held tickets did reach the client";
}

// Guards the same on a TLS 1.3 resumption (PSK from the ticket of a first connection): the same
// shape with a shorter server flight (ServerHello, EncryptedExtensions, Finished). Server: one
// recv(2) for the ClientHello, one for Finished+request, none that finds the socket empty (2;
// without edge reads: 3); 2 sends. Client: 2 sends, 3 recv(2) (EAGAIN, flight, response).
TEST_F(TlsStream, Tls13ResumptionCostsOneSendPerFlight) {
  auto sctx = make_server_ctx(TLS1_3_VERSION, true);
  auto cctx = make_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION, true);
  ASSERT_TRUE(sctx && cctx);
  observed first = exchange(sctx.get(), cctx.get(), nullptr, false);
  ASSERT_FALSE(first.server_handshake) << first.server_handshake.message();
  ASSERT_NE(g_session, nullptr);
  bssl::UniquePtr<SSL_SESSION> session = std::move(g_session);
  observed o = exchange(sctx.get(), cctx.get(), session.get(), false);
  ASSERT_FALSE(o.server_handshake) << o.server_handshake.message();
  ASSERT_FALSE(o.client_handshake) << o.client_handshake.message();
  EXPECT_TRUE(o.server_reused);
  EXPECT_TRUE(o.client_reused);
  EXPECT_EQ(o.response_seen, kResponse);
  EXPECT_EQ(o.server_sends_after_handshake, 1u);
  EXPECT_EQ(o.server_sends, 2u);
  EXPECT_EQ(o.server_reads_after_request, 2u) << "ClientHello, then Finished+request";
  EXPECT_EQ(o.client_sends, 2u);
  EXPECT_EQ(o.client_reads, 3u) << "EAGAIN, the server's flight, the response";
}

// Guards stream change 2 on TLS 1.2 with session IDs (tickets off). Full handshake: the server's
// two flights are one send each (the second, CCS+Finished, is held until the server waits for
// the request: 1 send when the handshake returns; without the hold: 2) and it makes 3 recv(2)
// calls, none finding the socket empty (ClientHello, CKE..Finished, request; without edge reads:
// 5, an EAGAIN after each flight). The client: 3 sends (ClientHello, CKE..Finished, request)
// and 4 recv(2) (EAGAIN after its ClientHello, the server's two flights, the response; without
// TCP_INQ: 6). Resumption by ID: the client's CCS+Finished, written at the end of its handshake,
// leave with the request (client: 2 sends; without the hold: 3; 3 recv(2): EAGAIN, the server's
// flight, the response); the server: 2 sends and 2 recv(2), ClientHello and
// CCS+Finished+request (without edge reads: 3).
TEST_F(TlsStream, Tls12FullAndSessionIdResumption) {
  auto sctx = make_server_ctx(TLS1_2_VERSION, false);
  auto cctx = make_client_ctx(TLS1_2_VERSION, TLS1_2_VERSION, false);
  ASSERT_TRUE(sctx && cctx);
  observed full = exchange(sctx.get(), cctx.get(), nullptr, false);
  ASSERT_FALSE(full.server_handshake) << full.server_handshake.message();
  ASSERT_FALSE(full.client_handshake) << full.client_handshake.message();
  EXPECT_EQ(full.server_version, "TLSv1.2");
  EXPECT_FALSE(full.server_reused);
  EXPECT_EQ(full.request_seen, kRequest);
  EXPECT_EQ(full.response_seen, kResponse);
  EXPECT_EQ(full.server_sends_after_handshake, 1u) << "flight 2 (CCS+Finished) is held";
  EXPECT_EQ(full.server_sends, 3u);
  EXPECT_EQ(full.server_reads_after_request, 3u) << "ClientHello, CKE..Finished, request";
  EXPECT_EQ(full.client_sends, 3u);
  EXPECT_EQ(full.client_reads, 4u) << "EAGAIN, flight 1, flight 2, the response";

  ASSERT_NE(g_session, nullptr);
  bssl::UniquePtr<SSL_SESSION> session = std::move(g_session);
  unsigned id_len = 0;
  SSL_SESSION_get_id(session.get(), &id_len);
  EXPECT_GT(id_len, 0u) << "a session ID to resume by";
  observed o = exchange(sctx.get(), cctx.get(), session.get(), false);
  ASSERT_FALSE(o.server_handshake) << o.server_handshake.message();
  ASSERT_FALSE(o.client_handshake) << o.client_handshake.message();
  EXPECT_TRUE(o.server_reused);
  EXPECT_TRUE(o.client_reused);
  EXPECT_EQ(o.request_seen, kRequest);
  EXPECT_EQ(o.response_seen, kResponse);
  EXPECT_EQ(o.server_sends_after_handshake, 1u) << "SH+CCS+Finished in one send";
  EXPECT_EQ(o.server_sends, 2u);
  EXPECT_EQ(o.server_reads_after_request, 2u) << "ClientHello, CCS+Finished+request";
  EXPECT_EQ(o.client_sends, 2u) << "the client's CCS+Finished must leave with the request";
  EXPECT_EQ(o.client_reads, 3u) << "EAGAIN, the server's flight, the response";
}

// Guards the edge reads (tls/edge_recv.h) as the stream uses them, by running the same full
// handshakes three ways. Production (TCP_INQ on both sockets, edge reads on): the counts above.
// Edge reads off on the server (stream::set_edge_reads(false), as tunnels use): every wait of
// the server behind a flight tries a recv(2) first, which says EAGAIN: one more per server flight
// (TLS 1.3: 3 instead of 2; TLS 1.2: 5 instead of 3); the client is unchanged. No TCP_INQ on
// either socket: no read counts as draining (the kernel gives no report), so both sides pay that
// EAGAIN after each flight they send (server as with edge reads off; client TLS 1.3: 4 instead
// of 3, TLS 1.2: 6 instead of 4). The sends are the same three ways: only the receives change.
TEST_F(TlsStream, EdgeReadsSpendNoRecvFindingTheSocketEmpty) {
  struct expected {
    std::uint64_t server_reads, client_reads;
  };
  struct version_case {
    const char* name;
    std::uint16_t version;
    bool tickets;
    std::uint64_t server_sends, client_sends;
    expected production, server_edge_off, no_inq;
  };
  const version_case cases[] = {
      {"TLS 1.3", TLS1_3_VERSION, true, 2, 2, {2, 3}, {3, 3}, {3, 4}},
      {"TLS 1.2", TLS1_2_VERSION, false, 3, 3, {3, 4}, {5, 4}, {5, 6}},
  };
  for (const version_case& c : cases) {
    SCOPED_TRACE(c.name);
    auto sctx = make_server_ctx(c.version, c.tickets);
    auto cctx = make_client_ctx(c.version, c.version, c.tickets);
    ASSERT_TRUE(sctx && cctx);
    const std::pair<setup, expected> runs[] = {
        {setup{}, c.production},
        {setup{.inq = true, .server_edge_reads = false}, c.server_edge_off},
        {setup{.inq = false, .server_edge_reads = true}, c.no_inq},
    };
    for (const auto& [how, want] : runs) {
      SCOPED_TRACE(!how.inq ? "no TCP_INQ" : how.server_edge_reads ? "production" : "edge off");
      observed o = exchange(sctx.get(), cctx.get(), nullptr, false, how);
      ASSERT_FALSE(o.server_handshake) << o.server_handshake.message();
      ASSERT_FALSE(o.client_handshake) << o.client_handshake.message();
      EXPECT_EQ(o.request_seen, kRequest);
      EXPECT_EQ(o.response_seen, kResponse);
      EXPECT_EQ(o.server_sends, c.server_sends);
      EXPECT_EQ(o.client_sends, c.client_sends);
      EXPECT_EQ(o.server_reads_after_request, want.server_reads);
      EXPECT_EQ(o.client_reads, want.client_reads);
    }
  }
}

// Guards stream change 2 (write_last): the response (with the TLS 1.3 tickets BoringSSL puts
// before the first write) and close_notify leave in exactly one send(2) with MSG_MORE (without
// the hold in write_last: 2 sends), and the close(2) right after puts the FIN into the same TCP
// segment (without MSG_MORE: 2 segments). The client reads the whole response, then read_some()
// ends with eof because of the close_notify (not a bare TCP close), and a raw recv(2) after it
// sees the FIN (0).
TEST_F(TlsStream, WriteLastSendsResponseCloseNotifyAndFinTogether) {
  for (std::uint16_t version : {TLS1_3_VERSION, TLS1_2_VERSION}) {
    SCOPED_TRACE(version == TLS1_3_VERSION ? "TLS 1.3" : "TLS 1.2");
    auto sctx = make_server_ctx(version, true);
    auto cctx = make_client_ctx(version, version, true);
    ASSERT_TRUE(sctx && cctx);
    observed o = exchange(sctx.get(), cctx.get(), nullptr, true);
    ASSERT_FALSE(o.server_handshake) << o.server_handshake.message();
    ASSERT_FALSE(o.client_handshake) << o.client_handshake.message();
    EXPECT_EQ(o.response_seen, kResponse);
    EXPECT_EQ(o.client_end, asio::error::eof) << o.client_end.message();
    EXPECT_TRUE(o.client_got_close_notify);
    EXPECT_EQ(o.client_raw_recv, 0) << "the FIN follows the close_notify";
    EXPECT_EQ(o.sends_for_last_write, 1u) << "response (+ tickets) + close_notify: one send";
    EXPECT_EQ(o.segments_for_last_write, 1) << "response, close_notify and FIN: one segment";
  }
}

// Guards the error path of the held handshake output: the alert BoringSSL writes when the
// handshake fails is flushed, so the client learns why (protocol_version) instead of seeing the
// connection just close (without that flush: no alert, the client's handshake ends in eof).
// Here the client offers only TLS 1.3 and the server speaks at most 1.2.
TEST_F(TlsStream, AFailedHandshakeStillSendsItsAlert) {
  auto sctx = make_server_ctx(TLS1_2_VERSION, true);
  auto cctx = make_client_ctx(TLS1_3_VERSION, TLS1_3_VERSION, true);
  ASSERT_TRUE(sctx && cctx);
  observed o = exchange(sctx.get(), cctx.get(), nullptr, false);
  EXPECT_EQ(o.server_handshake, tls_errc::handshake_failed) << o.server_handshake.message();
  EXPECT_EQ(o.client_handshake, tls_errc::handshake_failed) << o.client_handshake.message();
  ASSERT_EQ(g_alerts_received.size(), 1u) << "the server's alert must reach the client";
  EXPECT_EQ(g_alerts_received[0], SSL_AD_PROTOCOL_VERSION);
  EXPECT_EQ(o.server_sends, 1u) << "the alert, once";
}

// The same with a peer that sends a malformed ClientHello (a handshake record whose ClientHello
// is empty): the handshake fails and the raw peer receives a fatal alert record.
TEST_F(TlsStream, GarbageGetsAFatalAlert) {
  auto sctx = make_server_ctx(TLS1_3_VERSION, true);
  ASSERT_TRUE(sctx);
  ip::tcp::socket server_sock(ioc_), client_sock(ioc_);
  connect_pair(server_sock, client_sock);
  const int client_fd = client_sock.native_handle();
  const unsigned char garbage[] = {0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0x00, 0x00};
  ASSERT_EQ(::send(client_fd, garbage, sizeof garbage, 0), static_cast<ssize_t>(sizeof garbage));
  bssl::UniquePtr<SSL> ssl(SSL_new(sctx.get()));
  ASSERT_TRUE(ssl);
  SSL_set_accept_state(ssl.get());
  stream server(std::move(server_sock), std::move(ssl));
  bool done = false;
  error_code result;
  asio::co_spawn(
      ioc_,
      [&]() -> asio::awaitable<void> {
        result = co_await server.handshake();
        done = true;
      },
      asio::detached);
  ASSERT_TRUE(test::run_until(
      ioc_, [&] { return done; }, std::chrono::seconds(5)));
  EXPECT_EQ(result, tls_errc::handshake_failed) << result.message();
  pollfd p{client_fd, POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 1000), 1) << "no alert arrived";
  unsigned char got[64];
  ssize_t n = ::recv(client_fd, got, sizeof got, MSG_DONTWAIT);
  ASSERT_EQ(n, 7) << "one alert record";
  EXPECT_EQ(got[0], SSL3_RT_ALERT);
  EXPECT_EQ(got[3], 0);
  EXPECT_EQ(got[4], 2);
  EXPECT_EQ(got[5], SSL3_AL_FATAL);
  EXPECT_EQ(got[6], SSL_AD_DECODE_ERROR);
}

}  // namespace
}  // namespace tlsfront::tls
