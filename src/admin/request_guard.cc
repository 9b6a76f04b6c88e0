#include "admin/request_guard.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>

namespace tlsfront::admin {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// The host part of a Host value ("a:1" → "a", "[::1]:1" → "::1", "a" → "a"); empty when the
// value is malformed (a port that is not 1 to 5 digits, an unclosed bracket).
std::string_view host_part(std::string_view v) {
  std::string_view port;
  std::string_view host;
  if (!v.empty() && v.front() == '[') {
    std::size_t close = v.find(']');
    if (close == std::string_view::npos) {
      return {};
    }
    host = v.substr(1, close - 1);
    std::string_view rest = v.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return {};
      }
      port = rest.substr(1);
      if (port.empty()) {
        return {};
      }
    }
  } else {
    std::size_t colon = v.find(':');
    host = v.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = v.substr(colon + 1);
      if (port.empty()) {
        return {};
      }
    }
  }
  if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) {
        return c >= '0' && c <= '9';
      })) {
    return {};
  }
  return host;
}

enum class addr_kind { none, loopback, unspecified, other };

addr_kind kind_of(const std::string& ip) {
  in_addr v4{};
  if (::inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
    const std::uint32_t a = ntohl(v4.s_addr);
    return a == 0 ? addr_kind::unspecified : (a >> 24) == 127 ? addr_kind::loopback : addr_kind::other;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, ip.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_UNSPECIFIED(&v6) ? addr_kind::unspecified
           : IN6_IS_ADDR_LOOPBACK(&v6)  ? addr_kind::loopback
                                        : addr_kind::other;
  }
  return addr_kind::none;
}

// The same address written either way ("::1" and "0:0::1").
bool same_address(const std::string& a, const std::string& b) {
  unsigned char x[16], y[16];
  if (::inet_pton(AF_INET, a.c_str(), x) == 1) {
    return ::inet_pton(AF_INET, b.c_str(), y) == 1 && std::equal(x, x + 4, y);
  }
  return ::inet_pton(AF_INET6, a.c_str(), x) == 1 && ::inet_pton(AF_INET6, b.c_str(), y) == 1 &&
         std::equal(x, x + 16, y);
}

bool host_allowed(const guard_settings& s, std::string_view host_value) {
  const std::string host(host_part(host_value));
  if (host.empty()) {
    return false;
  }
  for (const std::string& h : s.allowed_hosts) {
    if (iequals(host_part(h).empty() ? std::string_view(h) : host_part(h), host)) {
      return true;
    }
  }
  const addr_kind bound = kind_of(s.address);
  if (iequals(host, "localhost")) {
    return bound == addr_kind::loopback || bound == addr_kind::unspecified;
  }
  if (kind_of(host) == addr_kind::none) {
    return false;  // a DNS name that is not in allowed_hosts
  }
  return bound == addr_kind::unspecified || same_address(host, s.address);
}

bool same_origin(std::string_view origin, std::string_view host_value) {
  constexpr std::string_view scheme = "http://";
  return origin.size() > scheme.size() && iequals(origin.substr(0, scheme.size()), scheme) &&
         iequals(origin.substr(scheme.size()), host_value);
}

// Constant-time in the length of `want` (the secret): every byte is compared.
bool token_matches(std::string_view got, std::string_view want) {
  unsigned char diff = got.size() == want.size() ? 0 : 1;
  for (std::size_t i = 0; i < want.size(); ++i) {
    const unsigned char g = i < got.size() ? static_cast<unsigned char>(got[i]) : 0;
    diff |= static_cast<unsigned char>(g ^ static_cast<unsigned char>(want[i]));
  }
  return diff == 0;
}

}  // namespace

bool is_state_changing(std::string_view method) {
  return method != "GET" && method != "HEAD";
}

guard_verdict check_admin_request(const guard_settings& s, const http::message_head& head) {
  if (head.host.empty() || !host_allowed(s, head.host)) {
    return guard_verdict::bad_host;
  }
  if (!is_state_changing(head.method)) {
    return guard_verdict::allowed;
  }
  if (auto origin = head.find("Origin"); origin && !same_origin(*origin, head.host)) {
    return guard_verdict::cross_site;
  }
  if (auto site = head.find("Sec-Fetch-Site");
      site && !iequals(*site, "same-origin") && !iequals(*site, "none")) {
    return guard_verdict::cross_site;
  }
  if (s.token.empty()) {
    return guard_verdict::allowed;
  }
  auto auth = head.find("Authorization");
  constexpr std::string_view bearer = "Bearer ";
  if (!auth || auth->size() < bearer.size() || !iequals(auth->substr(0, bearer.size()), bearer)) {
    return guard_verdict::no_token;
  }
  return token_matches(auth->substr(bearer.size()), s.token) ? guard_verdict::allowed
                                                             : guard_verdict::bad_token;
}

const char* verdict_name(guard_verdict v) {
  switch (v) {
    case guard_verdict::allowed:
      return "allowed";
    case guard_verdict::bad_host:
      return "host";
    case guard_verdict::cross_site:
      return "cross_site";
    case guard_verdict::no_token:
      return "no_token";
    case guard_verdict::bad_token:
      return "bad_token";
  }
  return "unknown";
}

}  // namespace tlsfront::admin
