// tls/certificate.h — loading a certificate chain and its private key from PEM files.
// Thread-safety: free functions, no shared state. Ownership: returned objects own their
// BoringSSL references (bssl::UniquePtr).
#pragma once

#include <openssl/ssl.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "tls/options.h"

namespace tlsfront::tls {

struct file_closer {
  void operator()(FILE* f) const { std::fclose(f); }
};
using file_ptr = std::unique_ptr<FILE, file_closer>;

// Opens `path` for reading; false with `error` = "cannot read <path>: <why>".
bool open_file(const std::string& path, file_ptr& out, std::string& error);

// Reads the PEM certificates (or CRLs) left in `f` until its end, appending them to `out`.
// False on a damaged one, with `error` = "<what>: <BoringSSL's reason>".
bool read_pem_certificates(FILE* f, std::vector<bssl::UniquePtr<X509>>& out,
                           const std::string& what, std::string& error);
bool read_pem_crls(FILE* f, std::vector<bssl::UniquePtr<X509_CRL>>& out, const std::string& what,
                   std::string& error);

struct loaded_certificate {
  bssl::UniquePtr<X509> leaf;
  std::vector<bssl::UniquePtr<X509>> chain;  // intermediates, in file order
  bssl::UniquePtr<EVP_PKEY> key;
  std::vector<std::string> names;  // subjectAltName DNS names of the leaf (for logs)
};

// Which of the two files a failure is about (a key that does not match counts as the key's).
enum class certificate_part { cert, key };

// Loads opts.cert_file (leaf then intermediates) and opts.key_file and checks that the key
// matches the leaf. On failure returns false, sets `error` to one line naming the file and
// what is wrong ("cannot read /x/y.pem: No such file or directory", "private key in k.pem does
// not match the certificate in c.pem", ...) and, if `part` is given, which file is at fault.
// Never throws; clears the BoringSSL error queue.
bool load_certificate(const certificate_options& opts, loaded_certificate& out, std::string& error,
                      certificate_part* part = nullptr);

}  // namespace tlsfront::tls

namespace tlsfront::tls {

// Checks an OpenSSL-style TLS 1.2 cipher list against BoringSSL (strictly: an unknown name is
// an error). Returns false and sets `error` if BoringSSL refuses it.
bool check_cipher_list(const std::string& ciphers, std::string& error);

// Checks a colon-separated key-exchange group list ("X25519:P-256"). Returns false and sets
// `error` if BoringSSL refuses it.
bool check_curves_list(const std::string& curves, std::string& error);

}  // namespace tlsfront::tls
