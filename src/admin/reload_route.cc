#include "admin/reload_route.h"

#include "admin/json_reply.h"

namespace tlsfront::admin {

void register_reload_route(admin_server& admin, reload_fn reload) {
  admin.handle("POST", "/reload", [reload = std::move(reload)](const admin_request&) {
    std::string error;
    if (!reload(error)) {
      return json_error(400, error);
    }
    return json_reply(200, "{\"reloaded\":true}\n");
  });
}

}  // namespace tlsfront::admin
