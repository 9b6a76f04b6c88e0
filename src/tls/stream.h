// tls/stream.h — a TLS server stream: BoringSSL driving a non-blocking TCP socket directly
// (through tls/socket_bio.h, which reads ahead and holds output, and tls/edge_recv.h, which
// tries no read that cannot succeed, to save system calls and TCP segments), with Asio reactor
// waits when BoringSSL wants to read or write. A handshake's flights leave as one send(2) each, its
// TLS 1.3 tickets with the first response; write_last() sends a connection's last response with
// close_notify, and the FIN of the close that follows joins them in one segment. Owning the loop
// (rather than using asio::ssl) lets later layers suspend a handshake for an async session lookup
// (SSL_ERROR_PENDING_SESSION) and costs no extra buffer copies.
//
// Thread-safety: none; a stream lives on one io_context thread (the one its socket uses).
// Ownership: owns the socket and the SSL. Errors are values (never thrown): the awaitables
// return boost::system::error_code; asio::error::eof means the peer closed (cleanly or not).
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "tls/client_auth.h"
#include "tls/early_data.h"
#include "tls/remote_session_store.h"
#include "tls/socket_bio.h"

namespace tlsfront::tls {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

enum class resumption { none, id, ticket };
const char* resumption_name(resumption r) noexcept;

// Errors from the TLS layer itself (anything that is not a socket error).
enum class tls_errc { handshake_failed = 1, protocol_error, internal };
const boost::system::error_category& tls_category() noexcept;
inline error_code make_error_code(tls_errc e) {
  return error_code(static_cast<int>(e), tls_category());
}

class resumption_guard;

struct handshake_info {
  std::string server_name;    // SNI, lowercase as sent; empty if none
  const char* version = "-";  // "TLSv1.3"
  const char* cipher = "-";   // standard name
  resumption resumed = resumption::none;
  std::int64_t handshake_us = 0;  // from first ClientHello byte wait to Finished
  bool offered_ticket = false;    // the ClientHello carried a ticket (TLS 1.2) or a PSK (1.3)
  bool offered_status = false;    // the ClientHello asked for a stapled OCSP response
  bool cache_hit = false;         // the session-ID cache returned the session
  int ticket_role = -1;           // key_role of the key that opened the client's ticket
  bool ticket_looked_up = false;  // the ticket key callback saw the client's ticket
  // Fleet (L2) session store of this worker, or nullptr; set before the handshake.
  remote_session_store* remote = nullptr;
  std::chrono::milliseconds lookup_timeout{5};
  std::shared_ptr<remote_lookup> lookup;  // the L2 lookup this handshake made, if any
  bool remote_hit = false;                // the session came from the L2 store
  // Session handle (cache/revoked_handles.h, tls/session_handle.h): this connection's, once
  // resolved (never 0 after a successful handshake), and the one read from the client's ticket
  // or cache entry (adopted only if the handshake ends resumed).
  std::uint64_t handle = 0;
  std::uint64_t resumed_handle = 0;
  // Checks and mints handles (tls/session_handle.h); nullptr: no handles, nothing refused.
  resumption_guard* guard = nullptr;
  // 0-RTT (tls/early_data.h): the listener's policy (nullptr or disabled: no early data).
  const early_data_policy* early = nullptr;
  bool early_offered = false;   // the ClientHello offered early data
  bool early_screened = false;  // screen_early_data decided, or started the claim below
  early_reason early_refused = early_reason::none;  // tlsfront's own refusal, if any
  std::shared_ptr<remote_claim> claim;              // the fleet claim this handshake made
  // Mutual TLS (tls/client_auth.h): what became of the client's certificate.
  client_cert_result client_cert = client_cert_result::not_asked;
  std::string client_subject;  // RFC 2253 subject of the client's certificate, if it sent one
};

// The handshake_info of the stream that owns `ssl` (set as the SSL's app data), or nullptr.
handshake_info* info_of(const SSL* ssl) noexcept;

class stream {
 public:
  // Takes an open, connected socket and an SSL. The socket may be blocking: every system call on it
  // is non-blocking by flag (an accepted socket should already be O_NONBLOCK for Asio's waits).
  stream(asio::ip::tcp::socket socket, bssl::UniquePtr<SSL> ssl);
  stream(const stream&) = delete;
  stream& operator=(const stream&) = delete;
  ~stream();

  asio::awaitable<error_code> handshake();
  // Reads at least one byte of application data. eof when the peer closed. While 0-RTT data is
  // being read (in_early_data()), it may also return 0 bytes: the handshake just completed.
  asio::awaitable<std::pair<error_code, std::size_t>> read_some(void* data, std::size_t size);
  // 0-RTT: the handshake returned with early data accepted and the client's Finished has not
  // been read yet (bytes read now are early data, replayable; RFC 8446 §8, RFC 8470).
  bool in_early_data() const noexcept { return SSL_in_early_data(ssl_.get()) != 0; }
  // Early-data bytes read so far.
  std::size_t early_bytes() const noexcept { return early_bytes_; }
  // Early data for this handshake (tls/early_data.h; must outlive the stream).
  void set_early_data(const early_data_policy* policy) noexcept { info_.early = policy; }
  // Writes all of it (several records if needed), then sends anything still held (tickets).
  asio::awaitable<error_code> write_all(const void* data, std::size_t size);
  // The connection's last write: all of it and close_notify in one send(2) with MSG_MORE, so the
  // caller's close(2) or shutdown(SHUT_WR) right after puts the FIN into the same segment.
  asio::awaitable<error_code> write_last(const void* data, std::size_t size);
  // Sends close_notify (and anything held) if the socket can take it right now; never waits for
  // the peer's.
  void shutdown() noexcept;

  asio::ip::tcp::socket& socket() noexcept { return socket_; }
  SSL* native() noexcept { return ssl_.get(); }
  const handshake_info& info() const noexcept { return info_; }
  // Lets the handshake look sessions up in the worker's fleet store (nullptr: L1 only).
  void set_remote_store(remote_session_store* store, std::chrono::milliseconds timeout) noexcept {
    info_.remote = store;
    info_.lookup_timeout = timeout;
  }
  // Session handles: minted, inherited and checked by `guard` (must outlive the stream).
  void set_guard(resumption_guard* guard) noexcept { info_.guard = guard; }
  // Off: every wait for input tries a recv(2) first, as Asio's own receive does. For waits that
  // send nothing first (tunnels), where an RST queued behind the last bytes would otherwise only
  // be seen at the idle timeout (tls/edge_recv.h).
  void set_edge_reads(bool on) noexcept { bio_state_.edge = on; }
  // A count that grows while the peer takes our output: bytes the socket accepted plus bytes
  // the peer's TCP acknowledged (the send queue's length from ioctl(SIOCOUTQ), one system call).
  // For write timeouts that measure progress rather than whole writes: while a peer reads slowly,
  // a full send buffer accepts nothing for long stretches, but its acknowledgements keep coming.
  // If the ioctl fails only the accepted bytes count.
  std::uint64_t output_progress() const noexcept;
  // recv(2) / send(2) calls made on the socket so far (for tests and profiles).
  std::uint64_t socket_reads() const noexcept { return bio_state_.reads; }
  std::uint64_t socket_sends() const noexcept { return bio_state_.sends; }

 private:
  // Waits for the socket to become readable/writable as BoringSSL asked (held output is sent
  // before a wait for the peer).
  asio::awaitable<error_code> wait_for(int ssl_error);
  // Sends what the BIO holds, waiting for writability as needed.
  asio::awaitable<error_code> flush(bool more);
  asio::awaitable<error_code> write_records(const void* data, std::size_t size);
  // Waits for the pending L2 lookup to answer, at most lookup_timeout (then it counts as a miss).
  asio::awaitable<void> wait_for_lookup();
  // The same for the 0-RTT claim (tls/early_data.h).
  asio::awaitable<void> wait_for_claim();
  // Waits for a store answer, at most lookup_timeout. True: it timed out (then marked done).
  template <class Pending>
  asio::awaitable<bool> wait_answer(const std::shared_ptr<Pending>& p);
  error_code classify(int ssl_error, int ret) noexcept;

  asio::ip::tcp::socket socket_;
  socket_bio_state bio_state_;  // before ssl_: the SSL's BIO points at it
  bssl::UniquePtr<SSL> ssl_;
  handshake_info info_;
  std::size_t early_bytes_ = 0;
};

}  // namespace tlsfront::tls

template <>
struct boost::system::is_error_code_enum<tlsfront::tls::tls_errc> : std::true_type {};
