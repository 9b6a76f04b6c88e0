// tls/server_context.h — the BoringSSL side of one listener: one SSL_CTX per certificate,
// chosen by SNI (exact names first, then one-label wildcards, else the default certificate),
// ALPN, protocol versions, ciphers and groups.
//
// Thread-safety: immutable after create(); new_ssl() may be called from any worker at once
// (SSL_CTX is reference-counted and internally locked where BoringSSL mutates it).
// Ownership: shared_ptr; every SSL made by new_ssl() holds references to the SSL_CTXs it uses,
// and the callbacks reach this object through SSL_CTX ex_data, so keep the server_context alive
// as long as connections made from it (the listener does).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "cache/session_cache.h"
#include "core/clock.h"
#include "tls/options.h"
#include "tls/ticket_keys.h"

namespace tlsfront::tls {

class server_context {
 public:
  // Builds every SSL_CTX. On failure returns nullptr and sets `error` (which certificate and
  // why: unreadable file, key mismatch, refused cipher list, ...).
  // With `sessions`, TLS 1.2 session IDs are kept there (see session_id_cache.h); without it,
  // no session-ID resumption (BoringSSL's internal cache is never used). `sessions` and
  // `clock` must outlive the context.
  // With `tickets` (and opts.session_tickets), tickets are sealed under that key ring;
  // without it, BoringSSL's own per-context keys are used.
  static std::shared_ptr<server_context> create(
      const listener_tls_options& opts, std::string& error,
      cache::session_cache* sessions = nullptr,
      const core::clock& clock = core::real_clock::instance(), ticket_key_ring* tickets = nullptr,
      const ticket_metrics* ticket_stats = nullptr);

  // The cache key contexts of this listener's certificates (for revocation by id).
  const std::vector<std::uint64_t>& context_ids() const { return context_ids_; }

  // A new server-side SSL on the default SSL_CTX; SNI may switch it during the handshake.
  // Returns nullptr only if BoringSSL is out of memory.
  bssl::UniquePtr<SSL> new_ssl() const;

  const listener_tls_options& options() const { return opts_; }
  // Number of certificates (SSL_CTXs).
  std::size_t size() const { return ctxs_.size(); }

  // The SSL_CTX index serving `server_name` (lowercase): exact, wildcard, else default.
  std::size_t select(std::string_view server_name) const;

  server_context(const server_context&) = delete;
  server_context& operator=(const server_context&) = delete;
  ~server_context() = default;

 private:
  server_context() = default;
  static enum ssl_select_cert_result_t on_client_hello(const SSL_CLIENT_HELLO* client_hello);
  // Runs right after BoringSSL's 0-RTT decision (SSL_CTX_set_dos_protection_cb); never refuses.
  static int on_hello_decided(const SSL_CLIENT_HELLO* client_hello);
  static int on_servername(SSL* ssl, int* alert, void* arg);
  static int on_alpn(SSL* ssl, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
                     unsigned in_len, void* arg);

  listener_tls_options opts_;
  std::vector<bssl::UniquePtr<SSL_CTX>> ctxs_;
  std::size_t default_index_ = 0;
  std::unordered_map<std::string, std::size_t> exact_;
  std::unordered_map<std::string, std::size_t> wildcard_;  // "*.x.y" stored as "x.y"
  std::vector<uint8_t> alpn_wire_;
  std::vector<std::uint64_t> context_ids_;
  // [ctx index]: the OCSP response each certificate staples (tls/ocsp.h), or null.
  std::vector<std::shared_ptr<const ocsp_cell>> staples_;
};

}  // namespace tlsfront::tls
