// admin/json_reply.h — the small JSON pieces admin handlers answer with.
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "admin/admin_server.h"

namespace tlsfront::admin {

// `s` as the inside of a JSON string: quotes and backslashes escaped, control bytes dropped.
std::string json_escape(std::string_view s);
// {"error":"<message>"} with `status`.
admin_response json_error(int status, std::string_view message);
// `body` (a JSON text) with `status`.
admin_response json_reply(int status, std::string body);

}  // namespace tlsfront::admin
