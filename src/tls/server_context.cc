#include "tls/server_context.h"

#include <openssl/err.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>
#include <ctime>

#include "tls/certificate.h"
#include "tls/cipher_policy.h"
#include "tls/client_auth.h"
#include "tls/early_data.h"
#include "tls/ocsp.h"
#include "tls/session_id_cache.h"
#include "tls/ssl_error.h"
#include "tls/stream.h"
#include "tls/x509_fields.h"

namespace tlsfront::tls {
std::shared_ptr<server_context> server_context::create(
    const listener_tls_options& opts, std::string& error, cache::session_cache* sessions,
    const core::clock& clock, ticket_key_ring* tickets, const ticket_metrics* ticket_stats) {
  std::shared_ptr<server_context> sc(new server_context());
  sc->opts_ = opts;
  if (opts.certificates.empty()) {
    error = "listener has no certificate";
    return nullptr;
  }
  for (const std::string& p : opts.alpn) {
    if (p.empty() || p.size() > 255) {
      error = "invalid ALPN protocol name";
      return nullptr;
    }
    sc->alpn_wire_.push_back(static_cast<uint8_t>(p.size()));
    sc->alpn_wire_.insert(sc->alpn_wire_.end(), p.begin(), p.end());
  }

  const std::string default_ciphers = default_tls12_ciphers;
  const bool client_auth = opts.client_auth.mode != client_auth_options::mode_kind::off;
  client_trust trust;
  if (client_auth &&
      !load_client_trust(opts.client_auth, static_cast<std::int64_t>(std::time(nullptr)), trust,
                         error)) {
    return nullptr;
  }
  for (std::size_t i = 0; i < opts.certificates.size(); ++i) {
    const certificate_options& co = opts.certificates[i];
    loaded_certificate from_files;
    if (!co.loaded && !load_certificate(co, from_files, error)) {
      return nullptr;
    }
    const loaded_certificate& cert = co.loaded ? *co.loaded : from_files;
    bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
    if (!ctx) {
      error = "SSL_CTX_new: " + take_ssl_error();
      return nullptr;
    }
    SSL_CTX* c = ctx.get();
    bool ok = SSL_CTX_set_min_proto_version(c, opts.min_version) == 1 &&
              SSL_CTX_set_max_proto_version(c, opts.max_version) == 1;
    if (!ok) {
      error = "unsupported TLS version range: " + take_ssl_error();
      return nullptr;
    }
    const std::string& ciphers = opts.ciphers.empty() ? default_ciphers : opts.ciphers;
    if (SSL_CTX_set_strict_cipher_list(c, ciphers.c_str()) != 1) {
      error = "cipher list \"" + ciphers + "\" refused: " + take_ssl_error();
      return nullptr;
    }
    // The server's order decides (TLS 1.2; BoringSSL's TLS 1.3 suites are fixed, see
    // tls/cipher_policy.h).
    SSL_CTX_set_options(c, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set1_curves_list(c, opts.curves.c_str()) != 1) {
      error = "curves list \"" + opts.curves + "\" refused: " + take_ssl_error();
      return nullptr;
    }
    if (SSL_CTX_use_certificate(c, cert.leaf.get()) != 1 ||
        SSL_CTX_use_PrivateKey(c, cert.key.get()) != 1) {
      error = "cannot use certificate " + co.cert_file + ": " + take_ssl_error();
      return nullptr;
    }
    for (const auto& extra : cert.chain) {
      if (SSL_CTX_add1_chain_cert(c, extra.get()) != 1) {
        error = "cannot add chain certificate from " + co.cert_file + ": " + take_ssl_error();
        return nullptr;
      }
    }
    SSL_CTX_set_mode(c, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    // A session made under one certificate must never resume under another: the session-ID
    // context is a digest of this certificate (BoringSSL checks it on every resumption) and,
    // with client certificates, of the client trust (tls/client_auth.h, RESUMPTION).
    uint8_t digest[SHA256_DIGEST_LENGTH];
    unsigned digest_len = 0;
    if (X509_digest(cert.leaf.get(), EVP_sha256(), digest, &digest_len) != 1 ||
        digest_len != SHA256_DIGEST_LENGTH) {
      error = "cannot digest certificate: " + take_ssl_error();
      return nullptr;
    }
    if (client_auth) {
      if (!attach_client_auth(c, opts.client_auth, trust, error)) {
        return nullptr;
      }
      SHA256_CTX sha;
      SHA256_Init(&sha);
      SHA256_Update(&sha, digest, sizeof digest);
      SHA256_Update(&sha, trust.digest.data(), trust.digest.size());
      SHA256_Final(digest, &sha);
    }
    if (SSL_CTX_set_session_id_context(c, digest, sizeof digest) != 1) {
      error = "cannot set session context: " + take_ssl_error();
      return nullptr;
    }
    std::uint64_t context_id = 0;
    std::memcpy(&context_id, digest, sizeof context_id);
    sc->context_ids_.push_back(context_id);
    if (sessions != nullptr) {
      attach_session_id_cache(c, *sessions, clock, opts.session_timeout);
    } else {
      SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
      SSL_CTX_set_timeout(c, static_cast<uint32_t>(opts.session_timeout.count()));
    }
    if (!opts.session_tickets) {
      SSL_CTX_set_options(c, SSL_OP_NO_TICKET);
    } else if (tickets != nullptr) {
      attach_ticket_keys(c, *tickets, ticket_stats);  // also sets the session lifetimes
    }
    SSL_CTX_set_alpn_select_cb(c, &server_context::on_alpn, sc.get());
    SSL_CTX_set_tlsext_servername_callback(c, &server_context::on_servername);
    SSL_CTX_set_tlsext_servername_arg(c, sc.get());
    SSL_CTX_set_select_certificate_cb(c, &server_context::on_client_hello);
    if (opts.early_data.enabled) {
      SSL_CTX_set_early_data_enabled(c, 1);
      SSL_CTX_set_dos_protection_cb(c, &server_context::on_hello_decided);
    }

    std::vector<std::string> names = co.server_names.empty() ? cert.names : co.server_names;
    for (const std::string& n : names) {
      std::string l = lowercase_name(n);
      if (l.rfind("*.", 0) == 0) {
        sc->wildcard_.emplace(l.substr(2), i);
      } else {
        sc->exact_.emplace(l, i);
      }
    }
    if (co.is_default) {
      sc->default_index_ = i;
    }
    sc->ctxs_.push_back(std::move(ctx));
    sc->staples_.push_back(co.ocsp);
  }
  ERR_clear_error();
  return sc;
}

std::size_t server_context::select(std::string_view server_name) const {
  if (server_name.empty()) {
    return default_index_;
  }
  std::string name = lowercase_name(server_name);
  if (auto it = exact_.find(name); it != exact_.end()) {
    return it->second;
  }
  size_t dot = name.find('.');
  if (dot != std::string::npos && dot > 0) {
    if (auto it = wildcard_.find(name.substr(dot + 1)); it != wildcard_.end()) {
      return it->second;
    }
  }
  return default_index_;
}

bssl::UniquePtr<SSL> server_context::new_ssl() const {
  bssl::UniquePtr<SSL> ssl(SSL_new(ctxs_[default_index_].get()));
  if (ssl) {
    SSL_set_accept_state(ssl.get());
    SSL_set_early_data_enabled(ssl.get(), opts_.early_data.enabled ? 1 : 0);
  }
  return ssl;
}

enum ssl_select_cert_result_t server_context::on_client_hello(
    const SSL_CLIENT_HELLO* client_hello) {
  if (handshake_info* info = info_of(client_hello->ssl)) {
    const uint8_t* data = nullptr;
    size_t len = 0;
    info->offered_ticket = (SSL_early_callback_ctx_extension_get(
                                client_hello, TLSEXT_TYPE_session_ticket, &data, &len) == 1 &&
                            len > 0) ||
                           SSL_early_callback_ctx_extension_get(
                               client_hello, TLSEXT_TYPE_pre_shared_key, &data, &len) == 1;
    info->offered_status = SSL_early_callback_ctx_extension_get(
                               client_hello, TLSEXT_TYPE_status_request, &data, &len) == 1;
    return screen_early_data(client_hello, *info);
  }
  SSL_set_early_data_enabled(client_hello->ssl, 0);  // no stream to screen for: never 0-RTT
  return ssl_select_cert_success;
}

int server_context::on_hello_decided(const SSL_CLIENT_HELLO* client_hello) {
  if (const handshake_info* info = info_of(client_hello->ssl)) {
    restore_early_data(client_hello->ssl, *info);
  }
  return 1;
}

int server_context::on_servername(SSL* ssl, int* /*alert*/, void* arg) {
  const auto* self = static_cast<const server_context*>(arg);
  const char* name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
  std::size_t idx = self->select(name ? std::string_view(name) : std::string_view());
  SSL_CTX* want = self->ctxs_[idx].get();
  if (SSL_get_SSL_CTX(ssl) != want) {
    if (SSL_set_SSL_CTX(ssl, want) == nullptr) {
      return SSL_TLSEXT_ERR_ALERT_FATAL;
    }
    // Switching contexts copies the context's early-data setting: a refusal made on the
    // ClientHello (tls/early_data.h) must hold on the new one too.
    if (const handshake_info* info = info_of(ssl)) {
      keep_early_data_refusal(ssl, *info);
    }
  }
  // The staple goes on the SSL itself, after the context switch (which replaces the SSL's
  // certificate settings with the new context's), only for a client that asked for one.
  if (const ocsp_cell* cell = self->staples_[idx].get()) {
    const handshake_info* info = info_of(ssl);
    if (info == nullptr || info->offered_status) {
      staple_from(ssl, *cell, static_cast<std::int64_t>(std::time(nullptr)));
    }
  }
  return SSL_TLSEXT_ERR_OK;
}

int server_context::on_alpn(SSL* /*ssl*/, const uint8_t** out, uint8_t* out_len, const uint8_t* in,
                            unsigned in_len, void* arg) {
  const auto* self = static_cast<const server_context*>(arg);
  if (self->alpn_wire_.empty()) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  uint8_t* selected = nullptr;
  uint8_t selected_len = 0;
  // Server preference order: walk our list, pick the first the client offered.
  int r = SSL_select_next_proto(&selected, &selected_len, self->alpn_wire_.data(),
                                static_cast<unsigned>(self->alpn_wire_.size()), in, in_len);
  if (r != OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;  // no overlap: continue without ALPN
  }
  *out = selected;
  *out_len = selected_len;
  return SSL_TLSEXT_ERR_OK;
}

}  // namespace tlsfront::tls
