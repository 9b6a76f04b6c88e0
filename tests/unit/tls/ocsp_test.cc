// tls/ocsp.h on the test PKI (scripts/gen-test-certs): the request tlsfront sends is byte for
// byte the one `openssl ocsp` makes; responses made by `openssl ocsp` (issuer-signed and
// delegated) and by tests/integration/ocsp_responder.py (python3-cryptography) are judged as
// they should be; no truncation and no single changed byte of a good response is good.
#include "tls/ocsp.h"

#include <gtest/gtest.h>
#include <openssl/bytestring.h>

#include <cstdlib>
#include <string>

#include "support/test_env.h"
#include "tls/certificate.h"

namespace tlsfront::tls {
namespace {

std::string certs(const std::string& name) {
  return test::certs_dir() + "/" + name;
}

loaded_certificate load(const std::string& name) {
  certificate_options o;
  o.cert_file = certs(name + ".crt");
  o.key_file = certs(name + ".key");
  loaded_certificate c;
  std::string error;
  EXPECT_TRUE(load_certificate(o, c, error)) << error;
  return c;
}

ocsp_target target(const std::string& name) {
  ocsp_target t;
  std::string error;
  EXPECT_TRUE(ocsp_target_of(load(name), t, error)) << error;
  return t;
}

void sh(const std::string& cmd) {
  ASSERT_EQ(std::system((cmd + " >/dev/null 2>&1").c_str()), 0) << cmd;
}

// A response from `openssl ocsp` for `leaf` (status from a one-line index), signed by
// `signer` (a certificate of the test PKI with its key).
std::string openssl_response(const std::string& leaf, char status, const std::string& signer,
                             const std::string& dir) {
  // The serial as `openssl ca` writes it in its index (even-length upper-case hex).
  sh("openssl x509 -noout -serial -in " + certs(leaf + ".crt") + " -out " + dir + "/serial");
  std::string serial = test::read_file(dir + "/serial");
  serial = serial.substr(serial.find('=') + 1);
  while (!serial.empty() && (serial.back() == '\n' || serial.back() == '\r')) {
    serial.pop_back();
  }
  test::write_file(dir + "/index.txt", std::string(1, status) + "\t351231000000Z\t" +
                                           (status == 'R' ? "261101000000Z" : "") + "\t" + serial +
                                           "\tunknown\t/CN=x\n");
  sh("openssl ocsp -issuer " + certs("int.crt") + " -cert " + certs(leaf + ".crt") +
     " -no_nonce -reqout " + dir + "/req.der");
  sh("openssl ocsp -index " + dir + "/index.txt -rsigner " + certs(signer + ".crt") + " -rkey " +
     certs(signer + ".key") + " -CA " + certs("int.crt") + " -reqin " + dir + "/req.der -nmin 60" +
     " -respout " + dir + "/resp.der");
  return test::read_file(dir + "/resp.der");
}

std::string crafted(const std::string& leaf, const std::string& mode, const std::string& dir) {
  sh("/usr/bin/python3 " + test::source_dir() + "/tests/integration/ocsp_responder.py " +
     test::certs_dir() + " " + leaf + " --once " + mode + " " + dir + "/crafted.der");
  return test::read_file(dir + "/crafted.der");
}

std::int64_t now() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

TEST(Ocsp, WhatACertificateSaysOfItsResponder) {
  const ocsp_target t = target("ocsp");
  EXPECT_EQ(t.urls, (std::vector<std::string>{"http://127.0.0.1:9/"}));
  EXPECT_FALSE(t.must_staple);
  EXPECT_TRUE(target("must-staple").must_staple);
  EXPECT_TRUE(target("a").urls.empty());
  EXPECT_FALSE(target("a").must_staple);
  // The leaf alone: no issuer to name in the CertID.
  loaded_certificate alone = load("ocsp");
  alone.chain.clear();
  ocsp_target none;
  std::string error;
  EXPECT_FALSE(ocsp_target_of(alone, none, error));
  EXPECT_NE(error.find("no issuer certificate in the chain"), std::string::npos) << error;
}

TEST(Ocsp, TheRequestIsTheOneOpensslMakes) {
  const std::string dir = test::make_temp_dir();
  sh("openssl ocsp -issuer " + certs("int.crt") + " -cert " + certs("ocsp.crt") +
     " -no_nonce -reqout " + dir + "/req.der");
  EXPECT_EQ(ocsp_request_der(target("ocsp")), test::read_file(dir + "/req.der"));
}

TEST(Ocsp, ResponsesFromOpensslAreJudgedByStatusAndTime) {
  const std::string dir = test::make_temp_dir();
  const ocsp_target t = target("ocsp");
  // Signed by a delegated responder, and by the issuer itself.
  for (const std::string signer : {"ocsp-responder", "int"}) {
    SCOPED_TRACE(signer);
    const std::string good = openssl_response("ocsp", 'V', signer, dir);
    ocsp_verdict v = check_ocsp_response(good, t, now());
    EXPECT_EQ(v.result, ocsp_result::good) << v.detail;
    EXPECT_NEAR(static_cast<double>(v.next_update - v.this_update), 3600, 5);
    EXPECT_EQ(check_ocsp_response(good, t, v.next_update).result, ocsp_result::expired);
    if (signer == "int") {  // the delegated responder's certificate is minutes old itself
      EXPECT_EQ(check_ocsp_response(good, t, v.this_update - ocsp_clock_skew_seconds - 1).result,
                ocsp_result::not_yet_valid);
      EXPECT_EQ(check_ocsp_response(good, t, v.this_update - ocsp_clock_skew_seconds).result,
                ocsp_result::good);
    }
    EXPECT_EQ(check_ocsp_response(openssl_response("ocsp", 'R', signer, dir), t, now()).result,
              ocsp_result::revoked);
    // Good, but about another certificate.
    EXPECT_EQ(check_ocsp_response(openssl_response("a", 'V', signer, dir), t, now()).result,
              ocsp_result::wrong_certificate);
  }
  // Signed by a server certificate of the same issuer (no OCSPSigning purpose).
  ocsp_verdict rogue =
      check_ocsp_response(openssl_response("ocsp", 'V', "ocsp-rogue", dir), t, now());
  EXPECT_EQ(rogue.result, ocsp_result::bad_signature);
  EXPECT_NE(rogue.detail.find("OCSPSigning"), std::string::npos) << rogue.detail;
}

TEST(Ocsp, ResponsesFromAnotherImplementation) {
  const std::string dir = test::make_temp_dir();
  const ocsp_target t = target("ocsp");
  const std::pair<const char*, ocsp_result> cases[] = {
      {"good", ocsp_result::good},
      {"no_next_update", ocsp_result::good},
      {"revoked", ocsp_result::revoked},
      {"unknown", ocsp_result::unknown},
      {"expired", ocsp_result::expired},
      {"future", ocsp_result::not_yet_valid},
      {"wrong_serial", ocsp_result::wrong_certificate},
      {"rogue", ocsp_result::bad_signature},
      {"bad_signature", ocsp_result::bad_signature},
      {"foreign_delegate", ocsp_result::bad_signature},
      {"expired_delegate", ocsp_result::bad_signature},
      {"issuer_name_clash", ocsp_result::bad_signature},
      {"stale_unknown", ocsp_result::expired},
      {"sha224_certid", ocsp_result::wrong_certificate}};
  for (const auto& [mode, want] : cases) {
    const ocsp_verdict v = check_ocsp_response(crafted("ocsp", mode, dir), t, now());
    EXPECT_EQ(v.result, want) << mode << ": " << v.detail;
    const std::string m = mode;
    const char* why = m == "bad_signature" || m == "issuer_name_clash" ? "does not verify"
                      : m == "foreign_delegate"                        ? "was not issued by"
                      : m == "expired_delegate"                        ? "is not valid now"
                      : m == "rogue"                                   ? "OCSPSigning"
                                                                       : "";
    EXPECT_NE(v.detail.find(why), std::string::npos) << mode << ": " << v.detail;
    if (std::string(mode) == "no_next_update") {
      EXPECT_EQ(v.next_update - v.this_update, ocsp_default_validity_seconds);
    }
  }
}

// Rebuilds a good response around its signed part (tbsResponseData and the signature stay as
// they are, so the signature still verifies): another signatureAlgorithm OID (DER content
// bytes), bytes added after the certs field, or bytes added after responseBytes.
struct rebuild {
  std::string sig_oid;      // empty: the original
  std::string after_certs;  // inside BasicOCSPResponse
  std::string after_bytes;  // inside OCSPResponse
};
std::string rebuilt(const std::string& der, const rebuild& r) {
  CBS in, response, status, wrapper, bytes, type, octets, basic, tbs, alg, oid, sig, rest;
  CBS_init(&in, reinterpret_cast<const uint8_t*>(der.data()), der.size());
  EXPECT_TRUE(CBS_get_asn1(&in, &response, CBS_ASN1_SEQUENCE) &&
              CBS_get_asn1_element(&response, &status, CBS_ASN1_ENUMERATED) &&
              CBS_get_asn1(&response, &wrapper, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED) &&
              CBS_get_asn1(&wrapper, &bytes, CBS_ASN1_SEQUENCE) &&
              CBS_get_asn1_element(&bytes, &type, CBS_ASN1_OBJECT) &&
              CBS_get_asn1(&bytes, &octets, CBS_ASN1_OCTETSTRING) &&
              CBS_get_asn1(&octets, &basic, CBS_ASN1_SEQUENCE) &&
              CBS_get_asn1_element(&basic, &tbs, CBS_ASN1_SEQUENCE) &&
              CBS_get_asn1(&basic, &alg, CBS_ASN1_SEQUENCE) &&
              CBS_get_asn1(&alg, &oid, CBS_ASN1_OBJECT) &&
              CBS_get_asn1_element(&basic, &sig, CBS_ASN1_BITSTRING));
  rest = basic;  // the certs field
  auto add = [](CBB* to, const CBS& c) { return CBB_add_bytes(to, CBS_data(&c), CBS_len(&c)); };
  auto add_text = [](CBB* to, const std::string& t) {
    return CBB_add_bytes(to, reinterpret_cast<const uint8_t*>(t.data()), t.size());
  };
  bssl::ScopedCBB cbb;
  CBB o_response, o_wrapper, o_bytes, o_octets, o_basic, o_alg, o_oid;
  const std::string new_oid =
      r.sig_oid.empty() ? std::string(reinterpret_cast<const char*>(CBS_data(&oid)), CBS_len(&oid))
                        : r.sig_oid;
  EXPECT_TRUE(
      CBB_init(cbb.get(), der.size() + 64) &&
      CBB_add_asn1(cbb.get(), &o_response, CBS_ASN1_SEQUENCE) && add(&o_response, status) &&
      CBB_add_asn1(&o_response, &o_wrapper, CBS_ASN1_CONTEXT_SPECIFIC | CBS_ASN1_CONSTRUCTED) &&
      CBB_add_asn1(&o_wrapper, &o_bytes, CBS_ASN1_SEQUENCE) && add(&o_bytes, type) &&
      CBB_add_asn1(&o_bytes, &o_octets, CBS_ASN1_OCTETSTRING) &&
      CBB_add_asn1(&o_octets, &o_basic, CBS_ASN1_SEQUENCE) && add(&o_basic, tbs) &&
      CBB_add_asn1(&o_basic, &o_alg, CBS_ASN1_SEQUENCE) &&
      CBB_add_asn1(&o_alg, &o_oid, CBS_ASN1_OBJECT) && add_text(&o_oid, new_oid) &&
      add(&o_alg, alg) && add(&o_basic, sig) && add(&o_basic, rest) &&
      add_text(&o_basic, r.after_certs) && CBB_flush(&o_response) &&
      add_text(&o_response, r.after_bytes));
  uint8_t* out = nullptr;
  size_t len = 0;
  EXPECT_TRUE(CBB_finish(cbb.get(), &out, &len));
  std::string result(reinterpret_cast<const char*>(out), len);
  OPENSSL_free(out);
  return result;
}

TEST(Ocsp, OnlyTheSignedPartIsTrustedAndNothingRidesBesideIt) {
  const std::string dir = test::make_temp_dir();
  const ocsp_target t = target("ocsp");
  const std::string good = openssl_response("ocsp", 'V', "ocsp-responder", dir);
  // The rebuild itself changes nothing.
  EXPECT_EQ(rebuilt(good, {}), good);
  EXPECT_EQ(check_ocsp_response(rebuilt(good, {}), t, now()).result, ocsp_result::good);
  // An ECDSA signature claimed as RSA (sha256WithRSAEncryption): the algorithm must fit the
  // key, though the bytes verify with the key alone.
  const std::string rsa_sha256("\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b", 9);
  ocsp_verdict v = check_ocsp_response(rebuilt(good, {rsa_sha256, "", ""}), t, now());
  EXPECT_EQ(v.result, ocsp_result::bad_signature) << v.detail;
  // An unknown algorithm.
  v = check_ocsp_response(rebuilt(good, {std::string("\x2b\x06\x01\x04\x01", 5), "", ""}), t,
                          now());
  EXPECT_EQ(v.result, ocsp_result::bad_signature) << v.detail;
  // Bytes outside the signature: after the certs field, after responseBytes.
  EXPECT_EQ(
      check_ocsp_response(rebuilt(good, {"", std::string("\x04\x00", 2), ""}), t, now()).result,
      ocsp_result::malformed);
  EXPECT_EQ(
      check_ocsp_response(rebuilt(good, {"", "", std::string("\x04\x00", 2)}), t, now()).result,
      ocsp_result::malformed);
}

TEST(Ocsp, NoDamagedGoodResponseIsGood) {
  const std::string dir = test::make_temp_dir();
  const ocsp_target t = target("ocsp");
  const std::string good = openssl_response("ocsp", 'V', "ocsp-responder", dir);
  ASSERT_EQ(check_ocsp_response(good, t, now()).result, ocsp_result::good);
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_EQ(check_ocsp_response(good.substr(0, n), t, now()).result, ocsp_result::malformed) << n;
  }
  EXPECT_EQ(check_ocsp_response(good + '\0', t, now()).result, ocsp_result::malformed);
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (unsigned char bit : {0x01, 0x80}) {
      std::string bad = good;
      bad[i] = static_cast<char>(bad[i] ^ bit);
      EXPECT_NE(check_ocsp_response(bad, t, now()).result, ocsp_result::good)
          << "byte " << i << " ^ " << int(bit);
    }
  }
  EXPECT_EQ(check_ocsp_response("", t, now()).result, ocsp_result::malformed);
  // An unsuccessful status names itself.
  const std::string try_later("\x30\x03\x0a\x01\x03", 5);
  const ocsp_verdict v = check_ocsp_response(try_later, t, now());
  EXPECT_EQ(v.result, ocsp_result::unsuccessful);
  EXPECT_NE(v.detail.find("tryLater"), std::string::npos) << v.detail;
}

TEST(Ocsp, ACellStaplesOnlyWhileCurrent) {
  ocsp_cell cell;
  EXPECT_EQ(cell.get(), nullptr);
  auto s = std::make_shared<ocsp_staple>();
  s->der = "x";
  s->next_update = 100;
  cell.set(s);
  EXPECT_EQ(cell.get()->next_update, 100);
  cell.set(nullptr);
  EXPECT_EQ(cell.get(), nullptr);
}

}  // namespace
}  // namespace tlsfront::tls
