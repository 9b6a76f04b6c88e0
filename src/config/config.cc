#include "config/config.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "config/reader.h"

namespace tlsfront::config {

std::string config_error::to_string() const {
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace detail {

void reader::read(const toml::table& root, config& out) {
  check_keys(root, "",
             {"server", "admin", "log", "limits", "http", "http2", "session_cache", "tickets",
              "revocation", "cluster", "ocsp", "listener", "pool", "route"});
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
  if (const toml::node* n = root.get("http")) {
    read_http(as_table(*n, "http"), out.server.session_headers);
  }
  if (const toml::node* n = root.get("http2")) {
    read_http2(as_table(*n, "http2"), out.server.http2);
  }
  if (const toml::node* n = root.get("ocsp")) {
    read_ocsp(as_table(*n, "ocsp"), out.server.ocsp);
  }
  // A session that carries a client's certificate chain serializes to 1-3 KB, not 158 bytes:
  // with client certificates on any listener, slot_bytes defaults to 2048 so their session IDs
  // are still cached (an explicit slot_bytes wins).
  if (any_client_auth(root)) {
    out.server.session_cache.slot_bytes = client_auth_slot_bytes;
  }
  if (const toml::node* n = root.get("session_cache")) {
    read_session_cache(as_table(*n, "session_cache"), out.server);
  }
  if (const toml::node* n = root.get("tickets")) {
    read_tickets(as_table(*n, "tickets"), out.server.tickets);
  }
  {
    static const toml::table none;
    const toml::node* n = root.get("revocation");
    read_revocation(n != nullptr ? as_table(*n, "revocation") : none, out.server);
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
  drop_session_fields(out.server);
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

// Some [[listener]] sets client_auth to something other than "off" (read properly, with its
// errors, by read_listener_client_auth()).
bool reader::any_client_auth(const toml::table& root) {
  const toml::array* list = root.get_as<toml::array>("listener");
  if (list == nullptr) {
    return false;
  }
  return std::any_of(list->begin(), list->end(), [](const toml::node& l) {
    const toml::table* t = l.as_table();
    const toml::node* n = t != nullptr ? t->get("client_auth") : nullptr;
    const std::optional<std::string> v = n != nullptr ? n->value<std::string>() : std::nullopt;
    return v.has_value() && *v != "off";
  });
}

// A secret kept in its own file (a password, a token): the whole file, trailing line breaks
// removed; empty is refused; readable by group or others gets a warning.
std::string reader::read_secret_file(const std::string& path, const toml::node& at,
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

// `what` names the file in the error: "cannot read <what> <path>: <why>".
std::string reader::read_whole_file(const std::string& path, const toml::node& at,
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

config_error make_error(const std::string& file, const toml::source_position& where,
                        std::string message) {
  // toml++ counts from 1; 0 means "unknown", which still prints as a position.
  return config_error{file, std::max(where.line, 1U), std::max(where.column, 1U),
                      std::move(message)};
}

}  // namespace detail

using namespace detail;

load_result load_string(std::string_view text, const std::string& path) {
  load_result result;
  try {
    const toml::table root = toml::parse(text, std::string_view(path));
    config c;
    c.path = path;
    reader r(std::filesystem::path(path).parent_path());
    r.read(root, c);
    c.warnings = r.take_warnings();
    for (const char* section :
         {"server", "session_cache", "tickets", "revocation", "cluster", "admin", "log"}) {
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
