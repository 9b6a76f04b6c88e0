// The pure Redis Cluster pieces: CRC16 and key slots against Redis's documented values, the
// CLUSTER SLOTS parser on good and bad replies, MOVED/ASK parsing and command routing.
#include "cluster/cluster_slots.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace tlsfront::cluster {
namespace {

redis_reply integer(long long v) {
  redis_reply r;
  r.type = redis_reply::kind::integer;
  r.integer = v;
  return r;
}
redis_reply string(std::string s) {
  redis_reply r;
  r.type = redis_reply::kind::string;
  r.str = std::move(s);
  return r;
}
redis_reply array(std::vector<redis_reply> e) {
  redis_reply r;
  r.type = redis_reply::kind::array;
  r.elements = std::move(e);
  return r;
}
redis_reply node(std::string ip, long long port) {
  return array({string(std::move(ip)), integer(port), string("id")});
}
redis_reply range(long long first, long long last, std::vector<redis_reply> nodes) {
  std::vector<redis_reply> e = {integer(first), integer(last)};
  for (auto& n : nodes) {
    e.push_back(std::move(n));
  }
  return array(std::move(e));
}

TEST(ClusterSlots, Crc16AndKeySlotsMatchRedis) {
  EXPECT_EQ(crc16("123456789"), 0x31C3);  // the CRC16/XMODEM check value Redis's spec gives
  EXPECT_EQ(key_slot("foo"), 12182);      // CLUSTER KEYSLOT foo
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("{user1000}.followers"));
  EXPECT_EQ(key_slot("{user1000}.following"), key_slot("user1000"));
  EXPECT_EQ(key_slot("foo{}{bar}"), crc16("foo{}{bar}") % 16384);  // an empty tag: whole key
  EXPECT_EQ(key_slot("foo{{bar}}zap"), key_slot("{bar"));          // the first '{' to the first '}'
  EXPECT_EQ(key_slot("foo{bar}{zap}"), key_slot("bar"));
  // tlsfront's revocation keys share one slot whatever the prefix (without braces).
  EXPECT_EQ(key_slot("tlsfront:{rv}:h"), key_slot("edge-a:{rv}:purge_keys"));
}

TEST(ClusterSlots, ASlotMapIsRead) {
  const redis_endpoint asked{"10.0.0.9", 7000};
  std::string why;
  auto m = parse_cluster_slots(array({range(0, 5460, {node("127.0.0.1", 7001), node("", 7004)}),
                                      range(5461, 16383, {node("::1", 7002)})}),
                               asked, why);
  ASSERT_TRUE(m) << why;
  ASSERT_EQ(m->size(), 2u);
  EXPECT_EQ((*m)[0].first, 0);
  EXPECT_EQ((*m)[0].last, 5460);
  EXPECT_EQ((*m)[0].master.str(), "127.0.0.1:7001");
  ASSERT_EQ((*m)[0].replicas.size(), 1u);
  EXPECT_EQ((*m)[0].replicas[0].str(), "10.0.0.9:7004");  // empty address: the node asked
  EXPECT_EQ((*m)[1].master.host, "::1");
}

TEST(ClusterSlots, BadSlotMapsAreRefusedWithTheReason) {
  const redis_endpoint asked{"127.0.0.1", 7000};
  struct bad_case {
    redis_reply reply;
    const char* why;
  };
  redis_reply err;
  err.type = redis_reply::kind::error;
  err.str = "ERR This instance has cluster support disabled";
  const bad_case cases[] = {
      {err, "cluster support disabled"},
      {string("nope"), "not an array"},
      {array({}), "no slot assigned"},
      {array({integer(3)}), "not [first, last, master"},
      {array({range(0, 16384, {node("127.0.0.1", 7001)})}), "outside 0..16383"},
      {array({range(-1, 10, {node("127.0.0.1", 7001)})}), "outside 0..16383"},
      {array({range(10, 5, {node("127.0.0.1", 7001)})}), "outside 0..16383"},
      {array({range(0, 10, {node("127.0.0.1", 7001)}), range(10, 20, {node("127.0.0.1", 7002)})}),
       "slot 10 twice"},
      {array({range(0, 10, {node("redis.example", 7001)})}), "not an IP literal"},
      {array({range(0, 10, {node("127.0.0.1", 0)})}), "not in 1..65535"},
      {array({range(0, 10, {node("127.0.0.1", 70000)})}), "not in 1..65535"},
      {array({range(0, 10, {array({integer(1), integer(2)})})}), "not [address, port"},
      {array({range(0, 10, {node("127.0.0.1", 7001), string("x")})}), "not [address, port"},
  };
  for (const bad_case& c : cases) {
    std::string why;
    EXPECT_FALSE(parse_cluster_slots(c.reply, asked, why)) << c.why;
    EXPECT_NE(why.find(c.why), std::string::npos) << why;
  }
}

TEST(ClusterSlots, RedirectionsAreParsedAndOtherErrorsAreNot) {
  auto m = parse_redirect("MOVED 3999 127.0.0.1:6381", "10.0.0.1");
  ASSERT_TRUE(m);
  EXPECT_FALSE(m->ask);
  EXPECT_EQ(m->slot, 3999);
  EXPECT_EQ(m->to.str(), "127.0.0.1:6381");
  auto a = parse_redirect("ASK 16383 ::1:7002", "10.0.0.1");
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->ask);
  EXPECT_EQ(a->to.host, "::1");
  EXPECT_EQ(a->to.port, 7002);
  auto same_host = parse_redirect("MOVED 1 :7003", "10.0.0.1");  // endpoint unknown to Redis
  ASSERT_TRUE(same_host);
  EXPECT_EQ(same_host->to.str(), "10.0.0.1:7003");
  for (const char* bad : {"ERR wrong type", "MOVED", "MOVED 16384 127.0.0.1:1",
                          "MOVED x 127.0.0.1:1", "MOVED 1 127.0.0.1", "MOVED 1 127.0.0.1:0",
                          "MOVED 1 127.0.0.1:65536", "ASK 1 host.example:1", "MOVED 1 127.0.0.1:",
                          "MOVED 123456 127.0.0.1:1", "TRYAGAIN Multiple keys"}) {
    EXPECT_FALSE(parse_redirect(bad, "10.0.0.1")) << bad;
  }
}

TEST(ClusterSlots, CommandsGoToTheirKeysSlot) {
  using k = command_route::kind;
  EXPECT_EQ(route_of({"GET", "foo"}).type, k::slot);
  EXPECT_EQ(route_of({"GET", "foo"}).slot, 12182);
  EXPECT_EQ(route_of({"SET", "foo", "v", "PX", "10"}).slot, 12182);
  EXPECT_EQ(route_of({"EVAL", "return 1", "2", "{rv}:h", "{rv}:gone", "a"}).slot,
            key_slot("{rv}:h"));
  EXPECT_EQ(route_of({"EVAL", "return 1", "0"}).type, k::any);
  EXPECT_EQ(route_of({"PUBLISH", "chan", "msg"}).type, k::any);
  EXPECT_EQ(route_of({"PING"}).type, k::any);
  EXPECT_EQ(route_of({"SCAN", "0"}).type, k::per_node);
  EXPECT_EQ(route_of({"DEL", "{a}1", "{a}2"}).type, k::slot);  // one slot: one command
  EXPECT_EQ(route_of({"DEL", "a", "b"}).type, k::split);
  EXPECT_EQ(route_of({"unlink", "a", "b"}).type, k::split);
  EXPECT_EQ(route_of({"GET", "a", "b"}).type, k::slot);  // not a multi-key command
}

}  // namespace
}  // namespace tlsfront::cluster
