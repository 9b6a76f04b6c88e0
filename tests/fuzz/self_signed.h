// tests/fuzz/self_signed.h — a throw-away ECDSA P-256 key and self-signed certificate made with
// BoringSSL at a fuzz target's start-up (the TLS and config targets need a certificate; nothing
// is read from outside the checked-in tree). Aborts if BoringSSL fails: a broken set-up is no
// finding. Thread-safety: none needed.
#pragma once

#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/nid.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <string>

#include "fuzz_support.h"

namespace tlsfront::fuzz {

struct self_signed {
  bssl::UniquePtr<EVP_PKEY> key;
  bssl::UniquePtr<X509> cert;

  self_signed() : key(EVP_PKEY_new()), cert(X509_new()) {
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    check(ec && EC_KEY_generate_key(ec.get()) == 1 &&
              EVP_PKEY_assign_EC_KEY(key.get(), ec.release()) == 1,
          "set-up: EC key");
    X509_NAME* name = X509_get_subject_name(cert.get());
    check(X509_set_version(cert.get(), X509_VERSION_3) == 1 &&
              ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1) == 1 &&
              X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr &&
              X509_gmtime_adj(X509_getm_notAfter(cert.get()), 86400L * 365 * 10) != nullptr &&
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                         reinterpret_cast<const unsigned char*>("fuzz.example"), -1,
                                         -1, 0) == 1 &&
              X509_set_issuer_name(cert.get(), name) == 1 &&
              X509_set_pubkey(cert.get(), key.get()) == 1 &&
              X509_sign(cert.get(), key.get(), EVP_sha256()) > 0,
          "set-up: certificate");
  }

  std::string cert_pem() const {
    bssl::UniquePtr<BIO> b(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_X509(b.get(), cert.get()) == 1, "set-up: certificate PEM");
    return drain(b.get());
  }
  std::string key_pem() const {
    bssl::UniquePtr<BIO> b(BIO_new(BIO_s_mem()));
    check(PEM_write_bio_PrivateKey(b.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "set-up: key PEM");
    return drain(b.get());
  }

 private:
  static std::string drain(BIO* b) {
    const std::uint8_t* p = nullptr;
    std::size_t n = 0;
    check(BIO_mem_contents(b, &p, &n) == 1, "set-up: BIO");
    return std::string(reinterpret_cast<const char*>(p), n);
  }
};

}  // namespace tlsfront::fuzz
