#include "admin/session_routes.h"

#include <spdlog/spdlog.h>

#include "admin/json_reply.h"
#include "core/hex.h"

namespace tlsfront::admin {
namespace {

std::string quoted(std::string_view s) {
  return "\"" + json_escape(s) + "\"";
}

void register_handle_route(admin_server& admin, proxy::server& srv) {
  admin.handle("DELETE", "/sessions/handle/", [&srv](const admin_request& r) {
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
    proxy::session_revocation& revocation = srv.revocation();
    const auto v = revocation.set().check(h, revocation.guard().now_generation());
    if (v != cache::revoked_handles::verdict::ok && v != cache::revoked_handles::verdict::revoked) {
      // Nothing carrying it can resume anywhere (too old, below the floor, or not a handle this
      // fleet could have minted): nothing to write.
      return json_reply(200, "{\"handle\":\"" + shown +
                                 "\",\"revoked\":\"local\",\"already_refused\":true,"
                                 "\"fleet\":\"" +
                                 (revocation.fleet() != nullptr ? "not needed" : "off") + "\"}\n");
    }
    // A handle revoked here before is written again: the fleet may have missed it.
    const bool again = v == cache::revoked_handles::verdict::revoked;
    if (!again) {
      revocation.guard().revoke(h);
      revocation.count(proxy::revocation_source::admin);
    }
    const std::string fleet = srv.revoke_handle_in_fleet(h);
    spdlog::info("admin: session handle {} revoked (fleet: {})", shown, fleet);
    return json_reply(200, "{\"handle\":\"" + shown + "\",\"revoked\":\"local\"" +
                               (again ? ",\"already_refused\":true" : "") +
                               ",\"fleet\":" + quoted(fleet) + "}\n");
  });
}

}  // namespace

void register_session_routes(admin_server& admin, proxy::server& srv, bool with_cache) {
  register_handle_route(admin, srv);
  admin.handle("POST", "/sessions/purge", [&srv](const admin_request&) {
    const proxy::server::purge_report p = srv.purge();
    return json_reply(200, "{\"purge\":{\"floor_generation\":" + std::to_string(p.floor) +
                               ",\"local_sessions\":" + std::to_string(p.local) +
                               ",\"ticket_keys\":" + quoted(p.ticket_keys) +
                               ",\"keys_version\":" + std::to_string(p.keys_version) +
                               ",\"fleet\":" + quoted(p.fleet) + "}}\n");
  });
  if (!with_cache) {
    return;
  }
  admin.handle("POST", "/sessions/flush", [&srv](const admin_request& r) {
    const bool local = r.query == "scope=local";
    if (!r.query.empty() && !local) {
      return json_error(400, "the only query is scope=local");
    }
    const proxy::server::flush_report f = srv.flush_sessions(!local);
    const bool fleet = f.fleet != "off";
    return json_reply(200, "{\"flushed\":" + std::to_string(f.local) +
                               ",\"scope\":" + (fleet ? "\"fleet\"" : "\"local\"") +
                               ",\"fleet\":" + quoted(f.fleet) + "}\n");
  });
  admin.handle("DELETE", "/sessions/", [&srv](const admin_request& r) {
    std::string_view hex = std::string_view(r.path).substr(std::string_view("/sessions/").size());
    std::optional<std::string> id = core::from_hex(hex);
    if (!id || id->empty() || id->size() > cache::session_cache::max_id_bytes) {
      return admin_response{400, "text/plain; charset=utf-8",
                            "session id must be 1 to 32 bytes in hex\n"};
    }
    const proxy::server::id_revocation d = srv.revoke_session_id(*id);
    spdlog::info("admin: session {} revoked ({} local entries, fleet {}: {} deleted)",
                 core::to_hex(*id), d.removed_local, d.fleet, d.fleet_deleted);
    std::string body =
        "{\"removed_local\":" + std::to_string(d.removed_local) + ",\"fleet\":" + quoted(d.fleet);
    if (d.fleet != "off") {
      body += ",\"fleet_deleted\":" + std::to_string(d.fleet_deleted);
    }
    if (d.handle != 0) {
      char handle_hex[16];
      tls::format_handle(d.handle, handle_hex);
      body += ",\"handle\":\"" + std::string(handle_hex, sizeof handle_hex) +
              "\",\"handle_fleet\":" + quoted(d.handle_fleet);
    }
    const bool found = d.removed_local > 0 || d.fleet_deleted > 0;
    if (!found) {
      // Published all the same (another instance's cache may hold it).
      body +=
          ",\"note\":\"no such session ID (ticket and TLS 1.3 sessions are revoked by "
          "handle: DELETE /sessions/handle/<handle>)\"";
    }
    return json_reply(found ? 200 : 404, body + "}\n");
  });
}

}  // namespace tlsfront::admin
