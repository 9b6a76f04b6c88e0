#include "http/path_normalize.h"

#include <vector>

#include "core/hex.h"

namespace tlsfront::http {
namespace {

// RFC 3986 §2.3: ALPHA / DIGIT / "-" / "." / "_" / "~".
bool unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// Decodes the escapes of unreserved characters of `path` into `out`; other escapes stay,
// upper-cased.
path_error decode_unreserved(std::string_view path, const path_options& opts, std::string& out) {
  static constexpr char digits[] = "0123456789ABCDEF";
  for (std::size_t i = 0; i < path.size(); ++i) {
    const char c = path[i];
    if (c == '\0') {
      return path_error::nul;
    }
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= path.size()) {
      return path_error::bad_escape;
    }
    const int hi = core::hex_digit_value(path[i + 1]);
    const int lo = core::hex_digit_value(path[i + 2]);
    if (hi < 0 || lo < 0) {
      return path_error::bad_escape;
    }
    const auto byte = static_cast<unsigned char>(hi * 16 + lo);
    i += 2;
    if (byte == 0) {
      return path_error::nul;
    }
    if ((byte == '/' || byte == '\\') && !opts.allow_encoded_slashes) {
      return path_error::encoded_slash;
    }
    if (unreserved(byte)) {
      out.push_back(static_cast<char>(byte));
    } else {
      out.push_back('%');
      out.push_back(digits[byte >> 4]);
      out.push_back(digits[byte & 15]);
    }
  }
  return path_error::none;
}

}  // namespace

path_error normalize_target(std::string_view target, const path_options& opts, std::string& out) {
  if (target.empty() || target.front() != '/') {
    return path_error::not_origin_form;
  }
  const std::size_t path_end = target.find_first_of("?#");
  const std::string_view path = target.substr(0, path_end);
  const std::string_view rest =
      path_end == std::string_view::npos ? std::string_view() : target.substr(path_end);
  if (rest.find('\0') != std::string_view::npos) {
    return path_error::nul;
  }

  std::string decoded;
  decoded.reserve(path.size());
  if (path_error e = decode_unreserved(path, opts, decoded); e != path_error::none) {
    return e;
  }

  // RFC 3986 §5.2.4 over the segments after the leading '/': "." goes, ".." removes the
  // segment before it; either as the last segment leaves a trailing '/'.
  std::vector<std::string_view> segments;
  std::string_view input = std::string_view(decoded).substr(1);
  for (;;) {
    const std::size_t slash = input.find('/');
    const std::string_view segment = input.substr(0, slash);
    const bool last = slash == std::string_view::npos;
    if (segment == "." || segment == "..") {
      if (segment == "..") {
        if (segments.empty()) {
          return path_error::above_root;
        }
        segments.pop_back();
      }
      if (last) {
        segments.emplace_back();  // "/a/b/.." is "/a/"
      }
    } else {
      segments.push_back(segment);
    }
    if (last) {
      break;
    }
    input.remove_prefix(slash + 1);
  }
  const std::size_t start = out.size();
  for (const std::string_view s : segments) {
    out.push_back('/');
    out.append(s);
  }
  if (out.size() == start) {
    out.push_back('/');
  }
  out.append(rest);
  return path_error::none;
}

std::string_view describe(path_error e) {
  switch (e) {
    case path_error::none:
      return "no error";
    case path_error::not_origin_form:
      return "the request target is not a path";
    case path_error::bad_escape:
      return "a '%' in the path is not followed by two hex digits";
    case path_error::nul:
      return "a NUL byte in the path";
    case path_error::encoded_slash:
      return "an encoded '/' or '\\' (%2F, %5C) in the path";
    case path_error::above_root:
      return "a '..' segment climbs above the root";
  }
  return "invalid path";
}

}  // namespace tlsfront::http
