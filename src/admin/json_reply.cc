#include "admin/json_reply.h"

namespace tlsfront::admin {

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
    }
    if (static_cast<unsigned char>(c) >= 0x20) {
      out.push_back(c);
    }
  }
  return out;
}

admin_response json_error(int status, std::string_view message) {
  return json_reply(status, "{\"error\":\"" + json_escape(message) + "\"}\n");
}

admin_response json_reply(int status, std::string body) {
  return admin_response{status, "application/json", std::move(body)};
}

}  // namespace tlsfront::admin
