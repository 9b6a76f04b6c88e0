// config/reader.h — internal to the config module: the schema reader. One object reads one
// file's root table into a config; each section group's members live in their own file:
//   config.cc                    the root table (order of sections, cross-section checks),
//                                secret and whole-file reads
//   admin_log_sections.cc        [server], [admin], [log], [limits]
//   http2_section.cc             [http2]
//   session_ticket_sections.cc   [session_cache], [tickets] and the ticket key source
//   cluster_section.cc           [cluster]
//   listener_sections.cc         [[listener]] and [[listener.certificate]]
//   pool_route_sections.cc       [[pool]], [pool.health_check], [[route]]
//
// Thread-safety: one reader per load, used by one thread.
// Failure: every read_* throws `failure` (config/toml_reading.h) at the first error; warnings
// are collected and taken with take_warnings().
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/toml_reading.h"
#include "tls/certificate.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::config::detail {

class reader {
 public:
  explicit reader(std::filesystem::path base_dir) : base_dir_(std::move(base_dir)) {}

 private:
  std::chrono::seconds session_timeout_{tls::listener_tls_options{}.session_timeout};
  const toml::node* tickets_source_ = nullptr;  // [tickets] source, when given
  std::vector<const toml::node*> tcp_pools_;    // tcp listeners' 'pool', checked after [[pool]]
  std::vector<std::string> warnings_;           // see config::warnings
  // [admin] certificate_dir, read before the listeners: their certificates' replacements.
  std::string certificate_dir_;
  const toml::node* certificate_dir_node_ = nullptr;
  // Certificate names seen so far: one name, one pair of files.
  struct named_certificate {
    std::string cert_file;
    std::string key_file;
    std::uint32_t line = 0;
  };
  std::map<std::string, named_certificate> certificate_names_;

  void warn(const toml::node& at, const std::string& message) {
    const toml::source_region& r = at.source();
    warnings_.push_back((r.path ? *r.path : std::string()) + ":" + std::to_string(r.begin.line) +
                        ":" + std::to_string(r.begin.column) + ": warning: " + message);
  }

 public:
  std::vector<std::string> take_warnings() { return std::move(warnings_); }

 public:
  void read(const toml::table& root, config& out);

 private:
  void read_server(const toml::table& t, proxy::server_options& out);

  // [admin]: the admin endpoint. A token (from `token_file`) is required for every
  // state-changing call when set, and must be set when the endpoint listens beyond loopback.
  void read_admin(const toml::table& t, admin::admin_options& out);

  // A secret kept in its own file (a password, a token): the whole file, trailing line breaks
  // removed; empty is refused; readable by group or others gets a warning.
  static std::string read_secret_file(const std::string& path, const toml::node& at,
                                      const std::string& what);

  static bool is_loopback_literal(const std::string& ip);

  static void read_log(const toml::table& t, tlsfront::log::log_options& out);

  static void read_limits(const toml::table& t, proxy::limits_options& out);
  // [ocsp]: the stapler's fetch timeout, refresh and retry intervals.
  static void read_ocsp(const toml::table& t, proxy::ocsp_options& out);

  // [http2]: the limits of every HTTP/2 client connection, one key per http::h2_options field
  // (same names), each range-checked; also the two cross-field rules (rapid_reset_budget >=
  // max_concurrent_streams, connection_output_buffer >= stream_output_buffer).
  static void read_http2(const toml::table& t, http::h2_options& out);

  // [session_cache]: the TLS 1.2 session-ID cache. `capacity` is a number of entries (integer)
  // or a memory size (string such as "64m"), converted with the per-entry cost of slot_bytes.
  void read_session_cache(const toml::table& t, proxy::server_options& out);

  // [revocation]: capacity of the revoked-handle set and handle_max_age (at least every session
  // and ticket lifetime; read after [session_cache] and [tickets]).
  void read_revocation(const toml::table& t, proxy::server_options& out);
  // [http]: the session-handle field names; drop_session_fields() adds both to every
  // listener's drop_client_headers (after the listeners are read).
  static void read_http(const toml::table& t, proxy::session_header_options& out);
  static void drop_session_fields(proxy::server_options& s);

  // [tickets]: session-ticket keys shared by every listener with session_tickets on.
  void read_tickets(const toml::table& t, tls::ticket_key_options& out);

  // With [cluster] the ticket keys are the fleet's unless [tickets] says otherwise; "redis"
  // without [cluster] has no fleet to share with.
  void check_ticket_source(const toml::table& root, proxy::server_options& s);

  // [cluster]: the fleet store. `redis` must be an IP literal: hiredis resolves names with a
  // blocking call on the worker thread at every reconnect.
  void read_cluster(const toml::table& t, cluster::cluster_options& out);

  // `what` names the file in the error: "cannot read <what> <path>: <why>".
  static std::string read_whole_file(const std::string& path, const toml::node& at,
                                     const std::string& what);

  void read_listeners(const toml::array& listeners, std::vector<proxy::listener_options>& out);

  // mode, pool and proxy_protocol (tcp listeners), trusted_proxies (any listener).
  void read_listener_mode(const toml::table& t, proxy::listener_options& out);

  void read_listener(const toml::table& t, std::size_t index, proxy::listener_options& out);
  void read_listener_early_data(const toml::table& t, proxy::listener_options& out);
  void read_listener_client_auth(const toml::table& t, proxy::listener_options& out);
  static bool any_client_auth(const toml::table& root);
  static constexpr std::size_t client_auth_slot_bytes = 2048;

  // A listener's request rules (http mode): the client fields dropped before forwarding and
  // whether encoded slashes may stay in a path.
  static void read_listener_requests(const toml::table& t, proxy::listener_options& out);

  void read_certificate(const toml::table& t, tls::certificate_options& out);
  // The entry's OCSP keys (ocsp_stapling, ocsp_file, ocsp_responder), checked against what the
  // certificate says (must-staple, its responder, its issuer in the chain).
  void read_certificate_ocsp(const toml::table& t, const tls::loaded_certificate& cert,
                             tls::certificate_options& out);

  static void read_pools(const toml::array& pools, std::vector<proxy::pool_options>& out);

  // [pool.health_check]: type = "tcp" | "http", and for http the path, Host and expected
  // status (a code, or a class such as "2xx").
  static void read_health_check(const toml::table& t, proxy::health_check_options& out);

  static void read_routes(const toml::array& routes, const std::vector<proxy::pool_options>& pools,
                          std::vector<proxy::route_options>& out);

  std::string resolve(const std::string& file) const {
    const std::filesystem::path p(file);
    if (p.is_absolute() || base_dir_.empty()) {
      return file;
    }
    return (base_dir_ / p).string();
  }

  std::filesystem::path base_dir_;
};

}  // namespace tlsfront::config::detail
