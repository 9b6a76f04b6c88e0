// http/error_response.h — the short plain-text responses tlsfront itself answers with.
// Thread-safety: returns views of static strings.
#pragma once

#include <string_view>

namespace tlsfront::http {

// Statuses tlsfront generates: 400, 404, 408, 413, 431, 501, 502, 503, 504 (and 100 Continue
// via continue_response()). Every one closes the connection ("Connection: close") except 404,
// 502, 503 and 504 when `keep_alive` is true. An unknown status gives a 500 response.
std::string_view error_response(int status, bool keep_alive);

// The body alone of error_response(status, ...) (text/plain), for HTTP/2, where the head is
// HEADERS frames.
std::string_view error_body(int status);

// "HTTP/1.1 100 Continue\r\n\r\n"
std::string_view continue_response();

}  // namespace tlsfront::http
