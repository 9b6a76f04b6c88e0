// tls/certificate.h — loading a certificate chain and its private key from PEM files.
// Thread-safety: free functions, no shared state. Ownership: returned objects own their
// BoringSSL references (bssl::UniquePtr).
#pragma once

#include <openssl/ssl.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
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
  std::vector<std::string> names;  // subjectAltName DNS names of the leaf
  std::int64_t not_before = 0;     // the leaf's validity, seconds since the epoch
  std::int64_t not_after = 0;
  std::string sha256;  // hex fingerprint of the leaf
};

// A certificate entry's name (PUT /certificates/<name>, the metrics' `name` label, the file
// name in certificate_dir): 1 to 64 letters, digits, '.', '_' or '-', not starting with '.' or
// '-'. Pure.
bool valid_certificate_name(std::string_view name) noexcept;

// Which of the two files a failure is about (a key that does not match counts as the key's).
enum class certificate_part { cert, key };

// Loads opts.cert_file (leaf then intermediates) and opts.key_file and checks that the key
// matches the leaf. On failure returns false, sets `error` to one line naming the file and
// what is wrong ("cannot read /x/y.pem: No such file or directory", "private key in k.pem does
// not match the certificate in c.pem", ...) and, if `part` is given, which file is at fault.
// Never throws; clears the BoringSSL error queue.
bool load_certificate(const certificate_options& opts, loaded_certificate& out, std::string& error,
                      certificate_part* part = nullptr);

// Reads a certificate from one PEM text holding the chain (leaf first, then intermediates, in
// order) and its unencrypted private key, in any order: the format of the admin API's
// PUT /certificates/<name> and of the copies kept in certificate_dir. Refuses: no certificate,
// no key or more than one, an encrypted key, a block of any other kind, damaged base64 or DER,
// a key that does not match the leaf. `what` names the text in errors ("the request body").
bool parse_certificate_pem(std::string_view pem, const std::string& what, loaded_certificate& out,
                           std::string& error);

// What the config and the admin API both check beyond a matching key: each certificate of the
// chain was issued by the next (names and signature), and each is valid at `now` (seconds
// since the epoch): not expired, not yet to come. False with `error` saying which and why.
bool check_certificate_chain(const loaded_certificate& c, std::int64_t now, std::string& error);

// The PEM text of `c`: the leaf, the chain, then the private key (parse_certificate_pem's
// format). Empty if BoringSSL cannot encode it.
std::string certificate_pem(const loaded_certificate& c);

// Writes `pem` to `dir`/`name`.pem in one step a crash cannot tear: a temporary file in `dir`
// (mode 0600: it holds the key), flushed to disk, then renamed over the old copy, and the
// directory flushed. False with `error` on any failure, leaving the old copy as it was.
bool write_certificate_file(const std::string& dir, const std::string& name, const std::string& pem,
                            std::string& error);
// `dir`/`name`.pem.
std::string certificate_file_path(const std::string& dir, const std::string& name);

}  // namespace tlsfront::tls

namespace tlsfront::tls {

// Checks an OpenSSL-style TLS 1.2 cipher list against BoringSSL (strictly: an unknown name is
// an error). Returns false and sets `error` if BoringSSL refuses it.
bool check_cipher_list(const std::string& ciphers, std::string& error);

// Checks a colon-separated key-exchange group list ("X25519:P-256"). Returns false and sets
// `error` if BoringSSL refuses it.
bool check_curves_list(const std::string& curves, std::string& error);

}  // namespace tlsfront::tls
