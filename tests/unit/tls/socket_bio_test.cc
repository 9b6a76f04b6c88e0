// The read-ahead socket BIO on a real socket pair: small reads are served from one recv(2),
// large reads bypass the buffer, would-block and end of stream are reported the BoringSSL way;
// held output leaves in one send(2) and later writes queue behind it; reads that cannot succeed
// (output pending, or sent since the last readiness wait) make no system call; a blocking
// descriptor never blocks.
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

TEST_F(SocketBio, SmallReadsShareOneSystemCall) {
  // What a TLS 1.2 client sends together: record headers and bodies read 5 bytes, then n.
  peer_send(
      "HDR01body-one"
      "HDR02body-two-longer");
  EXPECT_EQ(bio_read(5), "HDR01");
  EXPECT_EQ(bio_read(8), "body-one");
  EXPECT_EQ(bio_read(5), "HDR02");
  EXPECT_EQ(bio_read(100), "body-two-longer");  // a short read returns what is buffered
  EXPECT_EQ(state_.reads, 1u);
}

TEST_F(SocketBio, WouldBlockIsARetryAndDataAfterItIsRead) {
  EXPECT_EQ(bio_read(5), "");
  EXPECT_EQ(last_, -1);
  EXPECT_TRUE(BIO_should_retry(bio_.get()));
  EXPECT_TRUE(BIO_should_read(bio_.get()));
  peer_send("later");
  EXPECT_EQ(bio_read(5), "later");
  EXPECT_FALSE(BIO_should_retry(bio_.get()));
}

TEST_F(SocketBio, LargeReadsBypassTheBuffer) {
  std::string big(3 * socket_bio_state::kReadAhead, 'x');
  big[0] = 'a';
  big.back() = 'z';
  peer_send(big);
  std::string got;
  while (got.size() < big.size()) {
    std::string part = bio_read(static_cast<int>(big.size()));
    ASSERT_GT(last_, 0);
    got += part;
  }
  EXPECT_EQ(got, big);
  EXPECT_EQ(state_.buf, nullptr);  // never needed: no small read happened
}

TEST_F(SocketBio, BufferedBytesComeBeforeNewOnesAndEndOfStreamIsZero) {
  peer_send("0123456789");
  EXPECT_EQ(bio_read(4), "0123");
  peer_send("abc");
  ::close(fds_[1]);
  fds_[1] = -1;
  std::string rest;
  for (;;) {
    std::string part = bio_read(3);
    if (last_ <= 0) {
      break;
    }
    rest += part;
  }
  EXPECT_EQ(rest, "456789abc");
  EXPECT_EQ(last_, 0);  // end of stream, not an error
  EXPECT_FALSE(BIO_should_retry(bio_.get()));
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

// Guards (b): with output pending (held) or after a send with no readiness wait since, a read that
// finds the read-ahead buffer empty reports retry-read without calling recv(2) -- even though the
// peer's bytes are already there -- until the owner calls note_waited().
TEST_F(SocketBio, ReadsThatCannotSucceedMakeNoSystemCallUntilAWait) {
  peer_send("answer");  // already readable: a recv(2) would succeed, so a skipped one is visible
  state_.hold = true;
  ASSERT_EQ(BIO_write(bio_.get(), "flight", 6), 6);
  EXPECT_EQ(bio_read(5), "");
  EXPECT_EQ(last_, -1);
  EXPECT_TRUE(BIO_should_retry(bio_.get()));
  EXPECT_TRUE(BIO_should_read(bio_.get()));
  EXPECT_EQ(state_.reads, 0u) << "output pending: no recv(2)";

  state_.hold = false;
  ASSERT_EQ(flush_output(state_, false), 1);
  EXPECT_TRUE(state_.sent_since_wait);
  EXPECT_EQ(bio_read(5), "");
  EXPECT_EQ(last_, -1);
  EXPECT_TRUE(BIO_should_read(bio_.get()));
  EXPECT_EQ(state_.reads, 0u) << "sent since the last wait: no recv(2)";

  state_.note_waited();
  EXPECT_FALSE(state_.sent_since_wait);
  EXPECT_EQ(bio_read(3), "ans");
  EXPECT_EQ(state_.reads, 1u);

  // Bytes already in the read-ahead buffer are served even while output is pending.
  state_.hold = true;
  ASSERT_EQ(BIO_write(bio_.get(), "more", 4), 4);
  EXPECT_EQ(bio_read(3), "wer");
  EXPECT_EQ(state_.reads, 1u);
  EXPECT_EQ(peer_drain(), "flight");
}

// Guards (b) for a direct (unheld) send: it sets sent_since_wait, so the next read is skipped.
TEST_F(SocketBio, ADirectSendSkipsTheNextReadUntilAWait) {
  peer_send("pong");
  ASSERT_EQ(BIO_write(bio_.get(), "ping", 4), 4);
  EXPECT_EQ(state_.sends, 1u);
  EXPECT_EQ(bio_read(4), "");
  EXPECT_TRUE(BIO_should_read(bio_.get()));
  EXPECT_EQ(state_.reads, 0u);
  state_.note_waited();
  EXPECT_EQ(bio_read(4), "pong");
  EXPECT_EQ(state_.reads, 1u);
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
// descriptor: an empty socket is a retry-read and a full one a short write then a retry-write,
// never a hang. (Before the change it called read(2)/send(2) without the flag, which block.)
TEST_F(SocketBioBlocking, ABlockingDescriptorNeverBlocks) {
  int read_result = 0;
  bool read_retry = false;
  ASSERT_TRUE(returns_promptly(
      [&] {
        char c;
        read_result = BIO_read(bio_.get(), &c, 1);
        read_retry = BIO_should_retry(bio_.get()) && BIO_should_read(bio_.get());
      },
      [&] { peer_send("!"); }))
      << "BIO_read blocked on an empty blocking socket";
  EXPECT_EQ(read_result, -1);
  EXPECT_TRUE(read_retry);
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
