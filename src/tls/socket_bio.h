// tls/socket_bio.h — the BIO through which BoringSSL reads and writes a non-blocking socket,
// shaped to spend as few system calls and TCP segments per connection as possible.
//
// Reads. BoringSSL reads a record as two BIO reads (the 5-byte header, then the body). Over a
// plain socket BIO each becomes a read(2). This BIO reads ahead: a small read (< kReadAhead) is
// served from a buffer filled by one recv(2) of up to kReadAhead bytes, so the records a client
// sends together (CCS, Finished and the request) cost one system call. Large reads go straight to
// the caller's buffer (no extra copy for bulk data).
//
// Reads that cannot succeed are not tried. While output is held (see below) or after bytes were
// sent to the peer and no readiness wait has happened since (`sent_since_wait`), the peer cannot
// have answered what it has not seen, so a read finding the read-ahead buffer empty reports
// would-block without calling recv(2); the owner flushes, waits for readability and calls
// note_waited(). The owner's wait must therefore report a socket that is already readable (an
// Asio reactor wait does: it re-arms the descriptor, which re-evaluates readiness).
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

namespace tlsfront::tls {

struct socket_bio_state {
  static constexpr std::size_t kReadAhead = 4096;
  int fd = -1;
  std::unique_ptr<std::uint8_t[]> buf;  // allocated on the first small read
  std::size_t begin = 0, end = 0;       // unread bytes are buf[begin, end)
  bool hold = false;                    // writes are appended to `out`, not sent
  bool sent_since_wait = false;         // bytes left for the peer since the last readiness wait
  std::vector<std::uint8_t> out;        // held output, [out_begin, out.size()) not yet sent
  std::size_t out_begin = 0;
  std::uint64_t reads = 0;  // recv(2) calls made (for tests and profiles)
  std::uint64_t sends = 0;  // send(2) calls made (for tests and profiles)

  bool output_pending() const noexcept { return out_begin < out.size(); }
  // The owner waited for readability: reads go to the socket again.
  void note_waited() noexcept { sent_since_wait = false; }
};

// A new BIO over `state` (nullptr if BoringSSL is out of memory).
bssl::UniquePtr<BIO> make_socket_bio(socket_bio_state* state);

// Sends what is held. 1: all sent (the buffer is empty); 0: the socket is full (wait for
// writability and call again); -1: error (errno kept). `more`: MSG_MORE, so the bytes wait in the
// kernel for what follows (a FIN from close(2) or shutdown(2) joins them in one segment).
int flush_output(socket_bio_state& state, bool more) noexcept;

}  // namespace tlsfront::tls
