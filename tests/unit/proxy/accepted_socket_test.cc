// proxy/accepted_socket: a tuned listener never blocks the worker and, with TCP_DEFER_ACCEPT,
// offers a connection only once its first bytes are there; its TCP_INQ is inherited by every
// accepted socket (tls/edge_recv.h); accept_one() hands out non-blocking,
// close-on-exec descriptors; adopt() makes an Asio socket that knows its descriptor is sole and
// non-blocking (no EPOLL_CTL_DEL before close), whose waits work and whose destruction closes it.
#include "proxy/accepted_socket.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>

#include "support/run_until.h"
#include "tls/edge_recv.h"

namespace tlsfront::proxy {
namespace {

namespace ip = asio::ip;
using boost::system::error_code;

// Whether any epoll instance of this process has `fd` registered (from /proc/self/fdinfo: the
// io_context's reactor is the only epoll instance a test makes).
bool epoll_watches(int fd) {
  bool found = false;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) {
    ADD_FAILURE() << "cannot list /proc/self/fd";
    return false;
  }
  while (dirent* e = ::readdir(dir)) {
    const std::string name = e->d_name;
    char target[128] = {};
    if (name == "." || name == ".." ||
        ::readlink(("/proc/self/fd/" + name).c_str(), target, sizeof target - 1) < 0 ||
        std::string(target) != "anon_inode:[eventpoll]") {
      continue;
    }
    std::ifstream info("/proc/self/fdinfo/" + name);
    std::string line;
    while (std::getline(info, line)) {
      std::istringstream words(line);
      std::string key;
      int tfd = -1;
      if (words >> key >> tfd && key == "tfd:" && tfd == fd) {
        found = true;
      }
    }
  }
  ::closedir(dir);
  return found;
}

bool readable(int fd, int timeout_ms) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN) != 0;
}

class AcceptedSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    ASSERT_TRUE(open_listener(acc_, ip::tcp::endpoint(ip::address_v4::loopback(), 0), error))
        << error;
  }
  void TearDown() override {
    if (client_ >= 0) {
      ::close(client_);
    }
  }

  // A blocking client connected to the listener (the 3-way handshake completes in connect(2)).
  void connect_client() {
    client_ = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(client_, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(acc_.local_endpoint().port());
    ASSERT_EQ(::connect(client_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  }
  // Sends a byte and accepts the connection once the listener offers it.
  int accept_after_first_byte(ip::tcp::endpoint& peer) {
    EXPECT_EQ(::send(client_, "x", 1, 0), 1);
    EXPECT_TRUE(readable(acc_.native_handle(), 1000)) << "the listener never offered it";
    error_code ec;
    int fd = accept_one(acc_, peer, ec);
    EXPECT_GE(fd, 0) << ec.message();
    return fd;
  }

  asio::io_context ioc_{1};
  listener_socket acc_{ioc_};
  int client_ = -1;
};

// Guards tune_listener() making the listener non-blocking: accept_one() on an empty listener
// answers would_block at once (on a blocking listener accept4(2) would wait for a client).
TEST_F(AcceptedSocket, AcceptOnAnEmptyListenerIsWouldBlockAtOnce) {
  ASSERT_NE(::fcntl(acc_.native_handle(), F_GETFL) & O_NONBLOCK, 0)
      << "a blocking listener: accept_one() would hang this test";
  ip::tcp::endpoint peer;
  error_code ec;
  EXPECT_EQ(accept_one(acc_, peer, ec), -1);
  EXPECT_EQ(ec, asio::error::would_block) << ec.message();
}

// Guards TCP_DEFER_ACCEPT: a connection that has sent nothing is not offered right after its
// connect(2) completed (without the option it would be accepted at once); once its first byte
// arrives it is, and that byte is already readable on the accepted socket.
TEST_F(AcceptedSocket, AConnectionIsOfferedOnlyOnceItsFirstBytesAreThere) {
  int defer = 0;
  socklen_t len = sizeof defer;
  ASSERT_EQ(::getsockopt(acc_.native_handle(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, &len), 0);
  EXPECT_GT(defer, 0);
  connect_client();
  ip::tcp::endpoint peer;
  error_code ec;
  int early = accept_one(acc_, peer, ec);
  EXPECT_EQ(early, -1) << "accepted before the client sent anything";
  EXPECT_EQ(ec, asio::error::would_block) << ec.message();
  if (early >= 0) {
    ::close(early);
    return;
  }
  int fd = accept_after_first_byte(peer);
  ASSERT_GE(fd, 0);
  char c = 0;
  EXPECT_EQ(::recv(fd, &c, 1, MSG_DONTWAIT), 1) << "the first byte is there on accept";
  EXPECT_EQ(c, 'x');
  ::close(fd);
}

// Guards tune_listener() turning TCP_INQ on for the listener: Linux copies it to every socket
// accepted from it (no setsockopt per connection), so a connection's receives get the kernel's
// "bytes still queued" report that tls/edge_recv.h needs to take a read as draining the socket.
// Without it (a listener without the option) getsockopt says 0 on the accepted socket and no
// receive ever counts as drained.
TEST_F(AcceptedSocket, AcceptedSocketInheritsTcpInqFromTheListener) {
  int on = -1;
  socklen_t len = sizeof on;
  ASSERT_EQ(::getsockopt(acc_.native_handle(), IPPROTO_TCP, TCP_INQ, &on, &len), 0);
  EXPECT_EQ(on, 1) << "tune_listener() did not turn TCP_INQ on";
  connect_client();
  ip::tcp::endpoint peer;
  int fd = accept_after_first_byte(peer);
  ASSERT_GE(fd, 0);
  on = -1;
  len = sizeof on;
  ASSERT_EQ(::getsockopt(fd, IPPROTO_TCP, TCP_INQ, &on, &len), 0);
  EXPECT_EQ(on, 1) << "the accepted socket did not inherit TCP_INQ";
  char c = 0;
  tls::recv_result r = tls::recv_with_inq(fd, &c, 1);
  EXPECT_EQ(r.n, 1);
  EXPECT_EQ(c, 'x');
  EXPECT_TRUE(r.drained) << "the kernel's report says the only byte was taken";
  ::close(fd);
}

// Guards accept4(SOCK_NONBLOCK | SOCK_CLOEXEC): the descriptor is non-blocking and close-on-exec
// without a further fcntl/ioctl, and `peer` is the client's address.
TEST_F(AcceptedSocket, AcceptedDescriptorIsNonBlockingAndCloseOnExec) {
  connect_client();
  ip::tcp::endpoint peer;
  int fd = accept_after_first_byte(peer);
  ASSERT_GE(fd, 0);
  EXPECT_NE(::fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
  EXPECT_NE(::fcntl(fd, F_GETFD) & FD_CLOEXEC, 0);
  sockaddr_in local{};
  socklen_t len = sizeof local;
  ASSERT_EQ(::getsockname(client_, reinterpret_cast<sockaddr*>(&local), &len), 0);
  EXPECT_EQ(peer.address(), ip::address_v4::loopback());
  EXPECT_EQ(peer.port(), ntohs(local.sin_port));
  ::close(fd);
}

// Guards adopt(): the Asio socket owns the descriptor, knows it is non-blocking (so Asio issues
// no ioctl(FIONBIO) before its first operation), its waits and reads work, and destroying it
// closes the descriptor without EPOLL_CTL_DEL. The last point is made visible with a dup(2): an
// epoll registration outlives close(2) of one descriptor while a duplicate keeps the file open,
// so after the socket's destruction the reactor's epoll still lists it -- which it would not if
// Asio had deregistered it (what a plain assign(), marked possibly duplicated, does).
TEST_F(AcceptedSocket, AdoptedSocketWaitsReadsAndClosesAsTheSoleDescriptor) {
  connect_client();
  ip::tcp::endpoint peer;
  int fd = accept_after_first_byte(peer);
  ASSERT_GE(fd, 0);
  error_code ec;
  int dup_fd = -1;
  {
    ip::tcp::socket s = adopt(ioc_, peer, fd, ec);
    ASSERT_FALSE(ec) << ec.message();
    ASSERT_TRUE(s.is_open());
    EXPECT_EQ(s.native_handle(), fd);
    EXPECT_TRUE(s.non_blocking()) << "Asio must know the descriptor is non-blocking";
    EXPECT_TRUE(s.native_non_blocking());
    EXPECT_TRUE(epoll_watches(fd)) << "registered with the io_context's reactor";

    bool waited = false;
    error_code wait_ec = asio::error::would_block;
    s.async_wait(ip::tcp::socket::wait_read, [&](error_code e) {
      wait_ec = e;
      waited = true;
    });
    ASSERT_TRUE(test::run_until(
        ioc_, [&] { return waited; }, std::chrono::seconds(2)));
    EXPECT_FALSE(wait_ec) << wait_ec.message();
    char c = 0;
    EXPECT_EQ(s.read_some(asio::buffer(&c, 1), ec), 1u);
    EXPECT_FALSE(ec) << ec.message();
    EXPECT_EQ(c, 'x');

    waited = false;
    s.async_wait(ip::tcp::socket::wait_write, [&](error_code e) {
      wait_ec = e;
      waited = true;
    });
    ASSERT_TRUE(test::run_until(
        ioc_, [&] { return waited; }, std::chrono::seconds(2)));
    EXPECT_FALSE(wait_ec) << wait_ec.message();
    EXPECT_EQ(s.write_some(asio::buffer("y", 1), ec), 1u);
    EXPECT_FALSE(ec) << ec.message();

    dup_fd = ::dup(fd);
    ASSERT_GE(dup_fd, 0);
  }
  errno = 0;
  EXPECT_EQ(::fcntl(fd, F_GETFD), -1) << "destroying the socket closes its descriptor";
  EXPECT_EQ(errno, EBADF);
  EXPECT_TRUE(epoll_watches(fd)) << "Asio removed the descriptor from epoll before close(2): "
                                    "it was not marked sole";
  ::close(dup_fd);  // the last reference: the kernel drops the registration itself
  EXPECT_FALSE(epoll_watches(fd));
  char c = 0;
  EXPECT_EQ(::recv(client_, &c, 1, 0), 1);
  EXPECT_EQ(c, 'y');
  EXPECT_EQ(::recv(client_, &c, 1, 0), 0) << "the client sees the close";
}

// adopt() of a descriptor the reactor refuses (here one that is not open) reports the error and
// returns a closed socket.
TEST_F(AcceptedSocket, AdoptFailureIsAnErrorAndAClosedSocket) {
  const int not_open = 100000;
  ASSERT_EQ(::fcntl(not_open, F_GETFD), -1);
  error_code ec;
  ip::tcp::socket s = adopt(ioc_, ip::tcp::endpoint(ip::address_v4::loopback(), 1), not_open, ec);
  EXPECT_TRUE(ec);
  EXPECT_FALSE(s.is_open());
}

// shed_waiting(): the connections waiting on the listener are accepted and closed at once (the
// client sees the close), the spare descriptor is held again afterwards, and an empty listener
// sheds nothing.
TEST_F(AcceptedSocket, ShedWaitingClosesTheWaitingConnectionsAndKeepsTheSpare) {
  spare_descriptor spare;
  ASSERT_TRUE(spare.held());
  connect_client();
  ASSERT_EQ(::send(client_, "x", 1, 0), 1);
  ASSERT_TRUE(readable(acc_.native_handle(), 1000)) << "the listener never offered it";
  EXPECT_EQ(shed_waiting(acc_, spare), 1u);
  EXPECT_TRUE(spare.held());
  ASSERT_TRUE(readable(client_, 1000)) << "the shed connection was not closed";
  char c = 0;
  EXPECT_LE(::recv(client_, &c, 1, 0), 0);
  EXPECT_EQ(shed_waiting(acc_, spare), 0u);
  EXPECT_TRUE(spare.held());
}

}  // namespace
}  // namespace tlsfront::proxy
