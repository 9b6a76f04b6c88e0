#include "tls/cipher_policy.h"

#include <openssl/err.h>
#include <openssl/nid.h>

namespace tlsfront::tls {
namespace {

bool static_rsa(const SSL_CIPHER* c) {
  return SSL_CIPHER_get_kx_nid(c) == NID_kx_rsa;
}

bool triple_des(const SSL_CIPHER* c) {
  return SSL_CIPHER_get_cipher_nid(c) == NID_des_ede3_cbc;
}

}  // namespace

std::vector<std::string> enabled_ciphers(const SSL_CTX* ctx) {
  std::vector<std::string> out;
  STACK_OF(SSL_CIPHER)* list = SSL_CTX_get_ciphers(ctx);
  for (size_t i = 0; list != nullptr && i < sk_SSL_CIPHER_num(list); ++i) {
    out.emplace_back(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(list, i)));
  }
  return out;
}

std::vector<std::string> weak_ciphers(const SSL_CTX* ctx) {
  std::vector<std::string> out;
  STACK_OF(SSL_CIPHER)* list = SSL_CTX_get_ciphers(ctx);
  for (size_t i = 0; list != nullptr && i < sk_SSL_CIPHER_num(list); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(list, i);
    if (static_rsa(c) || triple_des(c)) {
      std::string name = SSL_CIPHER_get_name(c);
      name += triple_des(c) && static_rsa(c) ? " (3DES, static RSA key exchange)"
              : triple_des(c)                ? " (3DES)"
                                             : " (static RSA key exchange)";
      out.push_back(std::move(name));
    }
  }
  return out;
}

std::vector<std::string> weak_ciphers(const std::string& ciphers) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx || SSL_CTX_set_strict_cipher_list(ctx.get(), ciphers.c_str()) != 1) {
    ERR_clear_error();
    return {};
  }
  return weak_ciphers(ctx.get());
}

std::string weak_cipher_warning(const std::vector<std::string>& weak) {
  if (weak.empty()) {
    return {};
  }
  std::string out = "the cipher list enables weak TLS 1.2 suites: ";
  for (std::size_t i = 0; i < weak.size(); ++i) {
    out += (i == 0 ? "" : ", ") + weak[i];
  }
  out += "; remove them or leave 'ciphers' unset for the ECDHE+AEAD default";
  return out;
}

}  // namespace tlsfront::tls
