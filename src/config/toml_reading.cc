#include "config/toml_reading.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "config/config.h"
#include "tls/options.h"

namespace tlsfront::config::detail {

// ---------------------------------------------------------------------------------------------
// Errors. Inside this file the first error found unwinds to load_string() as a `failure`; it
// never leaves this file.

[[noreturn]] void fail(const toml::source_region& where, std::string message) {
  throw failure{where.begin, std::move(message)};
}

[[noreturn]] void fail(const toml::node& at, std::string message) {
  fail(at.source(), std::move(message));
}

std::string single_quoted(std::string_view key) {
  return "'" + std::string(key) + "'";
}

std::string double_quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// ---------------------------------------------------------------------------------------------
// Text helpers that need no TOML.

bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) {
    return false;
  }
  out = a * b;
  return true;
}

std::optional<std::size_t> leading_number(std::string_view text, std::uint64_t& value) {
  value = 0;
  std::size_t i = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
    std::uint64_t times_ten = 0;
    if (!checked_mul(value, 10, times_ten)) {
      return std::nullopt;
    }
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (times_ten > std::numeric_limits<std::uint64_t>::max() - digit) {
      return std::nullopt;
    }
    value = times_ten + digit;
  }
  return i;
}

char ascii_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_token_char(char c) {
  return is_alnum(c) ||
         (c != '\0' && std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos);
}

std::string format_size(std::uint64_t bytes) {
  constexpr std::pair<std::uint64_t, char> units[] = {
      {1024ULL * 1024 * 1024, 'g'}, {1024ULL * 1024, 'm'}, {1024ULL, 'k'}};
  for (const auto& [factor, suffix] : units) {
    if (bytes != 0 && bytes % factor == 0) {
      return std::to_string(bytes / factor) + suffix;
    }
  }
  return std::to_string(bytes);
}

bool check_server_name(std::string& name, std::string& why) {
  std::transform(name.begin(), name.end(), name.begin(), ascii_lower);
  if (name.empty()) {
    why = "a server name must not be empty";
    return false;
  }
  std::string_view rest = name;
  if (rest.starts_with("*.")) {
    rest.remove_prefix(2);
  }
  if (rest.find('*') != std::string_view::npos) {
    why = "a '*' wildcard is allowed only as the whole first label, as in \"*.example.com\"";
    return false;
  }
  if (name.size() > 253) {
    why = "a server name is at most 253 characters";
    return false;
  }
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = rest.find('.', start);
    const std::string_view label =
        rest.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty() || label.size() > 63) {
      why = "each label of a server name must hold 1 to 63 characters";
      return false;
    }
    for (char c : label) {
      if (!is_alnum(c) && c != '-' && c != '_') {
        why = "a server name may hold only letters, digits, '-', '_' and '.'";
        return false;
      }
    }
    if (dot == std::string_view::npos) {
      break;
    }
    start = dot + 1;
  }
  return true;
}

bool is_ipv4(const std::string& text) {
  in_addr a{};
  return inet_pton(AF_INET, text.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& text) {
  in6_addr a{};
  return inet_pton(AF_INET6, text.c_str(), &a) == 1;
}

std::optional<host_port> split_host_port(std::string_view text, bool ip_only, bool allow_port_zero,
                                         std::string& why) {
  host_port out;
  std::string_view port_text;
  bool bracketed = false;
  if (text.starts_with("[")) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) {
      why = "missing ']' after the IPv6 address";
      return std::nullopt;
    }
    out.host = std::string(text.substr(1, close - 1));
    if (close + 1 >= text.size() || text[close + 1] != ':') {
      why = "expected host:port (IPv6 as \"[::1]:port\")";
      return std::nullopt;
    }
    port_text = text.substr(close + 2);
    bracketed = true;
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      why = "expected host:port (IPv6 as \"[::1]:port\")";
      return std::nullopt;
    }
    out.host = std::string(text.substr(0, colon));
    port_text = text.substr(colon + 1);
    if (out.host.find(':') != std::string::npos) {
      why = "an IPv6 address must be in brackets, as in \"[::1]:9901\"";
      return std::nullopt;
    }
  }
  if (out.host.empty()) {
    why = "missing host (use 0.0.0.0 or [::] for every address)";
    return std::nullopt;
  }

  const std::uint64_t min_port = allow_port_zero ? 0 : 1;
  const std::string port_range = allow_port_zero ? "0 to 65535" : "1 to 65535";
  std::uint64_t port = 0;
  const auto digits = leading_number(port_text, port);
  if (!digits || *digits == 0 || *digits != port_text.size() || port < min_port || port > 65535) {
    why = "the port must be a number from " + port_range;
    return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(port);

  if (bracketed) {
    if (!is_ipv6(out.host)) {
      why = double_quoted(out.host) + " is not an IPv6 address";
      return std::nullopt;
    }
  } else if (ip_only) {
    if (!is_ipv4(out.host)) {
      why = double_quoted(out.host) + " is not an IP address";
      return std::nullopt;
    }
  } else if (!is_ipv4(out.host)) {
    std::string name = out.host;
    std::string ignored;
    if (name.find('*') != std::string::npos || !check_server_name(name, ignored)) {
      why = double_quoted(out.host) + " is neither an IP address nor a host name";
      return std::nullopt;
    }
  }
  return out;
}

bool is_plain_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return is_alnum(c) || c == '_' || c == '-' || c == '.';
  });
}

// ---------------------------------------------------------------------------------------------
// Typed access to TOML nodes. Each throws `failure` at the offending node.

void check_keys(const toml::table& t, std::string_view section,
                std::initializer_list<std::string_view> allowed) {
  const toml::key* first = nullptr;
  for (const auto& [k, v] : t) {
    if (std::find(allowed.begin(), allowed.end(), k.str()) != allowed.end()) {
      continue;
    }
    if (first == nullptr || k.source().begin < first->source().begin) {
      first = &k;
    }
  }
  if (first == nullptr) {
    return;
  }
  const std::string name(first->str());
  if (!section.empty()) {
    fail(first->source(),
         "unknown key " + single_quoted(name) + " in [" + std::string(section) + "]");
  }
  const toml::node& value = *t.get(name);
  if (value.is_table()) {
    fail(first->source(), "unknown table [" + name + "]");
  }
  if (value.is_array_of_tables()) {
    fail(first->source(), "unknown table [[" + name + "]]");
  }
  fail(first->source(), "unknown top-level key " + single_quoted(name));
}

const toml::node& require(const toml::table& t, std::string_view key, std::string_view section) {
  const toml::node* n = t.get(key);
  if (n == nullptr) {
    fail(t, "missing required key " + single_quoted(key) + " in [" + std::string(section) + "]");
  }
  return *n;
}

const toml::table& as_table(const toml::node& n, std::string_view key) {
  const toml::table* t = n.as_table();
  if (t == nullptr) {
    fail(n, single_quoted(key) + " must be a table: write [" + std::string(key) + "]");
  }
  return *t;
}

const toml::array& as_table_array(const toml::node& n, std::string_view key,
                                  std::string_view full_name) {
  const toml::array* a = n.as_array();
  if (a == nullptr || (!a->empty() && !a->is_array_of_tables())) {
    fail(n, single_quoted(key) + " must be an array of tables: write [[" + std::string(full_name) +
                "]]");
  }
  return *a;
}

std::string as_string(const toml::node& n, std::string_view key) {
  const auto* s = n.as_string();
  if (s == nullptr) {
    fail(n, single_quoted(key) + " must be a string");
  }
  return s->get();
}

std::string as_nonempty_string(const toml::node& n, std::string_view key) {
  std::string s = as_string(n, key);
  if (s.empty()) {
    fail(n, single_quoted(key) + " must not be empty");
  }
  return s;
}

bool as_bool(const toml::node& n, std::string_view key) {
  const auto* b = n.as_boolean();
  if (b == nullptr) {
    fail(n, single_quoted(key) + " must be a boolean (true or false)");
  }
  return b->get();
}

std::int64_t as_integer(const toml::node& n, std::string_view key, std::int64_t min,
                        std::int64_t max) {
  const auto* i = n.as_integer();
  if (i == nullptr) {
    fail(n, single_quoted(key) + " must be an integer");
  }
  const std::int64_t v = i->get();
  if (v < min || v > max) {
    if (max == std::numeric_limits<std::int64_t>::max()) {
      fail(n, single_quoted(key) + " must be at least " + std::to_string(min));
    }
    fail(n, single_quoted(key) + " must be between " + std::to_string(min) + " and " +
                std::to_string(max));
  }
  return v;
}

milliseconds as_duration(const toml::node& n, std::string_view key) {
  if (const auto* i = n.as_integer()) {
    const std::int64_t seconds = i->get();
    if (seconds < 0) {
      fail(n, single_quoted(key) + " must not be negative");
    }
    if (seconds > std::numeric_limits<milliseconds::rep>::max() / 1000) {
      fail(n, single_quoted(key) + " is too long");
    }
    return milliseconds(seconds * 1000);
  }
  if (const auto* s = n.as_string()) {
    if (auto d = parse_duration(s->get())) {
      return *d;
    }
    fail(n, "invalid duration " + double_quoted(s->get()) + " for " + single_quoted(key) +
                ": use a whole number with ms, s, m, h or d, as in \"30s\"");
  }
  fail(n, single_quoted(key) +
              " must be a duration: a string such as \"30s\" or an integer number of seconds");
}

std::uint64_t as_size(const toml::node& n, std::string_view key, std::uint64_t min,
                      std::uint64_t max) {
  std::uint64_t v = 0;
  if (const auto* i = n.as_integer()) {
    if (i->get() < 0) {
      fail(n, single_quoted(key) + " must not be negative");
    }
    v = static_cast<std::uint64_t>(i->get());
  } else if (const auto* s = n.as_string()) {
    auto parsed = parse_size(s->get());
    if (!parsed) {
      fail(n, "invalid size " + double_quoted(s->get()) + " for " + single_quoted(key) +
                  ": use a number of bytes, optionally with k, m or g, as in \"16k\"");
    }
    v = *parsed;
  } else {
    fail(n, single_quoted(key) +
                " must be a size: a string such as \"16k\" or an integer number of bytes");
  }
  if (v < min || v > max) {
    if (max == std::numeric_limits<std::uint64_t>::max()) {
      fail(n, single_quoted(key) + " must be at least " + format_size(min));
    }
    fail(n,
         single_quoted(key) + " must be between " + format_size(min) + " and " + format_size(max));
  }
  return v;
}

host_port as_host_port(const toml::node& n, std::string_view key, bool ip_only,
                       bool allow_port_zero) {
  const std::string text = as_string(n, key);
  std::string why;
  auto hp = split_host_port(text, ip_only, allow_port_zero, why);
  if (!hp) {
    fail(n, "invalid address " + double_quoted(text) + " for " + single_quoted(key) + ": " + why);
  }
  return std::move(*hp);
}

void optional_duration(const toml::table& t, std::string_view key, milliseconds& out) {
  optional_key(t, key, out, [&](const toml::node& n) { return as_duration(n, key); });
}

void optional_timeout(const toml::table& t, std::string_view key, milliseconds& out) {
  optional_key(t, key, out, [&](const toml::node& n) {
    milliseconds d = as_duration(n, key);
    if (d.count() <= 0) {
      fail(n, single_quoted(key) + " must be longer than zero");
    }
    return d;
  });
}

std::uint16_t as_tls_version(const toml::node& n, std::string_view key) {
  const std::string* s = n.as_string() ? &n.as_string()->get() : nullptr;
  if (s != nullptr && *s == "1.2") {
    return tls::tls1_2;
  }
  if (s != nullptr && *s == "1.3") {
    return tls::tls1_3;
  }
  fail(n, single_quoted(key) + " must be \"1.2\" or \"1.3\"");
}

}  // namespace tlsfront::config::detail
