// Request-target → endpoint mapping for tlsfront-echo-backend (see route.h).
#include "echo_backend/route.h"

#include <charconv>

namespace tlsfront::echo_backend {
namespace {

// The path part of a request-target: absolute-form loses scheme and authority, the query and
// fragment are cut off.
std::string_view path_of(std::string_view target) noexcept {
  if (!target.starts_with('/')) {
    const std::size_t scheme_end = target.find("://");
    if (scheme_end != std::string_view::npos) {
      const std::size_t path_start = target.find('/', scheme_end + 3);
      target =
          path_start == std::string_view::npos ? std::string_view("/") : target.substr(path_start);
    }
  }
  const std::size_t end = target.find_first_of("?#");
  if (end != std::string_view::npos) {
    target = target.substr(0, end);
  }
  return target;
}

// Parses all of `text` as a decimal number; false when empty, not all digits, or overflowing.
bool parse_number(std::string_view text, std::uint64_t& value) noexcept {
  if (text.empty()) {
    return false;
  }
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return ec == std::errc() && ptr == end;
}

// True when `path` is `name` itself or `name` followed by '/' and more.
bool is_endpoint(std::string_view path, std::string_view name) noexcept {
  return path.starts_with(name) && (path.size() == name.size() || path[name.size()] == '/');
}

route with_number(route_kind kind, std::string_view text, std::uint64_t min,
                  std::uint64_t max) noexcept {
  std::uint64_t value = 0;
  if (!parse_number(text, value) || value < min || value > max) {
    return {route_kind::bad_argument, 0};
  }
  return {kind, value};
}

}  // namespace

route parse_route(std::string_view target) noexcept {
  const std::string_view path = path_of(target);
  if (path.size() <= 1) {
    return {};
  }
  switch (path[1]) {
    case 'b':
      if (path.starts_with("/bytes/")) {
        return with_number(route_kind::bytes, path.substr(7), 0, UINT64_MAX);
      }
      break;
    case 'c':
      if (path.starts_with("/chunked/")) {
        return with_number(route_kind::chunked, path.substr(9), 0, UINT64_MAX);
      }
      if (path == "/close") {
        return {route_kind::close, 0};
      }
      break;
    case 'e':
      if (is_endpoint(path, "/echo")) {
        return {route_kind::echo, 0};
      }
      break;
    case 'l':
      if (path == "/logout") {
        return {route_kind::logout, 0};
      }
      break;
    case 't':
      if (path == "/too-early") {
        return {route_kind::too_early, 0};
      }
      break;
    case 'h':
      if (path == "/headers") {
        return {route_kind::headers, 0};
      }
      if (path == "/hang") {
        return {route_kind::hang, 0};
      }
      break;
    case 's':
      if (is_endpoint(path, "/sink")) {
        return {route_kind::sink, 0};
      }
      if (path.starts_with("/status/")) {
        return with_number(route_kind::status, path.substr(8), 200, 599);
      }
      if (path.starts_with("/slow/")) {
        return with_number(route_kind::slow, path.substr(6), 0, max_slow_ms);
      }
      break;
    case '_':
      if (path == "/__stats") {
        return {route_kind::stats, 0};
      }
      break;
    default:
      break;
  }
  return {};
}

}  // namespace tlsfront::echo_backend
