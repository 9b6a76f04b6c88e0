#include "admin/ticket_routes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "admin/json_reply.h"

namespace tlsfront::admin {
namespace {

admin_response result(bool ok, const std::string& error, const char* what) {
  if (ok) {
    return json_reply(200, std::string("{\"") + what + "\":true}\n");
  }
  return json_error(409, error);
}

// What a key can do now, in words: "sealing" (the current key), "published" (a next key: opens
// the tickets of instances that already switched, seals from not_before), "decrypt-only" (a
// previous or demoted key: opens the tickets it sealed until not_after, seals none).
const char* key_state(tls::key_role r) {
  switch (r) {
    case tls::key_role::current:
      return "sealing";
    case tls::key_role::next:
      return "published";
    default:
      return "decrypt-only";
  }
}

// POST /tickets/rotate's budget: a token bucket of `burst` rotations refilled one per
// `interval` (0: unlimited). Every rotation adds a key the ring keeps for a ticket lifetime, so
// an unbounded caller would fill memory with keys. Admin thread only.
class rotate_budget {
 public:
  rotate_budget(std::size_t burst, std::chrono::milliseconds interval)
      : burst_(static_cast<double>(burst)), interval_(interval), tokens_(burst_) {}

  // Takes one rotation; false, with the seconds until the next one, when none is left.
  bool take(std::int64_t& retry_after_s) {
    if (interval_.count() <= 0) {
      return true;
    }
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double, std::milli>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + elapsed / static_cast<double>(interval_.count()));
    last_ = now;
    if (tokens_ >= 1.0) {
      tokens_ -= 1.0;
      return true;
    }
    const double wait_ms = (1.0 - tokens_) * static_cast<double>(interval_.count());
    retry_after_s = static_cast<std::int64_t>(wait_ms / 1000.0) + 1;
    return false;
  }
  void give_back() { tokens_ = std::min(burst_, tokens_ + 1.0); }

 private:
  double burst_;
  std::chrono::milliseconds interval_;
  double tokens_;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

void register_ticket_routes(admin_server& admin, tls::ticket_key_ring& ring,
                            tls::key_source& source) {
  admin.handle("GET", "/tickets", [&ring, &source](const admin_request&) {
    std::string body = std::string("{\"source\":\"") + source.name() +
                       "\",\"fallback\":" + (ring.fallback() ? "true" : "false") + ",\"keys\":[";
    bool first = true;
    for (const auto& k : ring.list()) {
      body += first ? "" : ",";
      first = false;
      body += "{\"name\":\"" + k.name_hex + "\",\"role\":\"" + tls::key_role_name(k.role) +
              "\",\"state\":\"" + key_state(k.role) +
              "\",\"not_before\":" + std::to_string(k.not_before) + ",\"not_after\":" +
              (k.not_after == INT64_MAX ? std::string("null") : std::to_string(k.not_after)) +
              ",\"local\":" + (k.local ? "true" : "false") + "}";
    }
    body += "]}\n";
    return json_reply(200, std::move(body));
  });
  auto budget = std::make_shared<rotate_budget>(admin.options().rotate_burst,
                                                admin.options().rotate_interval);
  const std::size_t burst = admin.options().rotate_burst;
  admin.handle("POST", "/tickets/rotate", [&ring, &source, budget, burst](const admin_request&) {
    std::int64_t retry_after = 0;
    if (!budget->take(retry_after)) {
      admin_response r = json_error(429, "too many rotations: at most " +
                                             std::to_string(burst) +
                                             " at once (admin.rotate_burst), then one per "
                                             "admin.rotate_interval");
      r.extra_headers = "Retry-After: " + std::to_string(retry_after) + "\r\n";
      spdlog::warn("admin: ticket key rotation refused: rate limit (retry in {} s)", retry_after);
      return r;
    }
    std::string error;
    bool fleet = false;
    bool ok = source.rotate_now(error, fleet);
    if (!ok) {
      budget->give_back();
    }
    if (ok && fleet) {
      spdlog::info("admin: a new fleet ticket key was requested");
      return json_reply(202, "{\"rotated\":true,\"fleet\":true}\n");
    }
    if (ok) {
      spdlog::info("admin: a new ticket key was published; it encrypts in {} s",
                   ring.options().publish_ahead.count());
    }
    return result(ok, error, "rotated");
  });
  admin.handle("POST", "/tickets/reload", [&source](const admin_request&) {
    std::string error;
    bool ok = source.reload(error);
    if (ok) {
      spdlog::info("admin: ticket key files reloaded");
    } else {
      spdlog::error("ticket key reload refused, running keys kept: {}", error);
    }
    return result(ok, error, "reloaded");
  });
}

}  // namespace tlsfront::admin
