// tls/early_data.h — TLS 1.3 0-RTT on the server (issue 15): which ClientHellos may have their
// early data accepted, decided before BoringSSL makes its own 0-RTT decision.
//
// HOW A CLIENTHELLO IS SCREENED (server_context's certificate-selection callback, which runs
// first and may suspend the handshake)
// 1. It offers early_data and a PSK. The first PSK identity is the ticket BoringSSL will use;
//    tlsfront opens it itself (tls/ticket_keys.h open_offered_ticket: key by name, HMAC,
//    AES-CBC) and reads the session inside (issue time, lifetime, ticket_age_add). A ticket
//    that does not open (BoringSSL will not resume it either) gets no early data: `ineligible`.
// 2. Freshness (RFC 8446 §8.3): the client's ticket age (obfuscated age − ticket_age_add) must
//    match the age the server computes from the ticket's issue time within `window`; otherwise
//    `stale`. A recorded ClientHello replayed later fails this by the delay.
// 3. Single use (§8.1): the ticket's identity (key name | IV, unique per ticket) is claimed
//    once, with a TTL of the ticket's remaining lifetime: in the fleet store (SET NX in Redis,
//    asynchronous: the handshake is suspended for at most the lookup timeout), or without
//    [cluster] in this process's strike_register. Claimed before: `replayed`. No answer in
//    time, Redis down, register full: `unavailable`. Fail closed every time.
// A refusal turns early data off on this SSL before BoringSSL decides (reason "disabled" on its
// side); the handshake goes on as a normal 1-RTT resumption and the early bytes are skipped,
// never read. The DoS-protection callback (which runs right after the decision) turns it back
// on, so the tickets this connection is sent still allow 0-RTT.
//
// Thread-safety: the pure functions are; strike_register is shared by every worker (one mutex
// per shard, taken only by 0-RTT attempts).
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tls/options.h"
#include "tls/remote_session_store.h"

namespace tlsfront::tls {

struct handshake_info;

// Why early data was not accepted, as the metrics name it (early_reason_name).
enum class early_reason : std::uint8_t {
  none = 0,     // not refused (accepted, or never offered)
  replayed,     // the ticket's early data was accepted before (here or in the fleet)
  stale,        // the client's ticket age is outside the freshness window
  too_large,    // more early bytes than max_early_data: the rest waited for the handshake
  unavailable,  // the single-use record could not be written (Redis slow or down, register full)
  disabled,     // early data is off on this listener
  ineligible,   // BoringSSL's own refusal: not resumed, ticket without 0-RTT, ALPN mismatch, ...
};
inline constexpr int early_reason_count = 7;
const char* early_reason_name(early_reason r) noexcept;

// The first identity of a pre_shared_key extension (RFC 8446 §4.2.11), which is the one
// BoringSSL resumes with. False: malformed.
struct psk_offer {
  std::span<const std::uint8_t> identity;
  std::uint32_t obfuscated_age = 0;
};
bool parse_first_psk(std::span<const std::uint8_t> extension, psk_offer& out);

// What tlsfront needs from the serialized SSL_SESSION inside a ticket (BoringSSL's DER: [1] time,
// [2] timeout, [21] ticket_age_add). False: not a session, a TLS 1.3 one without age_add, or
// a time or lifetime past 2^40 s.
struct ticket_facts {
  std::uint64_t issued_s = 0;    // when the ticket was issued (the issuer's clock)
  std::uint64_t lifetime_s = 0;  // from issued_s
  std::uint32_t age_add = 0;
};
bool read_ticket_facts(std::span<const std::uint8_t> session_der, ticket_facts& out);

// The client's age minus the server's, in ms. The issue time has whole seconds, so the
// server's age is known to within [age − 1 s, age]: the skew returned is the smallest in magnitude
// over that second.
std::int64_t ticket_age_skew_ms(const ticket_facts& t, std::uint32_t obfuscated_age,
                                std::int64_t now_ms) noexcept;

// The strike register without [cluster]: identities whose early data this process accepted,
// until their ticket expires. Bounded: when full, the entry expiring first is dropped and every
// identity expiring no later than it is answered `unavailable` from then on (so the dropped
// one can never be accepted twice).
class strike_register {
 public:
  using identity = std::array<std::uint8_t, 32>;  // ticket key name | IV
  explicit strike_register(std::size_t capacity);
  claim_answer claim(const identity& id, std::int64_t now_ms, std::int64_t expires_ms);
  std::size_t size() const;
  // Every identity still remembered, with its expiry (ms), and the refusal floor of each shard
  // (the upgrade handover, daemon/handover.h: the new process claims them in turn, so a ticket
  // whose early data the old process accepted is not accepted again).
  void for_each(const std::function<void(const identity&, std::int64_t)>& f) const;
  std::int64_t floor_ms() const;
  void raise_floor(std::int64_t ms);

 private:
  struct hasher {
    std::size_t operator()(const identity& id) const noexcept;
  };
  struct shard {
    mutable std::mutex mu;
    std::unordered_map<identity, std::int64_t, hasher> expires;  // identity → expiry (ms)
    std::vector<std::pair<std::int64_t, identity>> heap;         // min-heap on expiry
    std::int64_t floor_ms = 0;  // identities expiring at or before this are refused
  };
  static constexpr std::size_t shard_count = 16;
  std::size_t per_shard_;
  std::array<shard, shard_count> shards_;
};

// What a listener's handshakes screen with (set on handshake_info before the handshake).
struct early_data_policy {
  early_data_options opts;
  strike_register* strikes = nullptr;  // without [cluster]
};

// The certificate-selection callback's part: screens the ClientHello as above. Idempotent:
// the callback runs again after a retry and takes the fleet store's answer.
// ssl_select_cert_retry: wait for info.claim (stream::handshake), then call again.
enum ssl_select_cert_result_t screen_early_data(const SSL_CLIENT_HELLO* hello,
                                                handshake_info& info);
// After an SNI switch of SSL_CTX (which copies the context's early-data bit): a refusal stays.
void keep_early_data_refusal(SSL* ssl, const handshake_info& info) noexcept;
// The DoS-protection callback's part: early data back on after a refusal (for new tickets).
void restore_early_data(SSL* ssl, const handshake_info& info) noexcept;
// Once the handshake returned: what happened to offered early data (none if not offered).
early_reason early_outcome(const SSL* ssl, const handshake_info& info) noexcept;

}  // namespace tlsfront::tls
