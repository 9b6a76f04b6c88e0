// tls/ticket_keys.h — plugs a ticket_key_ring into BoringSSL: the ticket key callback seals new
// tickets under the current key and opens tickets under any key the ring still holds, asking
// for renewal when the key is no longer current (and not for a pre-published next key); TLS 1.3
// ticket count and lifetimes; per-handshake accounting for metrics.
//
// Why the key callback (SSL_CTX_set_tlsext_ticket_key_cb) and not SSL_CTX_set_ticket_aead_method:
// this BoringSSL's AEAD method has no way to ask for a TLS 1.2 ticket to be renewed, and the
// callback keeps the ticket format of nginx/Envoy key files. Note for maintainers: in encrypt
// mode this BoringSSL treats only a negative return as an error, so "no key" returns -1.
// Thread-safety: callbacks run on workers and read the ring's lock-free snapshot.
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <span>
#include <vector>

#include "tls/stream.h"
#include "tls/ticket_key_ring.h"
#include "tls/ticket_metrics.h"

namespace tlsfront::tls {

// Installs the ring on `ctx` (tickets on): key callback, TLS 1.3 ticket count, and the TLS 1.2
// and TLS 1.3 session lifetimes from the ring's options. `ring` and `metrics` must outlive
// every SSL made from `ctx`; `metrics` may be null.
void attach_ticket_keys(SSL_CTX* ctx, ticket_key_ring& ring, const ticket_metrics* metrics);

// Opens a ticket a client offered as the key callback and BoringSSL would (its key among those
// the ring still opens tickets with, HMAC-SHA256 over name | IV | ciphertext, AES-CBC) into the
// serialized session it carries (tls/early_data.h reads it before BoringSSL does). False: no ring
// on this SSL's context, unknown or dropped key, bad HMAC or padding.
bool open_offered_ticket(const SSL* ssl, std::span<const std::uint8_t> ticket,
                         std::vector<std::uint8_t>& session);
// Wall time in ms on the clock of the ring attached to this SSL's context (the real clock
// without one).
std::int64_t ticket_clock_ms(const SSL* ssl);

// Called once a handshake finished: counts how a ticket the client offered was used.
void account_ticket_use(SSL* ssl, const handshake_info& info);

}  // namespace tlsfront::tls
