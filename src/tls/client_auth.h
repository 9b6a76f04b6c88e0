// tls/client_auth.h — client certificates (mutual TLS) on a listener: the trust they are
// verified against (a CA bundle, optional CRLs, a verify depth), the record of what a handshake
// made of the client's certificate (counted and logged by the connection), the binding of
// sessions to that trust, and the identity sent on to backends.
//
// RESUMPTION
// A session carries the client's certificate chain (BoringSSL keeps it in the SSL_SESSION), so
// a resumed connection has the same identity as the full handshake that made it. It must never
// resume under other client-auth settings: the session-ID context of every SSL_CTX of the
// listener is a digest of its certificate and, when client_auth is on, of client_trust::digest
// (mode, depth, every CA certificate, every CRL). BoringSSL compares that context on every
// resumption, by session ID and by TLS 1.2 or TLS 1.3 ticket, and the fleet store keeps the
// serialized session with its context. So a session made without a certificate (client_auth
// off or optional) never resumes where one is required, nor one verified under one CA bundle
// or CRL set where another is configured; a new CRL file ends every session made before it.
//
// Thread-safety: load_client_trust() and attach_client_auth() are control plane (one thread);
// the verify callback and the note_*() functions run on the handshake's thread and touch only
// its handshake_info. Ownership: client_trust owns its BoringSSL objects; each SSL_CTX holds
// its own reference to the store.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tls/options.h"

namespace tlsfront::tls {

struct handshake_info;

// What a handshake made of the client's certificate. The failures name the reason its
// handshake was refused (an alert saying the same went to the client).
enum class client_cert_result : std::uint8_t {
  not_asked,        // client_auth off
  none,             // optional, and the client sent no certificate
  verified,         // a certificate that verified (on this handshake or the one resumed)
  no_certificate,   // required, and the client sent none
  unknown_ca,       // no chain to a CA of client_ca (self-signed, another CA, missing link)
  expired,          // a certificate of the chain is past its notAfter
  not_yet_valid,    // ... or before its notBefore
  revoked,          // listed in a CRL of client_crl
  crl_problem,      // a CRL needed is missing, expired, not yet valid or badly signed
  chain_too_long,   // more CAs than client_verify_depth allows
  wrong_purpose,    // the certificate's extended key usage excludes TLS client authentication
  bad_certificate,  // anything else: a bad signature, a malformed or unsupported certificate
};
inline constexpr std::size_t client_cert_result_count = 12;
// "verified", "no_certificate", ...: the metric label and access-log value.
const char* client_cert_result_name(client_cert_result r) noexcept;
inline bool is_client_cert_failure(client_cert_result r) noexcept {
  return r >= client_cert_result::no_certificate;
}
// The result a failed verification's X509_V_ERR_* code stands for.
client_cert_result client_cert_result_of(int x509_error) noexcept;

// A listener's client trust, loaded once and shared by its SSL_CTXs.
struct client_trust {
  std::vector<bssl::UniquePtr<X509>> cas;
  std::vector<bssl::UniquePtr<X509_CRL>> crls;
  bssl::UniquePtr<X509_STORE> store;
  // SHA-256 over the mode, the depth, every CA certificate and every CRL: what sessions are
  // bound to (see RESUMPTION).
  std::array<std::uint8_t, 32> digest{};
};

// Which file a load failure is about.
enum class client_trust_part { ca, crl };

// Loads opts.ca_file (at least one certificate, each a CA: basicConstraints CA:TRUE, not
// expired) and opts.crl_file if set (at least one CRL; each signed by a CA of the bundle, within
// its validity at `now_unix`; one for every CA of the bundle, since every certificate of a chain
// is checked). On failure returns false, sets `error` to one line naming the file and what is
// wrong, and `part` to the file at fault. Never throws; clears the BoringSSL error queue.
bool load_client_trust(const client_auth_options& opts, std::int64_t now_unix, client_trust& out,
                       std::string& error, client_trust_part* part = nullptr);

// Makes `ctx` ask for (optional) or demand (required) a client certificate verified against
// `trust` at opts.verify_depth, with the bundle's CA names in the CertificateRequest and every
// verification failure recorded in the handshake_info (client_cert_result). False (with
// `error`) only if BoringSSL runs out of memory.
bool attach_client_auth(SSL_CTX* ctx, const client_auth_options& opts, const client_trust& trust,
                        std::string& error);

// After a handshake: sets info.client_cert to verified, none or not_asked, and
// info.client_subject to the verified certificate's subject. (A failed verification records
// the subject of the certificate that failed.)
void note_client_cert(const SSL* ssl, handshake_info& info);
// After a failed handshake, before the error queue is cleared: the verification's failure was
// recorded by the callback; this adds no_certificate when the peer sent none but one was
// required.
void note_client_cert_failure(const SSL* ssl, handshake_info& info) noexcept;

// The verified client certificate of the connection (from this handshake or the session it
// resumed), in the shape of Envoy's x-forwarded-client-cert: semicolon-separated key=value
// pairs, Hash (SHA-256 of the DER, lowercase hex), Serial (lowercase hex), Subject and Issuer
// (RFC 2253), NotBefore and NotAfter (RFC 3339, UTC), then one DNS, URI, Email or IP per
// subjectAltName of those kinds. A value holding ',', ';', '=', '"', '\\' or a space is
// double-quoted with '"' and '\\' escaped; a byte outside printable ASCII is written as \xHH,
// so no certificate can put a line break or a control byte into a header. Returns false (out
// empty) if the connection has no peer certificate.
bool describe_client_certificate(const SSL* ssl, std::string& out);

}  // namespace tlsfront::tls
