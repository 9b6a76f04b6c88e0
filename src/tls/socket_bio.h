// tls/socket_bio.h — the BIO through which BoringSSL reads and writes a non-blocking socket,
// shaped to spend as few system calls and TCP segments per connection as possible.
//
// Reads. The BIO makes no system call to read: BoringSSL's reads (a record header, then its
// body) are served from a read-ahead buffer, and when it is empty the read reports would-block.
// The owner then fills the buffer with fill_read_ahead(), run by an edge-triggered reactor
// receive (tls/edge_recv.h), so the records a client sends together (CCS, Finished and the
// request) cost one recv(2), and a wait for bytes the peer has not sent yet costs none. End of
// stream and errors seen by a fill are reported by the next read (0, or -1 with errno). The
// buffer (one TLS record and then some) exists only while it holds unread bytes: an idle
// connection keeps none.
//
// Writes. While `hold` is set, writes are appended to `out` instead of being sent; flush_output()
// sends everything held in one send(2), optionally with MSG_MORE so that a close(2) right after
// it puts the FIN into the same TCP segment. The stream holds output for the whole handshake
// (a flight leaves as one send when BoringSSL starts waiting for the peer; TLS 1.3 tickets wait
// for the first response) and for the last response of a connection (response, close_notify
// and FIN in one segment). Otherwise, with nothing held, writes go straight to the socket.
//
// Would-block is reported the BoringSSL way (BIO_set_retry_read/write, -1); errors keep errno.
// Sockets may be blocking: every call passes MSG_DONTWAIT, so no fcntl/ioctl is ever needed.
//
// Thread-safety: none (one per connection, used on its thread). Ownership: the socket_bio_state
// must outlive the BIO; the BIO does not own or close the descriptor.
#pragma once

#include <openssl/bio.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tls/edge_recv.h"

namespace tlsfront::tls {

struct socket_bio_state {
  static constexpr std::size_t kReadAhead = 17 * 1024;  // a whole TLS record fits
  int fd = -1;
  std::unique_ptr<std::uint8_t[]> buf;  // allocated by a fill, released once read
  std::size_t begin = 0, end = 0;       // unread bytes are buf[begin, end)
  bool eof = false;                     // a fill saw the end of the stream
  int error = 0;                        // a fill's recv(2) error (errno), reported once
  bool edge = true;                     // fills may report "drained" (tls/edge_recv.h)
  bool hold = false;                    // writes are appended to `out`, not sent
  std::vector<std::uint8_t> out;        // held output, [out_begin, out.size()) not yet sent
  std::size_t out_begin = 0;
  std::uint64_t reads = 0;  // recv(2) calls made (for tests and profiles)
  std::uint64_t sends = 0;  // send(2) calls made (for tests and profiles)
  // Bytes the socket took: the output's progress (tls::stream::output_progress()).
  std::uint64_t bytes_sent = 0;

  bool output_pending() const noexcept { return out_begin < out.size(); }
  bool input_buffered() const noexcept { return begin < end; }
};

// A new BIO over `state` (nullptr if BoringSSL is out of memory).
bssl::UniquePtr<BIO> make_socket_bio(socket_bio_state* state);

// One recv(2) into the empty read-ahead buffer of `state` (a socket_bio_state*), in the shape
// of tls::recv_fn: fills it, or records end of stream or an error for the next BIO read.
// Would-block is returned (error EAGAIN) and changes nothing.
recv_result fill_read_ahead(void* state, int fd) noexcept;

// Sends what is held. 1: all sent (the buffer is empty); 0: the socket is full (wait for
// writability and call again); -1: error (errno kept). `more`: MSG_MORE, so the bytes wait in the
// kernel for what follows (a FIN from close(2) or shutdown(2) joins them in one segment).
int flush_output(socket_bio_state& state, bool more) noexcept;

}  // namespace tlsfront::tls
