// admin/reload_route.h — POST /reload: re-reads the config file and applies it as SIGHUP does.
// 200 {"reloaded":true}; 400 {"error":"file:line:column: ..."} when the new configuration is
// refused (the running one stays). Thread-safety: the handler runs on the admin thread; `reload`
// must be safe to call from it (main serializes reloads).
#pragma once

#include <functional>
#include <string>

#include "admin/admin_server.h"

namespace tlsfront::admin {

using reload_fn = std::function<bool(std::string& error)>;
void register_reload_route(admin_server& admin, reload_fn reload);

}  // namespace tlsfront::admin
