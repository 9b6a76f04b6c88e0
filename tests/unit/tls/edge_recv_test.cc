// tls::async_edge_recv on a real loopback TCP connection (an acceptor on 127.0.0.1:0, one
// io_context run on the test thread). Every receive goes through a counting recv_fn around
// recv_into (or fill_read_ahead), so each test can say how many recv(2) calls a receive cost.
// The socket under test has TCP_INQ on (tls::enable_inq, as production sockets have), unless the
// test says otherwise. Checked: recv_with_inq() reports "drained" exactly when the kernel says
// nothing (no byte, no FIN) is left; bytes already there are taken by the speculative try at the
// start; after a read that drained the socket the next receive waits for the next epoll event
// without a recv(2); a read that leaves bytes (or a FIN) behind is not "drained", whatever its
// size, so the next receive tries at once; without TCP_INQ no read is "drained" (Asio's own
// behaviour); end of stream, cancel(), close(), a reset and a destroyed io_context end a receive
// the way Asio's own do, except the documented case of a reset queued behind the last bytes,
// which surfaces at the next send; and fill_read_ahead fills a socket_bio_state's buffer the same
// way (with socket_bio_state::edge off, never "drained").
//
// Where a test needs the reactor to have seen an event before a receive starts (as a busy worker
// has), settle() lets it wait once; where the peer's bytes must have arrived first, the test
// polls the descriptor (poll(2) does not touch epoll's ready list). No timing is asserted: waits
// are bounded (a hang fails the test) and "nothing happened" is checked after a short run.
#include "tls/edge_recv.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/socket_base.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "support/run_until.h"
#include "tls/socket_bio.h"

namespace tlsfront::tls {
namespace {

namespace ip = asio::ip;
using boost::system::error_code;
using namespace std::chrono_literals;

// A recv_fn that counts its calls (each one recv(2)) and forwards to `inner`.
struct counting_recv {
  recv_fn inner = &recv_into;
  void* inner_ctx = nullptr;
  int calls = 0;

  static recv_result call(void* self, int fd) noexcept {
    auto* c = static_cast<counting_recv*>(self);
    ++c->calls;
    return c->inner(c->inner_ctx, fd);
  }
};

// What a receive's handler was given.
struct completion {
  bool done = false;
  int calls = 0;  // how many times the handler ran (must end at 0 or 1)
  error_code ec;
  std::size_t n = 0;
};

// Waits (bounded) until `fd` reports one of `events`; false if it did not within a second.
bool wait_for_events(int fd, short events) {
  pollfd p{fd, events, 0};
  return ::poll(&p, 1, 1000) == 1 && (p.revents & events) != 0;
}

bool is_reset_or_eof(const error_code& ec) {
  return ec == asio::error::connection_reset || ec == asio::error::eof;
}

// The socket's TCP_INQ option (1 on, 0 off), or -1 if the kernel does not know it.
int inq_option(int fd) {
  int on = -1;
  socklen_t len = sizeof on;
  return ::getsockopt(fd, IPPROTO_TCP, TCP_INQ, &on, &len) == 0 ? on : -1;
}

class EdgeRecv : public ::testing::Test {
 protected:
  // Whether the socket under test gets TCP_INQ (as tlsfront's client and backend sockets have).
  virtual bool with_inq() const { return true; }

  void SetUp() override {
    ip::tcp::acceptor acceptor(ioc_, ip::tcp::endpoint(ip::make_address("127.0.0.1"), 0));
    peer_.connect(acceptor.local_endpoint());
    acceptor.accept(sock_);
    if (with_inq()) {
      enable_inq(sock_.native_handle());
    }
    ASSERT_EQ(inq_option(sock_.native_handle()), with_inq() ? 1 : 0);
    counter_.inner_ctx = &target_;
  }

  // Starts a receive of up to `size` bytes into buf_ through the counting recv_fn.
  completion& start(std::size_t size) {
    target_ = recv_buffer{buf_.data(), size};
    return start_with(counter_);
  }
  // Starts a receive performed by `fn` (whose inner recv_fn says where the bytes go).
  completion& start_with(counting_recv& fn) {
    completion& c = ops_.emplace_back();
    async_edge_recv(sock_, &counting_recv::call, &fn, [&c](error_code ec, std::size_t n) {
      ++c.calls;
      c.done = true;
      c.ec = ec;
      c.n = n;
    });
    return c;
  }
  std::string received(const completion& c) const { return std::string(buf_.data(), c.n); }

  void peer_send(const std::string& s) { asio::write(peer_, asio::buffer(s)); }
  // Blocks (bounded) until the bytes the peer sent are in our receive queue.
  bool peer_bytes_arrived() { return wait_for_events(sock_.native_handle(), POLLIN); }

  bool run_until_done(const completion& c, std::chrono::milliseconds limit = 1500ms) {
    return test::run_until(
        ioc_, [&c] { return c.done; }, limit);
  }
  // Runs the io_context for a while with nothing arriving (a pending receive keeps it busy).
  void run_briefly() {
    ioc_.run_for(50ms);
    ioc_.restart();
  }
  // Runs whatever is ready now, without waiting.
  void poll_ready() {
    ioc_.poll();
    ioc_.restart();
  }
  // Lets the reactor wait once with no receive queued, so that it has seen every event already
  // pending for the socket (as on a worker busy with other connections).
  void settle() {
    asio::steady_timer t(ioc_, 10ms);
    bool fired = false;
    t.async_wait([&fired](error_code) { fired = true; });
    ASSERT_TRUE(test::run_until(
        ioc_, [&fired] { return fired; }, 1s));
  }

  asio::io_context ioc_{1};
  std::deque<completion> ops_;  // stable addresses for the handlers
  std::vector<char> buf_ = std::vector<char>(256);
  recv_buffer target_;
  counting_recv counter_;
  ip::tcp::socket sock_{ioc_};  // the side under test
  ip::tcp::socket peer_{ioc_};
};

// The same connection with TCP_INQ left off on the socket under test (the kernel's default).
class EdgeRecvWithoutInq : public EdgeRecv {
 protected:
  bool with_inq() const override { return false; }
};

// 0. What the kernel reports, without the reactor: "drained" exactly when the read took every
// queued byte and no FIN is pending (TCP_INQ reports 1 while one is). Without TCP_INQ there is no
// report, so nothing is ever "drained".
TEST_F(EdgeRecv, RecvWithInqIsDrainedOnlyWhenNothingIsLeft) {
  const int fd = sock_.native_handle();
  char b[16];
  peer_send("0123456789");
  ASSERT_TRUE(peer_bytes_arrived());
  recv_result r = recv_with_inq(fd, b, 4);
  EXPECT_EQ(r.n, 4);
  EXPECT_FALSE(r.drained) << "6 bytes are left";
  r = recv_with_inq(fd, b, 6);
  EXPECT_EQ(r.n, 6);
  EXPECT_TRUE(r.drained) << "a read that fills the buffer and takes the last byte is drained";
  r = recv_with_inq(fd, b, sizeof b);
  EXPECT_EQ(r.n, -1);
  EXPECT_EQ(r.error, EAGAIN);
  EXPECT_FALSE(r.drained);

  peer_send("bye");
  peer_.shutdown(ip::tcp::socket::shutdown_send);
  ASSERT_TRUE(wait_for_events(fd, POLLRDHUP));
  r = recv_with_inq(fd, b, sizeof b);
  EXPECT_EQ(r.n, 3);
  EXPECT_FALSE(r.drained) << "a short read with the FIN behind it is not drained";
  r = recv_with_inq(fd, b, sizeof b);
  EXPECT_EQ(r.n, 0);
  EXPECT_FALSE(r.drained);
}

TEST_F(EdgeRecvWithoutInq, RecvWithInqIsNeverDrained) {
  char b[16];
  peer_send("abc");
  ASSERT_TRUE(peer_bytes_arrived());
  recv_result r = recv_with_inq(sock_.native_handle(), b, sizeof b);
  EXPECT_EQ(r.n, 3);
  EXPECT_FALSE(r.drained) << "no TCP_INQ report: a short read is not taken as drained";
}

// 1. Bytes already in the socket: the speculative try at the start takes them with one recv(2);
// the handler is posted (never called from inside the initiating call).
TEST_F(EdgeRecv, BytesAlreadyThereAreTakenByTheSpeculativeTry) {
  peer_send("hello");
  ASSERT_TRUE(peer_bytes_arrived());
  completion& a = start(buf_.size());
  EXPECT_EQ(counter_.calls, 1) << "tried at once";
  EXPECT_FALSE(a.done) << "the handler must not run inside async_edge_recv";
  poll_ready();
  ASSERT_TRUE(a.done) << "completed without waiting for an event";
  EXPECT_FALSE(a.ec) << a.ec.message();
  EXPECT_EQ(received(a), "hello");
  EXPECT_EQ(counter_.calls, 1);
  EXPECT_EQ(a.calls, 1);
}

// 2. The point of the operation. After a read drained the socket (TCP_INQ: nothing left), the
// next receive is queued without a recv(2); when the peer sends, the epoll event runs it and one
// recv(2) takes the bytes. (With Asio's own sock_.async_read_some, which treats only end of
// stream as "drained", the count would go up by one at the start of the second receive: a
// recv(2) that says EAGAIN; see the test without TCP_INQ below.)
TEST_F(EdgeRecv, AfterADrainingReadTheNextReceiveWaitsWithoutASystemCall) {
  completion& a = start(buf_.size());
  EXPECT_EQ(counter_.calls, 1) << "a fresh socket is tried once (EAGAIN)";
  run_briefly();
  EXPECT_FALSE(a.done);
  peer_send("first");
  ASSERT_TRUE(run_until_done(a));
  EXPECT_FALSE(a.ec) << a.ec.message();
  EXPECT_EQ(received(a), "first");
  EXPECT_EQ(counter_.calls, 2) << "the event ran the queued receive: one recv(2)";

  completion& b = start(buf_.size());
  EXPECT_EQ(counter_.calls, 2) << "the read drained the socket: nothing is tried at start";
  run_briefly();
  EXPECT_FALSE(b.done);
  EXPECT_EQ(counter_.calls, 2) << "nothing arrived, so nothing is tried while waiting";

  peer_send("second");
  ASSERT_TRUE(run_until_done(b));
  EXPECT_FALSE(b.ec) << b.ec.message();
  EXPECT_EQ(received(b), "second");
  EXPECT_EQ(counter_.calls, 3) << "exactly one recv(2) once the bytes were there";
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
}

// 2. Without TCP_INQ the kernel gives no report, so a short read is not taken as draining (it
// may have stopped at a FIN): the next receive is tried at once, a recv(2) that says EAGAIN, and
// then waits, as Asio's own receive does.
TEST_F(EdgeRecvWithoutInq, AShortReadIsNotDrainedAndTheNextReceiveIsTriedAtOnce) {
  completion& a = start(buf_.size());
  EXPECT_EQ(counter_.calls, 1) << "a fresh socket is tried once (EAGAIN)";
  run_briefly();
  EXPECT_FALSE(a.done);
  peer_send("first");
  ASSERT_TRUE(run_until_done(a));
  EXPECT_FALSE(a.ec) << a.ec.message();
  EXPECT_EQ(received(a), "first");
  EXPECT_EQ(counter_.calls, 2);

  completion& b = start(buf_.size());
  EXPECT_EQ(counter_.calls, 3) << "not drained: tried at once (EAGAIN)";
  run_briefly();
  EXPECT_FALSE(b.done) << "EAGAIN: the receive waits";
  EXPECT_EQ(counter_.calls, 3);
  peer_send("second");
  ASSERT_TRUE(run_until_done(b));
  EXPECT_FALSE(b.ec) << b.ec.message();
  EXPECT_EQ(received(b), "second");
  EXPECT_EQ(counter_.calls, 4);
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
}

// 3. "Drained" is what the kernel reports, not the size of the read: a read that fills the whole
// buffer with bytes left behind is not drained, so the next receive tries at once and, with bytes
// left, completes without waiting; a read that fills the buffer and takes the last byte is
// drained, so the next receive waits without a recv(2).
TEST_F(EdgeRecv, DrainedIsWhatTheKernelReportsNotTheSizeOfTheRead) {
  completion& a = start(4);
  ASSERT_EQ(counter_.calls, 1);
  peer_send("0123456789");
  ASSERT_TRUE(run_until_done(a));
  EXPECT_EQ(received(a), "0123");
  EXPECT_EQ(counter_.calls, 2);

  completion& b = start(4);
  EXPECT_EQ(counter_.calls, 3) << "6 bytes were left: tried at once";
  poll_ready();
  ASSERT_TRUE(b.done) << "bytes were left: completed without waiting";
  EXPECT_EQ(received(b), "4567");

  completion& c = start(4);
  EXPECT_EQ(counter_.calls, 4);
  poll_ready();
  ASSERT_TRUE(c.done);
  EXPECT_EQ(received(c), "89") << "the last bytes: drained";

  completion& d = start(4);
  EXPECT_EQ(counter_.calls, 4) << "after the draining read nothing is tried";
  peer_send("wxyz");  // exactly the buffer: a full read that empties the socket
  ASSERT_TRUE(run_until_done(d));
  EXPECT_EQ(received(d), "wxyz");
  EXPECT_EQ(counter_.calls, 5);

  completion& e = start(4);
  EXPECT_EQ(counter_.calls, 5) << "a full read that took the last byte is drained: not tried";
  run_briefly();
  EXPECT_FALSE(e.done);
  EXPECT_EQ(counter_.calls, 5);
  peer_send("!");
  ASSERT_TRUE(run_until_done(e));
  EXPECT_FALSE(e.ec) << e.ec.message();
  EXPECT_EQ(received(e), "!");
  EXPECT_EQ(counter_.calls, 6);
}

// 4. The peer closes while a receive waits: eof, no bytes.
TEST_F(EdgeRecv, PeerCloseWhileWaitingIsEof) {
  completion& a = start(buf_.size());
  run_briefly();
  peer_.close();
  ASSERT_TRUE(run_until_done(a));
  EXPECT_EQ(a.ec, asio::error::eof) << a.ec.message();
  EXPECT_EQ(a.n, 0u);
  EXPECT_EQ(a.calls, 1);
}

// 4. The peer sends, and closes after our receive took the bytes: bytes first, then eof.
TEST_F(EdgeRecv, BytesThenEofWhenTheFinComesLater) {
  completion& a = start(buf_.size());
  peer_send("bye");
  ASSERT_TRUE(run_until_done(a));
  EXPECT_EQ(received(a), "bye");
  completion& b = start(buf_.size());
  peer_.close();
  ASSERT_TRUE(run_until_done(b)) << "end of stream never reported";
  EXPECT_EQ(b.ec, asio::error::eof) << b.ec.message();
  EXPECT_EQ(b.n, 0u);
}

// 4. The peer sends and closes before the reactor looks (bytes and FIN raise one epoll event:
// edge-triggered epoll reports a ready descriptor once, however many things arrived). The short
// read that takes the bytes does not mean nothing else is queued: the end of stream is, and no
// further event will announce it. TCP_INQ says so (1 while the FIN is pending), so the read is
// not "drained" and the next receive is tried at once. Bytes first, then eof.
TEST_F(EdgeRecv, BytesThenEofWhenBothArriveWhileWaiting) {
  completion& a = start(buf_.size());
  run_briefly();
  peer_send("bye");
  peer_.close();
  ASSERT_TRUE(wait_for_events(sock_.native_handle(), POLLRDHUP));
  ASSERT_TRUE(run_until_done(a));
  EXPECT_FALSE(a.ec) << a.ec.message();
  EXPECT_EQ(received(a), "bye");
  const int calls = counter_.calls;
  completion& b = start(buf_.size());
  EXPECT_EQ(counter_.calls, calls + 1) << "the FIN is pending: not drained, tried at once";
  EXPECT_TRUE(run_until_done(b, 1000ms)) << "end of stream never reported: the receive hangs";
  EXPECT_EQ(b.ec, asio::error::eof) << b.ec.message();
}

// 4. The same when bytes and FIN were already there and the reactor had seen their event before
// anyone received (a worker busy with other connections): bytes first, then eof, the eof from
// the try at the start of the second receive.
TEST_F(EdgeRecv, BytesThenEofWhenBothArrivedBeforeTheReceive) {
  peer_send("bye");
  peer_.close();
  ASSERT_TRUE(wait_for_events(sock_.native_handle(), POLLRDHUP));
  settle();
  completion& a = start(buf_.size());
  ASSERT_TRUE(run_until_done(a));
  EXPECT_FALSE(a.ec) << a.ec.message();
  EXPECT_EQ(received(a), "bye");
  const int calls = counter_.calls;
  completion& b = start(buf_.size());
  EXPECT_EQ(counter_.calls, calls + 1) << "the FIN is pending: not drained, tried at once";
  EXPECT_TRUE(run_until_done(b, 1000ms)) << "end of stream never reported: the receive hangs";
  EXPECT_EQ(b.ec, asio::error::eof) << b.ec.message();
}

// 5. socket.cancel() ends a waiting receive with operation_aborted; the socket stays usable.
TEST_F(EdgeRecv, CancelWhileWaitingIsOperationAborted) {
  completion& a = start(buf_.size());
  run_briefly();
  ASSERT_FALSE(a.done);
  sock_.cancel();
  ASSERT_TRUE(run_until_done(a));
  EXPECT_EQ(a.ec, asio::error::operation_aborted) << a.ec.message();
  EXPECT_EQ(a.n, 0u);
  EXPECT_EQ(a.calls, 1);

  completion& b = start(buf_.size());
  peer_send("after");
  ASSERT_TRUE(run_until_done(b));
  EXPECT_FALSE(b.ec) << b.ec.message();
  EXPECT_EQ(received(b), "after");
}

// 5. socket.close() ends a waiting receive with operation_aborted.
TEST_F(EdgeRecv, CloseWhileWaitingIsOperationAborted) {
  completion& a = start(buf_.size());
  run_briefly();
  ASSERT_FALSE(a.done);
  const int calls = counter_.calls;
  sock_.close();
  ASSERT_TRUE(run_until_done(a));
  EXPECT_EQ(a.ec, asio::error::operation_aborted) << a.ec.message();
  EXPECT_EQ(a.n, 0u);
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(counter_.calls, calls) << "a closed socket is not read";
}

// 5. Destroying the io_context with a receive waiting destroys the operation without calling its
// handler; the handler (here the only owner of the socket) is freed, so nothing leaks.
TEST(EdgeRecvShutdown, DestroyingTheIoContextFreesAWaitingReceiveUncalled) {
  auto ioc = std::make_unique<asio::io_context>(1);
  auto sock = std::make_shared<ip::tcp::socket>(*ioc);
  std::weak_ptr<ip::tcp::socket> watch = sock;
  bool called = false;
  std::vector<char> buf(64);
  recv_buffer target{buf.data(), buf.size()};
  {
    ip::tcp::acceptor acceptor(*ioc, ip::tcp::endpoint(ip::make_address("127.0.0.1"), 0));
    ip::tcp::socket peer(*ioc);
    peer.connect(acceptor.local_endpoint());
    acceptor.accept(*sock);
    async_edge_recv(*sock, target, [&called, keep = sock](error_code, std::size_t) {
      (void)keep;
      called = true;
    });
    ioc->run_for(20ms);
    ASSERT_FALSE(called);
  }
  sock.reset();  // the waiting handler is now the socket's only owner
  ASSERT_FALSE(watch.expired());
  ioc.reset();
  EXPECT_FALSE(called) << "a destroyed io_context must not call the handler";
  EXPECT_TRUE(watch.expired()) << "the operation and its handler were not freed";
}

// 6. The peer resets the connection (SO_LINGER {1, 0}, then close, with our bytes unread) while a
// receive waits: the handler gets the error (or eof), never a hang.
TEST_F(EdgeRecv, PeerResetWhileWaitingIsAnErrorNotAHang) {
  asio::write(sock_, asio::buffer(std::string("unread by the peer")));
  completion& a = start(buf_.size());
  run_briefly();
  ASSERT_FALSE(a.done);
  peer_.set_option(asio::socket_base::linger(true, 0));
  peer_.close();
  ASSERT_TRUE(run_until_done(a)) << "a reset must end the receive";
  EXPECT_TRUE(is_reset_or_eof(a.ec)) << a.ec.message();
  EXPECT_EQ(a.n, 0u);
  EXPECT_EQ(a.calls, 1);
}

// 6. The reset already arrived when the receive starts: the speculative try reports it.
TEST_F(EdgeRecv, PeerResetBeforeTheReceiveIsAnErrorNotAHang) {
  asio::write(sock_, asio::buffer(std::string("unread by the peer")));
  peer_.set_option(asio::socket_base::linger(true, 0));
  peer_.close();
  ASSERT_TRUE(wait_for_events(sock_.native_handle(), POLLERR | POLLHUP));
  completion& a = start(buf_.size());
  ASSERT_TRUE(run_until_done(a)) << "a reset must end the receive";
  EXPECT_TRUE(is_reset_or_eof(a.ec)) << a.ec.message();
  EXPECT_EQ(a.n, 0u);
}

// 6. The peer sends bytes and then resets before the reactor looks (one epoll event for both).
// The documented limitation (tls/edge_recv.h): TCP_INQ does not report an RST queued behind
// bytes, so the read that takes the bytes is "drained" and the next receive waits, with no
// further event to wake it. The reset surfaces at the next send, which fails (ECONNRESET, or
// EPIPE once the error was taken); tlsfront sends before every such wait (tunnels, which do not,
// turn edge reads off: the next test). The wait is ended by cancel() here, so nothing can hang.
TEST_F(EdgeRecv, BytesThenResetWhileWaitingSurfacesAtTheNextSend) {
  const int fd = sock_.native_handle();
  asio::write(sock_, asio::buffer(std::string("unread by the peer")));
  completion& a = start(buf_.size());
  run_briefly();
  ASSERT_FALSE(a.done);
  peer_send("last words");
  peer_.set_option(asio::socket_base::linger(true, 0));
  peer_.close();
  ASSERT_TRUE(wait_for_events(fd, POLLERR | POLLHUP));
  ASSERT_TRUE(run_until_done(a));
  ASSERT_FALSE(a.ec) << "the bytes come before the reset: " << a.ec.message();
  EXPECT_EQ(received(a), "last words");

  const int calls = counter_.calls;
  completion& b = start(buf_.size());
  run_briefly();
  EXPECT_FALSE(b.done) << "the reset behind the bytes is not reported to a waiting receive";
  EXPECT_EQ(counter_.calls, calls) << "TCP_INQ said 0 left: nothing is tried";

  const ssize_t sent = ::send(fd, "?", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
  const int send_errno = errno;
  EXPECT_EQ(sent, -1) << "a send on a reset connection must fail";
  EXPECT_TRUE(send_errno == ECONNRESET || send_errno == EPIPE) << std::strerror(send_errno);

  sock_.cancel();
  ASSERT_TRUE(run_until_done(b)) << "cancel() must end the waiting receive";
  EXPECT_EQ(b.ec, asio::error::operation_aborted) << b.ec.message();
  EXPECT_EQ(b.calls, 1);
}

// 6. The same with edge reads off (socket_bio_state::edge = false, what stream::set_edge_reads
// (false) sets for tunnels): no fill is "drained", even with TCP_INQ on, so the receive after the
// bytes is tried at once and reports the reset.
TEST_F(EdgeRecv, BytesThenResetWithEdgeReadsOffIsReportedByTheNextReceive) {
  const int fd = sock_.native_handle();
  socket_bio_state state;
  state.fd = fd;
  state.edge = false;
  counting_recv fill{&fill_read_ahead, &state};
  asio::write(sock_, asio::buffer(std::string("unread by the peer")));
  completion& a = start_with(fill);
  run_briefly();
  ASSERT_FALSE(a.done);
  peer_send("last words");
  peer_.set_option(asio::socket_base::linger(true, 0));
  peer_.close();
  ASSERT_TRUE(wait_for_events(fd, POLLERR | POLLHUP));
  ASSERT_TRUE(run_until_done(a));
  ASSERT_FALSE(a.ec) << "the bytes come before the reset: " << a.ec.message();
  EXPECT_EQ(a.n, 10u);
  ASSERT_NE(state.buf, nullptr);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(state.buf.get()) + state.begin,
                        state.end - state.begin),
            "last words");
  state.buf.reset();  // as if the BIO had read it all
  state.begin = state.end = 0;

  const int calls = fill.calls;
  completion& b = start_with(fill);
  EXPECT_EQ(fill.calls, calls + 1) << "edge reads off: tried at once";
  ASSERT_TRUE(run_until_done(b, 1000ms)) << "the reset was never reported: the receive hangs";
  EXPECT_TRUE(is_reset_or_eof(b.ec)) << b.ec.message();
  EXPECT_EQ(b.n, 0u);
  EXPECT_EQ(b.calls, 1);
}

// 7. With fill_read_ahead, a receive fills a socket_bio_state's read-ahead buffer with one
// recv(2); once the BIO has read it all (the fill drained the socket: TCP_INQ said 0 left), the
// next receive makes no recv(2) until the peer's next bytes are there, and then one.
TEST_F(EdgeRecv, FillReadAheadFillsTheBioBufferAndThenWaits) {
  socket_bio_state state;
  state.fd = sock_.native_handle();
  bssl::UniquePtr<BIO> bio = make_socket_bio(&state);
  ASSERT_NE(bio, nullptr);
  counting_recv fill{&fill_read_ahead, &state};
  completion a, b;
  auto handler_for = [](completion& c) {
    return [&c](error_code ec, std::size_t n) {
      ++c.calls;
      c.done = true;
      c.ec = ec;
      c.n = n;
    };
  };

  peer_send("HDR01record");
  ASSERT_TRUE(peer_bytes_arrived());
  async_edge_recv(sock_, &counting_recv::call, &fill, handler_for(a));
  EXPECT_EQ(state.reads, 1u) << "tried at once";
  ASSERT_TRUE(run_until_done(a));
  EXPECT_FALSE(a.ec) << a.ec.message();
  EXPECT_EQ(a.n, 11u);
  EXPECT_EQ(state.reads, 1u);
  EXPECT_EQ(fill.calls, 1);
  ASSERT_NE(state.buf, nullptr);
  EXPECT_EQ(state.begin, 0u);
  EXPECT_EQ(state.end, 11u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(state.buf.get()), state.end), "HDR01record");

  char out[16] = {};
  ASSERT_EQ(BIO_read(bio.get(), out, 5), 5);
  ASSERT_EQ(BIO_read(bio.get(), out + 5, 6), 6);
  EXPECT_EQ(std::string(out, 11), "HDR01record");
  EXPECT_FALSE(state.input_buffered());

  async_edge_recv(sock_, &counting_recv::call, &fill, handler_for(b));
  EXPECT_EQ(state.reads, 1u) << "the fill drained the socket: nothing is tried at start";
  run_briefly();
  EXPECT_FALSE(b.done);
  EXPECT_EQ(state.reads, 1u) << "nothing arrived, so nothing is tried while waiting";
  peer_send("next");
  ASSERT_TRUE(run_until_done(b));
  EXPECT_FALSE(b.ec) << b.ec.message();
  EXPECT_EQ(b.n, 4u);
  EXPECT_EQ(state.reads, 2u);
  EXPECT_EQ(fill.calls, 2);
  EXPECT_EQ(state.end - state.begin, 4u);
  EXPECT_EQ(a.calls, 1);
  EXPECT_EQ(b.calls, 1);
}

}  // namespace
}  // namespace tlsfront::tls
