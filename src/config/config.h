// config/config.h — the TOML config file → each module's options struct, with precise errors.
// Only this module knows TOML. Thread-safety: free functions, no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "admin/options.h"
#include "log/options.h"
#include "proxy/options.h"

namespace tlsfront::config {

struct config {
  std::string path;  // the file it was read from
  proxy::server_options server;
  admin::admin_options admin;
  log::log_options log;
  // The sections a reload cannot apply ([server], [session_cache], [tickets], [cluster],
  // [admin], [log]) as TOML text, by name: a reload compares them to say what needs a restart.
  std::vector<std::pair<std::string, std::string>> restart_only;
  // What loads but deserves the operator's attention ("file:line:column: warning: the cipher
  // list enables weak TLS 1.2 suites: ..."): printed by `tlsfront -t`, logged at start and at
  // each reload.
  std::vector<std::string> warnings;
};

// The names of the restart-only sections whose text differs between `running` and `next`.
std::vector<std::string> restart_only_changes(const config& running, const config& next);

// Where and what: printed as "file:line:column: message".
struct config_error {
  std::string file;
  unsigned line = 0;
  unsigned column = 0;
  std::string message;
  std::string to_string() const;
};

struct load_result {
  std::optional<config> value;  // set on success
  config_error error;           // meaningful when !value
};

// Reads and validates a config file: syntax, unknown keys, wrong types, missing required keys,
// bad durations/sizes/addresses, routes naming unknown pools, unreadable certificate/key files,
// keys that do not match their certificate. Never throws. Only the first error found is
// reported; sections are checked in the order server, admin, log, limits, listener, pool, route,
// and unknown keys of a table before its values.
load_result load_file(const std::string& path);

// The same for text already in memory; `path` names it in errors and resolves relative
// certificate paths (relative to the directory of `path`).
load_result load_string(std::string_view text, const std::string& path);

// "30s", "250ms", "5m", "1h", "2d" or a bare integer (seconds). Returns nullopt if malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
// "512", "16k", "10m", "1g" (powers of 1024; an optional trailing "b"/"B" and case-insensitive
// unit). Returns nullopt if malformed or overflowing.
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace tlsfront::config
