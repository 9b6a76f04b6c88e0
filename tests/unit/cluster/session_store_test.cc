// session_store's lookup decoder (open_reply) on every kind of answer a GET can get: a sealed
// session opens only under its own Redis key and sealer; anything else is a miss, an error or a
// rejection, never session bytes.
#include "cluster/session_store.h"

#include <gtest/gtest.h>

#include <string>

namespace tlsfront::cluster {
namespace {

using outcome = session_store::lookup_outcome;

redis_reply reply(redis_reply::kind k, std::string str = {}) {
  redis_reply r;
  r.type = k;
  r.str = std::move(str);
  return r;
}

TEST(SessionStoreReply, ASealedSessionOpensUnderItsKeyAndNothingElseDoes) {
  const sealer seal(std::string(40, 's'), "tlsfront session v1");
  const sealer other(std::string(40, 'o'), "tlsfront session v1");
  const std::string key = session_store::redis_key("tlsfront:", "ctx-and-id");
  const std::string value = seal.seal("session bytes", key);
  std::string session = "stale";

  EXPECT_EQ(
      session_store::open_reply(seal, key, {}, reply(redis_reply::kind::string, value), session),
      outcome::hit);
  EXPECT_EQ(session, "session bytes");

  EXPECT_EQ(session_store::open_reply(seal, key, {}, reply(redis_reply::kind::nil), session),
            outcome::miss);
  EXPECT_EQ(
      session_store::open_reply(seal, key, {}, reply(redis_reply::kind::error, "ERR x"), session),
      outcome::error);
  EXPECT_EQ(session_store::open_reply(seal, key, make_error_code(redis_errc::timed_out),
                                      reply(redis_reply::kind::string, value), session),
            outcome::error);
  const redis_reply rejected[] = {
      reply(redis_reply::kind::status, "OK"),
      reply(redis_reply::kind::integer),
      reply(redis_reply::kind::array),
      reply(redis_reply::kind::string, value.substr(0, value.size() - 1)),  // truncated
      reply(redis_reply::kind::string, other.seal("session bytes", key)),   // another fleet
      reply(redis_reply::kind::string, ""),
  };
  for (const redis_reply& r : rejected) {
    session = "stale";
    EXPECT_EQ(session_store::open_reply(seal, key, {}, r, session), outcome::rejected) << r.str;
    EXPECT_TRUE(session.empty());
  }
  session = "stale";
  EXPECT_EQ(session_store::open_reply(seal, session_store::redis_key("tlsfront:", "other-id"), {},
                                      reply(redis_reply::kind::string, value), session),
            outcome::rejected)
      << "a value copied under another key";
  EXPECT_TRUE(session.empty());
}

}  // namespace
}  // namespace tlsfront::cluster
