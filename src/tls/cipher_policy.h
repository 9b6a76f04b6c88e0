// tls/cipher_policy.h — tlsfront's TLS 1.2 cipher policy: the default suite list (Mozilla's
// "intermediate" profile: ECDHE key exchange with AEAD only, AES-GCM and ChaCha20-Poly1305, in
// server order) and the check that names the weak suites a configured list enables (static RSA
// key exchange, 3DES), read from the list as BoringSSL expands it, not from the string.
//
// TLS 1.3 is not governed here: BoringSSL's TLS 1.3 suites are fixed (TLS_AES_128_GCM_SHA256,
// TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256, all AEAD with ephemeral key exchange),
// no cipher-list call changes or reorders them, and SSL_OP_CIPHER_SERVER_PREFERENCE does not
// apply to them: BoringSSL follows the client's order among the three (every choice is an
// AEAD with ephemeral keys; tests/integration/tls_policy_test.cc pins what it picks).
//
// Thread-safety: pure functions (each builds and frees its own SSL_CTX).
#pragma once

#include <openssl/ssl.h>

#include <string>
#include <vector>

namespace tlsfront::tls {

// The TLS 1.2 suites a listener offers when its config sets no `ciphers`, in server preference
// order (the server's order wins: SSL_OP_CIPHER_SERVER_PREFERENCE is always on).
inline constexpr const char* default_tls12_ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

// The TLS 1.2 suites `ctx` enables, by their OpenSSL names, in preference order.
std::vector<std::string> enabled_ciphers(const SSL_CTX* ctx);

// The suites among those `ctx` enables that a modern server should not offer: static RSA key
// exchange (no forward secrecy; ROBOT-style oracles) or 3DES (64-bit blocks, SWEET32). Names in
// preference order; empty if none.
std::vector<std::string> weak_ciphers(const SSL_CTX* ctx);

// The same for a cipher list string, expanded by BoringSSL. Returns an empty vector also when
// BoringSSL refuses the list (check_cipher_list in tls/certificate.h reports that).
std::vector<std::string> weak_ciphers(const std::string& ciphers);

// One line for an operator: "the cipher list enables weak TLS 1.2 suites: AES128-SHA (static
// RSA key exchange), DES-CBC3-SHA (3DES, static RSA key exchange); ..." or "" if `weak` is
// empty.
std::string weak_cipher_warning(const std::vector<std::string>& weak);

}  // namespace tlsfront::tls
