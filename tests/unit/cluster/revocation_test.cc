// cluster/revocation: the fleet's revocation messages (parsed and formatted), and the sync's
// round trips through a real redis-server, two or three "instances" (a revocation_sync each,
// with its own revoked set) on the test's io_context:
//   - a handle revoked on A reaches B's set through the channel, and C, started afterwards,
//     reads it back whole (with the floor, the last flush and the last purge);
//   - Redis killed before a revocation: it is queued, enforced locally, and written when Redis
//     returns, so an instance started after that reads it back; nothing is lost;
//   - the Redis set is bounded: past `capacity` the earliest-expiring members go and the
//     fleet's floor is raised past their generation (fail closed);
//   - a session-ID revocation deletes the L2 copies (counted in the answer) and reaches every
//     instance; messages that are not ours are ignored.
// `run_until` bounds every wait (no timing is asserted).
#include "cluster/revocation.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "cache/revoked_handles.h"
#include "cluster/session_store.h"
#include "core/clock.h"
#include "support/redis_server.h"
#include "support/run_until.h"
#include "tls/remote_session_store.h"

namespace tlsfront::cluster {
namespace {

using namespace std::chrono_literals;

TEST(Revocation, CommandsDeleteEveryContextsCopyThenPublishTheHexId) {
  const std::string id("\x01\xab\x00z", 4);
  auto cmds = revocation_commands("fleet:", {7, 9}, id);
  ASSERT_EQ(cmds.size(), 2u);
  const std::vector<std::string> del = {
      "DEL", session_store::redis_key("fleet:", tls::remote_session_key(7, id)),
      session_store::redis_key("fleet:", tls::remote_session_key(9, id))};
  EXPECT_EQ(cmds[0], del);
  const std::vector<std::string> pub = {"PUBLISH", "fleet:revoke", "01ab007a"};
  EXPECT_EQ(cmds[1], pub);
  EXPECT_EQ(revocation_commands("p:", {}, id).front(), std::vector<std::string>{"DEL"});
}

TEST(Revocation, MessagesRoundTripAndGarbageIsIgnored) {
  fleet_message h;
  h.type = fleet_message::kind::handle;
  h.handle = 0x0123456789abcdefULL;
  EXPECT_EQ(format_fleet_message(h), "h:0123456789abcdef");
  fleet_message p;
  p.type = fleet_message::kind::purge;
  p.floor = 900000;
  p.flush_s = 1790000000;
  p.keys_version = 7;
  EXPECT_EQ(format_fleet_message(p), "p:900000:1790000000:7");
  for (const std::string& text :
       {std::string("h:0123456789abcdef"), std::string("F:12"), std::string("f:1790000000"),
        std::string("p:900000:1790000000:7"), std::string("0a0b")}) {
    auto m = parse_fleet_message(text);
    ASSERT_TRUE(m) << text;
    EXPECT_EQ(format_fleet_message(*m), text);
  }
  EXPECT_EQ(parse_fleet_message("0a0b")->session_id, std::string("\x0a\x0b"));
  for (const char* bad :
       {"", "h:", "h:xyz", "h:0000000000000000", "h:0123456789abcdef0", "F:", "F:0", "F:-1", "F:1x",
        "f:0", "p:1:2", "p:1::3", "p:0:5:1", "x:1", "not-hex!", "h:0123456789ABCDEZ"}) {
    EXPECT_FALSE(parse_fleet_message(bad)) << bad;
  }
}

redis_options options_for(const test::redis_server& r) {
  redis_options o;
  o.port = static_cast<std::uint16_t>(r.port());
  o.connect_timeout = 500ms;
  o.command_timeout = 500ms;
  o.reconnect_min = 20ms;
  o.reconnect_max = 100ms;
  return o;
}

// One instance's side: its revoked set and guard, two connections and the sync.
struct instance {
  cache::revoked_handles set;
  tls::resumption_guard guard;
  redis_client client, subscriber;
  std::vector<std::string> dropped;
  std::vector<std::int64_t> flushes;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> purges;
  revocation_sync sync;
  instance(boost::asio::io_context& ioc, const test::redis_server& r, std::size_t capacity = 1024)
      : set(4096, cache::handle_policy{}, 42),
        guard(set, core::real_clock::instance(), nullptr),
        client(ioc, options_for(r)),
        subscriber(ioc, options_for(r)),
        sync(ioc, client, subscriber, guard, "t:", capacity, std::chrono::hours(1),
             revocation_hooks{
                 [this](std::string_view id) {
                   dropped.emplace_back(id);
                   return std::size_t{1};
                 },
                 [this](std::int64_t s) { flushes.push_back(s); },
                 [this](std::uint32_t g, std::uint64_t v) { purges.emplace_back(g, v); }}) {
    sync.start();
    client.start();
    subscriber.start();
  }
  bool revoked(std::uint64_t h) const { return set.contains(h); }
};

bool subscribed(const test::redis_server& r, int n) {
  return r.cli({"PUBSUB", "NUMSUB", "t:revoke"}).find("\n" + std::to_string(n)) !=
         std::string::npos;
}

TEST(RevocationSync, AHandleReachesEveryInstanceAndOneStartedLaterReadsItBack) {
  test::redis_server redis;
  ASSERT_TRUE(redis.running());
  boost::asio::io_context ioc;
  auto a = std::make_unique<instance>(ioc, redis);
  auto b = std::make_unique<instance>(ioc, redis);
  ASSERT_TRUE(test::run_until(ioc, [&] { return subscribed(redis, 2) && a->client.ready(); }));
  const std::uint64_t h = a->guard.mint(), other = a->guard.mint();
  a->guard.revoke(h);  // what session_revocation does first
  std::vector<fleet_ack> acks;
  a->sync.revoke_handle(h, [&](fleet_ack k, long long) { acks.push_back(k); });
  a->sync.raise_floor(5);
  a->sync.flush(1790000000);
  a->sync.purge(7, 1790000001, 3);
  ASSERT_TRUE(test::run_until(ioc, [&] {
    return b->revoked(h) && b->set.floor() == 7 && !b->flushes.empty() && !b->purges.empty();
  }));
  EXPECT_EQ(b->purges, (std::vector<std::pair<std::uint32_t, std::uint64_t>>{{7, 3}}));
  EXPECT_EQ(acks, std::vector<fleet_ack>{fleet_ack::accepted});
  EXPECT_FALSE(b->revoked(other));
  EXPECT_EQ(b->flushes, std::vector<std::int64_t>{1790000000});
  EXPECT_TRUE(a->flushes.empty()) << "an instance does not re-apply its own flush";
  // Its TTL: the member's score is when nothing carrying it can resume any more.
  char hex[16];
  tls::format_handle(h, hex);
  EXPECT_NE(redis.cli({"ZSCORE", "t:{rv}:h", std::string(hex, sizeof hex)}), "\n");
  EXPECT_NE(redis.cli({"PTTL", "t:{rv}:h"}), "-1\n") << "the set must expire with its members";
  // C starts after all that: the read-back gives it the handle, the floor and the flush.
  auto c = std::make_unique<instance>(ioc, redis);
  ASSERT_TRUE(test::run_until(ioc, [&] { return c->sync.resyncs() >= 1 && c->revoked(h); }));
  EXPECT_EQ(c->set.floor(), 7u);
  EXPECT_EQ(c->purges, (std::vector<std::pair<std::uint32_t, std::uint64_t>>{{7, 3}}))
      << "an instance that missed a purge completes it from the read-back";
  EXPECT_EQ(c->flushes, std::vector<std::int64_t>{1790000000});
  EXPECT_FALSE(c->revoked(other));
  EXPECT_GE(b->sync.received(), 3u);
}

TEST(RevocationSync, RevocationsMadeWhileRedisIsDownAreQueuedAndWrittenWhenItReturns) {
  test::redis_server redis;
  ASSERT_TRUE(redis.running());
  boost::asio::io_context ioc;
  auto a = std::make_unique<instance>(ioc, redis);
  ASSERT_TRUE(test::run_until(ioc, [&] { return subscribed(redis, 1) && a->client.ready(); }));
  redis.kill();
  ASSERT_TRUE(test::run_until(ioc, [&] { return !a->client.ready(); }));
  std::vector<std::uint64_t> handles;
  std::vector<fleet_ack> acks;
  for (int i = 0; i < 50; ++i) {
    handles.push_back(a->guard.mint());
    a->guard.revoke(handles.back());
    a->sync.revoke_handle(handles.back(), [&](fleet_ack k, long long) { acks.push_back(k); });
  }
  ASSERT_TRUE(test::run_until(ioc, [&] { return acks.size() == 50; }));
  EXPECT_EQ(acks, std::vector<fleet_ack>(50, fleet_ack::queued));
  EXPECT_EQ(a->sync.queued(), 50u);
  ASSERT_TRUE(redis.restart());
  ASSERT_TRUE(test::run_until(ioc, [&] { return a->sync.queued() == 0 && a->client.ready(); }));
  // An instance that starts now, after the outage, learns every one of them from Redis.
  auto b = std::make_unique<instance>(ioc, redis);
  ASSERT_TRUE(test::run_until(ioc, [&] {
    for (std::uint64_t h : handles) {
      if (!b->revoked(h)) {
        return false;
      }
    }
    return true;
  }));
  EXPECT_EQ(redis.cli({"ZCARD", "t:{rv}:h"}), "50\n");
}

TEST(RevocationSync, AFullRedisSetEvictsTheEarliestAndRaisesTheFloorPastThem) {
  test::redis_server redis;
  ASSERT_TRUE(redis.running());
  boost::asio::io_context ioc;
  auto a = std::make_unique<instance>(ioc, redis, 3);
  auto b = std::make_unique<instance>(ioc, redis);
  ASSERT_TRUE(test::run_until(ioc, [&] { return subscribed(redis, 2) && a->client.ready(); }));
  const std::uint32_t now = a->guard.now_generation();
  // Older handles expire first: the oldest generation goes first.
  std::vector<std::uint64_t> hs = {cache::make_handle(now - 3, 11), cache::make_handle(now - 2, 12),
                                   cache::make_handle(now - 1, 13), cache::make_handle(now, 14)};
  int acked = 0;
  for (std::uint64_t h : hs) {
    a->sync.revoke_handle(h, [&](fleet_ack, long long) { ++acked; });
  }
  ASSERT_TRUE(test::run_until(ioc, [&] { return acked == 4 && b->set.floor() == now - 2; }));
  EXPECT_EQ(redis.cli({"ZCARD", "t:{rv}:h"}), "3\n");
  EXPECT_EQ(redis.cli({"GET", "t:{rv}:floor"}), std::to_string(now - 2) + "\n");
  for (std::uint64_t h : hs) {
    EXPECT_NE(b->set.check(h, now), cache::revoked_handles::verdict::ok)
        << "evicted or not, no revoked handle may resume";
  }
}

TEST(RevocationSync, ASessionIdRevocationDeletesTheCopiesAndReachesEveryInstance) {
  test::redis_server redis;
  ASSERT_TRUE(redis.running());
  boost::asio::io_context ioc;
  auto a = std::make_unique<instance>(ioc, redis);
  auto b = std::make_unique<instance>(ioc, redis);
  core::metrics_registry metrics;
  b->sync.register_metrics(metrics);
  ASSERT_TRUE(test::run_until(ioc, [&] { return subscribed(redis, 2) && a->client.ready(); }));
  const std::string id = "session-42";
  const std::string key = session_store::redis_key("t:", tls::remote_session_key(5, id));
  redis.cli({"SET", key, "sealed"});
  redis.cli({"PUBLISH", "t:revoke", "not-hex!"});
  redis.cli({"PUBLISH", "t:revoke", ""});
  std::vector<std::pair<fleet_ack, long long>> acks;
  a->sync.revoke_id(revocation_commands("t:", {5, 6}, id),
                    [&](fleet_ack k, long long n) { acks.emplace_back(k, n); });
  ASSERT_TRUE(test::run_until(ioc, [&] { return !b->dropped.empty() && !acks.empty(); }));
  EXPECT_EQ(b->dropped, std::vector<std::string>{id});
  EXPECT_EQ(acks.front().first, fleet_ack::accepted);
  EXPECT_EQ(acks.front().second, 1) << "one of the two contexts held a copy";
  EXPECT_EQ(redis.cli({"EXISTS", key}), "0\n");
  EXPECT_EQ(b->sync.received(), 1u) << "garbage is not counted";
  EXPECT_NE(metrics.render().find("tlsfront_fleet_revocations_received_total 1"),
            std::string::npos);
  // Redis down: a session-ID revocation is not queued, and says so.
  redis.kill();
  ASSERT_TRUE(test::run_until(ioc, [&] { return !a->client.ready(); }));
  acks.clear();
  a->sync.revoke_id(revocation_commands("t:", {5}, id),
                    [&](fleet_ack k, long long n) { acks.emplace_back(k, n); });
  ASSERT_TRUE(test::run_until(ioc, [&] { return !acks.empty(); }));
  EXPECT_EQ(acks.front().first, fleet_ack::unavailable);
}

}  // namespace
}  // namespace tlsfront::cluster
