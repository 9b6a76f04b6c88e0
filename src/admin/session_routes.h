// admin/session_routes.h — admin endpoints for the session-ID cache:
//   POST   /sessions/flush       drop every cached session (clients fall back to full handshakes)
//   DELETE /sessions/<hex id>    revoke one session ID under every certificate (RFC 7486: a
//                                logged-out session must not resume); with `revoke_in_fleet`
//                                (a [cluster] fleet) also in Redis and on every instance
//   DELETE /sessions/handle/<16 hex>  revoke a session handle (issue 14): no session ID, ticket
//                                or TLS 1.3 session carrying it resumes on this instance again
// Thread-safety: handlers run on the admin thread; the cache is lock-free.
#pragma once

#include <functional>
#include <string>

#include "admin/admin_server.h"
#include "cache/session_cache.h"
#include "proxy/session_revocation.h"

namespace tlsfront::admin {

// `revoke_in_fleet`: optional; returns true when it queued a fleet-wide revocation.
void register_session_routes(admin_server& admin, cache::session_cache& sessions,
                             std::function<bool(const std::string&)> revoke_in_fleet = {});

// Registers DELETE /sessions/handle/: must come before register_session_routes (whose
// /sessions/ prefix would take it).
void register_handle_routes(admin_server& admin, proxy::session_revocation& revocation);

}  // namespace tlsfront::admin
