#include "tls/certificate.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "tls/ssl_error.h"

namespace tlsfront::tls {
namespace {

template <class T, class Read>
bool read_pem_until_end(FILE* f, Read read, std::vector<bssl::UniquePtr<T>>& out,
                        const std::string& what, std::string& error) {
  for (;;) {
    bssl::UniquePtr<T> item(read(f, nullptr, nullptr, nullptr));
    if (!item) {
      // End of file reads as PEM_R_NO_START_LINE; anything else is a damaged object.
      uint32_t err = ERR_peek_last_error();
      if (ERR_GET_LIB(err) == ERR_LIB_PEM && ERR_GET_REASON(err) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return true;
      }
      error = what + ": " + take_ssl_error();
      return false;
    }
    out.push_back(std::move(item));
  }
}

}  // namespace

bool open_file(const std::string& path, file_ptr& out, std::string& error) {
  out.reset(std::fopen(path.c_str(), "rb"));
  if (!out) {
    error = "cannot read " + path + ": " + std::strerror(errno);
    return false;
  }
  return true;
}

bool read_pem_certificates(FILE* f, std::vector<bssl::UniquePtr<X509>>& out,
                           const std::string& what, std::string& error) {
  return read_pem_until_end<X509>(f, &PEM_read_X509, out, what, error);
}

bool read_pem_crls(FILE* f, std::vector<bssl::UniquePtr<X509_CRL>>& out, const std::string& what,
                   std::string& error) {
  return read_pem_until_end<X509_CRL>(f, &PEM_read_X509_CRL, out, what, error);
}

bool load_certificate(const certificate_options& opts, loaded_certificate& out, std::string& error,
                      certificate_part* part) {
  ERR_clear_error();
  certificate_part ignored;
  certificate_part& at = part != nullptr ? *part : ignored;
  at = certificate_part::cert;
  file_ptr f;
  if (!open_file(opts.cert_file, f, error)) {
    return false;
  }
  out.leaf.reset(PEM_read_X509(f.get(), nullptr, nullptr, nullptr));
  if (!out.leaf) {
    error = "no PEM certificate in " + opts.cert_file + ": " + take_ssl_error();
    return false;
  }
  out.chain.clear();
  if (!read_pem_certificates(f.get(), out.chain, "bad certificate in chain of " + opts.cert_file,
                             error)) {
    return false;
  }

  at = certificate_part::key;
  file_ptr k;
  if (!open_file(opts.key_file, k, error)) {
    return false;
  }
  out.key.reset(PEM_read_PrivateKey(k.get(), nullptr, nullptr, nullptr));
  if (!out.key) {
    error = "no PEM private key in " + opts.key_file + ": " + take_ssl_error();
    return false;
  }
  if (X509_check_private_key(out.leaf.get(), out.key.get()) != 1) {
    take_ssl_error();
    error =
        "private key in " + opts.key_file + " does not match the certificate in " + opts.cert_file;
    return false;
  }

  out.names.clear();
  bssl::UniquePtr<GENERAL_NAMES> sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(out.leaf.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (sans) {
    for (size_t i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
      if (gn->type == GEN_DNS) {
        const ASN1_STRING* s = gn->d.dNSName;
        out.names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                               static_cast<size_t>(ASN1_STRING_length(s)));
      }
    }
  }
  ERR_clear_error();
  return true;
}

}  // namespace tlsfront::tls

namespace tlsfront::tls {

bool check_cipher_list(const std::string& ciphers, std::string& error) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx || SSL_CTX_set_strict_cipher_list(ctx.get(), ciphers.c_str()) != 1) {
    error = "cipher list \"" + ciphers + "\" refused: " + take_ssl_error();
    return false;
  }
  return true;
}

bool check_curves_list(const std::string& curves, std::string& error) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx || SSL_CTX_set1_curves_list(ctx.get(), curves.c_str()) != 1) {
    ERR_clear_error();
    error = "curves list \"" + curves +
            "\" refused: use names from X25519, P-256, P-384, P-521, separated by ':'";
    return false;
  }
  return true;
}

}  // namespace tlsfront::tls
