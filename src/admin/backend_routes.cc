#include "admin/backend_routes.h"

#include <chrono>

#include "admin/json_reply.h"

namespace tlsfront::admin {

void register_backend_routes(admin_server& admin, const proxy::server& srv) {
  admin.handle("GET", "/backends", [&srv](const admin_request&) {
    const auto snap = srv.current();
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 std::chrono::steady_clock::now().time_since_epoch())
                                 .count();
    static const char* kinds[] = {"none", "tcp", "http"};
    std::string body = "{\"pools\":[";
    for (std::size_t p = 0; p < snap->pools.size(); ++p) {
      proxy::backend_pool& pool = *snap->pools[p];
      body += p == 0 ? "{" : ",{";
      body += "\"name\":\"" + json_escape(pool.options().name) + "\",\"health_check\":\"" +
              kinds[static_cast<int>(pool.options().health.type)] +
              "\",\"servers_up\":" + std::to_string(pool.servers_up()) + ",\"servers\":[";
      for (std::size_t i = 0; i < pool.size(); ++i) {
        const proxy::backend_server& s = pool.server(i);
        // Relaxed: a display of hints (see backend_health).
        const bool checks_up = s.health->up.load(std::memory_order_relaxed);
        const std::int64_t until = s.health->ejected_until.load(std::memory_order_relaxed);
        body += i == 0 ? "{" : ",{";
        body += "\"name\":\"" + json_escape(s.name) +
                "\",\"up\":" + (s.health->usable(now) ? "true" : "false") +
                ",\"checks_up\":" + (checks_up ? "true" : "false") +
                ",\"ejected_ms\":" + std::to_string(until > now ? until - now : 0) +
                ",\"active\":" + std::to_string(s.active.load(std::memory_order_relaxed)) + "}";
      }
      body += "]}";
    }
    body += "]}\n";
    return json_reply(200, std::move(body));
  });
}

}  // namespace tlsfront::admin
