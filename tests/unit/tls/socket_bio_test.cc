// The read-ahead socket BIO on a real socket pair: small reads are served from one read(2),
// large reads bypass the buffer, would-block and end of stream are reported the BoringSSL way.
#include "tls/socket_bio.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
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

}  // namespace
}  // namespace tlsfront::tls
