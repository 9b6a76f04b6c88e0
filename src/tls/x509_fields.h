// tls/x509_fields.h — what a certificate says, as text and numbers: its subject and issuer
// (RFC 2253), validity as seconds since the epoch, SHA-256 fingerprint and serial in hex, and
// its subjectAltName DNS names. Used for the client identity sent to backends
// (tls/client_auth.h) and for the admin API's and metrics' view of the served certificates
// (tls/certificate.h).
// Thread-safety: free functions, no shared state; each clears the BoringSSL error queue.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tlsfront::tls {

// RFC 2253 text of a name ("" if BoringSSL cannot print it).
std::string name_line(const X509_NAME* name);
// Seconds since the epoch of an ASN1_TIME; false if it cannot be read.
bool posix_of(const ASN1_TIME* t, std::int64_t& out);
// "2026-12-03T10:51:19Z".
std::string rfc3339(std::int64_t t);
// Lowercase hex of the SHA-256 of the DER ("" if it cannot be computed).
std::string sha256_hex(const X509* cert);
// Lowercase hex of the serial number's bytes.
std::string serial_hex(const X509* cert);
// The subjectAltName DNS names, in certificate order.
std::vector<std::string> dns_names(const X509* cert);
// `s` in ASCII lowercase (DNS names compare case-insensitively).
std::string lowercase_name(std::string_view s);
// What a memory BIO holds, as a string.
std::string bio_contents(const BIO* bio);
// Whether `server_name` (lowercase) is covered by `names` (exact, or a "*.x.y" wildcard that
// stands for exactly one leftmost label, RFC 6125 §6.4.3), case-insensitively.
bool covers(const std::vector<std::string>& names, const std::string& server_name);

}  // namespace tlsfront::tls
