// admin/ticket_routes.h — admin endpoints for session-ticket keys:
//   GET  /tickets          names, roles and validity windows (never the secret bytes), JSON
//   POST /tickets/rotate   memory keys: publish a new next key now (current after publish_ahead)
//   POST /tickets/reload   file keys: re-read the files (a bad file keeps the running keys)
// Thread-safety: handlers run on the admin thread; the ring is safe to use from any thread.
#pragma once

#include "admin/admin_server.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::admin {

void register_ticket_routes(admin_server& admin, tls::ticket_key_ring& ring);

}  // namespace tlsfront::admin
