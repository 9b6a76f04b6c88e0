// session_store's lookup decoder (open_reply) on every kind of answer a GET can get: a sealed
// session opens only under its own Redis key and sealer; anything else is a miss, an error or a
// rejection, never session bytes. Then its writes against a real redis-server: queued while
// Redis is gone and written when it is back (with what is left of their TTL), the oldest dropped
// from a full queue, the expired ones never written, and writes beyond max_pending_writes kept
// instead of dropped.
#include "cluster/session_store.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "support/redis_server.h"
#include "support/run_until.h"
#include "unit/cluster/redis_call.h"

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

using namespace std::chrono_literals;

class SessionStoreWrites : public ::testing::Test {
 protected:
  redis_options opts_for(const test::redis_server& s) {
    redis_options o;
    o.port = static_cast<std::uint16_t>(s.port());
    o.connect_timeout = 500ms;
    o.command_timeout = 300ms;
    o.reconnect_min = 20ms;
    o.reconnect_max = 100ms;
    return o;
  }
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return test::run_until(ioc_, done, limit);
  }
  // The store under test, on a client connected to `s`.
  session_store& connect(const test::redis_server& s, std::size_t max_pending, std::size_t queue) {
    client_ = std::make_unique<redis_client>(ioc_, opts_for(s));
    store_ = std::make_unique<session_store>(*client_, seal_, "tlsfront:", max_pending, queue);
    client_->start();
    EXPECT_TRUE(run_until([&] { return client_->ready(); })) << client_->last_error();
    return *store_;
  }
  // Redis dies under the store's client.
  void lose(test::redis_server& s) {
    s.kill();
    EXPECT_TRUE(run_until([&] { return !client_->ready(); }));
  }
  // Redis is back; a second client reads what was stored once `probe` holds `value`.
  void restart_and_read(test::redis_server& s, const std::string& probe, const std::string& value) {
    ASSERT_TRUE(s.restart());
    reader_ = std::make_unique<redis_client>(ioc_, opts_for(s));
    reader_->start();
    ASSERT_TRUE(run_until([&] { return reader_->ready(); }));
    ASSERT_TRUE(run_until([&] { return stored(probe) == value; })) << "never written: " << probe;
  }
  // The session stored under `key` as the reader reads it back ("" when absent).
  std::string stored(const std::string& key) {
    const std::string k = session_store::redis_key("tlsfront:", key);
    auto r = redis_call(ioc_, *reader_, {"GET", k});
    std::string session;
    if (session_store::open_reply(seal_, k, r.ec, r.reply, session) !=
        session_store::lookup_outcome::hit) {
      return "";
    }
    return session;
  }
  long long pttl(const std::string& key) {
    return redis_call(ioc_, *reader_, {"PTTL", session_store::redis_key("tlsfront:", key)})
        .reply.integer;
  }
  static void put_many(session_store& store, int n) {
    for (int i = 0; i < n; ++i) {
      store.put("id" + std::to_string(i), "session " + std::to_string(i), 60s);
    }
  }

  boost::asio::io_context ioc_;
  const sealer seal_{std::string(40, 's'), "tlsfront session v1"};
  std::unique_ptr<redis_client> client_, reader_;
  std::unique_ptr<session_store> store_;
};

TEST_F(SessionStoreWrites, SessionsMadeWhileRedisIsDownAreWrittenWhenItReturns) {
  test::redis_server s;
  session_store& store = connect(s, 1024, 16);
  lose(s);
  put_many(store, 5);
  EXPECT_EQ(store.counters().queued.load(), 5u);
  EXPECT_EQ(store.counters().dropped_writes.load(), 0u);
  EXPECT_EQ(store.counters().writes.load(), 0u);
  restart_and_read(s, "id4", "session 4");
  EXPECT_EQ(store.counters().writes.load(), 5u);
  EXPECT_EQ(store.counters().queued.load(), 0u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(stored("id" + std::to_string(i)), "session " + std::to_string(i));
    const long long left = pttl("id" + std::to_string(i));
    EXPECT_GT(left, 0);
    EXPECT_LE(left, 60000) << "a queued session written with more than its TTL";
  }
  EXPECT_EQ(store.counters().errors.load(), 0u);
}

TEST_F(SessionStoreWrites, AFullQueueDropsTheOldestFirst) {
  test::redis_server s;
  session_store& store = connect(s, 1024, 3);
  lose(s);
  store.put("short", "the oldest", 60s);
  put_many(store, 4);  // "short" and id0 fall out; id1..id3 stay
  EXPECT_EQ(store.counters().dropped_writes.load(), 2u);
  EXPECT_EQ(store.counters().queued.load(), 3u);
  store.put("id-new", "the newest", 60s);  // id1 falls out
  EXPECT_EQ(store.counters().dropped_writes.load(), 3u);
  restart_and_read(s, "id-new", "the newest");
  EXPECT_EQ(stored("id0"), "");
  EXPECT_EQ(stored("id1"), "");
  EXPECT_EQ(stored("id2"), "session 2");
  EXPECT_EQ(stored("id3"), "session 3");
  EXPECT_EQ(stored("short"), "");
  EXPECT_EQ(store.counters().queued.load(), 0u);
}

TEST_F(SessionStoreWrites, AWriteWhoseLifetimeEndsInTheQueueIsCountedNotWritten) {
  test::redis_server s;
  session_store& store = connect(s, 1024, 16);
  lose(s);
  store.put("short", "expires in the queue", 1s);
  store.put("long", "still alive", 60s);
  const auto until = std::chrono::steady_clock::now() + 1100ms;
  run_until([&] { return std::chrono::steady_clock::now() >= until; }, 2s);
  restart_and_read(s, "long", "still alive");
  EXPECT_EQ(stored("short"), "");
  EXPECT_EQ(store.counters().writes.load(), 1u);
  EXPECT_EQ(store.counters().expired_writes.load(), 1u);
  EXPECT_EQ(store.counters().queued.load(), 0u);
}

// More new sessions than max_pending_writes at once used to drop the excess; they now wait
// for room and are all written.
TEST_F(SessionStoreWrites, WritesBeyondTheInFlightLimitWaitInsteadOfBeingDropped) {
  test::redis_server s;
  session_store& store = connect(s, 2, 64);
  put_many(store, 20);
  EXPECT_EQ(store.counters().writes.load(), 2u);
  EXPECT_EQ(store.counters().queued.load(), 18u);
  ASSERT_TRUE(run_until([&] { return store.counters().writes.load() == 20; }));
  EXPECT_EQ(store.counters().dropped_writes.load(), 0u);
  reader_ = std::make_unique<redis_client>(ioc_, opts_for(s));
  reader_->start();
  ASSERT_TRUE(run_until([&] { return reader_->ready(); }));
  ASSERT_TRUE(run_until([&] { return stored("id19") == "session 19"; }));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(stored("id" + std::to_string(i)), "session " + std::to_string(i));
  }
}

// The reconnect wait is jittered within [delay/2, delay] and never longer than the delay.
TEST(RedisBackoff, JitteredWaitsStayWithinHalfAndAllOfTheDelay) {
  std::set<long> seen;
  for (int i = 0; i < 1000; ++i) {
    const auto d = jittered(1000ms).count();
    ASSERT_GE(d, 500);
    ASSERT_LE(d, 1000);
    seen.insert(d);
  }
  EXPECT_GT(seen.size(), 100u) << "no jitter";
  EXPECT_EQ(jittered(1ms), 1ms);
  EXPECT_EQ(jittered(0ms), 0ms);
  EXPECT_EQ(redis_options{}.reconnect_max, 1000ms) << "sharing must return within ~1 s of Redis";
}

}  // namespace
}  // namespace tlsfront::cluster
