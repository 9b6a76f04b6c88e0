// tls/ocsp.h — OCSP stapling's BoringSSL side (RFC 6960, RFC 6066 §8, RFC 7633): what a
// certificate asks of its responder (the CertID, the AIA URLs, must-staple), the request to
// send, the checks a response must pass before it is ever stapled, and the cell through which
// the control plane hands a checked response to every worker's handshakes.
//
// BoringSSL has no OCSP API, so requests are built with CBB and responses read with CBS.
// Thread-safety: the free functions share nothing. ocsp_cell: one writer at a time (the
// stapler's thread), any number of readers (workers' handshakes), lock-free for readers.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tlsfront::tls {

struct loaded_certificate;

// What identifies a certificate to its OCSP responder and what a response must be about.
struct ocsp_target {
  bssl::UniquePtr<X509> leaf;
  bssl::UniquePtr<X509> issuer;   // the chain's first certificate, which issued the leaf
  std::string issuer_name_der;    // DER of the issuer's subject (hashed in the CertID)
  std::string issuer_key;         // the issuer's subjectPublicKey bits (hashed in the CertID)
  std::string serial_der;         // the leaf's serialNumber, as a whole DER INTEGER
  std::vector<std::string> urls;  // the leaf's AIA id-ad-ocsp URIs, in certificate order
  bool must_staple = false;       // RFC 7633 TLS Feature status_request
};

// Fills `out` from `cert`. False with `error` when its chain does not start with the leaf's
// issuer ("no issuer certificate in the chain: OCSP needs it"). Clears the error queue.
bool ocsp_target_of(const loaded_certificate& cert, ocsp_target& out, std::string& error);
// The leaf's id-ad-ocsp URIs from its Authority Information Access extension.
std::vector<std::string> ocsp_urls(const X509* leaf);
// Whether the leaf carries the TLS Feature extension (1.3.6.1.5.5.7.1.24) listing
// status_request (5): a client must then refuse the certificate without a stapled response.
bool is_must_staple(const X509* leaf);

// The DER OCSPRequest for `t`: one CertID with SHA-1 hashes (what every responder answers,
// RFC 5019 §2.1.1) and no nonce, since the answer is cached and stapled to many clients.
std::string ocsp_request_der(const ocsp_target& t);

// What checking a response found. Only `good` is ever stapled.
enum class ocsp_result {
  good,
  revoked,
  unknown,            // the responder does not know the certificate
  expired,            // nextUpdate passed (or, without one, 24 h after thisUpdate)
  not_yet_valid,      // thisUpdate more than 5 minutes ahead of this clock
  wrong_certificate,  // no SingleResponse for this certificate's CertID
  bad_signature,      // not signed by the issuer or by a responder the issuer delegated
  unsuccessful,       // responseStatus other than successful (tryLater, unauthorized, ...)
  malformed,          // not DER, not an OCSP response, or not a basic one
};
const char* ocsp_result_name(ocsp_result r) noexcept;
inline constexpr ocsp_result ocsp_results[] = {
    ocsp_result::good,          ocsp_result::revoked,       ocsp_result::unknown,
    ocsp_result::expired,       ocsp_result::not_yet_valid, ocsp_result::wrong_certificate,
    ocsp_result::bad_signature, ocsp_result::unsuccessful,  ocsp_result::malformed};

struct ocsp_verdict {
  ocsp_result result = ocsp_result::malformed;
  std::int64_t this_update = 0;  // seconds since the epoch (set from `wrong_certificate` on)
  std::int64_t next_update = 0;  // when it stops being stapled (see expired above)
  std::string detail;            // one line for the log
};
// Allowed clock difference with the responder for thisUpdate.
inline constexpr std::int64_t ocsp_clock_skew_seconds = 300;
// A response without nextUpdate is stapled this long after its thisUpdate (as browsers do).
inline constexpr std::int64_t ocsp_default_validity_seconds = 86400;

// Checks a DER OCSPResponse against `t` at `now` (seconds since the epoch): successful, basic,
// signed (signature verified) by the issuer or by a certificate the issuer signed with the
// OCSPSigning purpose and valid at `now`, holding a SingleResponse whose CertID (SHA-1 or
// SHA-2 hashes) is `t`'s, and current. Never throws; clears the error queue.
ocsp_verdict check_ocsp_response(std::string_view der, const ocsp_target& t, std::int64_t now);

// A checked good response, as handshakes staple it.
struct ocsp_staple {
  std::string der;
  std::int64_t next_update = 0;  // not stapled from then on
};

// The response one certificate staples now (none: null). Shared between the stapler, which
// sets it, and each SSL_CTX serving the certificate, across reloads.
class ocsp_cell {
 public:
  std::shared_ptr<const ocsp_staple> get() const {
    return current_.load(std::memory_order_acquire);
  }
  void set(std::shared_ptr<const ocsp_staple> s) {
    current_.store(std::move(s), std::memory_order_release);
  }

 private:
  std::atomic<std::shared_ptr<const ocsp_staple>> current_;
};

// Hands `cell`'s response, if it is still current at `now`, to `ssl` (BoringSSL sends it only
// to a client that asked, and only on a full handshake). Call after the SSL_CTX is final.
void staple_from(SSL* ssl, const ocsp_cell& cell, std::int64_t now);

}  // namespace tlsfront::tls
