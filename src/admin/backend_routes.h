// admin/backend_routes.h — GET /backends: every pool of the configuration in force, how many of
// its servers take requests, and each server's state (health checks, passive ejection,
// requests in flight), as JSON. Thread-safety: the handler runs on the admin thread and reads
// the server's current snapshot and atomics only.
#pragma once

#include "admin/admin_server.h"
#include "proxy/server.h"

namespace tlsfront::admin {

void register_backend_routes(admin_server& admin, const proxy::server& srv);

}  // namespace tlsfront::admin
