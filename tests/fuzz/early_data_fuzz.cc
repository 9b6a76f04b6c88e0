// Fuzz target: the 0-RTT screening's parsers (tls/early_data.h), which read what a client sends
// before anything about it is verified: the pre_shared_key extension of a ClientHello
// (parse_first_psk), and the serialized session inside a ticket (read_ticket_facts; in tlsfront
// only after the ticket's HMAC checked, but a key file shared with another server seals whatever
// that server serializes).
// Input: byte 0 picks the parser (bit 0); the rest is its input. Invariants: an identity lies
// inside the input and is never empty; facts that read agree with BoringSSL's own parse of the
// same bytes (time, timeout) whenever it parses them too, and the skew of any age is computed
// without overflow (UBSan).
// Seeds: corpus/early_data_fuzz (extensions with one and two identities; the TLS 1.2 and 1.3
// session serializations of corpus/session_decode_fuzz, prefixed).
#include <openssl/ssl.h>

#include <cstdint>
#include <span>

#include "fuzz_support.h"
#include "tls/early_data.h"

namespace {

using tlsfront::fuzz::check;
namespace tls = tlsfront::tls;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) {
    return 0;
  }
  const std::span<const std::uint8_t> in(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    tls::psk_offer offer;
    if (tls::parse_first_psk(in, offer)) {
      check(!offer.identity.empty(), "an empty PSK identity was accepted");
      check(offer.identity.data() >= in.data() &&
                offer.identity.data() + offer.identity.size() <= in.data() + in.size(),
            "a PSK identity points outside the extension");
    }
    return 0;
  }
  tls::ticket_facts facts;
  if (!tls::read_ticket_facts(in, facts)) {
    return 0;
  }
  static SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  bssl::UniquePtr<SSL_SESSION> s(SSL_SESSION_from_bytes(in.data(), in.size(), ctx));
  if (s) {
    check(SSL_SESSION_get_time(s.get()) == facts.issued_s, "issue time differs from BoringSSL's");
    check(SSL_SESSION_get_timeout(s.get()) == facts.lifetime_s,
          "lifetime differs from BoringSSL's");
  }
  for (const std::uint32_t age : {0u, facts.age_add, 0xffffffffu}) {
    (void)tls::ticket_age_skew_ms(facts, age, 1'700'000'000'000);
  }
  return 0;
}
