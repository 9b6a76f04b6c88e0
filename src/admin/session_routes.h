// admin/session_routes.h — admin endpoints for sessions and their revocation (RFC 7486: a
// logged-out session must not resume; issue 14). With [cluster] every call acts on the whole
// fleet and answers once Redis accepted it (or says it did not: "fleet":"queued" etc., see
// proxy::server).
//   POST   /sessions/flush[?scope=local]  session IDs made before now stop resuming: this cache
//                                emptied; with [cluster] (unless scope=local) every instance's
//                                cache and Redis too. Tickets are not touched (see purge).
//   POST   /sessions/purge       suspected compromise: nothing issued before resumes anywhere
//                                (the handle floor), every cache emptied, ticket keys replaced
//   DELETE /sessions/<hex id>    one session ID under every certificate, here and in the fleet
//   DELETE /sessions/handle/<16 hex>  a session handle: no session ID, ticket or TLS 1.3
//                                session carrying it resumes again, here and in the fleet
// Thread-safety: handlers run on the admin thread; each waits at most server::kFleetWait.
#pragma once

#include "admin/admin_server.h"
#include "proxy/server.h"

namespace tlsfront::admin {

// Registers DELETE /sessions/handle/ and POST /sessions/purge (always: handles exist without
// a session cache), and with `with_cache` the flush and session-ID routes. The handle route
// comes first: the /sessions/ prefix route would take it.
void register_session_routes(admin_server& admin, proxy::server& srv, bool with_cache);

}  // namespace tlsfront::admin
