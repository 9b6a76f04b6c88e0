// admin/ticket_routes.h — admin endpoints for session-ticket keys:
//   GET  /tickets          names, roles and validity windows (never the secret bytes), JSON
//   POST /tickets/rotate   memory keys: publish a new next key now (current after publish_ahead);
//                          fleet keys: 202, the fleet list gets the key at the next poll
//                          (the key source's rotate_now; false + error when refused)
//   POST /tickets/reload   file keys: re-read the files (a bad file keeps the running keys)
// Thread-safety: handlers run on the admin thread; the ring is safe to use from any thread.
#pragma once

#include "admin/admin_server.h"
#include "tls/key_source.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::admin {

// `source` rotates and reloads the keys of `ring`; both outlive `admin`.
void register_ticket_routes(admin_server& admin, tls::ticket_key_ring& ring,
                            tls::key_source& source);

}  // namespace tlsfront::admin
