// The session-ID cache's decoding of cached bytes (session_from_cache_bytes, session_expires_at):
// a serialized session comes back whole; bytes that are not one are a miss with the error queue
// left clean. The session is a real one, captured from a handshake by the fuzz target that
// makes the session_decode_fuzz seeds.
#include "tls/session_id_cache.h"

#include <gtest/gtest.h>
#include <openssl/err.h>

#include <fstream>
#include <iterator>
#include <string>

namespace tlsfront::tls {
namespace {

struct SessionBytes : ::testing::Test {
  bssl::UniquePtr<SSL_CTX> ctx{SSL_CTX_new(TLS_method())};
  std::string real = [] {
    std::ifstream in(std::string(TLSFRONT_SOURCE_DIR) +
                         "/tests/fuzz/corpus/session_decode_fuzz/tls12-server-session",
                     std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }();
};

TEST_F(SessionBytes, ASerializedSessionDecodesWithItsExpiry) {
  ASSERT_FALSE(real.empty());
  bssl::UniquePtr<SSL_SESSION> s = session_from_cache_bytes(real, ctx.get());
  ASSERT_TRUE(s);
  EXPECT_EQ(SSL_SESSION_get_protocol_version(s.get()), TLS1_2_VERSION);
  EXPECT_EQ(session_expires_at(s.get()), static_cast<std::int64_t>(SSL_SESSION_get_time(s.get())) +
                                             SSL_SESSION_get_timeout(s.get()));
  SSL_SESSION_set_time(s.get(), 1'700'000'000);
  SSL_SESSION_set_timeout(s.get(), 300);
  EXPECT_EQ(session_expires_at(s.get()), 1'700'000'300);
}

TEST_F(SessionBytes, BytesThatAreNoSessionAreAMissWithACleanErrorQueue) {
  ASSERT_FALSE(real.empty());
  for (const std::string& bad : {std::string(), std::string("not a session"),
                                 real.substr(0, real.size() / 2), real + "trailing"}) {
    EXPECT_FALSE(session_from_cache_bytes(bad, ctx.get())) << bad.size();
    EXPECT_EQ(ERR_peek_error(), 0u) << "the error queue is cleared";
  }
}

}  // namespace
}  // namespace tlsfront::tls
