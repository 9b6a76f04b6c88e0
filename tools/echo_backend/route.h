// Maps an HTTP request-target to one of the echo backend's endpoints (tlsfront-echo-backend).
//
// Pure function, no I/O, no allocation; safe from any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace tlsfront::echo_backend {

enum class route_kind : std::uint8_t {
  hello,         // "/" and every unknown path: the preformatted hello response
  echo,          // /echo: the request body back
  sink,          // /sink: byte count and FNV-1a 64 of the body, body not stored
  bytes,         // /bytes/<N>: N pattern bytes with Content-Length
  chunked,       // /chunked/<N>: N pattern bytes with Transfer-Encoding: chunked
  headers,       // /headers: the request line and headers as received
  too_early,     // /too-early: 425 to a request carrying Early-Data (RFC 8470), else as /headers
  status,        // /status/<code>: that status
  hang,          // /hang: never responds
  slow,          // /slow/<ms>: responds after a delay
  close,         // /close: responds with Connection: close, then closes
  logout,        // /logout: 200 with "TLS-Logout: 1" and "TLS-Session: from-backend" (tlsfront's
                 // session-handle fields, which it must act on and never show the client)
  stats,         // /__stats: request and connection totals (not itself counted)
  bad_argument,  // a known endpoint with a missing or out-of-range number: 400, connection kept
};

struct route {
  route_kind kind = route_kind::hello;
  // N for bytes/chunked, the status code for status, milliseconds for slow; 0 otherwise.
  std::uint64_t argument = 0;
};

// Largest delay /slow/<ms> accepts (one hour); more is bad_argument.
inline constexpr std::uint64_t max_slow_ms = 3'600'000;

// Classifies a request-target (origin-form "/path?query", or absolute-form
// "http://host/path", or "*"). Only the path before '?' or '#' is looked at. Never fails: an
// unknown path is route_kind::hello, a malformed number after a known prefix is bad_argument.
route parse_route(std::string_view target) noexcept;

}  // namespace tlsfront::echo_backend
