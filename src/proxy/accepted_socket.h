// proxy/accepted_socket.h — accepting client connections for the fewest system calls per
// connection: accept4(2) hands out the socket already non-blocking (no ioctl(FIONBIO) per
// connection, which Asio's acceptor would issue), TCP_DEFER_ACCEPT lets the kernel wake the
// worker only once the client's first bytes (the ClientHello or a PROXY header) are there, and the
// adopted Asio socket is told it is a sole, non-blocking descriptor, so closing it is one close(2)
// (Asio would otherwise first remove it from epoll, in case it had been duplicated).
//
// Thread-safety: none; call on the thread of the io_context the sockets belong to.
// Failure: accept_one() returns -1 with `ec` set (would_block when nothing is waiting); adopt()
// closes the descriptor and returns a closed socket with `ec` set.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <utility>

namespace tlsfront::proxy {

namespace asio = boost::asio;

// A listening socket is held as a plain Asio socket (not an asio::ip::tcp::acceptor, whose
// reactor registration is private), so accept_next() can wait on it as tls/edge_recv.h does.
using listener_socket = asio::ip::tcp::socket;

// Opens `l` listening on `ep`: SO_REUSEADDR, SO_REUSEPORT (one listener per worker), TCP_NODELAY
// (Linux copies it to every accepted socket: one setsockopt per listener, not per connection),
// dual-stack for "[::]", the system's backlog, then tune_listener(). False with `error`
// ("cannot listen on ADDR:PORT: reason").
bool open_listener(listener_socket& l, const asio::ip::tcp::endpoint& ep, std::string& error);

// Takes over `fd`, a listening TCP socket handed over by the process this one replaces (a binary
// upgrade): checked to be a listening stream socket, tuned as open_listener() tunes its own;
// `bound` is set to its address (the listener's port 0 becomes the port it has). False with
// `error`; `fd` is closed either way once given.
bool adopt_listener(listener_socket& l, int fd, asio::ip::tcp::endpoint& bound, std::string& error);

// Options on a listening socket: non-blocking (required by accept_one(); its failure is `ec`) and,
// best effort, TCP_DEFER_ACCEPT (a connection that sends nothing is still accepted after about a
// second, then meets the handshake timeout).
void tune_listener(listener_socket& l, boost::system::error_code& ec) noexcept;

// One non-blocking accept4(2) on `acc`; fills `peer`. The descriptor, or -1 with `ec`.
int accept_one(listener_socket& l, asio::ip::tcp::endpoint& peer,
               boost::system::error_code& ec) noexcept;

// Waits for and takes the next connection: accept4(2) at once if one may be queued, else after
// the listener's next readiness event, through tls/edge_recv.h (no EPOLL_CTL_MOD per wait, as
// Asio's async_wait would issue). Completes with (error_code, descriptor); the error is the
// accept's, or operation_aborted when the listener is closed or cancelled.
asio::awaitable<std::pair<boost::system::error_code, int>> accept_next(
    listener_socket& l, asio::ip::tcp::endpoint& peer);

// Wraps a descriptor from accept_one() in an Asio socket registered with `ioc`'s reactor.
asio::ip::tcp::socket adopt(asio::io_context& ioc, const asio::ip::tcp::endpoint& peer, int fd,
                            boost::system::error_code& ec);

// Out of descriptors. A connection the process cannot accept (EMFILE, ENFILE) waits in the
// listen backlog until its client gives up; shedding it instead tells the client at once. A
// spare_descriptor holds one descriptor (on /dev/null) in reserve for that; shed_waiting()
// releases it, which lets accept(2) succeed again.
// Thread-safety: none; one per worker thread. Another thread of the process may take the freed
// slot first; the shedding then stops early and the spare is reopened once a descriptor frees.
class spare_descriptor {
 public:
  spare_descriptor() noexcept { reopen(); }
  ~spare_descriptor() { release(); }
  spare_descriptor(const spare_descriptor&) = delete;
  spare_descriptor& operator=(const spare_descriptor&) = delete;
  bool held() const noexcept { return fd_ >= 0; }
  void release() noexcept;
  // Opens it again if it is not held; false while no descriptor is free.
  bool reopen() noexcept;

 private:
  int fd_ = -1;
};

// Releases `spare`, then accepts each connection waiting on `l` and closes it at once (at most
// `max`, so a flood cannot hold the worker), then reopens `spare`. Returns how many were shed
// (0 if none was waiting, or if even the released descriptor did not let one through).
std::size_t shed_waiting(listener_socket& l, spare_descriptor& spare,
                         std::size_t max = 256) noexcept;

}  // namespace tlsfront::proxy
