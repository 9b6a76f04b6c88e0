// redis_client against a real redis-server: commands and replies, AUTH, a dead, restarted and
// paused server, a large reply, destruction with commands in flight. The io_context is driven
// by the test thread; `run_until` bounds every wait (a hang fails the test, no timing is asserted).
#include "cluster/redis_client.h"

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/sentinel_watch.h"
#include "support/redis_server.h"
#include "support/run_until.h"
#include "support/test_env.h"
#include "unit/cluster/redis_call.h"

namespace tlsfront::cluster {
namespace {

using namespace std::chrono_literals;
using test::redis_server;

using result = redis_result;

class RedisClient : public ::testing::Test {
 protected:
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return test::run_until(ioc_, done, limit);
  }
  redis_options opts_for(const redis_server& s) {
    redis_options o;
    o.port = static_cast<std::uint16_t>(s.port());
    o.connect_timeout = 500ms;
    o.command_timeout = 300ms;
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    return o;
  }
  // The connection a client made to a "Redis" listening on `lfd` (-1 if none came).
  int accept_from(int lfd) {
    int cfd = -1;
    EXPECT_TRUE(run_until([&] {
      if (cfd < 0) {
        cfd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK);
      }
      return cfd >= 0;
    }));
    return cfd;
  }
  result call(redis_client& c, std::vector<std::string> argv) {
    return redis_call(ioc_, c, std::move(argv));
  }

  boost::asio::io_context ioc_;
};

TEST_F(RedisClient, CommandsRoundTripBinarySafeAndErrorRepliesAreReplies) {
  redis_server s;
  redis_client c(ioc_, opts_for(s));
  c.start();
  ASSERT_TRUE(run_until([&] { return c.ready(); })) << c.last_error();
  const std::string value("a\0b\r\nc", 6);
  auto set = call(c, {"SET", "k", value, "PX", "60000"});
  ASSERT_FALSE(set.ec) << set.ec.message();
  EXPECT_TRUE(set.reply.is_ok());
  auto get = call(c, {"GET", "k"});
  ASSERT_FALSE(get.ec);
  EXPECT_EQ(get.reply.type, redis_reply::kind::string);
  EXPECT_EQ(get.reply.str, value);
  auto missing = call(c, {"GET", "nope"});
  EXPECT_EQ(missing.reply.type, redis_reply::kind::nil);
  auto bad = call(c, {"INCR", "k"});
  ASSERT_FALSE(bad.ec);
  EXPECT_TRUE(bad.reply.is_error());
  auto arr = call(c, {"MGET", "k", "nope"});
  ASSERT_EQ(arr.reply.type, redis_reply::kind::array);
  ASSERT_EQ(arr.reply.elements.size(), 2u);
  EXPECT_EQ(arr.reply.elements[0].str, value);
  EXPECT_EQ(c.counters().connects, 1u);
}

TEST_F(RedisClient, LargeRepliesAreReadWhole) {
  // Replies larger than hiredis's 16 KiB read, already whole in the socket buffer when the
  // (edge-triggered) readiness arrives, and larger than the socket buffer.
  redis_server s;
  redis_client c(ioc_, opts_for(s));
  c.start();
  ASSERT_TRUE(run_until([&] { return c.ready(); }));
  for (std::size_t size : {40'000u, 200'000u, 3'000'000u}) {
    std::string big(size, 'x');
    for (std::size_t i = 0; i < big.size(); i += 4097) {
      big[i] = static_cast<char>('a' + i % 26);
    }
    ASSERT_FALSE(call(c, {"SET", "big", big}).ec);
    auto got = call(c, {"GET", "big"});
    ASSERT_FALSE(got.ec) << size << ": " << got.ec.message();
    EXPECT_EQ(got.reply.str, big) << size;
  }
}

TEST_F(RedisClient, NotConnectedFailsAtOnceAndNeverInsideTheCall) {
  redis_server s;
  redis_options o = opts_for(s);
  s.kill();
  redis_client c(ioc_, o);
  bool inside = true, called = false;
  error_code got;
  c.command({"PING"}, [&](const error_code& ec, const redis_reply&) {
    EXPECT_FALSE(inside);
    called = true;
    got = ec;
  });
  inside = false;
  ASSERT_TRUE(run_until([&] { return called; }));
  EXPECT_EQ(got, make_error_code(redis_errc::not_connected));
  c.start();
  ASSERT_TRUE(run_until([&] { return c.counters().connect_failures >= 2; }));
  EXPECT_FALSE(c.ready());
  EXPECT_NE(c.last_error().find("connect"), std::string::npos) << c.last_error();
}

TEST_F(RedisClient, PasswordIsSentAndAWrongOneIsAClearRepeatedFailure) {
  redis_server s("s3cret pass");
  {
    redis_options o = opts_for(s);
    o.password = "s3cret pass";
    o.database = 2;
    redis_client c(ioc_, o);
    c.start();
    ASSERT_TRUE(run_until([&] { return c.ready(); })) << c.last_error();
    ASSERT_TRUE(call(c, {"SET", "in-db-2", "1"}).reply.is_ok());
    EXPECT_EQ(s.cli({"-n", "2", "GET", "in-db-2"}), "1\n");
  }
  for (const char* pw : {"wrong", ""}) {
    redis_options o = opts_for(s);
    o.password = pw;
    redis_client c(ioc_, o);
    c.start();
    ASSERT_TRUE(run_until([&] { return c.counters().connect_failures >= 2; }));
    EXPECT_FALSE(c.ready());
    EXPECT_NE(c.last_error().find("refused the connection set-up"), std::string::npos)
        << c.last_error();
    EXPECT_EQ(call(c, {"PING"}).ec, make_error_code(redis_errc::not_connected));
  }
}

TEST_F(RedisClient, KilledServerFailsCommandsAndARestartIsPickedUp) {
  redis_server s;
  redis_client c(ioc_, opts_for(s));
  c.start();
  ASSERT_TRUE(run_until([&] { return c.ready(); }));
  ASSERT_TRUE(call(c, {"SET", "a", "1"}).reply.is_ok());
  s.kill();
  auto during = call(c, {"GET", "a"});
  EXPECT_TRUE(during.ec) << "a command to a dead server must fail";
  ASSERT_TRUE(run_until([&] { return !c.ready(); }));
  EXPECT_EQ(call(c, {"GET", "a"}).ec, make_error_code(redis_errc::not_connected));
  ASSERT_TRUE(s.restart());
  ASSERT_TRUE(run_until([&] { return c.ready(); })) << c.last_error();
  auto after = call(c, {"SET", "b", "2"});
  EXPECT_FALSE(after.ec);
  EXPECT_TRUE(after.reply.is_ok());
  EXPECT_EQ(c.counters().connects, 2u);
  EXPECT_GE(c.counters().disconnects, 1u);
}

TEST_F(RedisClient, PausedServerTimesOutTheCommandAndTheClientRecovers) {
  redis_server s;
  redis_client c(ioc_, opts_for(s));
  c.start();
  ASSERT_TRUE(run_until([&] { return c.ready(); }));
  s.cli({"CLIENT", "PAUSE", "1500"});
  auto r = call(c, {"GET", "x"});
  EXPECT_EQ(r.ec, make_error_code(redis_errc::timed_out)) << r.ec.message();
  EXPECT_EQ(c.counters().timeouts, 1u);
  // Once the pause ends a new connection becomes ready.
  ASSERT_TRUE(run_until([&] { return c.ready(); })) << c.last_error();
  EXPECT_FALSE(call(c, {"PING"}).ec);
}

TEST_F(RedisClient, DestroyingTheClientCompletesCommandsInFlight) {
  redis_server s;
  int completed = 0;
  error_code last;
  {
    redis_client c(ioc_, opts_for(s));
    c.start();
    ASSERT_TRUE(run_until([&] { return c.ready(); }));
    for (int i = 0; i < 3; ++i) {
      c.command({"BLPOP", "never", "0"}, [&](const error_code& ec, const redis_reply&) {
        ++completed;
        last = ec;
      });
    }
    ioc_.run_for(20ms);
    ioc_.restart();
  }
  EXPECT_EQ(completed, 3);
  EXPECT_EQ(last, make_error_code(redis_errc::shutting_down));
  ioc_.run_for(20ms);  // nothing left that touches the dead client
}

TEST_F(RedisClient, SubscriberGetsMessagesAndResubscribesAfterARestart) {
  redis_server s;
  redis_client pub(ioc_, opts_for(s)), sub(ioc_, opts_for(s));
  std::vector<std::string> got;
  sub.subscribe("tlsfront:revoke", [&](const std::string& m) { got.push_back(m); });
  pub.start();
  sub.start();
  ASSERT_TRUE(run_until([&] { return pub.ready() && sub.ready(); }));
  // PUBLISH answers how many subscribers got it: wait until the subscription is in place.
  auto publish = [&](const std::string& m) {
    for (int i = 0; i < 200; ++i) {
      auto r = call(pub, {"PUBLISH", "tlsfront:revoke", m});
      if (!r.ec && r.reply.integer == 1) {
        return true;
      }
      ioc_.run_for(10ms);
      ioc_.restart();
    }
    return false;
  };
  ASSERT_TRUE(publish(std::string("id\0one", 6)));
  ASSERT_TRUE(run_until([&] { return got.size() == 1; }));
  EXPECT_EQ(got[0], std::string("id\0one", 6));
  ASSERT_TRUE(s.restart());
  ASSERT_TRUE(run_until([&] { return pub.ready() && sub.counters().connects == 2; }));
  ASSERT_TRUE(publish("two"));
  ASSERT_TRUE(run_until([&] { return got.size() == 2; }));
  EXPECT_EQ(got[1], "two");
}

// ---------------------------------------------------------------------------------------------
// Sentinel mode against a real redis-sentinel (quorum 1: one sentinel decides, no failover
// without a replica it knows).

TEST_F(RedisClient, RoleTellsARealMasterFromARealReplica) {
  redis_server m;
  redis_server rep("", {"--replicaof", "127.0.0.1", std::to_string(m.port())});
  redis_client to_m(ioc_, opts_for(m)), to_rep(ioc_, opts_for(rep));
  to_m.start();
  to_rep.start();
  ASSERT_TRUE(run_until([&] { return to_m.ready() && to_rep.ready(); }));
  EXPECT_TRUE(is_master_role(call(to_m, {"ROLE"}).reply));
  EXPECT_FALSE(is_master_role(call(to_rep, {"ROLE"}).reply));
}

TEST_F(RedisClient, SentinelModeAsksPastDeadAndFalseSentinelsForTheMaster) {
  redis_server m;
  redis_server not_a_sentinel;  // answers SENTINEL with an error
  redis_server sn(test::sentinel_config{m.port(), "edge", 1});
  redis_options o = opts_for(m);
  o.sentinels = {{"127.0.0.1", static_cast<std::uint16_t>(test::free_port())},
                 {"127.0.0.1", static_cast<std::uint16_t>(not_a_sentinel.port())},
                 {"127.0.0.1", static_cast<std::uint16_t>(sn.port())}};
  o.master_name = "edge";
  redis_client c(ioc_, o);
  c.start();
  ASSERT_TRUE(run_until([&] { return c.ready(); })) << c.last_error();
  EXPECT_EQ(c.target(), m.address());
  EXPECT_TRUE(call(c, {"SET", "k", "v"}).reply.is_ok());
  EXPECT_EQ(m.cli({"GET", "k"}), "v\n");
  EXPECT_EQ(c.master_changes(), 0u);
}

TEST_F(RedisClient, SentinelModeNeverStaysOnAReplica) {
  redis_server m;
  redis_server rep("", {"--replicaof", "127.0.0.1", std::to_string(m.port())});
  redis_server sn(test::sentinel_config{m.port(), "edge", 1});
  redis_options o = opts_for(m);
  o.sentinels = {{"127.0.0.1", static_cast<std::uint16_t>(sn.port())}};
  o.master_name = "edge";
  redis_client c(ioc_, o);
  c.start();
  ASSERT_TRUE(run_until([&] { return c.ready(); })) << c.last_error();
  // Told the master moved to the replica: ROLE refuses it, the sentinels are asked again and
  // the client is back on the master.
  const std::uint64_t failures = c.counters().connect_failures;
  c.master_moved({"127.0.0.1", static_cast<std::uint16_t>(rep.port())});
  ASSERT_TRUE(run_until([&] {
    return c.ready() && c.counters().connect_failures > failures && c.target() == m.address();
  })) << c.last_error();
  EXPECT_NE(c.last_error().find("not a master"), std::string::npos) << c.last_error();
  EXPECT_EQ(c.master_changes(), 2u) << "to the replica and back";
  // The master demoted under the connection (a replica of nothing the sentinel knows): the
  // write's READONLY reply reaches its caller, the connection is dropped, and the client does
  // not come back until the instance is a master again.
  ASSERT_EQ(m.cli({"REPLICAOF", "127.0.0.1", std::to_string(test::free_port())}), "OK\n");
  const std::uint64_t disconnects = c.counters().disconnects;
  const result r = call(c, {"SET", "k", "v"});
  EXPECT_TRUE(r.reply.is_error());
  EXPECT_EQ(r.reply.str.rfind("READONLY", 0), 0u) << r.reply.str;
  ASSERT_TRUE(run_until([&] { return !c.ready(); }));
  EXPECT_EQ(c.counters().disconnects, disconnects) << "dropped by the client, not lost";
  ioc_.run_for(300ms);
  ioc_.restart();
  EXPECT_FALSE(c.ready()) << "ready on a replica";
  ASSERT_EQ(m.cli({"REPLICAOF", "NO", "ONE"}), "OK\n");
  ASSERT_TRUE(run_until([&] { return c.ready(); })) << c.last_error();
  EXPECT_TRUE(call(c, {"SET", "k", "v"}).reply.is_ok());
}

TEST_F(RedisClient, GarbageFromTheServerDropsTheConnectionNotTheProcess) {
  // A "Redis" that answers with bytes that are not RESP.
  int port = 0;
  int lfd = test::listen_on_loopback(port, true);
  ASSERT_GE(lfd, 0);
  redis_options o;
  o.port = static_cast<std::uint16_t>(port);
  o.connect_timeout = 300ms;
  o.reconnect_min = 20ms;
  redis_client c(ioc_, o);
  c.start();
  const int cfd = accept_from(lfd);
  ASSERT_GE(cfd, 0);
  const char garbage[] = "\x01\x02 not a redis reply\r\n";
  ASSERT_GT(::write(cfd, garbage, sizeof garbage - 1), 0);
  ASSERT_TRUE(run_until([&] { return c.counters().connect_failures >= 1; }));
  EXPECT_FALSE(c.ready());
  ::close(cfd);
  ::close(lfd);
}

TEST_F(RedisClient, AHugeArrayHeaderDropsTheConnectionInsteadOfAllocatingForIt) {
  // Found by redis_reply_fuzz: hiredis sizes an array's element table from its header, so
  // "*666666662" asked for 5 GB before a single element arrived. A "Redis" that answers the
  // PING, then answers a GET with that header only.
  int port = 0;
  int lfd = test::listen_on_loopback(port, true);
  ASSERT_GE(lfd, 0);
  redis_options o;
  o.port = static_cast<std::uint16_t>(port);
  o.command_timeout = 60s;  // the command must fail because of the header, not time out
  o.reconnect_min = 20ms;
  redis_client c(ioc_, o);
  c.start();
  const int cfd = accept_from(lfd);
  ASSERT_GE(cfd, 0);
  ASSERT_EQ(::write(cfd, "+PONG\r\n", 7), 7);
  ASSERT_TRUE(run_until([&] { return c.ready(); }));
  std::optional<result> r;
  c.command({"GET", "k"}, [&](const error_code& ec, const redis_reply& rep) {
    r = result{ec, rep};
  });
  const char header[] = "*666666662\r\n";
  ASSERT_EQ(::write(cfd, header, sizeof header - 1), static_cast<ssize_t>(sizeof header - 1));
  ASSERT_TRUE(run_until([&] { return r.has_value(); }))
      << "the command waits for 666666662 elements";
  EXPECT_EQ(r->ec, make_error_code(redis_errc::connection_lost));
  EXPECT_NE(c.last_error().find("reply array of 666666662 elements"), std::string::npos)
      << c.last_error();
  EXPECT_EQ(c.counters().disconnects, 1u);
  ::close(cfd);
  ::close(lfd);
}

// The reply conversion alone, on what hiredis's reader makes of a server's bytes (the path the
// redis_reply_fuzz target drives).
namespace reply_conversion {

struct reader_deleter {
  void operator()(redisReader* r) const { redisReaderFree(r); }
};
struct reply_deleter {
  void operator()(void* r) const { freeReplyObject(r); }
};
using reply_ptr = std::unique_ptr<void, reply_deleter>;

// Every reply in `bytes` (fed whole), as hiredis parses them.
std::vector<reply_ptr> parse(std::string_view bytes) {
  std::unique_ptr<redisReader, reader_deleter> reader(redisReaderCreate());
  EXPECT_EQ(redisReaderFeed(reader.get(), bytes.data(), bytes.size()), REDIS_OK);
  std::vector<reply_ptr> out;
  for (;;) {
    void* r = nullptr;
    if (redisReaderGetReply(reader.get(), &r) != REDIS_OK || r == nullptr) {
      return out;
    }
    out.emplace_back(r);
  }
}

const redisReply& raw(const reply_ptr& p) {
  return *static_cast<const redisReply*>(p.get());
}

TEST(RedisReply, EveryReplyTypeIsCopiedOutOfHiredis) {
  using namespace std::string_view_literals;
  const auto replies = parse(
      "+OK\r\n-ERR no\r\n:-42\r\n$3\r\na\0b\r\n$-1\r\n*3\r\n:1\r\n*1\r\n+x\r\n$-1\r\n*-1\r\n"sv);
  ASSERT_EQ(replies.size(), 7u);
  EXPECT_TRUE(to_redis_reply(raw(replies[0])).is_ok());
  const redis_reply err = to_redis_reply(raw(replies[1]));
  EXPECT_TRUE(err.is_error());
  EXPECT_EQ(err.str, "ERR no");
  const redis_reply integer = to_redis_reply(raw(replies[2]));
  EXPECT_EQ(integer.type, redis_reply::kind::integer);
  EXPECT_EQ(integer.integer, -42);
  const redis_reply bulk = to_redis_reply(raw(replies[3]));
  EXPECT_EQ(bulk.type, redis_reply::kind::string);
  EXPECT_EQ(bulk.str, std::string("a\0b", 3)) << "binary-safe";
  EXPECT_EQ(to_redis_reply(raw(replies[4])).type, redis_reply::kind::nil);
  const redis_reply array = to_redis_reply(raw(replies[5]));
  ASSERT_EQ(array.type, redis_reply::kind::array);
  ASSERT_EQ(array.elements.size(), 3u);
  EXPECT_EQ(array.elements[0].integer, 1);
  ASSERT_EQ(array.elements[1].elements.size(), 1u);
  EXPECT_EQ(array.elements[1].elements[0].str, "x");
  EXPECT_EQ(array.elements[2].type, redis_reply::kind::nil);
  EXPECT_EQ(to_redis_reply(raw(replies[6])).type, redis_reply::kind::nil) << "a null array";
}

TEST(RedisReply, OnlyAMessagePushHasASubscriptionPayload) {
  const auto replies = parse(
      "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$4\r\nab01\r\n"  // a message
      "*3\r\n$9\r\nsubscribe\r\n$2\r\nch\r\n:1\r\n"        // the subscription's confirmation
      "*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n:5\r\n"          // a payload that is no string
      "*2\r\n$7\r\nmessage\r\n$2\r\nch\r\n"                // too short
      "$7\r\nmessage\r\n");                                // not an array
  ASSERT_EQ(replies.size(), 5u);
  EXPECT_EQ(subscription_payload(raw(replies[0])), std::optional<std::string>("ab01"));
  for (std::size_t i = 1; i < replies.size(); ++i) {
    EXPECT_EQ(subscription_payload(raw(replies[i])), std::nullopt) << i;
  }
}

TEST(RedisReply, ALimitedReaderRefusesArrayHeadersOverTheLimitOnly) {
  for (const auto& [bytes, ok] :
       {std::pair{std::string("*666666662\r\n"), false},
        std::pair{"*" + std::to_string(kMaxReplyElements + 1) + "\r\n", false},
        std::pair{std::string("*2\r\n*") + std::to_string(kMaxReplyElements + 1) + "\r\n", false},
        std::pair{std::string("*3\r\n:1\r\n:2\r\n:3\r\n"), true}}) {
    std::unique_ptr<redisReader, reader_deleter> reader(redisReaderCreate());
    limit_reply_arrays(*reader);
    ASSERT_EQ(redisReaderFeed(reader.get(), bytes.data(), bytes.size()), REDIS_OK);
    void* r = nullptr;
    EXPECT_EQ(redisReaderGetReply(reader.get(), &r) == REDIS_OK, ok) << bytes;
    if (ok) {
      ASSERT_NE(r, nullptr);
      reply_ptr owned(r);
      EXPECT_EQ(to_redis_reply(raw(owned)).elements.size(), 3u);
    }
  }
}

TEST(RedisReply, SentinelAnswersAndRolesAreCheckedBeforeUse) {
  auto str = [](std::string v) {
    redis_reply r;
    r.type = redis_reply::kind::string;
    r.str = std::move(v);
    return r;
  };
  auto arr = [](std::vector<redis_reply> e) {
    redis_reply r;
    r.type = redis_reply::kind::array;
    r.elements = std::move(e);
    return r;
  };
  std::string why;
  auto ok = sentinel_master_reply(arr({str("10.0.0.7"), str("6380")}), why);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->str(), "10.0.0.7:6380");
  EXPECT_TRUE(sentinel_master_reply(arr({str("::1"), str("1")}), why));
  redis_reply nil, err, integer;
  err.type = redis_reply::kind::error;
  err.str = "ERR unknown command 'SENTINEL'";
  integer.type = redis_reply::kind::integer;
  const std::vector<std::pair<redis_reply, std::string>> bad = {
      {nil, "does not know"},
      {err, "answered ERR unknown command"},
      {integer, "not [address, port]"},
      {arr({str("10.0.0.7")}), "not [address, port]"},
      {arr({str("10.0.0.7"), str("6380"), str("x")}), "not [address, port]"},
      {arr({str("10.0.0.7"), integer}), "not [address, port]"},
      {arr({str("redis.example"), str("6380")}), "not an IP literal"},
      {arr({str(""), str("6380")}), "not an IP literal"},
      {arr({str("10.0.0.7"), str("0")}), "1..65535"},
      {arr({str("10.0.0.7"), str("65536")}), "1..65535"},
      {arr({str("10.0.0.7"), str("63a")}), "1..65535"},
      {arr({str("10.0.0.7"), str("")}), "1..65535"},
      {arr({str("10.0.0.7"), str("-1")}), "1..65535"},
      {arr({str("10.0.0.7"), str("9999999999999999")}), "1..65535"},
  };
  for (const auto& [r, expect] : bad) {
    why.clear();
    EXPECT_FALSE(sentinel_master_reply(r, why)) << expect;
    EXPECT_NE(why.find(expect), std::string::npos) << why;
  }
  EXPECT_TRUE(is_master_role(arr({str("master"), integer, arr({})})));
  EXPECT_FALSE(is_master_role(arr({str("slave"), str("127.0.0.1")})));
  EXPECT_FALSE(is_master_role(arr({})));
  EXPECT_FALSE(is_master_role(str("master")));
  EXPECT_FALSE(is_master_role(err));
}

TEST(SentinelWatch, OnlyOurMastersWellFormedSwitchMoves) {
  auto to = sentinel_watch::parse_switch("edge 127.0.0.1 6379 127.0.0.1 6380", "edge");
  ASSERT_TRUE(to);
  EXPECT_EQ(to->str(), "127.0.0.1:6380");
  for (const char* bad :
       {"other 127.0.0.1 6379 127.0.0.1 6380", "edge 127.0.0.1 6379 127.0.0.1",
        "edge 127.0.0.1 6379 127.0.0.1 6380 extra", "edge", "",
        "edge 127.0.0.1 6379 name.example 6380", "edge 127.0.0.1 6379 127.0.0.1 0",
        "edge  127.0.0.1 6379 127.0.0.1", "edgeX 127.0.0.1 6379 127.0.0.1 6380"}) {
    EXPECT_FALSE(sentinel_watch::parse_switch(bad, "edge")) << bad;
  }
}

}  // namespace reply_conversion

// Every worker's connection and the subscriber fail alike and their lines interleave: each
// distinct line is logged once until a connection succeeds (a regression: only the line logged
// last was remembered, so "A, B, A" logged A twice).
TEST(FleetWarnings, EachDistinctLineIsLoggedOnceUntilAConnectionSucceeds) {
  using namespace std::chrono_literals;
  warned_recovered();
  EXPECT_TRUE(warn_once("test: sentinels gave nothing", 10ms));
  EXPECT_TRUE(warn_once("test: cannot connect", 10ms));
  EXPECT_FALSE(warn_once("test: sentinels gave nothing", 10ms));
  EXPECT_FALSE(warn_once("test: cannot connect", 10ms));
  warned_recovered();
  EXPECT_TRUE(warn_once("test: sentinels gave nothing", 10ms));
  // Bounded: lines past the limit push the oldest out, which may then be logged again.
  for (int i = 0; i < 40; ++i) {
    EXPECT_TRUE(warn_once("test: line " + std::to_string(i), 10ms));
  }
  EXPECT_TRUE(warn_once("test: sentinels gave nothing", 10ms));
  warned_recovered();
}

}  // namespace
}  // namespace tlsfront::cluster
