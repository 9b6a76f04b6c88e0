// tls/socket_bio.h — the BIO through which BoringSSL reads and writes a non-blocking socket.
//
// BoringSSL reads a record as two BIO reads (the 5-byte header, then the body). Over a plain
// socket BIO each becomes a read(2), so a TLS 1.2 resumption costs eight of them. This BIO reads
// ahead: a small read (< kReadAhead) is served from a buffer filled by one read(2) of up to
// kReadAhead bytes, so the records a client sends together (CCS, Finished and the request) cost one
// system call. Large reads go straight to the caller's buffer (no extra copy for bulk data).
// Writes go straight to the socket with MSG_NOSIGNAL.
//
// Would-block is reported the BoringSSL way (BIO_set_retry_read/write, -1), so SSL_get_error says
// WANT_READ/WANT_WRITE only after read(2)/send(2) returned EAGAIN: an edge-triggered reactor wait
// is then always correct. Errors keep errno for the caller.
//
// Thread-safety: none (one per connection, used on its thread). Ownership: the socket_bio_state
// must outlive the BIO; the BIO does not own or close the descriptor.
#pragma once

#include <openssl/bio.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace tlsfront::tls {

struct socket_bio_state {
  static constexpr std::size_t kReadAhead = 4096;
  int fd = -1;
  std::unique_ptr<std::uint8_t[]> buf;  // allocated on the first small read
  std::size_t begin = 0, end = 0;       // unread bytes are buf[begin, end)
  std::uint64_t reads = 0;              // read(2) calls made (for tests and profiles)
};

// A new BIO over `state` (nullptr if BoringSSL is out of memory).
bssl::UniquePtr<BIO> make_socket_bio(socket_bio_state* state);

}  // namespace tlsfront::tls
