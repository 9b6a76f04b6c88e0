// The socket BIO on a real socket pair: reads are served from the read-ahead buffer that
// fill_read_ahead() fills with one recv(2) (the BIO itself never reads the socket), end of
// stream and errors from a fill come out of the next read the BoringSSL way; held output leaves
// in one send(2) and later writes queue behind it; a blocking descriptor never blocks.
#include "tls/socket_bio.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <functional>
#include <future>
#include <string>
#include <vector>

namespace tlsfront::tls {
namespace {

class SocketBio : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds_), 0);
    ASSERT_EQ(::fcntl(fds_[0], F_SETFL, O_NONBLOCK), 0);
    state_.fd = fds_[0];
    bio_ = make_socket_bio(&state_);
    ASSERT_NE(bio_, nullptr);
  }
  void TearDown() override {
    bio_.reset();
    ::close(fds_[0]);
    if (fds_[1] >= 0) {
      ::close(fds_[1]);
    }
  }
  // What the peer has received so far (non-blocking: stops when nothing more is queued).
  std::string peer_drain() {
    std::string got;
    char buf[65536];
    for (;;) {
      ssize_t r = ::recv(fds_[1], buf, sizeof buf, MSG_DONTWAIT);
      if (r <= 0) {
        break;
      }
      got.append(buf, static_cast<std::size_t>(r));
    }
    return got;
  }
  void peer_send(const std::string& s) {
    ASSERT_EQ(::write(fds_[1], s.data(), s.size()), static_cast<ssize_t>(s.size()));
  }
  std::string bio_read(int n) {
    std::string out(static_cast<std::size_t>(n), '\0');
    int r = BIO_read(bio_.get(), out.data(), n);
    out.resize(r > 0 ? static_cast<std::size_t>(r) : 0);
    last_ = r;
    return out;
  }

  int fds_[2] = {-1, -1};
  socket_bio_state state_;
  bssl::UniquePtr<BIO> bio_;
  int last_ = 0;
};

// What a TLS 1.2 client sends together (record headers and bodies, read as 5 bytes then n) is
// taken by one fill and served to every BIO read; the buffer is released once all is read.
TEST_F(SocketBio, OneFillServesEverySmallRead) {
  peer_send(
      "HDR01body-one"
      "HDR02body-two-longer");
  recv_result r = fill_read_ahead(&state_, fds_[0]);
  EXPECT_EQ(r.n, 33);
  EXPECT_FALSE(r.drained) << "no TCP_INQ report on a UNIX socket: never taken as drained";
  EXPECT_EQ(bio_read(5), "HDR01");
  EXPECT_EQ(bio_read(8), "body-one");
  EXPECT_EQ(bio_read(5), "HDR02");
  EXPECT_EQ(bio_read(100), "body-two-longer");  // a short read returns what is buffered
  EXPECT_EQ(state_.reads, 1u);
  EXPECT_EQ(state_.buf, nullptr) << "an idle connection holds no read buffer";
}

// The BIO never calls recv(2) itself: with nothing buffered a read is a retry-read, even though
// the peer's bytes are already in the socket (the owner fills when the reactor says so).
TEST_F(SocketBio, AnEmptyBufferIsARetryWithoutASystemCall) {
  peer_send("answer");
  EXPECT_EQ(bio_read(5), "");
  EXPECT_EQ(last_, -1);
  EXPECT_TRUE(BIO_should_retry(bio_.get()));
  EXPECT_TRUE(BIO_should_read(bio_.get()));
  EXPECT_EQ(state_.reads, 0u);
  ASSERT_EQ(fill_read_ahead(&state_, fds_[0]).n, 6);
  EXPECT_EQ(bio_read(6), "answer");
  EXPECT_FALSE(BIO_should_retry(bio_.get()));
}

// A fill on an empty socket is would-block and changes nothing: no error, no end of stream.
TEST_F(SocketBio, AFillOnAnEmptySocketIsWouldBlockAndChangesNothing) {
  recv_result r = fill_read_ahead(&state_, fds_[0]);
  EXPECT_EQ(r.n, -1);
  EXPECT_EQ(r.error, EAGAIN);
  EXPECT_FALSE(state_.eof);
  EXPECT_EQ(state_.error, 0);
  EXPECT_EQ(bio_read(1), "");
  EXPECT_TRUE(BIO_should_retry(bio_.get()));
}

// A whole TLS record (16 KiB of plaintext plus overhead) arrives in one fill.
TEST_F(SocketBio, AWholeRecordFitsOneFill) {
  std::string record(16384 + 5 + 256, 'r');
  record.front() = 'a';
  record.back() = 'z';
  peer_send(record);
  ASSERT_EQ(fill_read_ahead(&state_, fds_[0]).n, static_cast<long>(record.size()));
  EXPECT_EQ(bio_read(5), record.substr(0, 5));
  EXPECT_EQ(bio_read(static_cast<int>(record.size())), record.substr(5));
}

// Bytes buffered before the peer closed come first; then the fill that sees the end of the
// stream makes the next read 0 (end of stream, not an error, not a retry).
TEST_F(SocketBio, EndOfStreamComesAfterTheBufferedBytes) {
  peer_send("0123456789");
  ASSERT_EQ(fill_read_ahead(&state_, fds_[0]).n, 10);
  ::close(fds_[1]);
  fds_[1] = -1;
  EXPECT_EQ(bio_read(4), "0123");
  EXPECT_EQ(bio_read(100), "456789");
  EXPECT_EQ(fill_read_ahead(&state_, fds_[0]).n, 0);
  EXPECT_TRUE(state_.eof);
  EXPECT_EQ(bio_read(3), "");
  EXPECT_EQ(last_, 0);
  EXPECT_FALSE(BIO_should_retry(bio_.get()));
}

// A fill's recv(2) error comes out of the next read once, with errno, and is no retry.
TEST_F(SocketBio, AFillErrorIsReportedOnceWithErrno) {
  recv_result r = fill_read_ahead(&state_, -1);
  EXPECT_EQ(r.n, -1);
  EXPECT_EQ(r.error, EBADF);
  errno = 0;
  EXPECT_EQ(bio_read(1), "");
  EXPECT_EQ(last_, -1);
  EXPECT_EQ(errno, EBADF);
  EXPECT_FALSE(BIO_should_retry(bio_.get()));
  EXPECT_EQ(bio_read(1), "");  // reported once: now an ordinary retry
  EXPECT_TRUE(BIO_should_retry(bio_.get()));
}

TEST_F(SocketBio, WritesReachThePeerAndAClosedPeerIsAnErrorNotASignal) {
  EXPECT_EQ(BIO_write(bio_.get(), "hello", 5), 5);
  char buf[8] = {};
  ASSERT_EQ(::read(fds_[1], buf, sizeof buf), 5);
  EXPECT_EQ(std::string(buf, 5), "hello");
  ::close(fds_[1]);
  fds_[1] = -1;
  EXPECT_EQ(BIO_write(bio_.get(), "x", 1), -1);  // EPIPE, and MSG_NOSIGNAL kept SIGPIPE away
  EXPECT_EQ(errno, EPIPE);
  EXPECT_FALSE(BIO_should_retry(bio_.get()));
}

// Guards (a): held writes are appended to `out`, not sent; flush_output() sends them in one
// send(2) and the peer reads every byte in order. Before the change each BIO_write was a send(2).
TEST_F(SocketBio, HeldWritesLeaveAsOneSendInOrder) {
  state_.hold = true;
  EXPECT_EQ(BIO_write(bio_.get(), "ServerHello|", 12), 12);
  EXPECT_EQ(BIO_write(bio_.get(), "Certificate|", 12), 12);
  EXPECT_EQ(BIO_write(bio_.get(), "Finished", 8), 8);
  EXPECT_EQ(state_.sends, 0u);
  EXPECT_TRUE(state_.output_pending());
  EXPECT_EQ(peer_drain(), "") << "held bytes must not reach the peer before the flush";
  state_.hold = false;
  EXPECT_EQ(flush_output(state_, false), 1);
  EXPECT_EQ(state_.sends, 1u);
  EXPECT_FALSE(state_.output_pending());
  EXPECT_TRUE(state_.out.empty());
  EXPECT_EQ(peer_drain(), "ServerHello|Certificate|Finished");
  EXPECT_EQ(flush_output(state_, false), 1) << "nothing held: nothing to do";
  EXPECT_EQ(state_.sends, 1u);
}

// Guards (a): with hold off, a write while held bytes are still pending queues behind them (it
// must not overtake them on the wire); once nothing is pending, writes go straight out again.
TEST_F(SocketBio, WritesQueueBehindPendingBytesEvenWithHoldOff) {
  state_.hold = true;
  ASSERT_EQ(BIO_write(bio_.get(), "first,", 6), 6);
  state_.hold = false;
  EXPECT_EQ(BIO_write(bio_.get(), "second", 6), 6);
  EXPECT_EQ(state_.sends, 0u) << "queued behind the held bytes, not sent ahead of them";
  EXPECT_EQ(flush_output(state_, true), 1);  // MSG_MORE: still one send, nothing kept back
  EXPECT_EQ(state_.sends, 1u);
  EXPECT_EQ(BIO_write(bio_.get(), ",third", 6), 6);
  EXPECT_EQ(state_.sends, 2u) << "nothing pending: a direct send";
  EXPECT_EQ(peer_drain(), "first,second,third");
}

// Guards (a): flush_output() on a full socket returns 0 (wait for writability, call again) and
// keeps the rest; later calls send it; writes made meanwhile queue behind; nothing is lost or
// reordered.
TEST_F(SocketBio, FlushOnAFullSocketReturnsZeroThenOneWithNothingLost) {
  int small = 4096;
  ASSERT_EQ(::setsockopt(fds_[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  std::string payload(512 * 1024, '\0');
  for (std::size_t i = 0; i < payload.size(); ++i) {
    payload[i] = static_cast<char>('a' + i % 23);
  }
  state_.hold = true;
  ASSERT_EQ(BIO_write(bio_.get(), payload.data(), static_cast<int>(payload.size())),
            static_cast<int>(payload.size()));
  state_.hold = false;
  EXPECT_EQ(flush_output(state_, false), 0) << "512 KiB cannot fit in a 4 KiB send buffer";
  EXPECT_TRUE(state_.output_pending());
  EXPECT_EQ(errno, EAGAIN);
  ASSERT_EQ(BIO_write(bio_.get(), "<tail>", 6), 6);  // queued behind what is still pending
  std::string got;
  int r = 0;
  for (int rounds = 0; rounds < 100000 && (r = flush_output(state_, false)) == 0; ++rounds) {
    got += peer_drain();
  }
  ASSERT_EQ(r, 1);
  EXPECT_FALSE(state_.output_pending());
  got += peer_drain();
  EXPECT_EQ(got.size(), payload.size() + 6);
  EXPECT_TRUE(got == payload + "<tail>") << "bytes lost or reordered";
}

// Guards (a): flushing to a peer that closed is -1 with EPIPE, and MSG_NOSIGNAL keeps SIGPIPE
// away (the default SIGPIPE action would end this test process).
TEST_F(SocketBio, FlushToAClosedPeerIsEpipeNotASignal) {
  state_.hold = true;
  ASSERT_EQ(BIO_write(bio_.get(), "alert", 5), 5);
  ::close(fds_[1]);
  fds_[1] = -1;
  errno = 0;
  EXPECT_EQ(flush_output(state_, true), -1);
  EXPECT_EQ(errno, EPIPE);
  EXPECT_TRUE(state_.output_pending()) << "a failed flush keeps the bytes";
}

// Runs `f` on a thread; true if it returns within a generous limit. If it hangs, `unblock` is
// called to free it, so a regression fails the test instead of hanging it.
bool returns_promptly(const std::function<void()>& f, const std::function<void()>& unblock) {
  auto done = std::async(std::launch::async, f);
  if (done.wait_for(std::chrono::seconds(2)) == std::future_status::ready) {
    return true;
  }
  unblock();
  done.wait();
  return false;
}

class SocketBioBlocking : public SocketBio {
 protected:
  void SetUp() override {
    SocketBio::SetUp();
    ASSERT_EQ(::fcntl(fds_[0], F_SETFL, 0), 0);  // blocking, as a socket fresh from accept(2)
  }
};

// Guards (c): every recv(2)/send(2) passes MSG_DONTWAIT, so the BIO works on a blocking
// descriptor: an empty socket is a would-block fill and a full one a short write then a
// retry-write, never a hang. (Before the change it called read(2)/send(2) without the flag, which
// block.)
TEST_F(SocketBioBlocking, ABlockingDescriptorNeverBlocks) {
  recv_result fill;
  ASSERT_TRUE(
      returns_promptly([&] { fill = fill_read_ahead(&state_, fds_[0]); }, [&] { peer_send("!"); }))
      << "a fill blocked on an empty blocking socket";
  EXPECT_EQ(fill.n, -1);
  EXPECT_EQ(fill.error, EAGAIN);
  EXPECT_EQ(state_.reads, 1u);

  const std::string big(4 << 20, 'x');
  int first = 0, second = 0;
  bool write_retry = false;
  ASSERT_TRUE(returns_promptly(
      [&] {
        first = BIO_write(bio_.get(), big.data(), static_cast<int>(big.size()));
        second = BIO_write(bio_.get(), big.data(), static_cast<int>(big.size()));
        write_retry = BIO_should_retry(bio_.get()) && BIO_should_write(bio_.get());
      },
      [&] { ::shutdown(fds_[1], SHUT_RDWR); }))
      << "BIO_write blocked on a full blocking socket";
  EXPECT_GT(first, 0);
  EXPECT_LT(first, static_cast<int>(big.size())) << "a short write, not a wait for the peer";
  EXPECT_EQ(second, -1);
  EXPECT_TRUE(write_retry);

  // Held output on the blocking descriptor: flush_output() answers 0 instead of waiting.
  int flushed = 1;
  state_.hold = true;
  ASSERT_EQ(BIO_write(bio_.get(), "held", 4), 4);
  ASSERT_TRUE(returns_promptly([&] { flushed = flush_output(state_, false); },
                               [&] { ::shutdown(fds_[1], SHUT_RDWR); }))
      << "flush_output blocked on a full blocking socket";
  EXPECT_EQ(flushed, 0);
}

}  // namespace
}  // namespace tlsfront::tls
