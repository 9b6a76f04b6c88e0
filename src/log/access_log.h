// log/access_log.h — one access-log line per request (or per failed connection).
// Thread-safety: write_access() may be called from any worker; it formats on the caller's
// thread and enqueues to the asynchronous access logger.
#pragma once

#include <cstdint>
#include <string_view>

namespace tlsfront::log {

struct access_record {
  std::string_view client;       // ip:port
  std::string_view sni;          // "-" if none
  std::string_view tls_version;  // "TLSv1.3"
  std::string_view cipher;       // IANA/BoringSSL name
  std::string_view resumed;      // none | id | ticket
  std::int64_t handshake_us = 0;
  bool early = false;  // forwarded in TLS 1.3 early data, before the handshake completed
  std::string_view protocol = "h1";  // h1 | h2 | tcp
  std::string_view method;
  std::string_view path;
  int status = 0;
  std::uint64_t bytes_sent = 0;      // response body bytes to the client
  std::uint64_t bytes_received = 0;  // request body bytes from the client
  std::string_view upstream;         // backend ip:port or "-"
  std::int64_t duration_us = 0;
  // Listeners with client certificates (tls/client_auth.h): ` client_cert=<result>` and
  // ` client_subject="<RFC 2253 subject>"` (when the client sent one) follow duration_us;
  // both left out when empty.
  std::string_view client_cert;
  std::string_view client_subject;
  // The response broke off after its head (backend framing error or close, client gone or cut
  // by client_write_timeout; a tunnel cut by a timeout or an error): ` aborted=1` ends the line,
  // and bytes_sent is what the client got, not what the head announced.
  bool aborted = false;
};

// Writes one line: key=value pairs, values that may hold spaces quoted and escaped, so no client
// input can forge a line or a field.
void write_access(const access_record& r);

}  // namespace tlsfront::log
