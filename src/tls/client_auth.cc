#include "tls/client_auth.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "tls/certificate.h"
#include "tls/ssl_error.h"
#include "tls/stream.h"
#include "tls/x509_fields.h"

namespace tlsfront::tls {
namespace {

// Reads every certificate (or CRL) of `path`: at least one.
template <class T, class Read>
bool read_all_pem(const std::string& path, Read read, const char* what,
                  std::vector<bssl::UniquePtr<T>>& out, std::string& error) {
  file_ptr f;
  if (!open_file(path, f, error) ||
      !read(f.get(), out, std::string("bad ") + what + " in " + path, error)) {
    return false;
  }
  if (out.empty()) {
    error = std::string("no PEM ") + what + " in " + path;
    return false;
  }
  return true;
}

// -1: `t` is before `now`, 1: at or after it, 0: unreadable.
int compare_time(const ASN1_TIME* t, std::int64_t now) {
  std::int64_t v = 0;
  if (!posix_of(t, v)) {
    return 0;
  }
  return v < now ? -1 : 1;
}

void sha_update_der(SHA256_CTX& sha, int len, uint8_t* der) {
  uint8_t n[4] = {static_cast<uint8_t>(len >> 24), static_cast<uint8_t>(len >> 16),
                  static_cast<uint8_t>(len >> 8), static_cast<uint8_t>(len)};
  SHA256_Update(&sha, n, sizeof n);
  SHA256_Update(&sha, der, static_cast<size_t>(len));
  OPENSSL_free(der);
}

int on_verify(int ok, X509_STORE_CTX* store_ctx) {
  if (ok == 1) {
    return 1;
  }
  auto* ssl = static_cast<SSL*>(
      X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (handshake_info* info = ssl != nullptr ? info_of(ssl) : nullptr) {
    if (!is_client_cert_failure(info->client_cert)) {
      info->client_cert = client_cert_result_of(X509_STORE_CTX_get_error(store_ctx));
      if (X509* leaf = X509_STORE_CTX_get0_cert(store_ctx)) {
        info->client_subject = name_line(X509_get_subject_name(leaf));
      }
    }
  }
  return 0;  // the first failure ends the handshake, with the alert BoringSSL picks for it
}

// Appends key=value, quoting and escaping `value` as describe_client_certificate() says.
void append_field(std::string& out, const char* key, std::string_view value) {
  if (!out.empty()) {
    out += ';';
  }
  out += key;
  out += '=';
  bool quote = value.empty();
  for (unsigned char c : value) {
    if (c == ',' || c == ';' || c == '=' || c == '"' || c == '\\' || c <= 0x20 || c > 0x7e) {
      quote = true;
    }
  }
  if (quote) {
    out += '"';
  }
  for (unsigned char c : value) {
    if (c < 0x20 || c > 0x7e) {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 0xf];
    } else {
      if (quote && (c == '"' || c == '\\')) {
        out += '\\';
      }
      out += static_cast<char>(c);
    }
  }
  if (quote) {
    out += '"';
  }
}

}  // namespace

const char* client_cert_result_name(client_cert_result r) noexcept {
  switch (r) {
    case client_cert_result::not_asked:
      return "not_asked";
    case client_cert_result::none:
      return "none";
    case client_cert_result::verified:
      return "verified";
    case client_cert_result::no_certificate:
      return "no_certificate";
    case client_cert_result::unknown_ca:
      return "unknown_ca";
    case client_cert_result::expired:
      return "expired";
    case client_cert_result::not_yet_valid:
      return "not_yet_valid";
    case client_cert_result::revoked:
      return "revoked";
    case client_cert_result::crl_problem:
      return "crl_problem";
    case client_cert_result::chain_too_long:
      return "chain_too_long";
    case client_cert_result::wrong_purpose:
      return "wrong_purpose";
    case client_cert_result::bad_certificate:
      return "bad_certificate";
  }
  return "bad_certificate";
}

client_cert_result client_cert_result_of(int x509_error) noexcept {
  switch (x509_error) {
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
      return client_cert_result::unknown_ca;
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return client_cert_result::expired;
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return client_cert_result::not_yet_valid;
    case X509_V_ERR_CERT_REVOKED:
      return client_cert_result::revoked;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_UNHANDLED_CRITICAL_CRL_EXTENSION:
      return client_cert_result::crl_problem;
    case X509_V_ERR_CERT_CHAIN_TOO_LONG:
    case X509_V_ERR_PATH_LENGTH_EXCEEDED:
      return client_cert_result::chain_too_long;
    case X509_V_ERR_INVALID_PURPOSE:
      return client_cert_result::wrong_purpose;
    default:
      return client_cert_result::bad_certificate;
  }
}

bool load_client_trust(const client_auth_options& opts, std::int64_t now_unix, client_trust& out,
                       std::string& error, client_trust_part* part) {
  ERR_clear_error();
  client_trust_part ignored;
  client_trust_part& at = part != nullptr ? *part : ignored;
  at = client_trust_part::ca;
  out = client_trust{};
  if (!read_all_pem<X509>(opts.ca_file, &read_pem_certificates, "certificate", out.cas, error)) {
    return false;
  }
  for (std::size_t i = 0; i < out.cas.size(); ++i) {
    X509* ca = out.cas[i].get();
    const std::string which = "certificate " + std::to_string(i + 1) + " of " + opts.ca_file +
                              " (" + name_line(X509_get_subject_name(ca)) + ")";
    if (X509_check_ca(ca) == 0) {
      error = which + " is not a CA (no basicConstraints CA:TRUE)";
      return false;
    }
    if (compare_time(X509_get0_notAfter(ca), now_unix) < 0) {
      error = which + " has expired";
      return false;
    }
  }
  out.store.reset(X509_STORE_new());
  if (!out.store) {
    error = "X509_STORE_new: " + take_ssl_error();
    return false;
  }
  for (const auto& ca : out.cas) {
    if (X509_STORE_add_cert(out.store.get(), ca.get()) != 1) {
      // The same certificate twice is harmless; anything else is not.
      uint32_t err = ERR_peek_last_error();
      if (ERR_GET_LIB(err) != ERR_LIB_X509 ||
          ERR_GET_REASON(err) != X509_R_CERT_ALREADY_IN_HASH_TABLE) {
        error = "cannot use " + opts.ca_file + ": " + take_ssl_error();
        return false;
      }
      ERR_clear_error();
    }
  }

  if (!opts.crl_file.empty()) {
    at = client_trust_part::crl;
    if (!read_all_pem<X509_CRL>(opts.crl_file, &read_pem_crls, "CRL", out.crls, error)) {
      return false;
    }
    std::vector<bool> covered(out.cas.size(), false);
    for (std::size_t i = 0; i < out.crls.size(); ++i) {
      X509_CRL* crl = out.crls[i].get();
      const std::string issuer = name_line(X509_CRL_get_issuer(crl));
      const std::string which =
          "CRL " + std::to_string(i + 1) + " of " + opts.crl_file + " (issuer " + issuer + ")";
      std::size_t signer = out.cas.size();
      for (std::size_t c = 0; c < out.cas.size(); ++c) {
        X509* ca = out.cas[c].get();
        if (X509_NAME_cmp(X509_get_subject_name(ca), X509_CRL_get_issuer(crl)) != 0) {
          continue;
        }
        bssl::UniquePtr<EVP_PKEY> key(X509_get_pubkey(ca));
        if (key != nullptr && X509_CRL_verify(crl, key.get()) == 1) {
          signer = c;
          break;
        }
        ERR_clear_error();
      }
      if (signer == out.cas.size()) {
        error = which + " is not signed by a CA of " + opts.ca_file;
        return false;
      }
      if (compare_time(X509_CRL_get0_lastUpdate(crl), now_unix + 1) > 0) {
        error = which + " is not valid yet (lastUpdate in the future)";
        return false;
      }
      const ASN1_TIME* next = X509_CRL_get0_nextUpdate(crl);
      if (next != nullptr && compare_time(next, now_unix) < 0) {
        error = which + " has expired (nextUpdate passed)";
        return false;
      }
      covered[signer] = true;
      if (X509_STORE_add_crl(out.store.get(), crl) != 1) {
        error = "cannot use " + which + ": " + take_ssl_error();
        return false;
      }
    }
    for (std::size_t c = 0; c < out.cas.size(); ++c) {
      if (!covered[c]) {
        error = opts.crl_file + " has no CRL for " +
                name_line(X509_get_subject_name(out.cas[c].get())) + " of " + opts.ca_file +
                " (every CA of a chain is checked)";
        return false;
      }
    }
    X509_STORE_set_flags(out.store.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }

  SHA256_CTX sha;
  SHA256_Init(&sha);
  static constexpr char label[] = "tlsfront client auth v1";
  SHA256_Update(&sha, label, sizeof label);
  uint8_t head[2] = {static_cast<uint8_t>(opts.mode), static_cast<uint8_t>(opts.verify_depth)};
  SHA256_Update(&sha, head, sizeof head);
  for (const auto& ca : out.cas) {
    uint8_t* der = nullptr;
    int len = i2d_X509(ca.get(), &der);
    if (len <= 0) {
      error = "cannot encode a certificate of " + opts.ca_file + ": " + take_ssl_error();
      return false;
    }
    sha_update_der(sha, len, der);
  }
  for (const auto& crl : out.crls) {
    uint8_t* der = nullptr;
    int len = i2d_X509_CRL(crl.get(), &der);
    if (len <= 0) {
      error = "cannot encode a CRL of " + opts.crl_file + ": " + take_ssl_error();
      return false;
    }
    sha_update_der(sha, len, der);
  }
  SHA256_Final(out.digest.data(), &sha);
  ERR_clear_error();
  return true;
}

bool attach_client_auth(SSL_CTX* ctx, const client_auth_options& opts, const client_trust& trust,
                        std::string& error) {
  int mode = SSL_VERIFY_PEER;
  if (opts.mode == client_auth_options::mode_kind::required) {
    mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  SSL_CTX_set_verify(ctx, mode, &on_verify);
  SSL_CTX_set_verify_depth(ctx, opts.verify_depth);
  X509_STORE_up_ref(trust.store.get());
  SSL_CTX_set_cert_store(ctx, trust.store.get());
  for (const auto& ca : trust.cas) {
    if (SSL_CTX_add_client_CA(ctx, ca.get()) != 1) {
      error = "cannot name client CA: " + take_ssl_error();
      return false;
    }
  }
  return true;
}

void note_client_cert(const SSL* ssl, handshake_info& info) {
  if (SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE) {
    info.client_cert = client_cert_result::not_asked;
    return;
  }
  bssl::UniquePtr<X509> cert(SSL_get_peer_certificate(ssl));
  info.client_cert = cert ? client_cert_result::verified : client_cert_result::none;
  if (cert) {
    info.client_subject = name_line(X509_get_subject_name(cert.get()));
  }
  ERR_clear_error();
}

void note_client_cert_failure(const SSL* ssl, handshake_info& info) noexcept {
  if (is_client_cert_failure(info.client_cert) || SSL_get_verify_mode(ssl) == SSL_VERIFY_NONE) {
    return;
  }
  uint32_t err = ERR_peek_error();
  if (ERR_GET_LIB(err) == ERR_LIB_SSL &&
      ERR_GET_REASON(err) == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
    info.client_cert = client_cert_result::no_certificate;
  }
}

bool describe_client_certificate(const SSL* ssl, std::string& out) {
  out.clear();
  bssl::UniquePtr<X509> cert(SSL_get_peer_certificate(ssl));
  if (!cert) {
    return false;
  }
  append_field(out, "Hash", sha256_hex(cert.get()));
  append_field(out, "Serial", serial_hex(cert.get()));
  append_field(out, "Subject", name_line(X509_get_subject_name(cert.get())));
  append_field(out, "Issuer", name_line(X509_get_issuer_name(cert.get())));
  std::int64_t t = 0;
  append_field(out, "NotBefore", posix_of(X509_get0_notBefore(cert.get()), t) ? rfc3339(t) : "");
  append_field(out, "NotAfter", posix_of(X509_get0_notAfter(cert.get()), t) ? rfc3339(t) : "");
  bssl::UniquePtr<GENERAL_NAMES> sans(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  for (size_t i = 0; sans && i < sk_GENERAL_NAME_num(sans.get()); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans.get(), i);
    auto text = [](const ASN1_STRING* s) {
      return std::string_view(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                              static_cast<size_t>(ASN1_STRING_length(s)));
    };
    switch (gn->type) {
      case GEN_DNS:
        append_field(out, "DNS", text(gn->d.dNSName));
        break;
      case GEN_URI:
        append_field(out, "URI", text(gn->d.uniformResourceIdentifier));
        break;
      case GEN_EMAIL:
        append_field(out, "Email", text(gn->d.rfc822Name));
        break;
      case GEN_IPADD: {
        const ASN1_OCTET_STRING* ip = gn->d.iPAddress;
        char buf[64] = {};
        const int len = ASN1_STRING_length(ip);
        const uint8_t* b = ASN1_STRING_get0_data(ip);
        if (len == 4) {
          std::snprintf(buf, sizeof buf, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
        } else if (len == 16) {
          char* p = buf;
          for (int k = 0; k < 16; k += 2) {
            p += std::snprintf(p, 6, k == 0 ? "%x" : ":%x", (b[k] << 8) | b[k + 1]);
          }
        }
        if (buf[0] != '\0') {
          append_field(out, "IP", buf);
        }
        break;
      }
      default:
        break;
    }
  }
  ERR_clear_error();
  return true;
}

}  // namespace tlsfront::tls
