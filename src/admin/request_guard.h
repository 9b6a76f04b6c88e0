// admin/request_guard.h — who may use the admin endpoint: the checks every admin request passes
// before a route sees it.
//
// - Host (every request): the listen address itself, `localhost` when listening on loopback or
//   on every address, any IP literal when listening on every address, or a name from
//   `allowed_hosts`; anything else is refused. A page a browser loaded from a DNS name that
//   rebinds to 127.0.0.1 sends that name, so it cannot read /metrics or call a route.
// - A state-changing request (any method but GET and HEAD) from a browser context other than the
//   admin origin itself is refused: `Origin` must be absent or `http://<Host>`, and
//   `Sec-Fetch-Site` absent, `same-origin` or `none`.
// - A state-changing request needs `Authorization: Bearer <token>` when a token is configured,
//   compared in constant time.
//
// Thread-safety: pure functions over their arguments.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/message_parser.h"

namespace tlsfront::admin {

struct guard_settings {
  std::string address;  // the listen address as configured (an IP literal)
  std::vector<std::string> allowed_hosts;
  std::string token;  // empty: none required
};

enum class guard_verdict {
  allowed,
  bad_host,    // 403: Host is missing or names no address of this endpoint
  cross_site,  // 403: Origin / Sec-Fetch-Site say another site sent it
  no_token,    // 401: a token is configured and the request carries none
  bad_token,   // 401: the token does not match
};

// Any method but GET and HEAD.
bool is_state_changing(std::string_view method);

guard_verdict check_admin_request(const guard_settings& s, const http::message_head& head);

// What a refusal is called in logs and in the metric's reason label.
const char* verdict_name(guard_verdict v);

}  // namespace tlsfront::admin
