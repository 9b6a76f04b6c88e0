#include "config/config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <openssl/mem.h>
#include <spdlog/spdlog.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <memory>
#include <sstream>
#include <utility>
#include <vector>

#include "cluster/fleet_secret.h"
#include "proxy/proxy_protocol.h"
#include "tls/certificate.h"
#include "tls/cipher_policy.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::config {

std::string config_error::to_string() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Errors. Inside this file the first error found unwinds to load_string() as a `failure`; it
// never leaves this file.

struct failure {
  toml::source_position where;
  std::string message;
};

[[noreturn]] void fail(const toml::source_region& where, std::string message) {
  throw failure{where.begin, std::move(message)};
}

[[noreturn]] void fail(const toml::node& at, std::string message) {
  fail(at.source(), std::move(message));
}

std::string single_quoted(std::string_view key) {
  return "'" + std::string(key) + "'";
}

// A user string inside a message, in double quotes.
std::string double_quoted(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

// ---------------------------------------------------------------------------------------------
// Text helpers that need no TOML.

// Multiplies with overflow detection. Returns false on overflow.
bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) {
    return false;
  }
  out = a * b;
  return true;
}

// Reads the leading decimal digits of `text` into `value`; returns how many were read (0 if the
// text does not start with a digit), or nullopt if the number overflows.
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

// "1k", "16m", "3g" when exact, else the byte count.
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

// Checks a DNS name as used for SNI and Host matching: labels of letters, digits, '-' and '_',
// optionally "*." as the whole first label. Lowercases `name` in place. On failure returns false
// and sets `why`.
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

struct host_port {
  std::string host;  // without brackets
  std::uint16_t port = 0;
};

// Splits "host:port" / "[v6]:port". `ip_only`: the host must be an IP literal (something to bind
// to); else a host name is accepted too. On failure returns nullopt and sets `why`.
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

// Listener and pool names end up in logs and metric labels: keep them plain.
bool is_plain_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return is_alnum(c) || c == '_' || c == '-' || c == '.';
  });
}

// ---------------------------------------------------------------------------------------------
// Typed access to TOML nodes. Each throws `failure` at the offending node.

// Fails at the first key of `t` (in file order) that is not in `allowed`. `section` names the
// table in the message ("listener.certificate"); empty for the root table.
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

// An array of tables ([[name]]), possibly empty; `full_name` is how the header is written
// ("listener.certificate").
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

// Every element a non-empty string; each element's node is passed to `each`.
template <class Each>
void for_each_string(const toml::node& n, std::string_view key, Each&& each) {
  const toml::array* a = n.as_array();
  if (a == nullptr) {
    fail(n, single_quoted(key) + " must be an array of strings");
  }
  for (const toml::node& e : *a) {
    const auto* s = e.as_string();
    if (s == nullptr) {
      fail(e, single_quoted(key) + " must be an array of strings");
    }
    if (s->get().empty()) {
      fail(e, single_quoted(key) + " must not hold an empty string");
    }
    each(e, s->get());
  }
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

// Reads an optional key into `out` with the given reader, leaving the default when absent.
template <class T, class Read>
void optional_key(const toml::table& t, std::string_view key, T& out, Read&& read) {
  if (const toml::node* n = t.get(key)) {
    out = read(*n);
  }
}

template <class Int>
void optional_integer(const toml::table& t, std::string_view key, std::int64_t min,
                      std::int64_t max, Int& out) {
  optional_key(t, key, out,
               [&](const toml::node& n) { return static_cast<Int>(as_integer(n, key, min, max)); });
}

void optional_duration(const toml::table& t, std::string_view key, milliseconds& out) {
  optional_key(t, key, out, [&](const toml::node& n) { return as_duration(n, key); });
}

// A timeout of zero would cut every connection at once: it must be positive.
void optional_timeout(const toml::table& t, std::string_view key, milliseconds& out) {
  optional_key(t, key, out, [&](const toml::node& n) {
    milliseconds d = as_duration(n, key);
    if (d.count() <= 0) {
      fail(n, single_quoted(key) + " must be longer than zero");
    }
    return d;
  });
}

template <class Int>
void optional_size(const toml::table& t, std::string_view key, std::uint64_t min, std::uint64_t max,
                   Int& out) {
  optional_key(t, key, out,
               [&](const toml::node& n) { return static_cast<Int>(as_size(n, key, min, max)); });
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

// ---------------------------------------------------------------------------------------------
// The schema, section by section.

class reader {
 public:
  explicit reader(std::filesystem::path base_dir) : base_dir_(std::move(base_dir)) {}

 private:
  std::chrono::seconds session_timeout_{tls::listener_tls_options{}.session_timeout};
  const toml::node* tickets_source_ = nullptr;  // [tickets] source, when given
  std::vector<const toml::node*> tcp_pools_;    // tcp listeners' 'pool', checked after [[pool]]
  std::vector<std::string> warnings_;           // see config::warnings

  void warn(const toml::node& at, const std::string& message) {
    const toml::source_region& r = at.source();
    warnings_.push_back((r.path ? *r.path : std::string()) + ":" + std::to_string(r.begin.line) +
                        ":" + std::to_string(r.begin.column) + ": warning: " + message);
  }

 public:
  std::vector<std::string> take_warnings() { return std::move(warnings_); }

 public:
  void read(const toml::table& root, config& out) {
    check_keys(root, "",
               {"server", "admin", "log", "limits", "session_cache", "tickets", "cluster",
                "listener", "pool", "route"});
    if (const toml::node* n = root.get("server")) {
      read_server(as_table(*n, "server"), out.server);
    }
    if (const toml::node* n = root.get("admin")) {
      read_admin(as_table(*n, "admin"), out.admin);
    }
    if (const toml::node* n = root.get("log")) {
      read_log(as_table(*n, "log"), out.log);
    }
    if (const toml::node* n = root.get("limits")) {
      read_limits(as_table(*n, "limits"), out.server.limits);
    }
    if (const toml::node* n = root.get("session_cache")) {
      read_session_cache(as_table(*n, "session_cache"), out.server);
    }
    if (const toml::node* n = root.get("tickets")) {
      read_tickets(as_table(*n, "tickets"), out.server.tickets);
    }
    if (const toml::node* n = root.get("cluster")) {
      out.server.cluster.emplace();
      read_cluster(as_table(*n, "cluster"), *out.server.cluster);
    }
    check_ticket_source(root, out.server);
    const toml::node* listeners = root.get("listener");
    if (listeners == nullptr) {
      fail(root, "no [[listener]]: at least one listener is required");
    }
    const toml::array& listener_list = as_table_array(*listeners, "listener", "listener");
    if (listener_list.empty()) {
      fail(*listeners, "no [[listener]]: at least one listener is required");
    }
    read_listeners(listener_list, out.server.listeners);
    if (const toml::node* n = root.get("pool")) {
      read_pools(as_table_array(*n, "pool", "pool"), out.server.pools);
    }
    if (const toml::node* n = root.get("route")) {
      read_routes(as_table_array(*n, "route", "route"), out.server.pools, out.server.routes);
    }
    for (const toml::node* n : tcp_pools_) {
      const std::string name = as_string(*n, "pool");
      if (std::none_of(out.server.pools.begin(), out.server.pools.end(),
                       [&](const proxy::pool_options& p) { return p.name == name; })) {
        fail(*n, "listener names unknown pool " + single_quoted(name));
      }
    }
  }

 private:
  static void read_server(const toml::table& t, proxy::server_options& out) {
    check_keys(t, "server", {"threads"});
    optional_integer(t, "threads", 0, 1024, out.threads);
  }

  // [admin]: the admin endpoint. A token (from `token_file`) is required for every
  // state-changing call when set, and must be set when the endpoint listens beyond loopback.
  void read_admin(const toml::table& t, admin::admin_options& out) {
    check_keys(t, "admin",
               {"enabled", "listen", "token_file", "allowed_hosts", "max_connections",
                "request_timeout", "rotate_burst", "rotate_interval"});
    optional_key(t, "enabled", out.enabled,
                 [](const toml::node& n) { return as_bool(n, "enabled"); });
    if (const toml::node* n = t.get("token_file")) {
      out.token_file = resolve(as_nonempty_string(*n, "token_file"));
      out.token = read_secret_file(out.token_file, *n, "the admin token file");
      if (out.token.size() < 16) {
        fail(*n, "the admin token in " + out.token_file +
                     " is too short: use at least 16 characters (e.g. openssl rand -hex 32)");
      }
      for (unsigned char c : out.token) {
        if (c <= 0x20 || c >= 0x7f) {
          fail(*n, "the admin token in " + out.token_file +
                       " must be one line of printable ASCII without spaces");
        }
      }
    }
    if (const toml::node* n = t.get("allowed_hosts")) {
      for_each_string(*n, "allowed_hosts", [&](const toml::node&, const std::string& h) {
        out.allowed_hosts.push_back(h);
      });
    }
    optional_integer(t, "max_connections", 1, 10000, out.max_connections);
    optional_timeout(t, "request_timeout", out.request_timeout);
    optional_integer(t, "rotate_burst", 1, 1000000, out.rotate_burst);
    optional_duration(t, "rotate_interval", out.rotate_interval);
    if (const toml::node* n = t.get("listen")) {
      host_port hp = as_host_port(*n, "listen", /*ip_only=*/true, /*allow_port_zero=*/true);
      out.address = std::move(hp.host);
      out.port = hp.port;
      if (out.enabled && out.token.empty() && !is_loopback_literal(out.address)) {
        fail(*n, "admin 'listen' " + double_quoted(out.address) +
                     " is not a loopback address: anyone who reaches it could reload, flush "
                     "sessions and rotate keys; set 'token_file' in [admin] or listen on "
                     "127.0.0.1 or ::1");
      }
    }
  }

  // A secret kept in its own file (a password, a token): the whole file, trailing line breaks
  // removed; empty is refused; readable by group or others gets a warning.
  static std::string read_secret_file(const std::string& path, const toml::node& at,
                                      const std::string& what) {
    std::string v = read_whole_file(path, at, what);
    while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) {
      v.pop_back();
    }
    if (v.empty()) {
      fail(at, what + " " + path + " is empty");
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
      spdlog::warn("{}: {} is readable by group or others (chmod 600 it)", path, what);
    }
    return v;
  }

  static bool is_loopback_literal(const std::string& ip) {
    in_addr v4{};
    if (::inet_pton(AF_INET, ip.c_str(), &v4) == 1) {
      return (ntohl(v4.s_addr) >> 24) == 127;
    }
    in6_addr v6{};
    return ::inet_pton(AF_INET6, ip.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
  }

  static void read_log(const toml::table& t, tlsfront::log::log_options& out) {
    check_keys(t, "log", {"level", "error_log", "access_log"});
    if (const toml::node* n = t.get("level")) {
      constexpr std::string_view levels[] = {"trace", "debug",    "info", "warn",
                                             "error", "critical", "off"};
      std::string level = as_string(*n, "level");
      if (std::find(std::begin(levels), std::end(levels), level) == std::end(levels)) {
        fail(*n, "'level' must be one of trace, debug, info, warn, error, critical, off");
      }
      out.level = std::move(level);
    }
    optional_key(t, "error_log", out.error_log,
                 [](const toml::node& n) { return as_nonempty_string(n, "error_log"); });
    optional_key(t, "access_log", out.access_log,
                 [](const toml::node& n) { return as_nonempty_string(n, "access_log"); });
  }

  static void read_limits(const toml::table& t, proxy::limits_options& out) {
    check_keys(
        t, "limits",
        {"max_connections", "max_header_bytes", "max_header_count", "max_body_bytes",
         "client_idle_timeout", "client_read_timeout", "client_write_timeout", "drain_timeout"});
    optional_integer(t, "max_connections", 1, std::numeric_limits<std::int64_t>::max(),
                     out.max_connections);
    optional_size(t, "max_header_bytes", 1024, 1024 * 1024, out.max_header_bytes);
    optional_integer(t, "max_header_count", 1, 10000, out.max_header_count);
    optional_size(t, "max_body_bytes", 0, std::numeric_limits<std::uint64_t>::max(),
                  out.max_body_bytes);
    optional_timeout(t, "client_idle_timeout", out.client_idle_timeout);
    optional_timeout(t, "client_read_timeout", out.client_read_timeout);
    optional_timeout(t, "client_write_timeout", out.client_write_timeout);
    optional_duration(t, "drain_timeout", out.drain_timeout);
  }

  // [session_cache]: the TLS 1.2 session-ID cache. `capacity` is a number of entries (integer)
  // or a memory size (string such as "64m"), converted with the per-entry cost of slot_bytes.
  void read_session_cache(const toml::table& t, proxy::server_options& out) {
    check_keys(t, "session_cache", {"enabled", "capacity", "timeout", "shards", "slot_bytes"});
    optional_key(t, "enabled", out.session_cache_enabled,
                 [](const toml::node& n) { return as_bool(n, "enabled"); });
    cache::session_cache_options& c = out.session_cache;
    optional_size(t, "slot_bytes", 64, cache::session_cache::max_slot_bytes, c.slot_bytes);
    optional_integer(t, "shards", 1, 4096, c.shards);
    if (const toml::node* n = t.get("capacity")) {
      if (n->is_integer()) {
        c.capacity = static_cast<std::size_t>(as_integer(*n, "capacity", 1, 1ll << 32));
      } else {
        std::uint64_t bytes = as_size(*n, "capacity", 1, std::uint64_t{1} << 40);
        c.capacity =
            static_cast<std::size_t>(bytes / cache::session_cache::bytes_per_entry(c.slot_bytes));
        if (c.capacity == 0) {
          fail(*n, "'capacity' is smaller than one entry (" +
                       std::to_string(cache::session_cache::bytes_per_entry(c.slot_bytes)) +
                       " bytes with this slot_bytes)");
        }
      }
    }
    if (const toml::node* n = t.get("timeout")) {
      milliseconds d = as_duration(*n, "timeout");
      if (d < std::chrono::seconds(1) || d > std::chrono::hours(24 * 7)) {
        fail(*n, "'timeout' must be between 1s and 7d");
      }
      session_timeout_ = std::chrono::duration_cast<std::chrono::seconds>(d);
    }
  }

  // [tickets]: session-ticket keys shared by every listener with session_tickets on.
  void read_tickets(const toml::table& t, tls::ticket_key_options& out) {
    check_keys(t, "tickets",
               {"source", "files", "rotation", "publish_ahead", "lifetime", "tls13_tickets"});
    const toml::node* source = t.get("source");
    if (source != nullptr) {
      std::string v = as_string(*source, "source");
      if (v == "memory") {
        out.source = tls::ticket_key_options::source_kind::memory;
      } else if (v == "file") {
        out.source = tls::ticket_key_options::source_kind::file;
      } else if (v == "redis") {
        out.source = tls::ticket_key_options::source_kind::fleet;
      } else {
        fail(*source, "'source' must be \"memory\", \"file\" or \"redis\"");
      }
      tickets_source_ = source;
    }
    const bool from_files = out.source == tls::ticket_key_options::source_kind::file;
    if (const toml::node* n = t.get("files")) {
      if (!from_files) {
        fail(*n, "'files' needs source = \"file\"");
      }
      for_each_string(*n, "files", [&](const toml::node& e, const std::string& f) {
        if (f.empty()) {
          fail(e, "a ticket key file name is empty");
        }
        out.files.push_back(resolve(f));
        std::vector<tls::ticket_key> keys;
        std::string bytes = read_whole_file(out.files.back(), e, "ticket key file");
        std::string error;
        bool ok = tls::ticket_key_ring::parse_key_file(bytes, keys, error);
        OPENSSL_cleanse(bytes.data(), bytes.size());  // key material: never left in memory
        if (!ok) {
          fail(e, out.files.back() + ": " + error);
        }
      });
    } else if (from_files) {
      fail(*source, "source = \"file\" needs 'files', a list of key files");
    }
    if (from_files && out.files.empty()) {
      fail(*t.get("files"), "'files' must name at least one key file");
    }
    auto seconds = [&](std::string_view key, std::chrono::seconds& field) {
      if (const toml::node* n = t.get(key)) {
        milliseconds d = as_duration(*n, key);
        if (d < std::chrono::seconds(1)) {
          fail(*n, single_quoted(key) + " must be at least 1s");
        }
        field = std::chrono::duration_cast<std::chrono::seconds>(d);
      }
    };
    seconds("rotation", out.rotation);
    seconds("publish_ahead", out.publish_ahead);
    seconds("lifetime", out.lifetime);
    if (const toml::node* n = t.get("lifetime")) {
      if (out.lifetime > std::chrono::hours(24 * 7)) {
        fail(*n, "'lifetime' must be at most 7d (RFC 8446 section 4.6.1)");
      }
      if (!from_files && out.lifetime > out.rotation) {
        fail(*n,
             "'lifetime' must not exceed 'rotation': a ticket may live at most half of its "
             "key's validity (rotation + lifetime), RFC 9325 section 3.4");
      }
    } else if (!from_files && out.lifetime > out.rotation) {
      out.lifetime = out.rotation;  // keep the default within the rule for short rotations
    }
    if (const toml::node* n = t.get("publish_ahead");
        n != nullptr && out.publish_ahead > out.rotation) {
      fail(*n, "'publish_ahead' must not exceed 'rotation'");
    }
    optional_integer(t, "tls13_tickets", 0, 8, out.tls13_tickets);
  }

  // With [cluster] the ticket keys are the fleet's unless [tickets] says otherwise; "redis"
  // without [cluster] has no fleet to share with.
  void check_ticket_source(const toml::table& root, proxy::server_options& s) {
    using kind = tls::ticket_key_options::source_kind;
    if (tickets_source_ == nullptr && s.cluster) {
      s.tickets.source = kind::fleet;
    }
    if (s.tickets.source != kind::fleet) {
      return;
    }
    if (!s.cluster) {
      fail(*tickets_source_, "source = \"redis\" needs a [cluster] section");
    }
    const auto ahead = std::chrono::ceil<std::chrono::seconds>(2 * s.cluster->poll_interval);
    if (s.tickets.publish_ahead < ahead) {
      const toml::node* at = root.get("tickets") != nullptr
                                 ? root.get("tickets")->as_table()->get("publish_ahead")
                                 : nullptr;
      if (at != nullptr) {
        fail(*at, "'publish_ahead' must be at least two [cluster] poll intervals (" +
                      std::to_string(ahead.count()) +
                      "s): every instance must read a key before it seals");
      }
      s.tickets.publish_ahead = ahead;  // the default, raised to what the poll interval needs
    }
  }

  // [cluster]: the fleet store. `redis` must be an IP literal: hiredis resolves names with a
  // blocking call on the worker thread at every reconnect.
  void read_cluster(const toml::table& t, cluster::cluster_options& out) {
    check_keys(t, "cluster",
               {"redis", "password_file", "secret_file", "key_prefix", "database", "lookup_timeout",
                "connect_timeout", "command_timeout", "max_pending_writes", "poll_interval"});
    host_port hp = as_host_port(require(t, "redis", "cluster"), "redis", true, false);
    out.redis.host = hp.host;
    out.redis.port = hp.port;
    if (const toml::node* n = t.get("password_file")) {
      out.redis.password = read_secret_file(resolve(as_string(*n, "password_file")), *n,
                                            "the Redis password file");
    }
    const toml::node& sf = require(t, "secret_file", "cluster");
    std::string error, warning;
    if (!cluster::load_fleet_secret(resolve(as_nonempty_string(sf, "secret_file")), out.secret, error,
                                    warning)) {
      fail(sf, error);
    }
    if (!warning.empty()) {
      spdlog::warn("{}", warning);
    }
    if (const toml::node* n = t.get("key_prefix")) {
      out.key_prefix = as_string(*n, "key_prefix");
    }
    optional_integer(t, "database", 0, 15, out.redis.database);
    optional_duration(t, "lookup_timeout", out.lookup_timeout);
    optional_duration(t, "connect_timeout", out.redis.connect_timeout);
    optional_duration(t, "command_timeout", out.redis.command_timeout);
    optional_duration(t, "poll_interval", out.poll_interval);
    if (const toml::node* n = t.get("poll_interval");
        n != nullptr && (out.poll_interval < std::chrono::milliseconds(100) ||
                         out.poll_interval > std::chrono::minutes(10))) {
      fail(*n, "'poll_interval' must be between 100ms and 10m");
    }
    for (const char* key : {"lookup_timeout", "connect_timeout", "command_timeout"}) {
      if (const toml::node* n = t.get(key); n != nullptr && as_duration(*n, key).count() < 1) {
        fail(*n, single_quoted(key) + " must be at least 1ms");
      }
    }
    optional_integer(t, "max_pending_writes", 1, 1 << 20, out.max_pending_writes);
  }

  // `what` names the file in the error: "cannot read <what> <path>: <why>".
  static std::string read_whole_file(const std::string& path, const toml::node& at,
                                     const std::string& what) {
    std::error_code fs_error;
    if (std::filesystem::exists(path, fs_error) &&
        !std::filesystem::is_regular_file(path, fs_error)) {
      // A directory (an empty path names the config's own) would make the stream throw.
      fail(at, "cannot read " + what + " " + path + ": not a regular file");
    }
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      fail(at, "cannot read " + what + " " + path + ": " + std::strerror(errno));
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  void read_listeners(const toml::array& listeners, std::vector<proxy::listener_options>& out) {
    struct seen {
      std::string name;
      std::string address;
      std::uint16_t port;
      toml::source_position where;
    };
    std::vector<seen> earlier;
    for (std::size_t i = 0; i < listeners.size(); ++i) {
      const toml::table& t = *listeners[i].as_table();
      proxy::listener_options l;
      read_listener(t, i, l);

      const toml::node* name_node = t.get("name");
      const toml::node& listen_node = *t.get("listen");
      for (const seen& s : earlier) {
        if (s.name == l.name) {
          fail(name_node != nullptr ? name_node->source() : t.source(),
               "duplicate listener name " + single_quoted(l.name) + " (first at line " +
                   std::to_string(s.where.line) + ")");
        }
        if (l.port != 0 && s.port == l.port && s.address == l.address) {
          fail(listen_node, "listener " + single_quoted(l.name) +
                                " listens on the same address as " + "listener " +
                                single_quoted(s.name));
        }
      }
      earlier.push_back({l.name, l.address, l.port, t.source().begin});
      out.push_back(std::move(l));
    }
  }

  // mode, pool and proxy_protocol (tcp listeners), trusted_proxies (any listener).
  void read_listener_mode(const toml::table& t, proxy::listener_options& out) {
    using mode = proxy::listener_options::mode_kind;
    if (const toml::node* n = t.get("mode")) {
      const std::string v = as_string(*n, "mode");
      if (v == "tcp") {
        out.mode = mode::tcp;
      } else if (v != "http") {
        fail(*n, "'mode' must be \"http\" or \"tcp\"");
      }
    }
    if (const toml::node* n = t.get("pool")) {
      if (out.mode != mode::tcp) {
        fail(*n, "'pool' needs mode = \"tcp\" (http listeners are served by [[route]])");
      }
      out.pool = as_nonempty_string(*n, "pool");
      tcp_pools_.push_back(n);
    } else if (out.mode == mode::tcp) {
      fail(*t.get("mode"), "mode = \"tcp\" needs 'pool', the pool every connection goes to");
    }
    if (const toml::node* n = t.get("proxy_protocol")) {
      if (out.mode != mode::tcp) {
        fail(*n, "'proxy_protocol' needs mode = \"tcp\"");
      }
      const std::string v = as_string(*n, "proxy_protocol");
      if (v == "v1") {
        out.send_proxy = proxy::listener_options::proxy_header::v1;
      } else if (v == "v2") {
        out.send_proxy = proxy::listener_options::proxy_header::v2;
      } else if (v != "off") {
        fail(*n, "'proxy_protocol' must be \"v1\", \"v2\" or \"off\"");
      }
    }
    if (const toml::node* n = t.get("trusted_proxies")) {
      for_each_string(*n, "trusted_proxies", [&](const toml::node& e, const std::string& v) {
        proxy::network net;
        std::string why;
        if (!proxy::parse_network(v, net, why)) {
          fail(e, "invalid 'trusted_proxies' entry " + double_quoted(v) + ": " + why);
        }
        out.trusted_proxies.push_back(net);
      });
    }
  }

  void read_listener(const toml::table& t, std::size_t index, proxy::listener_options& out) {
    check_keys(
        t, "listener",
        {"name", "listen", "min_tls", "max_tls", "ciphers", "curves", "alpn", "handshake_timeout",
         "session_tickets", "certificate", "mode", "pool", "proxy_protocol", "trusted_proxies",
         "drop_client_headers", "allow_encoded_slashes"});
    out.name = "listener" + std::to_string(index);
    if (const toml::node* n = t.get("name")) {
      out.name = as_nonempty_string(*n, "name");
      if (!is_plain_name(out.name)) {
        fail(*n, "'name' may hold only letters, digits, '_', '-' and '.'");
      }
    }
    host_port hp = as_host_port(require(t, "listen", "listener"), "listen", /*ip_only=*/true,
                                /*allow_port_zero=*/true);
    out.address = std::move(hp.host);
    out.port = hp.port;
    read_listener_mode(t, out);
    read_listener_requests(t, out);

    tls::listener_tls_options& tls = out.tls;
    optional_key(t, "min_tls", tls.min_version,
                 [](const toml::node& n) { return as_tls_version(n, "min_tls"); });
    optional_key(t, "max_tls", tls.max_version,
                 [](const toml::node& n) { return as_tls_version(n, "max_tls"); });
    if (tls.min_version > tls.max_version) {
      fail(*t.get("min_tls"), "'min_tls' (1.3) is higher than 'max_tls' (1.2)");
    }
    if (const toml::node* n = t.get("ciphers")) {
      tls.ciphers = as_string(*n, "ciphers");
      std::string error;
      if (!tls.ciphers.empty() && !tls::check_cipher_list(tls.ciphers, error)) {
        fail(*n, "invalid 'ciphers': " + error);
      }
      if (const std::string w = tls::weak_cipher_warning(tls::weak_ciphers(tls.ciphers));
          !w.empty()) {
        warn(*n, "listener " + single_quoted(out.name) + ": " + w);
      }
    }
    if (const toml::node* n = t.get("curves")) {
      tls.curves = as_nonempty_string(*n, "curves");
      std::string error;
      if (!tls::check_curves_list(tls.curves, error)) {
        fail(*n, "invalid 'curves': " + error);
      }
    }
    if (const toml::node* n = t.get("alpn")) {
      tls.alpn.clear();
      for_each_string(*n, "alpn", [&](const toml::node& e, const std::string& protocol) {
        if (protocol.size() > 255) {
          fail(e, "an 'alpn' protocol name is at most 255 bytes");
        }
        tls.alpn.push_back(protocol);
      });
    }
    optional_timeout(t, "handshake_timeout", tls.handshake_timeout);
    optional_key(t, "session_tickets", tls.session_tickets,
                 [](const toml::node& n) { return as_bool(n, "session_tickets"); });
    tls.session_timeout = session_timeout_;

    const toml::node* certs = t.get("certificate");
    if (certs == nullptr) {
      fail(t, "listener " + single_quoted(out.name) +
                  " has no certificate: add a [[listener.certificate]] with cert and key");
    }
    const toml::array& list = as_table_array(*certs, "certificate", "listener.certificate");
    if (list.empty()) {
      fail(*certs, "listener " + single_quoted(out.name) + " has no certificate");
    }
    const toml::node* default_node = nullptr;
    for (const toml::node& c : list) {
      const toml::table& ct = *c.as_table();
      tls::certificate_options cert;
      read_certificate(ct, cert);
      if (cert.is_default) {
        if (default_node != nullptr) {
          fail(*ct.get("default"),
               "listener " + single_quoted(out.name) +
                   " has more than one default certificate (the first at line " +
                   std::to_string(default_node->source().begin.line) + ")");
        }
        default_node = ct.get("default");
      }
      tls.certificates.push_back(std::move(cert));
    }
  }

  // A listener's request rules (http mode): the client fields dropped before forwarding and
  // whether encoded slashes may stay in a path.
  static void read_listener_requests(const toml::table& t, proxy::listener_options& out) {
    if (const toml::node* n = t.get("drop_client_headers")) {
      out.drop_client_headers.clear();  // []: none beyond what tlsfront always replaces
      for_each_string(*n, "drop_client_headers", [&](const toml::node& e, const std::string& v) {
        const bool token = std::all_of(v.begin(), v.end(), [](char c) {
          return is_alnum(c) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string::npos;
        });
        if (!token) {
          fail(e, "invalid header name " + double_quoted(v) + " in 'drop_client_headers'");
        }
        out.drop_client_headers.push_back(v);
      });
    }
    optional_key(t, "allow_encoded_slashes", out.allow_encoded_slashes,
                 [](const toml::node& n) { return as_bool(n, "allow_encoded_slashes"); });
  }

  void read_certificate(const toml::table& t, tls::certificate_options& out) {
    const std::string_view section = "listener.certificate";
    check_keys(t, section, {"cert", "key", "server_names", "default"});
    const toml::node& cert_node = require(t, "cert", section);
    const toml::node& key_node = require(t, "key", section);
    out.cert_file = resolve(as_nonempty_string(cert_node, "cert"));
    out.key_file = resolve(as_nonempty_string(key_node, "key"));
    if (const toml::node* n = t.get("server_names")) {
      for_each_string(*n, "server_names", [&](const toml::node& e, const std::string& text) {
        std::string name = text;
        std::string why;
        if (!check_server_name(name, why)) {
          fail(e, "invalid server name " + double_quoted(text) + ": " + why);
        }
        out.server_names.push_back(std::move(name));
      });
    }
    optional_key(t, "default", out.is_default,
                 [](const toml::node& n) { return as_bool(n, "default"); });

    tls::loaded_certificate loaded;
    std::string error;
    tls::certificate_part part = tls::certificate_part::cert;
    if (!tls::load_certificate(out, loaded, error, &part)) {
      fail(part == tls::certificate_part::key ? key_node : cert_node, error);
    }
  }

  static void read_pools(const toml::array& pools, std::vector<proxy::pool_options>& out) {
    std::vector<toml::source_position> first_at;
    for (const toml::node& p : pools) {
      const toml::table& t = *p.as_table();
      check_keys(t, "pool",
                 {"name", "servers", "balance", "connect_timeout", "read_timeout", "idle_timeout",
                  "max_idle", "cooldown", "retries", "max_fails", "health_check"});
      proxy::pool_options pool;
      const toml::node& name_node = require(t, "name", "pool");
      pool.name = as_nonempty_string(name_node, "name");
      if (!is_plain_name(pool.name)) {
        fail(name_node, "'name' may hold only letters, digits, '_', '-' and '.'");
      }
      for (std::size_t i = 0; i < out.size(); ++i) {
        if (out[i].name == pool.name) {
          fail(name_node, "duplicate pool name " + single_quoted(pool.name) + " (first at line " +
                              std::to_string(first_at[i].line) + ")");
        }
      }
      const toml::node& servers = require(t, "servers", "pool");
      for_each_string(servers, "servers", [&](const toml::node& e, const std::string&) {
        host_port hp = as_host_port(e, "servers", /*ip_only=*/false, /*allow_port_zero=*/false);
        pool.servers.push_back({std::move(hp.host), hp.port});
      });
      if (pool.servers.empty()) {
        fail(servers, "'servers' must list at least one host:port");
      }
      if (const toml::node* n = t.get("balance")) {
        const std::string balance = as_string(*n, "balance");
        if (balance == "round_robin") {
          pool.balance = proxy::balance_policy::round_robin;
        } else if (balance == "least_connections") {
          pool.balance = proxy::balance_policy::least_connections;
        } else {
          fail(*n, "'balance' must be \"round_robin\" or \"least_connections\"");
        }
      }
      optional_timeout(t, "connect_timeout", pool.connect_timeout);
      optional_timeout(t, "read_timeout", pool.read_timeout);
      optional_timeout(t, "idle_timeout", pool.idle_timeout);
      optional_integer(t, "max_idle", 0, 100000, pool.max_idle);
      optional_duration(t, "cooldown", pool.cooldown);
      optional_integer(t, "retries", 0, 10, pool.retries);
      optional_integer(t, "max_fails", 0, 1000, pool.max_fails);
      if (const toml::node* n = t.get("health_check")) {
        read_health_check(as_table(*n, "health_check"), pool.health);
      }
      first_at.push_back(name_node.source().begin);
      out.push_back(std::move(pool));
    }
  }

  // [pool.health_check]: type = "tcp" | "http", and for http the path, Host and expected
  // status (a code, or a class such as "2xx").
  static void read_health_check(const toml::table& t, proxy::health_check_options& out) {
    using kind = proxy::health_check_options::kind;
    check_keys(t, "health_check",
               {"type", "path", "host", "expect_status", "interval", "timeout", "rise", "fall"});
    const toml::node& type = require(t, "type", "health_check");
    const std::string v = as_string(type, "type");
    if (v == "tcp") {
      out.type = kind::tcp;
    } else if (v == "http") {
      out.type = kind::http;
    } else {
      fail(type, "'type' must be \"tcp\" or \"http\"");
    }
    for (const char* key : {"path", "host", "expect_status"}) {
      if (const toml::node* n = t.get(key); n != nullptr && out.type != kind::http) {
        fail(*n, single_quoted(key) + " needs type = \"http\"");
      }
    }
    if (const toml::node* n = t.get("path")) {
      out.path = as_string(*n, "path");
      if (out.path.empty() || out.path[0] != '/' ||
          out.path.find_first_of(" \r\n\t") != std::string::npos) {
        fail(*n, "'path' must start with '/' and hold no spaces or control characters");
      }
    }
    if (const toml::node* n = t.get("host")) {
      out.host = as_nonempty_string(*n, "host");
      if (out.host.find_first_of(" \r\n\t") != std::string::npos) {
        fail(*n, "'host' must hold no spaces or control characters");
      }
    }
    if (const toml::node* n = t.get("expect_status")) {
      if (const auto* code = n->as_integer()) {
        if (code->get() < 100 || code->get() > 599) {
          fail(*n, "'expect_status' must be a status code (100..599) or a class (\"2xx\")");
        }
        out.expect_min = out.expect_max = static_cast<int>(code->get());
      } else if (const auto* cls = n->as_string(); cls != nullptr && cls->get().size() == 3 &&
                                                   cls->get()[0] >= '1' && cls->get()[0] <= '5' &&
                                                   cls->get().substr(1) == "xx") {
        out.expect_min = (cls->get()[0] - '0') * 100;
        out.expect_max = out.expect_min + 99;
      } else {
        fail(*n, "'expect_status' must be a status code (100..599) or a class (\"2xx\")");
      }
    }
    optional_timeout(t, "interval", out.interval);
    optional_timeout(t, "timeout", out.timeout);
    if (out.timeout > out.interval) {
      fail(t.get("timeout") != nullptr ? *t.get("timeout") : *t.get("interval"),
           "'timeout' must not exceed 'interval'");
    }
    optional_integer(t, "rise", 1, 100, out.rise);
    optional_integer(t, "fall", 1, 100, out.fall);
  }

  static void read_routes(const toml::array& routes, const std::vector<proxy::pool_options>& pools,
                          std::vector<proxy::route_options>& out) {
    for (const toml::node& r : routes) {
      const toml::table& t = *r.as_table();
      check_keys(t, "route", {"host", "path_prefix", "pool", "upgrades"});
      proxy::route_options route;
      if (const toml::node* n = t.get("host")) {
        const std::string text = as_string(*n, "host");
        route.host = text;
        std::string why;
        if (!route.host.empty() && !check_server_name(route.host, why)) {
          fail(*n, "invalid 'host' " + double_quoted(text) + ": " + why);
        }
      }
      if (const toml::node* n = t.get("path_prefix")) {
        route.path_prefix = as_string(*n, "path_prefix");
        if (!route.path_prefix.starts_with("/")) {
          fail(*n, "'path_prefix' must start with \"/\"");
        }
      }
      const toml::node& pool_node = require(t, "pool", "route");
      route.pool = as_nonempty_string(pool_node, "pool");
      const bool known = std::any_of(pools.begin(), pools.end(), [&](const proxy::pool_options& p) {
        return p.name == route.pool;
      });
      if (!known) {
        fail(pool_node, "route names unknown pool " + single_quoted(route.pool));
      }
      if (const toml::node* n = t.get("upgrades")) {
        route.upgrades.clear();
        for_each_string(*n, "upgrades", [&](const toml::node& e, const std::string& v) {
          std::string p;
          for (char c : v) {
            const bool tchar = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                               (c >= '0' && c <= '9') || std::strchr("!#$%&'*+-.^_`|~", c);
            if (!tchar || c == '\0') {
              fail(e, "'upgrades' holds protocol names (tokens such as \"websocket\")");
            }
            p.push_back(static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c));
          }
          if (p == "h2c") {
            fail(e,
                 "h2c cannot be upgraded to over TLS (RFC 9113 section 3.2); tlsfront strips "
                 "it");
          }
          route.upgrades.push_back(std::move(p));
        });
      }
      out.push_back(std::move(route));
    }
  }

  std::string resolve(const std::string& file) const {
    const std::filesystem::path p(file);
    if (p.is_absolute() || base_dir_.empty()) {
      return file;
    }
    return (base_dir_ / p).string();
  }

  std::filesystem::path base_dir_;
};

config_error make_error(const std::string& file, const toml::source_position& where,
                        std::string message) {
  // toml++ counts from 1; 0 means "unknown", which still prints as a position.
  return config_error{file, std::max(where.line, 1U), std::max(where.column, 1U),
                      std::move(message)};
}

}  // namespace

load_result load_string(std::string_view text, const std::string& path) {
  load_result result;
  try {
    const toml::table root = toml::parse(text, std::string_view(path));
    config c;
    c.path = path;
    reader r(std::filesystem::path(path).parent_path());
    r.read(root, c);
    c.warnings = r.take_warnings();
    for (const char* section : {"server", "session_cache", "tickets", "cluster", "admin", "log"}) {
      std::ostringstream printed;
      if (const toml::node* n = root.get(section)) {
        printed << *n->as_table();
      }
      c.restart_only.emplace_back(section, printed.str());
    }
    result.value = std::move(c);
  } catch (const toml::parse_error& e) {
    result.error = make_error(path, e.source().begin, std::string(e.description()));
  } catch (const failure& f) {
    result.error = make_error(path, f.where, f.message);
  } catch (const std::exception& e) {
    result.error = config_error{path, 1, 1, std::string("internal error: ") + e.what()};
  }
  return result;
}

std::vector<std::string> restart_only_changes(const config& running, const config& next) {
  std::vector<std::string> changed;
  for (std::size_t i = 0; i < next.restart_only.size(); ++i) {
    if (i >= running.restart_only.size() || running.restart_only[i] != next.restart_only[i]) {
      changed.push_back("[" + next.restart_only[i].first + "]");
    }
  }
  return changed;
}

load_result load_file(const std::string& path) {
  struct file_closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, file_closer> f(std::fopen(path.c_str(), "rb"));
  auto cannot_read = [&](int err) {
    load_result r;
    r.error =
        config_error{path, 1, 1, std::string("cannot read config file: ") + std::strerror(err)};
    return r;
  };
  if (!f) {
    return cannot_read(errno);
  }
  std::string text;
  char buf[16384];
  for (;;) {
    const std::size_t got = std::fread(buf, 1, sizeof buf, f.get());
    text.append(buf, got);
    if (got < sizeof buf) {
      if (std::ferror(f.get())) {
        return cannot_read(errno);
      }
      break;
    }
  }
  return load_string(text, path);
}

std::optional<milliseconds> parse_duration(std::string_view text) {
  std::uint64_t value = 0;
  const auto digits = leading_number(text, value);
  if (!digits || *digits == 0) {
    return std::nullopt;
  }
  const std::string_view unit = text.substr(*digits);
  std::uint64_t factor = 0;
  if (unit == "ms") {
    factor = 1;
  } else if (unit.empty() || unit == "s") {
    factor = 1000;
  } else if (unit == "m") {
    factor = 60 * 1000;
  } else if (unit == "h") {
    factor = 60 * 60 * 1000;
  } else if (unit == "d") {
    factor = 24 * 60 * 60 * 1000;
  } else {
    return std::nullopt;
  }
  std::uint64_t ms = 0;
  if (!checked_mul(value, factor, ms) ||
      ms > static_cast<std::uint64_t>(std::numeric_limits<milliseconds::rep>::max())) {
    return std::nullopt;
  }
  return milliseconds(static_cast<milliseconds::rep>(ms));
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  const auto digits = leading_number(text, value);
  if (!digits || *digits == 0) {
    return std::nullopt;
  }
  std::string_view unit = text.substr(*digits);
  std::uint64_t factor = 1;
  if (!unit.empty()) {
    switch (ascii_lower(unit.front())) {
      case 'k':
        factor = 1024ULL;
        unit.remove_prefix(1);
        break;
      case 'm':
        factor = 1024ULL * 1024;
        unit.remove_prefix(1);
        break;
      case 'g':
        factor = 1024ULL * 1024 * 1024;
        unit.remove_prefix(1);
        break;
      default:
        break;
    }
  }
  if (unit == "b" || unit == "B") {
    unit.remove_prefix(1);
  }
  if (!unit.empty()) {
    return std::nullopt;
  }
  std::uint64_t bytes = 0;
  if (!checked_mul(value, factor, bytes)) {
    return std::nullopt;
  }
  return bytes;
}

}  // namespace tlsfront::config
