// Fuzz target: an OCSP response as a responder or an ocsp_file could send it, judged against a
// fixed certificate and clock (tls::check_ocsp_response, which reads the whole response before
// it checks the signature, so every parser is reached). A verdict must not depend on anything
// but the input, and `good` only ever comes with a current validity window.
// Seeds: corpus/ocsp_response_fuzz (tests/fuzz/ocsp_pki.h says how they were made).
#include <openssl/pem.h>

#include <string>

#include "fuzz_support.h"
#include "ocsp_pki.h"
#include "tls/certificate.h"
#include "tls/ocsp.h"

namespace {

using tlsfront::fuzz::check;

// 2026-12-04T16:00:00Z: inside the seeds' validity and the certificates'.
constexpr std::int64_t fuzz_now = 1796400000;

bssl::UniquePtr<X509> read_pem(const char* pem) {
  bssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem, -1));
  bssl::UniquePtr<X509> x(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  check(x != nullptr, "set-up: a certificate of ocsp_pki.h");
  return x;
}

const tlsfront::tls::ocsp_target& fuzz_target() {
  static const tlsfront::tls::ocsp_target t = [] {
    tlsfront::tls::loaded_certificate c;
    c.leaf = read_pem(tlsfront::fuzz::ocsp_leaf_pem);
    c.chain.push_back(read_pem(tlsfront::fuzz::ocsp_issuer_pem));
    tlsfront::tls::ocsp_target out;
    std::string error;
    check(tlsfront::tls::ocsp_target_of(c, out, error), "set-up: the OCSP target");
    return out;
  }();
  return t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view der = tlsfront::fuzz::as_view(data, size);
  const tlsfront::tls::ocsp_verdict v =
      tlsfront::tls::check_ocsp_response(der, fuzz_target(), fuzz_now);
  check(tlsfront::tls::check_ocsp_response(der, fuzz_target(), fuzz_now).result == v.result,
        "the same response judged twice differently");
  if (v.result == tlsfront::tls::ocsp_result::good) {
    check(v.next_update > fuzz_now, "a good verdict past its nextUpdate");
    check(v.this_update <= fuzz_now + tlsfront::tls::ocsp_clock_skew_seconds,
          "a good verdict before its thisUpdate");
  }
  check(!v.detail.empty(), "a verdict without a reason");
  return 0;
}
