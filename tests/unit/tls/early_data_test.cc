// TLS 1.3 0-RTT screening (tls/early_data.h): the first identity of a pre_shared_key extension
// and its refusal of malformed bodies; the facts read from a serialized SSL_SESSION (hand-built
// DER and sessions BoringSSL itself serialized after a real handshake); the ticket-age skew with
// its one-second rounding band and age_add wraparound; the strike register (single use, expiry,
// eviction with its fail-closed floor, size) and its concurrency (StrikeRegisterConcurrency,
// under the tsan preset in CI: exactly one `first` per identity across threads); reason names.
#include "tls/early_data.h"

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/bytestring.h>
#include <openssl/mem.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "support/test_env.h"

namespace tlsfront::tls {
namespace {

using bytes = std::vector<std::uint8_t>;

bytes finish(CBB* cbb) {
  std::uint8_t* data = nullptr;
  std::size_t len = 0;
  if (!CBB_finish(cbb, &data, &len)) {
    ADD_FAILURE() << "CBB_finish failed";
    return {};
  }
  bytes out(data, data + len);
  OPENSSL_free(data);
  return out;
}

// --- parse_first_psk ---

struct offered_identity {
  bytes id;
  std::uint32_t age = 0;
};

// A pre_shared_key ClientHello extension body (RFC 8446 §4.2.11): the identities, then one
// 32-byte binder per identity.
bytes psk_extension(const std::vector<offered_identity>& ids) {
  bssl::ScopedCBB cbb;
  CBB identities, identity, binders, binder;
  bool ok = CBB_init(cbb.get(), 128) && CBB_add_u16_length_prefixed(cbb.get(), &identities);
  for (const offered_identity& i : ids) {
    ok = ok && CBB_add_u16_length_prefixed(&identities, &identity) &&
         CBB_add_bytes(&identity, i.id.data(), i.id.size()) && CBB_add_u32(&identities, i.age);
  }
  ok = ok && CBB_add_u16_length_prefixed(cbb.get(), &binders);
  for (std::size_t n = 0; ok && n < ids.size(); ++n) {
    const bytes mac(32, 0xbb);
    ok = CBB_add_u8_length_prefixed(&binders, &binder) &&
         CBB_add_bytes(&binder, mac.data(), mac.size());
  }
  if (!ok) {
    ADD_FAILURE() << "building the pre_shared_key extension failed";
    return {};
  }
  return finish(cbb.get());
}

bytes ticket_bytes(std::size_t n, std::uint8_t seed) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) {
    b[i] = static_cast<std::uint8_t>(seed + i * 7);
  }
  return b;
}

bool same_bytes(std::span<const std::uint8_t> a, const bytes& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

TEST(ParseFirstPsk, ReturnsTheOnlyIdentityAndItsAge) {
  const bytes id = ticket_bytes(80, 1);
  const bytes ext = psk_extension({{id, 0xdeadbeef}});
  psk_offer offer;
  ASSERT_TRUE(parse_first_psk(ext, offer));
  EXPECT_TRUE(same_bytes(offer.identity, id));
  EXPECT_EQ(offer.obfuscated_age, 0xdeadbeefu);
}

TEST(ParseFirstPsk, ReturnsTheFirstOfTwoIdentities) {
  const bytes first = ticket_bytes(48, 3);
  const bytes second = ticket_bytes(64, 9);
  const bytes ext = psk_extension({{first, 1234}, {second, 5678}});
  psk_offer offer;
  ASSERT_TRUE(parse_first_psk(ext, offer));
  EXPECT_TRUE(same_bytes(offer.identity, first)) << "the first identity is the one resumed";
  EXPECT_EQ(offer.obfuscated_age, 1234u);
  // And the other way round, so neither position is hard-wired.
  const bytes swapped = psk_extension({{second, 5678}, {first, 1234}});
  ASSERT_TRUE(parse_first_psk(swapped, offer));
  EXPECT_TRUE(same_bytes(offer.identity, second));
  EXPECT_EQ(offer.obfuscated_age, 5678u);
}

TEST(ParseFirstPsk, OneByteIdentityIsEnough) {
  const bytes ext = psk_extension({{{0x42}, 7}});
  psk_offer offer;
  ASSERT_TRUE(parse_first_psk(ext, offer));
  ASSERT_EQ(offer.identity.size(), 1u);
  EXPECT_EQ(offer.identity[0], 0x42);
  EXPECT_EQ(offer.obfuscated_age, 7u);
}

TEST(ParseFirstPsk, MalformedBodiesAreRefused) {
  struct malformed {
    const char* what;
    bytes ext;
  };
  const std::vector<malformed> cases = {
      {"empty", {}},
      {"truncated identities length", {0x00}},
      {"identities_len 0", {0x00, 0x00, 0x00, 0x00}},
      {"identities_len past the end", {0x00, 0x0a, 0x00, 0x01, 'a', 0x00, 0x00, 0x00, 0x01}},
      {"identity length truncated", {0x00, 0x01, 0x00, 0x00, 0x00}},
      {"identity length past the identities",
       {0x00, 0x07, 0x00, 0x09, 'a', 'b', 'c', 'd', 'e', 0x00, 0x00}},
      {"zero-length identity", {0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00}},
      {"missing age", {0x00, 0x03, 0x00, 0x01, 'a', 0x00, 0x00}},
      {"three age bytes", {0x00, 0x06, 0x00, 0x01, 'a', 0x00, 0x00, 0x01, 0x00, 0x00}},
      {"zero-length identity (built)", psk_extension({{{}, 5}})},
  };
  for (const malformed& c : cases) {
    psk_offer offer;
    EXPECT_FALSE(parse_first_psk(c.ext, offer)) << c.what;
  }
}

TEST(ParseFirstPsk, EveryTruncationInsideTheIdentitiesIsRefused) {
  const bytes ext = psk_extension({{ticket_bytes(40, 5), 99}});
  const std::size_t identities_end = 2 + ((std::size_t{ext[0]} << 8) | ext[1]);
  ASSERT_LT(identities_end, ext.size());
  psk_offer offer;
  for (std::size_t n = 0; n < identities_end; ++n) {
    EXPECT_FALSE(parse_first_psk(std::span(ext).first(n), offer)) << "cut to " << n << " bytes";
  }
  EXPECT_TRUE(parse_first_psk(ext, offer));
}

// --- read_ticket_facts ---

constexpr unsigned explicit_tag(unsigned n) {
  return CBS_ASN1_CONSTRUCTED | CBS_ASN1_CONTEXT_SPECIFIC | n;
}

// BoringSSL's SSL_SESSION DER (ssl_asn1.cc), with the fields read_ticket_facts looks at.
struct der_session {
  std::uint64_t ssl_version = TLS1_3_VERSION;
  std::uint16_t cipher = 0x1301;  // TLS_AES_128_GCM_SHA256
  std::uint64_t time = 1000;
  std::uint64_t timeout = 7200;
  bool with_time = true;
  bool with_timeout = true;
  bool with_sid_ctx = false;  // [4] session id context: an element to skip
  bool with_age_add = true;
  bytes age_add = {0x12, 0x34, 0x56, 0x78};
  bytes trailing;  // after the SEQUENCE
};

bytes session_der(const der_session& s) {
  bssl::ScopedCBB cbb;
  CBB seq, child;
  const std::uint8_t cipher[2] = {static_cast<std::uint8_t>(s.cipher >> 8),
                                  static_cast<std::uint8_t>(s.cipher)};
  const bytes sid = ticket_bytes(32, 11);
  const bytes secret = ticket_bytes(48, 13);
  const std::uint8_t sid_ctx[4] = {'t', 'e', 's', 't'};
  bool ok = CBB_init(cbb.get(), 256) && CBB_add_asn1(cbb.get(), &seq, CBS_ASN1_SEQUENCE) &&
            CBB_add_asn1_uint64(&seq, 1) && CBB_add_asn1_uint64(&seq, s.ssl_version) &&
            CBB_add_asn1_octet_string(&seq, cipher, sizeof cipher) &&
            CBB_add_asn1_octet_string(&seq, sid.data(), sid.size()) &&
            CBB_add_asn1_octet_string(&seq, secret.data(), secret.size());
  if (s.with_time) {
    ok = ok && CBB_add_asn1(&seq, &child, explicit_tag(1)) && CBB_add_asn1_uint64(&child, s.time);
  }
  if (s.with_timeout) {
    ok =
        ok && CBB_add_asn1(&seq, &child, explicit_tag(2)) && CBB_add_asn1_uint64(&child, s.timeout);
  }
  if (s.with_sid_ctx) {
    ok = ok && CBB_add_asn1(&seq, &child, explicit_tag(4)) &&
         CBB_add_asn1_octet_string(&child, sid_ctx, sizeof sid_ctx);
  }
  if (s.with_age_add) {
    ok = ok && CBB_add_asn1(&seq, &child, explicit_tag(21)) &&
         CBB_add_asn1_octet_string(&child, s.age_add.data(), s.age_add.size());
  }
  ok = ok && CBB_flush(cbb.get()) && CBB_add_bytes(cbb.get(), s.trailing.data(), s.trailing.size());
  if (!ok) {
    ADD_FAILURE() << "building the session DER failed";
    return {};
  }
  return finish(cbb.get());
}

TEST(ReadTicketFacts, ReadsTimeTimeoutAndAgeAdd) {
  der_session s;
  s.time = 1'700'000'123;
  s.timeout = 172'800;
  s.age_add = {0xfe, 0xdc, 0xba, 0x98};
  ticket_facts facts;
  ASSERT_TRUE(read_ticket_facts(session_der(s), facts));
  EXPECT_EQ(facts.issued_s, 1'700'000'123u);
  EXPECT_EQ(facts.lifetime_s, 172'800u);
  EXPECT_EQ(facts.age_add, 0xfedcba98u);
}

TEST(ReadTicketFacts, SkipsElementsItDoesNotNeed) {
  der_session s;
  s.with_sid_ctx = true;
  s.time = 42;
  s.timeout = 300;
  ticket_facts facts;
  ASSERT_TRUE(read_ticket_facts(session_der(s), facts));
  EXPECT_EQ(facts.issued_s, 42u);
  EXPECT_EQ(facts.lifetime_s, 300u);
  EXPECT_EQ(facts.age_add, 0x12345678u);
}

TEST(ReadTicketFacts, Tls13NeedsAgeAddTls12DoesNot) {
  der_session s;
  s.with_age_add = false;
  ticket_facts facts;
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts)) << "TLS 1.3 without ticket_age_add";
  s.ssl_version = TLS1_2_VERSION;
  s.cipher = 0xc02f;  // ECDHE-RSA-AES128-GCM-SHA256
  s.time = 5000;
  s.timeout = 600;
  ticket_facts facts12;
  ASSERT_TRUE(read_ticket_facts(session_der(s), facts12));
  EXPECT_EQ(facts12.issued_s, 5000u);
  EXPECT_EQ(facts12.lifetime_s, 600u);
}

TEST(ReadTicketFacts, TimesPast2To40SecondsAreRefused) {
  ticket_facts facts;
  der_session s;
  s.time = (std::uint64_t{1} << 40) - 1;
  EXPECT_TRUE(read_ticket_facts(session_der(s), facts));
  s.time = std::uint64_t{1} << 40;
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts));
  s.time = 1000;
  s.timeout = ~std::uint64_t{0};
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts));
}

TEST(ReadTicketFacts, TimeAndTimeoutAreRequired) {
  der_session s;
  s.with_time = false;
  ticket_facts facts;
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts)) << "no [1] time";
  s.with_time = true;
  s.with_timeout = false;
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts)) << "no [2] timeout";
  s.with_timeout = true;
  EXPECT_TRUE(read_ticket_facts(session_der(s), facts));
}

TEST(ReadTicketFacts, TrailingBytesAreRefused) {
  der_session s;
  ticket_facts facts;
  ASSERT_TRUE(read_ticket_facts(session_der(s), facts));
  s.trailing = {0x00};
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts));
  s.trailing = {0x04, 0x00};  // even a well-formed empty OCTET STRING
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts));
}

TEST(ReadTicketFacts, AgeAddMustBeFourBytes) {
  der_session s;
  ticket_facts facts;
  s.age_add = {0x01, 0x02, 0x03};
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts)) << "3 bytes";
  s.age_add = {0x01, 0x02, 0x03, 0x04, 0x05};
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts)) << "5 bytes";
  s.age_add = {};
  EXPECT_FALSE(read_ticket_facts(session_der(s), facts)) << "0 bytes";
  s.age_add = {0x01, 0x02, 0x03, 0x04};
  ASSERT_TRUE(read_ticket_facts(session_der(s), facts));
  EXPECT_EQ(facts.age_add, 0x01020304u);
}

TEST(ReadTicketFacts, TruncatedAndForeignBuffersAreRefused) {
  const bytes der = session_der(der_session{});
  ticket_facts facts;
  ASSERT_TRUE(read_ticket_facts(der, facts));
  for (std::size_t n = 0; n < der.size(); ++n) {
    EXPECT_FALSE(read_ticket_facts(std::span(der).first(n), facts)) << "cut to " << n << " bytes";
  }
  const std::string not_resumable = "NOT RESUMABLE";  // what BoringSSL writes for such a session
  EXPECT_FALSE(read_ticket_facts(
      {reinterpret_cast<const std::uint8_t*>(not_resumable.data()), not_resumable.size()}, facts));
}

// Sessions BoringSSL serialized itself: a client's session from a real in-memory handshake
// (TLS 1.3: from a NewSessionTicket, so it carries ticket_age_add; TLS 1.2: none).
bssl::UniquePtr<SSL_SESSION> g_session;

int on_new_session(SSL*, SSL_SESSION* session) {
  g_session.reset(session);  // takes the reference
  return 1;
}

bool drive(SSL* ssl, bool& done) {
  if (done) {
    return true;
  }
  const int r = SSL_do_handshake(ssl);
  if (r == 1) {
    done = true;
    return true;
  }
  return SSL_get_error(ssl, r) == SSL_ERROR_WANT_READ;
}

// The client's newest session after a handshake at `version` (nullptr on failure).
bssl::UniquePtr<SSL_SESSION> client_session(std::uint16_t version) {
  g_session.reset();
  bssl::UniquePtr<SSL_CTX> server_ctx(SSL_CTX_new(TLS_method()));
  bssl::UniquePtr<SSL_CTX> client_ctx(SSL_CTX_new(TLS_method()));
  const std::string dir = test::certs_dir();
  static const std::uint8_t sid_ctx[] = {'t', 'e', 's', 't'};
  if (!server_ctx || !client_ctx || !SSL_CTX_set_min_proto_version(server_ctx.get(), version) ||
      !SSL_CTX_set_max_proto_version(server_ctx.get(), version) ||
      !SSL_CTX_use_certificate_chain_file(server_ctx.get(), (dir + "/a.crt").c_str()) ||
      !SSL_CTX_use_PrivateKey_file(server_ctx.get(), (dir + "/a.key").c_str(), SSL_FILETYPE_PEM) ||
      !SSL_CTX_set_session_id_context(server_ctx.get(), sid_ctx, sizeof sid_ctx) ||
      !SSL_CTX_set_min_proto_version(client_ctx.get(), version) ||
      !SSL_CTX_set_max_proto_version(client_ctx.get(), version)) {
    ADD_FAILURE() << "SSL_CTX set-up failed";
    return nullptr;
  }
  SSL_CTX_set_session_cache_mode(client_ctx.get(), SSL_SESS_CACHE_CLIENT);
  SSL_CTX_sess_set_new_cb(client_ctx.get(), &on_new_session);
  bssl::UniquePtr<SSL> client(SSL_new(client_ctx.get()));
  bssl::UniquePtr<SSL> server(SSL_new(server_ctx.get()));
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  if (!client || !server || !BIO_new_bio_pair(&client_bio, 0, &server_bio, 0)) {
    ADD_FAILURE() << "SSL or BIO set-up failed";
    return nullptr;
  }
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  bool client_done = false, server_done = false;
  for (int round = 0; round < 20 && !(client_done && server_done); ++round) {
    if (!drive(client.get(), client_done) || !drive(server.get(), server_done)) {
      ADD_FAILURE() << "handshake failed";
      return nullptr;
    }
  }
  if (!client_done || !server_done) {
    ADD_FAILURE() << "handshake did not finish";
    return nullptr;
  }
  // TLS 1.3: the tickets come after the handshake; reading takes them in.
  std::uint8_t byte = 0;
  const int r = SSL_read(client.get(), &byte, 1);
  if (r > 0 || SSL_get_error(client.get(), r) != SSL_ERROR_WANT_READ) {
    ADD_FAILURE() << "unexpected read result " << r;
    return nullptr;
  }
  return std::move(g_session);
}

bytes to_bytes(const SSL_SESSION* session) {
  std::uint8_t* data = nullptr;
  std::size_t len = 0;
  if (!SSL_SESSION_to_bytes(session, &data, &len)) {
    ADD_FAILURE() << "SSL_SESSION_to_bytes failed";
    return {};
  }
  bytes out(data, data + len);
  OPENSSL_free(data);
  return out;
}

// A real TLS 1.3 ticket's session (with its random age_add) is read by the integration tests:
// their freshness checks accept a client whose age agrees and refuse one 20 s off
// (tests/integration/early_data_test.cc), which needs the right age_add.
TEST(ReadTicketFacts, BoringSslTls12SessionHasNoAgeAdd) {
  bssl::UniquePtr<SSL_SESSION> session = client_session(TLS1_2_VERSION);
  ASSERT_NE(session, nullptr) << "no TLS 1.2 session from the handshake";
  SSL_SESSION_set_time(session.get(), 777);
  SSL_SESSION_set_timeout(session.get(), 120);
  ticket_facts facts;
  ASSERT_TRUE(read_ticket_facts(to_bytes(session.get()), facts));
  EXPECT_EQ(facts.issued_s, 777u);
  EXPECT_EQ(facts.lifetime_s, 120u);
  // The same session relabelled TLS 1.3 has no ticket_age_add: refused.
  ASSERT_TRUE(SSL_SESSION_set_protocol_version(session.get(), TLS1_3_VERSION));
  EXPECT_FALSE(read_ticket_facts(to_bytes(session.get()), facts));
}

// --- ticket_age_skew_ms ---

constexpr std::uint32_t age_add = 0x12345678;
const ticket_facts issued{1000, 7200, age_add};
constexpr std::int64_t issued_ms = 1000 * 1000;

std::uint32_t obfuscate(std::uint32_t client_age_ms, std::uint32_t add = age_add) {
  return static_cast<std::uint32_t>(client_age_ms + add);  // mod 2^32
}

// The issue time has whole seconds: with now = issued + 5000 ms, the server's age is known to
// be in [4001, 5000] ms; the skew is the distance from that band (0 inside it).
TEST(TicketAgeSkew, ExactAgreementIsZero) {
  const std::int64_t now_ms = issued_ms + 5000;
  EXPECT_EQ(ticket_age_skew_ms(issued, obfuscate(5000), now_ms), 0);
}

TEST(TicketAgeSkew, ClientOlderIsPositive) {
  const std::int64_t now_ms = issued_ms + 5000;
  EXPECT_EQ(ticket_age_skew_ms(issued, obfuscate(8000), now_ms), 3000);
  EXPECT_EQ(ticket_age_skew_ms(issued, obfuscate(5001), now_ms), 1) << "just above the band";
}

TEST(TicketAgeSkew, ClientYoungerIsNegative) {
  const std::int64_t now_ms = issued_ms + 5000;
  // 3 s less than the band's top is 2001 ms below its bottom (4001 ms).
  EXPECT_EQ(ticket_age_skew_ms(issued, obfuscate(2000), now_ms), -2001);
  EXPECT_EQ(ticket_age_skew_ms(issued, obfuscate(4000), now_ms), -1) << "just below the band";
  EXPECT_EQ(ticket_age_skew_ms(issued, obfuscate(0), now_ms), -4001);
}

TEST(TicketAgeSkew, InsideTheRoundingBandIsZero) {
  const std::int64_t now_ms = issued_ms + 5000;
  for (std::uint32_t client : {4001u, 4500u, 4999u, 5000u}) {
    EXPECT_EQ(ticket_age_skew_ms(issued, obfuscate(client), now_ms), 0) << client;
  }
}

TEST(TicketAgeSkew, FollowsTheServerClock) {
  // The same client age, the server 3 s later: the client now looks 3 s young.
  EXPECT_EQ(ticket_age_skew_ms(issued, obfuscate(5000), issued_ms + 8000), -2001);
  // The issuer's clock ahead of this one: the server's age is negative.
  EXPECT_EQ(ticket_age_skew_ms(issued, obfuscate(0), issued_ms - 2000), 2000);
}

TEST(TicketAgeSkew, AgeAddWrapsModulo2To32) {
  const std::uint32_t big_add = 0xfffff000;  // 2^32 - 4096
  const ticket_facts t{1000, 7200, big_add};
  const std::uint32_t obfuscated = obfuscate(5000, big_add);
  ASSERT_EQ(obfuscated, 904u) << "5000 + 2^32 - 4096, mod 2^32";
  const std::int64_t now_ms = issued_ms + 5000;
  EXPECT_EQ(ticket_age_skew_ms(t, obfuscated, now_ms), 0);
  EXPECT_EQ(ticket_age_skew_ms(t, obfuscate(8000, big_add), now_ms), 3000);
  // An obfuscated age just below age_add is a huge client age (2^32 - 1 ms), not -1 ms.
  EXPECT_EQ(ticket_age_skew_ms(t, big_add - 1, now_ms), std::int64_t{0xffffffff} - 5000);
}

// --- strike_register ---

// An identity in shard `shard` (id[16] % 16), told apart from others by `n`.
strike_register::identity make_id(std::uint8_t shard, std::uint32_t n) {
  strike_register::identity id{};
  std::memcpy(id.data(), &n, sizeof n);
  id[16] = shard;
  std::memcpy(id.data() + 20, &n, sizeof n);
  return id;
}

TEST(StrikeRegister, FirstThenReplayed) {
  strike_register r(1024);
  const auto a = make_id(3, 1);
  const auto b = make_id(3, 2);
  const auto c = make_id(9, 1);
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.claim(a, 0, 10'000), claim_answer::first);
  EXPECT_EQ(r.claim(a, 100, 10'000), claim_answer::replayed);
  EXPECT_EQ(r.claim(a, 9'999, 10'000), claim_answer::replayed) << "until it expires";
  EXPECT_EQ(r.claim(b, 0, 10'000), claim_answer::first) << "same shard, other identity";
  EXPECT_EQ(r.claim(c, 0, 10'000), claim_answer::first) << "other shard";
  EXPECT_EQ(r.claim(b, 0, 10'000), claim_answer::replayed);
  EXPECT_EQ(r.size(), 3u);
}

TEST(StrikeRegister, ExpiredEntriesAreForgotten) {
  strike_register r(1024);
  const auto a = make_id(4, 1);
  const auto b = make_id(4, 2);
  const auto c = make_id(4, 3);
  EXPECT_EQ(r.claim(a, 0, 1000), claim_answer::first);
  EXPECT_EQ(r.claim(b, 0, 5000), claim_answer::first);
  EXPECT_EQ(r.size(), 2u);
  // A claim at 2000 drops a (expired at 1000): its ticket no longer resumes anyway.
  EXPECT_EQ(r.claim(c, 2000, 6000), claim_answer::first);
  EXPECT_EQ(r.size(), 2u);
  EXPECT_EQ(r.claim(a, 2000, 1000), claim_answer::first);
  EXPECT_EQ(r.claim(b, 2000, 5000), claim_answer::replayed) << "b has not expired";
}

TEST(StrikeRegister, ExpiryIsExclusive) {
  strike_register r(1024);
  const auto a = make_id(5, 1);
  EXPECT_EQ(r.claim(a, 0, 1000), claim_answer::first);
  EXPECT_EQ(r.claim(a, 999, 1000), claim_answer::replayed);
  EXPECT_EQ(r.claim(a, 1000, 2000), claim_answer::first) << "expired at its expiry";
}

TEST(StrikeRegister, OneEntryPerShardAtCapacity16) {
  strike_register r(16);
  for (std::uint8_t shard = 0; shard < 16; ++shard) {
    EXPECT_EQ(r.claim(make_id(shard, 1), 0, 1000 + shard), claim_answer::first) << int{shard};
  }
  EXPECT_EQ(r.size(), 16u) << "one entry in each of the 16 shards";
  const auto a = make_id(7, 1);  // expires at 1007
  const auto b = make_id(7, 2);
  EXPECT_EQ(r.claim(b, 0, 5000), claim_answer::first) << "evicts a";
  EXPECT_EQ(r.size(), 16u);
  EXPECT_EQ(r.claim(a, 0, 1007), claim_answer::unavailable) << "a may have been accepted";
  EXPECT_EQ(r.claim(a, 1006, 1007), claim_answer::unavailable);
  EXPECT_EQ(r.claim(make_id(7, 3), 0, 1007), claim_answer::unavailable) << "at the floor";
  EXPECT_EQ(r.claim(make_id(7, 4), 0, 900), claim_answer::unavailable) << "below the floor";
  EXPECT_EQ(r.claim(b, 0, 5000), claim_answer::replayed) << "b is still held";
  EXPECT_EQ(r.claim(make_id(8, 1), 0, 1008), claim_answer::replayed) << "other shards kept";
  EXPECT_EQ(r.claim(make_id(7, 5), 0, 6000), claim_answer::first) << "later than everything";
  EXPECT_NE(r.claim(b, 0, 5000), claim_answer::first) << "evicted or not, never first twice";
  EXPECT_NE(r.claim(a, 0, 1007), claim_answer::first);
  EXPECT_EQ(r.size(), 16u);
}

TEST(StrikeRegister, FullShardEvictsTheEntryExpiringFirst) {
  strike_register r(64);  // 4 per shard
  const std::uint8_t shard = 5;
  // Claimed out of expiry order, so the heap (not insertion order) picks the victim.
  const std::int64_t expiry[4] = {3000, 1000, 4000, 2000};
  for (std::uint32_t n = 0; n < 4; ++n) {
    EXPECT_EQ(r.claim(make_id(shard, n), 0, expiry[n]), claim_answer::first) << n;
  }
  EXPECT_EQ(r.size(), 4u);
  const auto victim = make_id(shard, 1);  // expires at 1000
  EXPECT_EQ(r.claim(make_id(shard, 10), 0, 5000), claim_answer::first);
  EXPECT_EQ(r.size(), 4u) << "the shard stays at its share";
  EXPECT_EQ(r.claim(victim, 0, 1000), claim_answer::unavailable) << "fail closed";
  EXPECT_EQ(r.claim(victim, 999, 1000), claim_answer::unavailable);
  EXPECT_EQ(r.claim(make_id(shard, 11), 0, 1000), claim_answer::unavailable) << "at the floor";
  EXPECT_EQ(r.claim(make_id(shard, 12), 0, 500), claim_answer::unavailable);
  EXPECT_EQ(r.size(), 4u) << "refusals at the floor store nothing";
  // The others are still held.
  EXPECT_EQ(r.claim(make_id(shard, 0), 0, 3000), claim_answer::replayed);
  EXPECT_EQ(r.claim(make_id(shard, 2), 0, 4000), claim_answer::replayed);
  EXPECT_EQ(r.claim(make_id(shard, 3), 0, 2000), claim_answer::replayed);
  EXPECT_EQ(r.claim(make_id(shard, 10), 0, 5000), claim_answer::replayed);
  // Another shard knows nothing of this floor.
  EXPECT_EQ(r.claim(make_id(static_cast<std::uint8_t>(shard + 1), 12), 0, 500),
            claim_answer::first);
  // Next: 2000 goes; a later-expiring identity is still accepted.
  EXPECT_EQ(r.claim(make_id(shard, 13), 0, 6000), claim_answer::first);
  EXPECT_EQ(r.claim(make_id(shard, 3), 0, 2000), claim_answer::unavailable) << "evicted now";
  EXPECT_NE(r.claim(victim, 0, 1000), claim_answer::first);
  EXPECT_EQ(r.size(), 5u);
}

TEST(StrikeRegister, SmallCapacityStillHoldsOnePerShard) {
  strike_register r(1);
  for (std::uint8_t shard = 0; shard < 16; ++shard) {
    EXPECT_EQ(r.claim(make_id(shard, 1), 0, 1000), claim_answer::first);
  }
  EXPECT_EQ(r.size(), 16u);
  EXPECT_EQ(r.claim(make_id(0, 1), 0, 1000), claim_answer::replayed);
}

TEST(StrikeRegisterConcurrency, ExactlyOneFirstPerIdentity) {
  constexpr std::size_t ids = 2000;
  constexpr int threads = 4;
  strike_register r(1'000'000);
  std::vector<strike_register::identity> id(ids);
  for (std::size_t i = 0; i < ids; ++i) {
    id[i] = make_id(static_cast<std::uint8_t>(i), static_cast<std::uint32_t>(i));
  }
  std::vector<std::atomic<int>> firsts(ids);
  std::atomic<int> replayed{0}, unavailable{0};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::vector<std::size_t> order(ids);
      std::iota(order.begin(), order.end(), std::size_t{0});
      if (t % 2 == 1) {
        std::reverse(order.begin(), order.end());
      }
      std::mt19937 rng(static_cast<unsigned>(t));
      if (t >= 2) {
        std::shuffle(order.begin(), order.end(), rng);
      }
      for (std::size_t i : order) {
        switch (r.claim(id[i], 0, 3'600'000)) {
          case claim_answer::first:
            firsts[i].fetch_add(1);
            break;
          case claim_answer::replayed:
            replayed.fetch_add(1);
            break;
          case claim_answer::unavailable:
            unavailable.fetch_add(1);
            break;
        }
      }
    });
  }
  for (std::thread& w : workers) {
    w.join();
  }
  int total = 0;
  for (std::size_t i = 0; i < ids; ++i) {
    EXPECT_EQ(firsts[i].load(), 1) << "identity " << i;
    total += firsts[i].load();
  }
  EXPECT_EQ(total, static_cast<int>(ids));
  EXPECT_EQ(replayed.load(), static_cast<int>(ids) * (threads - 1));
  EXPECT_EQ(unavailable.load(), 0) << "far below capacity";
  EXPECT_EQ(r.size(), ids);
}

// --- early_reason_name ---

TEST(EarlyReasonName, DistinctNonEmptyNames) {
  std::set<std::string> names;
  for (int i = 0; i < early_reason_count; ++i) {
    const char* name = early_reason_name(static_cast<early_reason>(i));
    ASSERT_NE(name, nullptr) << i;
    EXPECT_NE(std::string(name), "") << i;
    names.insert(name);
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(early_reason_count));
  EXPECT_STREQ(early_reason_name(early_reason::none), "none");
  EXPECT_STREQ(early_reason_name(early_reason::replayed), "replayed");
  EXPECT_STREQ(early_reason_name(early_reason::stale), "stale");
  EXPECT_STREQ(early_reason_name(early_reason::too_large), "too_large");
  EXPECT_STREQ(early_reason_name(early_reason::unavailable), "unavailable");
  EXPECT_STREQ(early_reason_name(early_reason::disabled), "disabled");
  EXPECT_STREQ(early_reason_name(early_reason::ineligible), "ineligible");
}

}  // namespace
}  // namespace tlsfront::tls
