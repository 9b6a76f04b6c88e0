// config/toml_reading.h — internal to the config module: the helpers every section reader
// shares: errors at a TOML position (`failure`, thrown by fail() and caught by load_string(),
// never leaving the module), text checks that need no TOML (sizes, host:port, server names),
// and typed access to TOML nodes with the module's exact error wording.
//
// Thread-safety: free functions, no shared state.
// Failure: the as_*, require, check_keys and optional_* helpers throw `failure` at the offending
// node; the text checks return false / nullopt and say why.
#pragma once

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>

namespace tlsfront::config::detail {

using std::chrono::milliseconds;

// ---------------------------------------------------------------------------------------------
// Errors. Inside this module the first error found unwinds to load_string() as a `failure`; it
// never leaves the module.

struct failure {
  toml::source_position where;
  std::string message;
};

[[noreturn]] void fail(const toml::source_region& where, std::string message);

[[noreturn]] void fail(const toml::node& at, std::string message);

std::string single_quoted(std::string_view key);

// A user string inside a message, in double quotes.
std::string double_quoted(std::string_view text);

// ---------------------------------------------------------------------------------------------
// Text helpers that need no TOML.

// Multiplies with overflow detection. Returns false on overflow.
bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out);

// Reads the leading decimal digits of `text` into `value`; returns how many were read (0 if the
// text does not start with a digit), or nullopt if the number overflows.
std::optional<std::size_t> leading_number(std::string_view text, std::uint64_t& value);

char ascii_lower(char c);

bool is_alnum(char c);
// An RFC 9110 tchar: what header names and protocol tokens are made of.
bool is_token_char(char c);

// "1k", "16m", "3g" when exact, else the byte count.
std::string format_size(std::uint64_t bytes);

// Checks a DNS name as used for SNI and Host matching: labels of letters, digits, '-' and '_',
// optionally "*." as the whole first label. Lowercases `name` in place. On failure returns false
// and sets `why`.
bool check_server_name(std::string& name, std::string& why);

bool is_ipv4(const std::string& text);

bool is_ipv6(const std::string& text);

struct host_port {
  std::string host;  // without brackets
  std::uint16_t port = 0;
};

// Splits "host:port" / "[v6]:port". `ip_only`: the host must be an IP literal (something to bind
// to); else a host name is accepted too. On failure returns nullopt and sets `why`.
std::optional<host_port> split_host_port(std::string_view text, bool ip_only, bool allow_port_zero,
                                         std::string& why);

// Listener and pool names end up in logs and metric labels: keep them plain.
bool is_plain_name(std::string_view name);

// ---------------------------------------------------------------------------------------------
// Typed access to TOML nodes. Each throws `failure` at the offending node.

// Fails at the first key of `t` (in file order) that is not in `allowed`. `section` names the
// table in the message ("listener.certificate"); empty for the root table.
void check_keys(const toml::table& t, std::string_view section,
                std::initializer_list<std::string_view> allowed);

const toml::node& require(const toml::table& t, std::string_view key, std::string_view section);

const toml::table& as_table(const toml::node& n, std::string_view key);

// An array of tables ([[name]]), possibly empty; `full_name` is how the header is written
// ("listener.certificate").
const toml::array& as_table_array(const toml::node& n, std::string_view key,
                                  std::string_view full_name);

std::string as_string(const toml::node& n, std::string_view key);

std::string as_nonempty_string(const toml::node& n, std::string_view key);

bool as_bool(const toml::node& n, std::string_view key);

std::int64_t as_integer(const toml::node& n, std::string_view key, std::int64_t min,
                        std::int64_t max);

milliseconds as_duration(const toml::node& n, std::string_view key);

std::uint64_t as_size(const toml::node& n, std::string_view key, std::uint64_t min,
                      std::uint64_t max);

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
                       bool allow_port_zero);

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

void optional_duration(const toml::table& t, std::string_view key, milliseconds& out);

// A timeout of zero would cut every connection at once: it must be positive.
void optional_timeout(const toml::table& t, std::string_view key, milliseconds& out);

template <class Int>
void optional_size(const toml::table& t, std::string_view key, std::uint64_t min, std::uint64_t max,
                   Int& out) {
  optional_key(t, key, out,
               [&](const toml::node& n) { return static_cast<Int>(as_size(n, key, min, max)); });
}

std::uint16_t as_tls_version(const toml::node& n, std::string_view key);

}  // namespace tlsfront::config::detail
