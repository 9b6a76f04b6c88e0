#include "tls/ocsp.h"

#include <openssl/bytestring.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/obj.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <optional>

#include "tls/certificate.h"
#include "tls/x509_fields.h"

namespace tlsfront::tls {
namespace {

std::string bytes_of(const CBS& c) {
  return std::string(reinterpret_cast<const char*>(CBS_data(&c)), CBS_len(&c));
}

std::string der_of_name(const X509_NAME* name) {
  uint8_t* der = nullptr;
  int len = i2d_X509_NAME(const_cast<X509_NAME*>(name), &der);
  if (len <= 0) {
    return "";
  }
  std::string out(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len));
  OPENSSL_free(der);
  return out;
}

std::string key_bits_of(const X509* cert) {
  const ASN1_BIT_STRING* bits = X509_get0_pubkey_bitstr(cert);
  if (bits == nullptr) {
    return "";
  }
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(bits)),
                     static_cast<std::size_t>(ASN1_STRING_length(bits)));
}

std::string digest_of(const EVP_MD* md, const std::string& data) {
  uint8_t out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  if (EVP_Digest(data.data(), data.size(), out, &len, md, nullptr) != 1) {
    return "";
  }
  return std::string(reinterpret_cast<const char*>(out), len);
}

// A GeneralizedTime element (tag included) as seconds since the epoch.
bool time_of(const CBS& element, std::int64_t& out) {
  const uint8_t* p = CBS_data(&element);
  bssl::UniquePtr<ASN1_GENERALIZEDTIME> t(
      d2i_ASN1_GENERALIZEDTIME(nullptr, &p, static_cast<long>(CBS_len(&element))));
  return t && posix_of(t.get(), out);
}

bool get_time(CBS* in, std::int64_t& out) {
  CBS element;
  return CBS_get_asn1_element(in, &element, CBS_ASN1_GENERALIZEDTIME) == 1 && time_of(element, out);
}

constexpr unsigned context_tag(unsigned n, bool constructed) {
  return CBS_ASN1_CONTEXT_SPECIFIC | (constructed ? CBS_ASN1_CONSTRUCTED : 0u) | n;
}

ocsp_verdict fail(ocsp_result r, std::string detail) {
  ocsp_verdict v;
  v.result = r;
  v.detail = std::move(detail);
  return v;
}

// The signature algorithms a response may use: the digest (none for Ed25519) and the key type.
struct signature_algorithm {
  int nid;
  const EVP_MD* (*md)();
  int key_type;
};
constexpr signature_algorithm signature_algorithms[] = {
    {NID_sha1WithRSAEncryption, EVP_sha1, EVP_PKEY_RSA},
    {NID_sha256WithRSAEncryption, EVP_sha256, EVP_PKEY_RSA},
    {NID_sha384WithRSAEncryption, EVP_sha384, EVP_PKEY_RSA},
    {NID_sha512WithRSAEncryption, EVP_sha512, EVP_PKEY_RSA},
    {NID_ecdsa_with_SHA1, EVP_sha1, EVP_PKEY_EC},
    {NID_ecdsa_with_SHA256, EVP_sha256, EVP_PKEY_EC},
    {NID_ecdsa_with_SHA384, EVP_sha384, EVP_PKEY_EC},
    {NID_ecdsa_with_SHA512, EVP_sha512, EVP_PKEY_EC},
    {NID_ED25519, nullptr, EVP_PKEY_ED25519},
};

bool verify_signature(EVP_PKEY* key, int alg_nid, const CBS& signed_part, const CBS& signature) {
  const signature_algorithm* alg = nullptr;
  for (const signature_algorithm& a : signature_algorithms) {
    if (a.nid == alg_nid) {
      alg = &a;
    }
  }
  if (key == nullptr || alg == nullptr || EVP_PKEY_id(key) != alg->key_type) {
    return false;
  }
  const EVP_MD* md = alg->md != nullptr ? alg->md() : nullptr;
  bssl::ScopedEVP_MD_CTX ctx;
  return EVP_DigestVerifyInit(ctx.get(), nullptr, md, nullptr, key) == 1 &&
         EVP_DigestVerify(ctx.get(), CBS_data(&signature), CBS_len(&signature),
                          CBS_data(&signed_part), CBS_len(&signed_part)) == 1;
}

// Whether `cert` is what ResponderID names: byName [1] or byKey [2] (SHA-1 of the key bits).
bool responder_is(X509* cert, unsigned tag, const CBS& id) {
  if (tag == context_tag(1, true)) {
    const uint8_t* p = CBS_data(&id);
    bssl::UniquePtr<X509_NAME> name(d2i_X509_NAME(nullptr, &p, static_cast<long>(CBS_len(&id))));
    return name && p == CBS_data(&id) + CBS_len(&id) &&
           X509_NAME_cmp(name.get(), X509_get_subject_name(cert)) == 0;
  }
  CBS inner = id;
  CBS hash;
  return CBS_get_asn1(&inner, &hash, CBS_ASN1_OCTETSTRING) == 1 && CBS_len(&inner) == 0 &&
         digest_of(EVP_sha1(), key_bits_of(cert)) == bytes_of(hash);
}

// Whether a SingleResponse's CertID is the target's.
bool cert_id_matches(CBS cert_id, const ocsp_target& t) {
  CBS alg, oid, name_hash, key_hash, serial;
  if (CBS_get_asn1(&cert_id, &alg, CBS_ASN1_SEQUENCE) != 1 ||
      CBS_get_asn1(&alg, &oid, CBS_ASN1_OBJECT) != 1 ||
      CBS_get_asn1(&cert_id, &name_hash, CBS_ASN1_OCTETSTRING) != 1 ||
      CBS_get_asn1(&cert_id, &key_hash, CBS_ASN1_OCTETSTRING) != 1 ||
      CBS_get_asn1_element(&cert_id, &serial, CBS_ASN1_INTEGER) != 1) {
    return false;
  }
  const EVP_MD* md = nullptr;
  switch (OBJ_cbs2nid(&oid)) {
    case NID_sha1:
      md = EVP_sha1();
      break;
    case NID_sha256:
      md = EVP_sha256();
      break;
    case NID_sha384:
      md = EVP_sha384();
      break;
    case NID_sha512:
      md = EVP_sha512();
      break;
    default:
      return false;  // MD5 and the like name nothing
  }
  return CBS_len(&cert_id) == 0 && bytes_of(serial) == t.serial_der &&
         bytes_of(name_hash) == digest_of(md, t.issuer_name_der) &&
         bytes_of(key_hash) == digest_of(md, t.issuer_key);
}

// Who signed a response, and whether the signature verifies: the issuer, or a responder
// certificate in `certs` that the issuer signed for OCSPSigning and that is valid at `now`.
// Nothing (verified) or the bad_signature verdict.
std::optional<ocsp_verdict> check_signer(const ocsp_target& t, unsigned responder_tag,
                                         const CBS& responder,
                                         const std::vector<bssl::UniquePtr<X509>>& certs,
                                         int sig_nid, const CBS& tbs_element, const CBS& signature,
                                         std::int64_t now) {
  X509* signer = nullptr;
  if (responder_is(t.issuer.get(), responder_tag, responder)) {
    signer = t.issuer.get();
  } else {
    for (auto& c : certs) {
      if (responder_is(c.get(), responder_tag, responder)) {
        signer = c.get();
        break;
      }
    }
    if (signer == nullptr) {
      return fail(ocsp_result::bad_signature,
                  "signed by a responder that is neither the "
                  "issuer nor a certificate in the response");
    }
    bssl::UniquePtr<EVP_PKEY> issuer_key(X509_get_pubkey(t.issuer.get()));
    std::int64_t nb = 0;
    std::int64_t na = 0;
    if (X509_check_issued(t.issuer.get(), signer) != X509_V_OK ||
        X509_verify(signer, issuer_key.get()) != 1) {
      return fail(ocsp_result::bad_signature, "the responder certificate \"" +
                                                  name_line(X509_get_subject_name(signer)) +
                                                  "\" was not issued by the certificate's issuer");
    }
    if ((X509_get_extension_flags(signer) & EXFLAG_XKUSAGE) == 0 ||
        (X509_get_extended_key_usage(signer) & XKU_OCSP_SIGN) == 0) {
      return fail(ocsp_result::bad_signature,
                  "the responder certificate lacks the OCSPSigning purpose");
    }
    if (!posix_of(X509_get0_notBefore(signer), nb) || !posix_of(X509_get0_notAfter(signer), na) ||
        now < nb || now > na) {
      return fail(ocsp_result::bad_signature, "the responder certificate is not valid now");
    }
  }
  bssl::UniquePtr<EVP_PKEY> signer_key(X509_get_pubkey(signer));
  if (!verify_signature(signer_key.get(), sig_nid, tbs_element, signature)) {
    return fail(ocsp_result::bad_signature, "the signature does not verify");
  }

  return std::nullopt;
}

// The SingleResponse about `t` in `responses` (the rest are skipped, but must be well formed):
// its verdict, malformed, or wrong_certificate when none is about `t`.
ocsp_verdict judge_single(CBS responses, const ocsp_target& t, std::int64_t now) {
  while (CBS_len(&responses) > 0) {
    CBS single, cert_id, status_choice;
    unsigned status_tag = 0;
    std::int64_t this_update = 0;
    if (CBS_get_asn1(&responses, &single, CBS_ASN1_SEQUENCE) != 1 ||
        CBS_get_asn1(&single, &cert_id, CBS_ASN1_SEQUENCE) != 1 ||
        CBS_get_any_asn1(&single, &status_choice, &status_tag) != 1 ||
        !get_time(&single, this_update)) {
      return fail(ocsp_result::malformed, "a damaged SingleResponse");
    }
    if (!cert_id_matches(cert_id, t)) {
      continue;
    }
    std::int64_t next_update = this_update + ocsp_default_validity_seconds;
    if (CBS_peek_asn1_tag(&single, context_tag(0, true))) {
      CBS wrapper;
      if (CBS_get_asn1(&single, &wrapper, context_tag(0, true)) != 1 ||
          !get_time(&wrapper, next_update) || next_update < this_update) {
        return fail(ocsp_result::malformed, "a damaged nextUpdate");
      }
    }
    ocsp_verdict v;
    v.this_update = this_update;
    v.next_update = next_update;
    if (status_tag == context_tag(1, true)) {
      v.result = ocsp_result::revoked;
      v.detail = "the responder says the certificate is revoked";
    } else if ((status_tag != context_tag(0, false) && status_tag != context_tag(2, false)) ||
               CBS_len(&status_choice) != 0) {
      return fail(ocsp_result::malformed, "a damaged certStatus");
    } else if (now >= next_update) {
      v.result = ocsp_result::expired;
      v.detail = "it expired at " + rfc3339(next_update);
    } else if (this_update > now + ocsp_clock_skew_seconds) {
      v.result = ocsp_result::not_yet_valid;
      v.detail = "its thisUpdate " + rfc3339(this_update) + " is still to come";
    } else if (status_tag == context_tag(2, false)) {
      // Judged only while current (like good): a stale `unknown` replayed over plain HTTP
      // must not take a good staple down. A revocation is final whenever it was said.
      v.result = ocsp_result::unknown;
      v.detail = "the responder does not know the certificate";
    } else {
      v.result = ocsp_result::good;
      v.detail = "good until " + rfc3339(next_update);
    }
    return v;
  }
  return fail(ocsp_result::wrong_certificate,
              "no answer about this certificate (serial " + serial_hex(t.leaf.get()) + ")");
}

ocsp_verdict check(std::string_view der, const ocsp_target& t, std::int64_t now) {
  CBS in;
  CBS_init(&in, reinterpret_cast<const uint8_t*>(der.data()), der.size());
  CBS response, status, bytes_wrapper, bytes, type, basic_octets;
  uint64_t status_value = 0;
  if (CBS_get_asn1(&in, &response, CBS_ASN1_SEQUENCE) != 1 || CBS_len(&in) != 0 ||
      CBS_get_asn1(&response, &status, CBS_ASN1_ENUMERATED) != 1 || CBS_len(&status) != 1) {
    return fail(ocsp_result::malformed, "not a DER OCSPResponse");
  }
  status_value = CBS_data(&status)[0];
  if (status_value != 0) {
    static const char* const names[] = {
        "successful", "malformedRequest", "internalError", "tryLater",
        "(4)",        "sigRequired",      "unauthorized"};
    std::string name = status_value < 7 ? names[status_value] : std::to_string(status_value);
    return fail(ocsp_result::unsuccessful, "the responder answered " + name);
  }
  if (CBS_get_asn1(&response, &bytes_wrapper, context_tag(0, true)) != 1 ||
      CBS_get_asn1(&bytes_wrapper, &bytes, CBS_ASN1_SEQUENCE) != 1 ||
      CBS_get_asn1(&bytes, &type, CBS_ASN1_OBJECT) != 1 ||
      CBS_get_asn1(&bytes, &basic_octets, CBS_ASN1_OCTETSTRING) != 1 || CBS_len(&bytes) != 0 ||
      CBS_len(&bytes_wrapper) != 0 || CBS_len(&response) != 0) {
    return fail(ocsp_result::malformed, "a successful OCSPResponse without responseBytes");
  }
  if (OBJ_cbs2nid(&type) != NID_id_pkix_OCSP_basic) {
    return fail(ocsp_result::malformed, "not a basic OCSP response");
  }
  CBS basic, tbs_element, sig_alg, sig_oid, sig_bits;
  if (CBS_get_asn1(&basic_octets, &basic, CBS_ASN1_SEQUENCE) != 1 || CBS_len(&basic_octets) != 0 ||
      CBS_get_asn1_element(&basic, &tbs_element, CBS_ASN1_SEQUENCE) != 1 ||
      CBS_get_asn1(&basic, &sig_alg, CBS_ASN1_SEQUENCE) != 1 ||
      CBS_get_asn1(&sig_alg, &sig_oid, CBS_ASN1_OBJECT) != 1 ||
      CBS_get_asn1(&basic, &sig_bits, CBS_ASN1_BITSTRING) != 1 || CBS_len(&sig_bits) < 1 ||
      CBS_data(&sig_bits)[0] != 0) {
    return fail(ocsp_result::malformed, "a damaged BasicOCSPResponse");
  }
  CBS signature = sig_bits;
  CBS_skip(&signature, 1);
  std::vector<bssl::UniquePtr<X509>> certs;
  if (CBS_len(&basic) > 0) {
    CBS certs_wrapper, certs_seq;
    if (CBS_get_asn1(&basic, &certs_wrapper, context_tag(0, true)) != 1 ||
        CBS_get_asn1(&certs_wrapper, &certs_seq, CBS_ASN1_SEQUENCE) != 1) {
      return fail(ocsp_result::malformed, "a damaged certs field");
    }
    while (CBS_len(&certs_seq) > 0) {
      CBS one;
      if (CBS_get_asn1_element(&certs_seq, &one, CBS_ASN1_SEQUENCE) != 1) {
        return fail(ocsp_result::malformed, "a damaged responder certificate");
      }
      const uint8_t* p = CBS_data(&one);
      bssl::UniquePtr<X509> c(d2i_X509(nullptr, &p, static_cast<long>(CBS_len(&one))));
      if (!c) {
        return fail(ocsp_result::malformed, "a damaged responder certificate");
      }
      certs.push_back(std::move(c));
    }
    if (CBS_len(&certs_wrapper) != 0 || CBS_len(&basic) != 0) {
      return fail(ocsp_result::malformed, "bytes after the certs field");
    }
  }

  // ResponseData
  CBS tbs = tbs_element;
  CBS data, responder, responses;
  unsigned responder_tag = 0;
  std::int64_t produced_at = 0;
  if (CBS_get_asn1(&tbs, &data, CBS_ASN1_SEQUENCE) != 1) {
    return fail(ocsp_result::malformed, "a damaged ResponseData");
  }
  if (CBS_peek_asn1_tag(&data, context_tag(0, true))) {
    CBS version;
    CBS_get_asn1(&data, &version, context_tag(0, true));
  }
  if (CBS_get_any_asn1(&data, &responder, &responder_tag) != 1 ||
      (responder_tag != context_tag(1, true) && responder_tag != context_tag(2, true)) ||
      !get_time(&data, produced_at) || CBS_get_asn1(&data, &responses, CBS_ASN1_SEQUENCE) != 1) {
    return fail(ocsp_result::malformed, "a damaged ResponseData");
  }

  // Everything is read before the signature is checked (so a fuzzer reaches every parser),
  // and no verdict but malformed is given before it is.
  const ocsp_verdict v = judge_single(responses, t, now);
  if (v.result == ocsp_result::malformed) {
    return v;
  }
  if (std::optional<ocsp_verdict> bad = check_signer(
          t, responder_tag, responder, certs, OBJ_cbs2nid(&sig_oid), tbs_element, signature, now)) {
    return *bad;
  }
  return v;
}

}  // namespace

const char* ocsp_result_name(ocsp_result r) noexcept {
  switch (r) {
    case ocsp_result::good:
      return "good";
    case ocsp_result::revoked:
      return "revoked";
    case ocsp_result::unknown:
      return "unknown";
    case ocsp_result::expired:
      return "expired";
    case ocsp_result::not_yet_valid:
      return "not_yet_valid";
    case ocsp_result::wrong_certificate:
      return "wrong_certificate";
    case ocsp_result::bad_signature:
      return "bad_signature";
    case ocsp_result::unsuccessful:
      return "unsuccessful";
    case ocsp_result::malformed:
      return "malformed";
  }
  return "malformed";
}

std::vector<std::string> ocsp_urls(const X509* leaf) {
  std::vector<std::string> out;
  bssl::UniquePtr<AUTHORITY_INFO_ACCESS> aia(static_cast<AUTHORITY_INFO_ACCESS*>(
      X509_get_ext_d2i(leaf, NID_info_access, nullptr, nullptr)));
  if (aia) {
    for (std::size_t i = 0; i < sk_ACCESS_DESCRIPTION_num(aia.get()); ++i) {
      const ACCESS_DESCRIPTION* ad = sk_ACCESS_DESCRIPTION_value(aia.get(), i);
      if (OBJ_obj2nid(ad->method) == NID_ad_OCSP && ad->location->type == GEN_URI) {
        const ASN1_IA5STRING* uri = ad->location->d.uniformResourceIdentifier;
        out.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(uri)),
                         static_cast<std::size_t>(ASN1_STRING_length(uri)));
      }
    }
  }
  ERR_clear_error();
  return out;
}

bool is_must_staple(const X509* leaf) {
  static const uint8_t tls_feature_oid[] = {0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x18};
  const STACK_OF(X509_EXTENSION)* exts = X509_get0_extensions(leaf);
  for (std::size_t i = 0; exts != nullptr && i < sk_X509_EXTENSION_num(exts); ++i) {
    X509_EXTENSION* ext = sk_X509_EXTENSION_value(exts, i);
    const ASN1_OBJECT* obj = X509_EXTENSION_get_object(ext);
    if (OBJ_length(obj) != sizeof tls_feature_oid ||
        std::memcmp(OBJ_get0_data(obj), tls_feature_oid, sizeof tls_feature_oid) != 0) {
      continue;
    }
    const ASN1_OCTET_STRING* value = X509_EXTENSION_get_data(ext);
    CBS in;
    CBS_init(&in, ASN1_STRING_get0_data(value),
             static_cast<std::size_t>(ASN1_STRING_length(value)));
    CBS features;
    if (CBS_get_asn1(&in, &features, CBS_ASN1_SEQUENCE) != 1) {
      return false;
    }
    while (CBS_len(&features) > 0) {
      uint64_t feature = 0;
      if (CBS_get_asn1_uint64(&features, &feature) != 1) {
        return false;
      }
      if (feature == 5) {  // status_request
        return true;
      }
    }
  }
  return false;
}

bool ocsp_target_of(const loaded_certificate& cert, ocsp_target& out, std::string& error) {
  X509* leaf = cert.leaf.get();
  if (cert.chain.empty() || X509_check_issued(cert.chain.front().get(), leaf) != X509_V_OK) {
    ERR_clear_error();
    error = "no issuer certificate in the chain (OCSP needs the leaf's issuer after it)";
    return false;
  }
  out.leaf.reset(X509_dup(leaf));
  out.issuer.reset(X509_dup(cert.chain.front().get()));
  out.issuer_name_der = der_of_name(X509_get_subject_name(out.issuer.get()));
  out.issuer_key = key_bits_of(out.issuer.get());
  uint8_t* serial = nullptr;
  int len = i2d_ASN1_INTEGER(X509_get0_serialNumber(leaf), &serial);
  if (len > 0) {
    out.serial_der.assign(reinterpret_cast<const char*>(serial), static_cast<std::size_t>(len));
    OPENSSL_free(serial);
  }
  out.urls = ocsp_urls(leaf);
  out.must_staple = is_must_staple(leaf);
  ERR_clear_error();
  if (!out.leaf || !out.issuer || out.issuer_name_der.empty() || out.issuer_key.empty() ||
      out.serial_der.empty()) {
    error = "cannot read the certificate's issuer name, issuer key or serial";
    return false;
  }
  return true;
}

std::string ocsp_request_der(const ocsp_target& t) {
  bssl::ScopedCBB cbb;
  CBB request, tbs, list, one, cert_id, alg, octets;
  const std::string name_hash = digest_of(EVP_sha1(), t.issuer_name_der);
  const std::string key_hash = digest_of(EVP_sha1(), t.issuer_key);
  bool ok =
      CBB_init(cbb.get(), 128) == 1 && CBB_add_asn1(cbb.get(), &request, CBS_ASN1_SEQUENCE) == 1 &&
      CBB_add_asn1(&request, &tbs, CBS_ASN1_SEQUENCE) == 1 &&
      CBB_add_asn1(&tbs, &list, CBS_ASN1_SEQUENCE) == 1 &&
      CBB_add_asn1(&list, &one, CBS_ASN1_SEQUENCE) == 1 &&
      CBB_add_asn1(&one, &cert_id, CBS_ASN1_SEQUENCE) == 1 &&
      CBB_add_asn1(&cert_id, &alg, CBS_ASN1_SEQUENCE) == 1 && OBJ_nid2cbb(&alg, NID_sha1) == 1 &&
      CBB_add_asn1(&alg, &octets, CBS_ASN1_NULL) == 1 &&
      CBB_add_asn1(&cert_id, &octets, CBS_ASN1_OCTETSTRING) == 1 &&
      CBB_add_bytes(&octets, reinterpret_cast<const uint8_t*>(name_hash.data()),
                    name_hash.size()) == 1 &&
      CBB_add_asn1(&cert_id, &octets, CBS_ASN1_OCTETSTRING) == 1 &&
      CBB_add_bytes(&octets, reinterpret_cast<const uint8_t*>(key_hash.data()), key_hash.size()) ==
          1 &&
      CBB_add_bytes(&cert_id, reinterpret_cast<const uint8_t*>(t.serial_der.data()),
                    t.serial_der.size()) == 1;
  uint8_t* out = nullptr;
  size_t out_len = 0;
  if (!ok || CBB_finish(cbb.get(), &out, &out_len) != 1) {
    ERR_clear_error();
    return "";
  }
  std::string der(reinterpret_cast<const char*>(out), out_len);
  OPENSSL_free(out);
  return der;
}

ocsp_verdict check_ocsp_response(std::string_view der, const ocsp_target& t, std::int64_t now) {
  ocsp_verdict v = check(der, t, now);
  ERR_clear_error();
  return v;
}

void staple_from(SSL* ssl, const ocsp_cell& cell, std::int64_t now) {
  std::shared_ptr<const ocsp_staple> s = cell.get();
  if (s && now < s->next_update) {
    SSL_set_ocsp_response(ssl, reinterpret_cast<const uint8_t*>(s->der.data()), s->der.size());
  }
}

}  // namespace tlsfront::tls
