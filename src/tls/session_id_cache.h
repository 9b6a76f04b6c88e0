// tls/session_id_cache.h — plugs cache::session_cache into BoringSSL for TLS 1.2 session-ID
// resumption: SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL plus new/get/remove
// callbacks that store SSL_SESSION_to_bytes() under (context id, session id).
//
// The context id is the first 8 bytes of the SSL's session-ID context, which server_context
// sets to a digest of the certificate, read when the callback runs (after SNI picked the
// certificate): a session made under one certificate is never even looked up under another.
// Note: BoringSSL assigns TLS 1.2 session IDs only when it does not issue a ticket, and TLS 1.3
// has no stateful resumption; a listener with session_tickets = false sends every TLS 1.2 client
// down this path.
// Thread-safety: the callbacks run on whichever worker does the handshake; the cache is
// lock-free and the per-thread decode buffer is thread_local.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <string_view>

#include "cache/session_cache.h"
#include "core/clock.h"

namespace tlsfront::tls {

// Configures `ctx` to keep TLS 1.2 sessions in `cache` for `timeout`: each session cached by ID
// lives `timeout`, whatever the SSL_CTX timeout (with tickets on, the ticket lifetime) is. `cache`
// and `clock` must outlive every SSL made from `ctx`.
void attach_session_id_cache(SSL_CTX* ctx, cache::session_cache& cache, const core::clock& clock,
                             std::chrono::seconds timeout);

// The cache key context of an SSL's current session-ID context (0 if it has none).
std::uint64_t session_context_id(const SSL* ssl);

// Cached bytes (SSL_SESSION_to_bytes, from L1 or the fleet store) back into a session for
// `ctx`. Null, with the error queue cleared, if they do not decode: the caller treats it as a miss.
bssl::UniquePtr<SSL_SESSION> session_from_cache_bytes(std::string_view bytes, const SSL_CTX* ctx);
// When a decoded session expires (seconds since the epoch): its time plus its timeout.
std::int64_t session_expires_at(const SSL_SESSION* session);

}  // namespace tlsfront::tls
