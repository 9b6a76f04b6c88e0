#include "admin/session_routes.h"

#include <spdlog/spdlog.h>

#include "admin/json_reply.h"
#include "core/hex.h"

namespace tlsfront::admin {

void register_handle_routes(admin_server& admin, proxy::session_revocation& revocation) {
  admin.handle("DELETE", "/sessions/handle/", [&revocation](const admin_request& r) {
    std::string_view text =
        std::string_view(r.path).substr(std::string_view("/sessions/handle/").size());
    std::uint64_t h = 0;
    if (!tls::parse_handle(text, h)) {
      return admin_response{400, "text/plain; charset=utf-8",
                            "a session handle is 16 hex digits, not all zero\n"};
    }
    char hex[16];
    tls::format_handle(h, hex);
    const std::string shown(hex, sizeof hex);
    const auto v = revocation.set().check(h, revocation.guard().now_generation());
    if (v != cache::revoked_handles::verdict::ok) {
      // Nothing carrying it can resume any more (revoked before, too old, below the floor, or
      // not a handle this instance could have minted): nothing to do.
      return json_reply(200, "{\"handle\":\"" + shown +
                                 "\",\"revoked\":\"local\",\"already_refused\":true}\n");
    }
    revocation.revoke(h, proxy::revocation_source::admin);
    spdlog::info("admin: session handle {} revoked", shown);
    return json_reply(200, "{\"handle\":\"" + shown + "\",\"revoked\":\"local\"}\n");
  });
}

void register_session_routes(admin_server& admin, cache::session_cache& sessions,
                             std::function<bool(const std::string&)> revoke_in_fleet) {
  admin.handle("POST", "/sessions/flush", [&sessions](const admin_request&) {
    std::size_t before = sessions.entries_in_use();
    sessions.clear();
    spdlog::info("admin: session cache flushed ({} sessions)", before);
    return json_reply(200, "{\"flushed\":" + std::to_string(before) + "}\n");
  });
  admin.handle("DELETE", "/sessions/", [&sessions, revoke_in_fleet](const admin_request& r) {
    std::string_view hex = std::string_view(r.path).substr(std::string_view("/sessions/").size());
    std::optional<std::string> id = core::from_hex(hex);
    if (!id || id->empty() || id->size() > cache::session_cache::max_id_bytes) {
      return admin_response{400, "text/plain; charset=utf-8",
                            "session id must be 1 to 32 bytes in hex\n"};
    }
    std::size_t removed = sessions.remove_all_contexts(*id);
    spdlog::info("admin: session {} revoked ({} entries)", core::to_hex(*id), removed);
    if (revoke_in_fleet && revoke_in_fleet(*id)) {
      // Other instances may hold it even when this one does not: always 200, always published.
      return json_reply(200, "{\"removed\":" + std::to_string(removed) + ",\"fleet\":true}\n");
    }
    if (removed == 0) {
      return json_reply(404, "{\"removed\":0}\n");
    }
    return json_reply(200, "{\"removed\":" + std::to_string(removed) + "}\n");
  });
}

}  // namespace tlsfront::admin
