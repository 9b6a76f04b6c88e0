// http/path_normalize.h — the request path tlsfront routes on and forwards: percent-encoded
// unreserved characters decoded, dot-segments removed (RFC 3986 §6.2.2.2, §5.2.4), the query
// left as it came. So "/public/%2e%2E/admin" is "/admin" for the router and for the backend,
// and no route can be reached by a spelling the router does not see.
//
// Stricter than RFC 3986 where a proxy must be: a ".." that would climb above the root (which
// §5.2.4 silently drops) is refused, as are an encoded '/' or '\' inside a segment (%2F, %5C:
// a backend that decodes them would see other segments than the router did) unless allowed,
// an encoded or raw NUL, and a '%' not followed by two hex digits. Empty segments ("//") are
// kept, as RFC 3986 does; other escapes are kept with their hex digits in upper case.
//
// Thread-safety: pure functions. No exceptions; errors are values.
#pragma once

#include <string>
#include <string_view>

namespace tlsfront::http {

struct path_options {
  // true: %2F and %5C are kept (still encoded, hex in upper case) instead of refused.
  bool allow_encoded_slashes = false;
};

enum class path_error {
  none,
  not_origin_form,  // the target does not start with '/'
  bad_escape,       // '%' not followed by two hex digits
  nul,              // %00 or a raw NUL byte
  encoded_slash,    // %2F or %5C in a segment, not allowed by path_options
  above_root,       // a ".." segment with no segment left to remove
};

// Normalizes an origin-form request target ("/path?query"; a '#' also ends the path) and
// appends the result to `out`: the normalized path followed by the query (and fragment)
// unchanged. On an error nothing is appended and the error says why; the caller answers 400.
path_error normalize_target(std::string_view target, const path_options& opts, std::string& out);

// A short phrase for logs ("a '..' segment climbs above the root").
std::string_view describe(path_error e);

}  // namespace tlsfront::http
