// proxy/options.h — listeners, routes, backend pools and limits as plain data (filled by config).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cache/session_cache.h"
#include "cluster/cluster_options.h"
#include "http/h2_options.h"
#include "http/header_rewrite.h"
#include "tls/options.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::proxy {

using std::chrono::milliseconds;

struct backend_server_options {
  std::string host;  // IPv4/IPv6 literal or a name resolved once at start
  std::uint16_t port = 0;
};

enum class balance_policy { round_robin, least_connections };

// Active health checks of a pool's servers (from worker 0): every `interval`, a TCP connect, or
// an HTTP GET whose status must fall in [expect_min, expect_max]; `fall` failures in a row take
// a server out of rotation, `rise` successes in a row bring it back.
struct health_check_options {
  enum class kind { none, tcp, http } type = kind::none;
  std::string path = "/";
  std::string host;                        // Host header; empty: the server's host:port
  int expect_min = 200, expect_max = 399;  // HTTP: 2xx and 3xx are healthy by default
  milliseconds interval{std::chrono::seconds(2)};
  milliseconds timeout{std::chrono::seconds(1)};
  int rise = 2;
  int fall = 3;
};

struct pool_options {
  std::string name;
  std::vector<backend_server_options> servers;  // at least one
  balance_policy balance = balance_policy::round_robin;
  milliseconds connect_timeout{std::chrono::seconds(5)};
  // Longest wait for the backend's response head, and between two reads of its body.
  milliseconds read_timeout{std::chrono::seconds(60)};
  // An idle pooled connection older than this is closed.
  milliseconds idle_timeout{std::chrono::seconds(60)};
  std::size_t max_idle = 64;  // idle keep-alive connections kept per worker thread and server
  // Passive ejection: after `max_fails` failures in a row (refused, unreachable, timed out, or
  // broken before a response head) a server is skipped for `cooldown`. 0: never ejected.
  int max_fails = 1;
  milliseconds cooldown{std::chrono::seconds(5)};
  health_check_options health;
  // Extra attempts on another server for a request that was not sent yet (idempotent only).
  int retries = 1;
};

// A request is matched against routes in order; the first whose host and path prefix match wins.
struct route_options {
  std::string host;  // empty: any host; exact ("a.example.com") or wildcard ("*.example.com")
  std::string path_prefix = "/";
  std::string pool;  // a pool_options::name
  // Protocols a request may be upgraded to (Upgrade header, then a tunnel after the backend's
  // 101), lowercase. Others are dropped from the request. h2c never: over TLS it is stripped.
  std::vector<std::string> upgrades = {"websocket"};
  // Send the connection's session handle to the backend ([http] session_header), so that the
  // application can store it and revoke it later (DELETE /sessions/handle/<it>).
  bool send_session_handle = false;
  // Methods a request received in TLS 1.3 early data may be forwarded with before the
  // handshake completes (with Early-Data: 1, RFC 8470); others, and any request with a body,
  // wait for it. Exact, case-sensitive method names.
  std::vector<std::string> early_data_methods = {"GET", "HEAD", "OPTIONS"};
};

// [http]: the names of the session-handle fields (issue 14). Both are always removed from
// client requests (and request trailers) and from backend responses before the client sees
// them; a backend response carrying `logout_header` revokes its connection's handle.
struct session_header_options {
  std::string session_header = "TLS-Session";
  std::string logout_header = "TLS-Logout";
  // Listeners with client certificates (tls/client_auth.h): the verified certificate, in the
  // shape of Envoy's x-forwarded-client-cert, and SUCCESS or NONE.
  std::string client_cert_header = "X-Forwarded-Client-Cert";
  std::string client_verify_header = "X-Client-Verify";
};

struct limits_options {
  std::size_t max_connections = 16384;       // client connections open at once, whole process
  std::size_t max_header_bytes = 16 * 1024;  // request line + headers
  std::size_t max_header_count = 100;
  std::uint64_t max_body_bytes = 0;  // 0: unlimited; larger requests get 413
  // Keep-alive: a client connection idle between requests longer than this is closed.
  milliseconds client_idle_timeout{std::chrono::seconds(60)};
  // Longest wait for the rest of a request head once it started, and between two body reads.
  milliseconds client_read_timeout{std::chrono::seconds(30)};
  // A write to the client (a response, a tunnel's bytes) is cut once the client took no byte of
  // it for this long; a slow but steady reader is never cut, however long the response.
  milliseconds client_write_timeout{std::chrono::seconds(30)};
  // On SIGTERM/SIGINT, in-flight requests get this long to finish.
  milliseconds drain_timeout{std::chrono::seconds(30)};
};

// An IPv4 or IPv6 network ("10.0.0.0/8", "::1/128"; a bare address is a /32 or /128).
struct network {
  std::array<std::uint8_t, 16> address{};  // IPv4 as IPv4-mapped IPv6
  int prefix = 128;                        // in the IPv6 form (IPv4 /8 → 104)
};

struct listener_options {
  std::string name;
  std::string address = "0.0.0.0";
  std::uint16_t port = 8443;  // 0: any free port (tests)
  tls::listener_tls_options tls;
  // http: requests routed to pools. tcp: after the handshake, bytes relayed both ways to `pool`.
  enum class mode_kind { http, tcp } mode = mode_kind::http;
  std::string pool;  // tcp mode: the pool_options::name that serves every connection
  // tcp mode: a PROXY protocol header sent to the backend first (the client's address; v2 also
  // the TLS version, cipher, SNI and ALPN).
  enum class proxy_header { none, v1, v2 } send_proxy = proxy_header::none;
  // A PROXY protocol header (v1 or v2) is read before the TLS handshake from these sources
  // (load balancers), and its source address stands for the client. Others connect directly.
  std::vector<network> trusted_proxies;
  // http mode: client request fields removed before forwarding (names, case-insensitive),
  // because backends trust them to say who the client is. X-Forwarded-For/-Proto/-Host are
  // always replaced by tlsfront's own, whatever this says.
  std::vector<std::string> drop_client_headers{http::default_untrusted_fields.begin(),
                                               http::default_untrusted_fields.end()};
  // http mode: routing and the backend see the normalized path (http/path_normalize.h); an
  // encoded '/' or '\' (%2F, %5C) in it is refused with 400 unless this is true.
  bool allow_encoded_slashes = false;
};

// [revocation] (proxy/session_revocation.h).
struct revocation_options {
  // Revoked handles held at once (8 bytes each, table at most half full: 16 bytes per entry).
  // When full, the oldest generations are refused wholesale (fail closed).
  std::size_t capacity = 262144;
  // No session or ticket resumes longer than this after the full handshake that began it, however
  // often it was resumed or renewed; a revocation is kept this long at most.
  std::chrono::seconds handle_max_age{std::chrono::hours(24)};
};

// [ocsp]: how the stapler (proxy/ocsp_stapler.h) fetches and refreshes OCSP responses.
struct ocsp_options {
  std::chrono::milliseconds timeout{5000};  // one fetch: resolve, connect, request, answer
  // A good response is fetched again at half its validity, and at least this often.
  std::chrono::seconds refresh_interval{3600};
  std::chrono::seconds retry_interval{60};  // after a fetch that brought no good response
};

struct server_options {
  unsigned threads = 0;  // 0: one per core
  // A UNIX socket through which a new tlsfront process takes this one's listening sockets and
  // state over (a binary upgrade: daemon/handover.h); empty: no upgrades.
  std::string upgrade_socket;
  // The TLS 1.2 session-ID cache shared by every listener and worker; disabled: no session-ID
  // resumption at all.
  bool session_cache_enabled = true;
  cache::session_cache_options session_cache;
  // Session-ticket keys for every listener with session_tickets on.
  tls::ticket_key_options tickets;
  // The fleet store ([cluster]); nullopt: this instance runs alone.
  std::optional<cluster::cluster_options> cluster;
  std::vector<listener_options> listeners;
  std::vector<pool_options> pools;
  std::vector<route_options> routes;
  limits_options limits;
  // [http2]: the limits of every HTTP/2 client connection (streams, windows, buffers, abuse
  // budgets), each field documented in http/h2_options.h. Part of the snapshot, so a reload
  // applies it to new connections.
  http::h2_options http2;
  // [revocation]: session handles and their revocation (proxy/session_revocation.h). Fixed at
  // start (the set is sized once); a reload that changes it warns that a restart is needed.
  revocation_options revocation;
  session_header_options session_headers;
  ocsp_options ocsp;
};

}  // namespace tlsfront::proxy
