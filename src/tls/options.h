// tls/options.h — what a listener's TLS side is configured with (filled by config, used by
// tls::server_context). Plain data; no BoringSSL types so config and tests can build it freely.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace tlsfront::tls {

class ocsp_cell;

// A TLS protocol version as its wire number (0x0303 = TLS 1.2, 0x0304 = TLS 1.3).
inline constexpr std::uint16_t tls1_2 = 0x0303;
inline constexpr std::uint16_t tls1_3 = 0x0304;

struct loaded_certificate;  // tls/certificate.h

// One certificate (with its chain) and private key, served for the given SNI names.
// A name may be exact ("a.example.com") or a wildcard for one label ("*.example.com").
struct certificate_options {
  std::vector<std::string> server_names;
  std::string cert_file;  // PEM: leaf first, then intermediates
  std::string key_file;   // PEM: RSA or ECDSA (P-256/P-384) private key
  bool is_default = false;
  // The name the admin API replaces it by (PUT /certificates/<name>) and metrics label it
  // with; entries of several listeners may share one (the same files).
  std::string name;
  // Where what is served comes from: the config's files, the copy in [admin] certificate_dir,
  // or a replacement made through the admin API since the process started.
  enum class source_kind { config, certificate_dir, admin } source = source_kind::config;
  // Already loaded and checked (by config, or by the admin API): served as it is. Null: the
  // files are loaded when the listener's contexts are built.
  std::shared_ptr<const loaded_certificate> loaded;
  // OCSP stapling (tls/ocsp.h, proxy/ocsp_stapler.h): on, the response is fetched from
  // `ocsp_responder` if given, else from the responder the certificate names (AIA), or read
  // from `ocsp_file` instead; off, nothing is stapled (a must-staple certificate is refused).
  bool ocsp_stapling = true;
  std::string ocsp_file;       // a DER OCSPResponse, re-read at each refresh
  std::string ocsp_responder;  // "http://host[:port]/path"
  // What handshakes staple for this entry, set when the snapshot is built (null: nothing).
  std::shared_ptr<const ocsp_cell> ocsp;
};
const char* certificate_source_name(certificate_options::source_kind s) noexcept;

// TLS 1.3 early data (0-RTT, RFC 8446 §2.3 and §8): accepted at most once per ticket in the
// whole fleet, and only while the client's ticket age agrees with the server's.
struct early_data_options {
  bool enabled = false;
  // Early bytes acted on before the handshake completes; requests past them wait for it.
  // BoringSSL's own limit (what every ticket announces) is the most.
  std::size_t max_bytes = 14336;
  // The freshness window (RFC 8446 §8.3): the client's ticket age may differ from the age the
  // server computes by at most this much.
  std::chrono::milliseconds window{std::chrono::seconds(10)};
};
inline constexpr std::size_t max_early_data_bytes = 14336;

// Client certificates (mutual TLS, tls/client_auth.h), per listener.
struct client_auth_options {
  // off: no certificate asked for. optional: asked for; a client may send none, but one it
  // sends must verify. required: a client without a verified certificate fails its handshake.
  enum class mode_kind { off, optional, required } mode = mode_kind::off;
  std::string ca_file;   // PEM bundle of the CA certificates trusted for client certificates
  std::string crl_file;  // empty: no revocation check; else PEM CRLs, one per CA of the chain
  // Most certificates between the client's and its trust anchor (OpenSSL's verify depth: 1
  // allows the client certificate and one CA above it).
  int verify_depth = 4;
};

struct listener_tls_options {
  // At least one. The one marked is_default (else the first) answers clients without SNI or
  // with a name no certificate covers.
  std::vector<certificate_options> certificates;
  std::uint16_t min_version = tls1_2;
  std::uint16_t max_version = tls1_3;
  // OpenSSL-style cipher list for TLS 1.2 (TLS 1.3 suites are fixed by BoringSSL), in server
  // preference order. Empty: tlsfront's default, ECDHE with AES-GCM or ChaCha20-Poly1305
  // (tls::default_tls12_ciphers in tls/cipher_policy.h).
  std::string ciphers;
  // Key-exchange groups in preference order.
  std::string curves = "X25519:P-256";
  // ALPN protocols offered, in preference order. A client offering none of them still connects,
  // without ALPN.
  std::vector<std::string> alpn = {"http/1.1"};
  std::chrono::milliseconds handshake_timeout{std::chrono::seconds(10)};
  // RFC 5077 / TLS 1.3 session tickets. Off: TLS 1.2 clients get session IDs (served from the
  // session cache) and TLS 1.3 clients cannot resume.
  bool session_tickets = true;
  // Lifetime of a TLS 1.2 session in the session-ID cache (and of its SSL_SESSION).
  std::chrono::seconds session_timeout{300};
  // TLS 1.3 0-RTT (tls/early_data.h).
  early_data_options early_data;
  // Mutual TLS (tls/client_auth.h).
  client_auth_options client_auth;
};

}  // namespace tlsfront::tls
