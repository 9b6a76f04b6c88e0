// Session handles on the TLS side (tls/session_handle.h): the handle sealed into a ticket IV
// comes back out under the same key and not under another (80- and 48-byte key layouts), IVs
// of one handle differ; the session-ID entry header round-trips and an entry without it (as
// written before handles) is refused; the text form; and the guard: minted handles are fresh,
// nonzero and of the current generation (never below the floor), revoked ones are refused and
// counted by kind and reason.
#include "tls/session_handle.h"

#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <cstring>
#include <set>
#include <string>

#include "core/clock.h"
#include "core/metrics.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::tls {
namespace {

ticket_key random_key(std::size_t hmac_len, std::size_t aes_len) {
  ticket_key k;
  RAND_bytes(k.name.data(), k.name.size());
  RAND_bytes(k.hmac_key.data(), hmac_len);
  RAND_bytes(k.aes_key.data(), aes_len);
  k.hmac_len = hmac_len;
  k.aes_len = aes_len;
  k.derive_handle_cipher();
  return k;
}

TEST(SessionHandle, IvCarriesTheHandleUnderItsKeyOnly) {
  for (std::size_t len : {32u, 16u}) {
    ticket_key k = random_key(len, len);
    ticket_key other = random_key(len, len);
    const std::uint64_t h = 0x0123456789abcdefULL;
    std::uint8_t iv1[16], iv2[16];
    seal_handle_iv(k, h, iv1);
    seal_handle_iv(k, h, iv2);
    EXPECT_EQ(open_handle_iv(k, iv1), h);
    EXPECT_EQ(open_handle_iv(k, iv2), h);
    EXPECT_NE(std::memcmp(iv1, iv2, 16), 0) << "two tickets of one session share no IV";
    EXPECT_NE(open_handle_iv(other, iv1), h);
    // A copy (how the ring holds keys) derives the same cipher.
    ticket_key copy(k);
    EXPECT_EQ(open_handle_iv(copy, iv1), h);
  }
}

TEST(SessionHandle, CipherDependsOnEveryPartOfTheKeyMaterial) {
  ticket_key k = random_key(32, 32);
  std::uint8_t iv[16];
  seal_handle_iv(k, 42, iv);
  ticket_key a(k);
  a.aes_key[31] ^= 1;
  a.derive_handle_cipher();
  ticket_key b(k);
  b.hmac_key[0] ^= 1;
  b.derive_handle_cipher();
  EXPECT_NE(open_handle_iv(a, iv), 42u);
  EXPECT_NE(open_handle_iv(b, iv), 42u);
}

TEST(SessionHandle, EntryHeaderRoundTripsAndLegacyEntriesAreRefused) {
  const std::string session = "\x30\x82\x01\x00session-bytes";
  std::uint8_t buf[64];
  std::size_t n = encode_entry(0xfeedfacecafebeefULL, session, buf, sizeof buf);
  ASSERT_EQ(n, session.size() + entry_header_bytes);
  std::uint64_t h = 0;
  std::string_view back = decode_entry(std::string_view(reinterpret_cast<char*>(buf), n), h);
  EXPECT_EQ(back, session);
  EXPECT_EQ(h, 0xfeedfacecafebeefULL);
  h = 7;
  EXPECT_TRUE(decode_entry(session, h).empty()) << "an entry written before handles: a miss";
  EXPECT_TRUE(decode_entry(std::string_view("\x01", 1), h).empty());
  EXPECT_TRUE(decode_entry(std::string_view("\x01\0\0\0\0\0\0\0\x01", 9), h).empty())
      << "a header with no session";
  EXPECT_TRUE(decode_entry({}, h).empty());
  EXPECT_EQ(h, 7u) << "untouched on refusal";
  EXPECT_EQ(encode_entry(1, session, buf, session.size() + entry_header_bytes - 1), 0u)
      << "does not fit";
}

TEST(SessionHandle, TextForm) {
  char out[16];
  format_handle(0x00000a0b0c0d0e0fULL, out);
  EXPECT_EQ(std::string(out, 16), "00000a0b0c0d0e0f");
  std::uint64_t h = 0;
  EXPECT_TRUE(parse_handle("00000A0B0C0D0E0F", h));
  EXPECT_EQ(h, 0x00000a0b0c0d0e0fULL);
  for (std::string_view bad : {"", "0", "00000a0b0c0d0e0", "00000a0b0c0d0e0f0", "0000000000000000",
                               "00000a0b0c0d0e0g", "-0000a0b0c0d0e0f"}) {
    EXPECT_FALSE(parse_handle(bad, h)) << bad;
  }
}

struct GuardTest : ::testing::Test {
  // 2026-12-01: a real generation well past the epoch.
  core::manual_clock clock{1'796'083'200'000};
  cache::handle_policy policy{60, 24 * 60};
  cache::revoked_handles set{1024, policy, 99};
  core::metrics_registry metrics;
  resumption_guard guard{set, clock, &metrics};
};

TEST_F(GuardTest, MintsFreshHandlesOfTheCurrentGeneration) {
  std::set<std::uint64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    std::uint64_t h = guard.mint();
    ASSERT_NE(h, 0u);
    EXPECT_EQ(cache::handle_generation(h), guard.now_generation());
    EXPECT_TRUE(guard.admit(h, resumption_kind::id));
    seen.insert(h);
  }
  EXPECT_EQ(seen.size(), 1000u);
  set.raise_floor(guard.now_generation() + 1);
  std::uint64_t after = guard.mint();
  EXPECT_EQ(cache::handle_generation(after), guard.now_generation() + 1)
      << "never below the floor, so new sessions resume after a purge";
  EXPECT_TRUE(guard.admit(after, resumption_kind::psk13));
}

TEST_F(GuardTest, RevokedHandlesAreRefusedAndCountedByKindAndReason) {
  std::uint64_t a = guard.mint();
  std::uint64_t b = guard.mint();
  guard.revoke(a);
  EXPECT_FALSE(guard.admit(a, resumption_kind::ticket12));
  EXPECT_FALSE(guard.admit(a, resumption_kind::psk13));
  EXPECT_TRUE(guard.admit(b, resumption_kind::ticket12));
  EXPECT_FALSE(guard.admit(0, resumption_kind::id));
  // Older than handle_max_age: refused as expired.
  clock.advance(std::chrono::hours(25));
  EXPECT_FALSE(guard.admit(b, resumption_kind::id));
  EXPECT_EQ(guard.seconds_left(b), 0);
  const std::string text = metrics.render();
  EXPECT_NE(text.find("tlsfront_resumptions_refused_total{kind=\"ticket12\",reason=\"revoked\"} 1"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("tlsfront_resumptions_refused_total{kind=\"psk13\",reason=\"revoked\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("tlsfront_resumptions_refused_total{kind=\"id\",reason=\"invalid\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("tlsfront_resumptions_refused_total{kind=\"id\",reason=\"expired\"} 1"),
            std::string::npos);
}

TEST_F(GuardTest, SecondsLeftCoverTheWholeMaxAge) {
  std::uint64_t h = guard.mint();
  const std::int64_t left = guard.seconds_left(h);
  EXPECT_GE(left, 24 * 3600);
  EXPECT_LE(left, 24 * 3600 + 120);
}

}  // namespace
}  // namespace tlsfront::tls
