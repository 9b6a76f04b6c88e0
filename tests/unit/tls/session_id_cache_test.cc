// The session-ID cache's decoding of cached bytes (session_from_cache_bytes, session_expires_at):
// a serialized session comes back whole; bytes that are not one are a miss with the error queue
// left clean.
#include "tls/session_id_cache.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/mem.h>

#include <string>

namespace tlsfront::tls {
namespace {

struct SessionBytes : ::testing::Test {
  bssl::UniquePtr<SSL_CTX> ctx{SSL_CTX_new(TLS_method())};

  std::string serialized(std::uint64_t time, std::uint32_t timeout) {
    bssl::UniquePtr<SSL_SESSION> s(SSL_SESSION_new(ctx.get()));
    EXPECT_TRUE(s);
    const std::uint8_t id[32] = {1, 2, 3};
    EXPECT_EQ(SSL_SESSION_set1_id(s.get(), id, sizeof id), 1);
    SSL_SESSION_set_time(s.get(), time);
    SSL_SESSION_set_timeout(s.get(), timeout);
    std::uint8_t* bytes = nullptr;
    std::size_t len = 0;
    EXPECT_EQ(SSL_SESSION_to_bytes(s.get(), &bytes, &len), 1);
    std::string out(reinterpret_cast<const char*>(bytes), len);
    OPENSSL_free(bytes);
    return out;
  }
};

TEST_F(SessionBytes, ASerializedSessionDecodesWithItsExpiry) {
  const std::string bytes = serialized(1'700'000'000, 300);
  bssl::UniquePtr<SSL_SESSION> s = session_from_cache_bytes(bytes, ctx.get());
  ASSERT_TRUE(s);
  unsigned id_len = 0;
  const std::uint8_t* id = SSL_SESSION_get_id(s.get(), &id_len);
  ASSERT_EQ(id_len, 32u);
  EXPECT_EQ(id[2], 3);
  EXPECT_EQ(session_expires_at(s.get()), 1'700'000'300);
}

TEST_F(SessionBytes, BytesThatAreNoSessionAreAMissWithACleanErrorQueue) {
  const std::string good = serialized(1'700'000'000, 300);
  for (const std::string& bad : {std::string(), std::string("not a session"),
                                 good.substr(0, good.size() / 2), good + "trailing"}) {
    EXPECT_FALSE(session_from_cache_bytes(bad, ctx.get())) << bad.size();
    EXPECT_EQ(ERR_peek_error(), 0u) << "the error queue is cleared";
  }
}

}  // namespace
}  // namespace tlsfront::tls
