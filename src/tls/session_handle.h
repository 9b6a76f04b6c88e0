// tls/session_handle.h — session handles on the TLS side (issue 14): minting one for every new
// session, carrying it through every resumption (inside the ticket's IV, in the session-ID
// cache entry), and refusing a resumption whose handle is revoked (cache/revoked_handles.h).
//
// WHERE THE HANDLE TRAVELS
// - Tickets (TLS 1.2 and TLS 1.3): the ticket format stays RFC 5077's (name | IV | AES-CBC
//   ciphertext | HMAC); the IV is AES_Kh(be64(handle) | 8 random bytes), a one-block encryption
//   under Kh = HKDF-SHA256(hmac key | aes key, info "tlsfront ticket handle v1"), a key every
//   holder of the ticket key derives alike (fleet, key files). The IV stays unpredictable (64
//   fresh random bits under a keyed permutation) and two tickets of one session share no IV, so
//   they cannot be linked on the wire; the ticket's HMAC covers the IV, so a forged IV fails the
//   HMAC (refusing on its decoded value before that changes nothing, and a value read from a
//   ticket is adopted only once the handshake ends resumed).
// - Session-ID entries (L1 and the fleet store): 0x01 | be64(handle) | SSL_SESSION_to_bytes.
//   An entry without that header (written before handles existed) is a miss.
// - The connection: handshake_info::handle, resolved once, at the first ticket seal, new-session
//   callback or the end of the handshake: a resumed handshake inherits the handle it resumed
//   (resumed_handle), any other one mints a fresh one.
// Tickets sealed before handles existed, or by another server under a shared key file, decode
// to a pseudo-random handle that is refused (almost always an impossible generation): one full
// handshake, fail closed.
//
// Thread-safety: resumption_guard is shared by every worker; its members are lock-free and may be
// called from any thread. Failure: none (a refusal is a full handshake, never an error).
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <string_view>

#include "cache/revoked_handles.h"
#include "core/clock.h"
#include "core/metrics.h"

namespace tlsfront::tls {

struct handshake_info;
struct ticket_key;

enum class resumption_kind { id = 0, ticket12 = 1, psk13 = 2 };

class resumption_guard {
 public:
  // `set` and `clock` (wall time) must outlive the guard. With `metrics`, registers
  // tlsfront_resumptions_refused_total{kind,reason}.
  resumption_guard(cache::revoked_handles& set, const core::clock& clock,
                   core::metrics_registry* metrics);

  // The hot path: true if a session carrying `h` may resume; false counts the refusal.
  bool admit(std::uint64_t h, resumption_kind kind) const noexcept;
  // A fresh handle: the current generation (never below the floor) and 40 random bits; never 0.
  std::uint64_t mint() const noexcept;
  // Refuses `h` from now on (lock-free; any thread).
  cache::revoked_handles::insert_result revoke(std::uint64_t h) noexcept;
  std::uint32_t now_generation() const noexcept;
  // A flush (POST /sessions/flush, local or fleet-wide): session-ID entries of sessions made
  // before `unix_s` never resume again, wherever they are still cached (never lowered).
  void set_flush_before(std::int64_t unix_s) noexcept;
  std::int64_t flush_before() const noexcept {
    return flush_before_.load(std::memory_order_relaxed);
  }
  // The session-ID path, after admit(): false (counted as reason="flushed") for a session
  // made (SSL_SESSION_get_time) before the last flush.
  bool admit_made_at(std::int64_t session_time) const noexcept;
  cache::revoked_handles& set() noexcept { return set_; }
  const cache::revoked_handles& set() const noexcept { return set_; }
  // Seconds from now until nothing carrying `h` can resume any more (0 if already so): how
  // long a revocation of it must be kept (the fleet store's TTL).
  std::int64_t seconds_left(std::uint64_t h) const noexcept;
  // The unix second from which nothing carrying `h` resumes: a function of the handle alone.
  std::int64_t expires_at_s(std::uint64_t h) const noexcept;

 private:
  cache::revoked_handles& set_;
  const core::clock& clock_;
  // [kind][verdict - 1]: revoked, floor, expired, invalid.
  core::counter* refused_[3][4] = {};
  core::counter* refused_flushed_ = nullptr;
  // Relaxed: a flush takes effect for handshakes that start after the call returns; a
  // handshake racing it may still resume (as it may just before it).
  std::atomic<std::int64_t> flush_before_{0};
};

// The connection's handle, resolved on first use (see WHERE THE HANDLE TRAVELS); 0 without a
// guard.
std::uint64_t session_handle_of(const SSL* ssl, handshake_info& info) noexcept;

// The ticket IV carrying `h` under `k`, and the handle an IV carries (not authenticated: the
// caller adopts it only once the ticket's HMAC has passed, i.e. the handshake resumed).
void seal_handle_iv(const ticket_key& k, std::uint64_t h, std::uint8_t iv[16]) noexcept;
std::uint64_t open_handle_iv(const ticket_key& k, const std::uint8_t iv[16]) noexcept;

// Session-ID cache entries. encode_entry() writes 0x01 | be64(h) | session into `out` and
// returns its length, or 0 if it does not fit `cap`. decode_entry() returns the session bytes
// and sets `h`, or an empty view for an entry without the header.
inline constexpr std::size_t entry_header_bytes = 9;
std::size_t encode_entry(std::uint64_t h, std::string_view session, std::uint8_t* out,
                         std::size_t cap) noexcept;
std::string_view decode_entry(std::string_view entry, std::uint64_t& h) noexcept;

// 16 lowercase hex digits of `h` into `out` (no terminator); parse_handle() the reverse
// (exactly 16 hex digits, nonzero), false otherwise.
void format_handle(std::uint64_t h, char out[16]) noexcept;
bool parse_handle(std::string_view text, std::uint64_t& h) noexcept;

}  // namespace tlsfront::tls
