// redis_client in cluster mode against a real Redis Cluster (three masters, a replica each):
// keys over every slot, multi-key commands split per slot, SCAN per master, a slot moved under
// the client (MOVED) and a slot half migrated (ASK), bad seeds. The io_context is driven by the
// test thread; `run_until` bounds every wait.
#include "cluster/cluster_router.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "cluster/cluster_slots.h"
#include "cluster/redis_client.h"
#include "support/redis_cluster.h"
#include "support/redis_server.h"
#include "support/run_until.h"
#include "unit/cluster/redis_call.h"

namespace tlsfront::cluster {
namespace {

using namespace std::chrono_literals;
using test::redis_cluster;
using test::redis_server;

using result = redis_result;

class ClusterRouter : public ::testing::Test {
 protected:
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return test::run_until(ioc_, done, limit);
  }
  static redis_options opts_for(const std::vector<redis_endpoint>& seeds) {
    redis_options o;
    o.cluster_nodes = seeds;
    o.connect_timeout = 500ms;
    o.command_timeout = 500ms;
    o.reconnect_min = 20ms;
    o.reconnect_max = 200ms;
    o.node_stats = std::make_shared<cluster_stats>();
    return o;
  }
  static std::vector<redis_endpoint> seeds_of(const redis_cluster& c, std::size_t n) {
    std::vector<redis_endpoint> out;
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back({"127.0.0.1", static_cast<std::uint16_t>(c.nodes[i]->port())});
    }
    return out;
  }
  result call(redis_client& c, std::vector<std::string> argv) {
    return redis_call(ioc_, c, std::move(argv));
  }
  // Moves `slot` (and its keys) from its owner to `to`, the way redis-cli --cluster reshard
  // does: IMPORTING on the target, MIGRATING on the source, MIGRATE the keys; `finish` then
  // assigns the slot to the target on every master.
  static void start_migration(redis_cluster& c, int slot, redis_server& from, redis_server& to) {
    EXPECT_EQ(to.cli({"CLUSTER", "SETSLOT", std::to_string(slot), "IMPORTING", c.id_of(from)}),
              "OK\n");
    EXPECT_EQ(from.cli({"CLUSTER", "SETSLOT", std::to_string(slot), "MIGRATING", c.id_of(to)}),
              "OK\n");
  }
  static void migrate_key(redis_server& from, redis_server& to, const std::string& key) {
    EXPECT_EQ(from.cli({"MIGRATE", "127.0.0.1", std::to_string(to.port()), key, "0", "5000"}),
              "OK\n");
  }
  static void finish_migration(redis_cluster& c, int slot, redis_server& to) {
    for (redis_server* m : c.masters()) {
      m->cli({"CLUSTER", "SETSLOT", std::to_string(slot), "NODE", c.id_of(to)});
    }
  }

  static std::uint64_t redirects(const redis_options& o) {
    std::uint64_t n = 0;
    for (const auto& [name, v] : o.node_stats->nodes()) {
      n += v.moved + v.ask;
    }
    return n;
  }

  boost::asio::io_context ioc_;
};

TEST_F(ClusterRouter, KeysOverEverySlotReachTheirMastersAndMultiKeyCommandsAreSplit) {
  redis_cluster c;
  ASSERT_TRUE(c.created());
  redis_options o = opts_for(seeds_of(c, 1));  // one seed is enough: the map names the rest
  redis_client client(ioc_, o);
  client.start();
  ASSERT_TRUE(run_until([&] { return client.ready(); })) << client.last_error();
  EXPECT_TRUE(client.cluster_mode());
  EXPECT_EQ(client.masters().size(), 3u);
  std::vector<std::string> keys;
  for (int i = 0; i < 300; ++i) {
    keys.push_back("tlsfront:s:" + std::to_string(i));
    auto r = call(client, {"SET", keys.back(), "v" + std::to_string(i), "PX", "60000"});
    ASSERT_FALSE(r.ec) << r.ec.message();
    ASSERT_TRUE(r.reply.is_ok()) << r.reply.str;
  }
  for (redis_server* m : c.masters()) {
    EXPECT_GT(c.keys_on(*m), 50) << "keys did not spread over every master";
  }
  for (int i = 0; i < 300; i += 37) {
    auto r = call(client, {"GET", keys[i]});
    EXPECT_EQ(r.reply.str, "v" + std::to_string(i));
  }
  // EXISTS over every key: one command per slot, the counts summed.
  std::vector<std::string> exists = {"EXISTS"};
  exists.insert(exists.end(), keys.begin(), keys.end());
  auto e = call(client, exists);
  ASSERT_EQ(e.reply.type, redis_reply::kind::integer) << e.reply.str;
  EXPECT_EQ(e.reply.integer, 300);
  // SCAN reads one node: each master in turn finds its own keys, 300 in all.
  std::set<std::string> seen;
  for (const redis_endpoint& m : client.masters()) {
    std::string cursor = "0";
    do {
      std::optional<result> r;
      client.command_at(m, {"SCAN", cursor, "MATCH", "tlsfront:s:*", "COUNT", "1000"},
                        [&](const error_code& ec, const redis_reply& rep) {
                          r = result{ec, rep};
                        });
      ASSERT_TRUE(run_until([&] { return r.has_value(); }));
      ASSERT_EQ(r->reply.elements.size(), 2u);
      cursor = r->reply.elements[0].str;
      for (const auto& k : r->reply.elements[1].elements) {
        seen.insert(k.str);
      }
    } while (cursor != "0");
  }
  EXPECT_EQ(seen.size(), 300u);
  // Sent without a node it could only read one: refused with a clear error.
  auto scan = call(client, {"SCAN", "0"});
  EXPECT_TRUE(scan.reply.is_error());
  EXPECT_NE(scan.reply.str.find("command_at"), std::string::npos);
  std::vector<std::string> del = {"DEL"};
  del.insert(del.end(), keys.begin(), keys.begin() + 100);
  auto d = call(client, del);
  EXPECT_EQ(d.reply.integer, 100);
  EXPECT_EQ(call(client, {"PUBLISH", "tlsfront:revoke", "x"}).reply.type,
            redis_reply::kind::integer);
  // Every master is in the per-node view (replicas too once CLUSTER SLOTS lists them: Redis
  // 7.0 leaves out a replica whose replication offset is still 0), connected once.
  const auto nodes = o.node_stats->nodes();
  EXPECT_GE(nodes.size(), 3u);
  int masters = 0;
  for (const auto& [name, v] : nodes) {
    masters += v.master ? 1 : 0;
    EXPECT_EQ(v.connections_up, v.master ? 1 : 0) << name;
  }
  EXPECT_EQ(masters, 3);
}

TEST_F(ClusterRouter, AMovedSlotIsFollowedAndAHalfMigratedSlotIsAskedOfItsTarget) {
  redis_cluster c;
  ASSERT_TRUE(c.created());
  redis_options o = opts_for(seeds_of(c, 6));
  o.map_refresh = 1h;  // only redirections tell the client of the moves
  redis_client client(ioc_, o);
  client.start();
  ASSERT_TRUE(run_until([&] { return client.ready(); })) << client.last_error();
  const std::string a = "{mig}a", b = "{mig}b";
  const int slot = key_slot(a);
  ASSERT_TRUE(call(client, {"SET", a, "1"}).reply.is_ok());
  ASSERT_TRUE(call(client, {"SET", b, "2"}).reply.is_ok());
  redis_server* from = c.owner_of(slot, *c.nodes[0]);
  ASSERT_NE(from, nullptr);
  redis_server* to = nullptr;
  for (redis_server* m : c.masters()) {
    if (m != from) {
      to = m;
      break;
    }
  }
  ASSERT_NE(to, nullptr);
  // Half way: `a` moved, `b` not. The source answers ASK for `a`; the client asks the target.
  start_migration(c, slot, *from, *to);
  migrate_key(*from, *to, a);
  auto ga = call(client, {"GET", a});
  EXPECT_FALSE(ga.ec);
  EXPECT_EQ(ga.reply.str, "1") << ga.reply.str;
  EXPECT_EQ(call(client, {"GET", b}).reply.str, "2");
  EXPECT_GE(redirects(o), 1u);
  const auto asked = o.node_stats->nodes()[to->address()];
  EXPECT_GE(asked.ask, 1u);
  EXPECT_EQ(asked.moved, 0u);
  // An ASK leaves the map as it is: `b` is still read at the source.
  // Done: the slot belongs to the target. The client's map is stale: MOVED, followed.
  migrate_key(*from, *to, b);
  finish_migration(c, slot, *to);
  auto gb = call(client, {"GET", b});
  EXPECT_EQ(gb.reply.str, "2") << gb.reply.str;
  EXPECT_GE(o.node_stats->nodes()[to->address()].moved, 1u);
  // The slot is re-routed at once (and the map read again): the next command goes straight.
  const std::uint64_t before = redirects(o);
  EXPECT_EQ(call(client, {"GET", a}).reply.str, "1");
  EXPECT_EQ(redirects(o), before);
  ASSERT_TRUE(run_until([&] { return o.node_stats->maps_read() >= 2; }));
}

// A master of the map that cannot be reached does not hold the client back: it becomes ready
// once every master's first attempt ended, the other masters' slots work, and that master's
// slots fail at once (not_connected) until the cluster promotes its replica.
TEST_F(ClusterRouter, AMasterDownAtStartLeavesTheOtherSlotsWorking) {
  redis_cluster c;
  ASSERT_TRUE(c.created());
  redis_server* dead = c.masters().front();
  dead->kill();  // the others still list it (cluster-node-timeout: 1 s)
  std::vector<redis_endpoint> seeds;
  for (const auto& n : c.nodes) {
    if (n.get() != dead) {
      seeds.push_back({"127.0.0.1", static_cast<std::uint16_t>(n->port())});
    }
  }
  redis_options o = opts_for(seeds);
  redis_client client(ioc_, o);
  client.start();
  ASSERT_TRUE(run_until([&] { return client.ready(); }, 10s)) << client.last_error();
  int ok = 0, down = 0;
  for (int i = 0; i < 60; ++i) {
    auto r = call(client, {"SET", "k" + std::to_string(i), "v"});
    if (r.reply.is_ok()) {
      ++ok;
    } else if (r.ec == make_error_code(redis_errc::not_connected) || r.reply.is_error()) {
      ++down;  // the dead master's slots (or CLUSTERDOWN once the others notice)
    }
  }
  EXPECT_EQ(ok + down, 60);
  // Once the replica is promoted the map is read again and every slot works.
  EXPECT_TRUE(run_until(
      [&] {
        for (int i = 0; i < 60; ++i) {
          if (!call(client, {"SET", "k" + std::to_string(i), "v"}).reply.is_ok()) {
            return false;
          }
        }
        return true;
      },
      30s));
  EXPECT_GE(o.node_stats->nodes().size(), 3u);
}

TEST_F(ClusterRouter, SeedsThatAreNoClusterLeaveTheClientNotReadyUntilOneIs) {
  redis_server plain;  // answers CLUSTER SLOTS with "cluster support disabled"
  const int later = test::free_port();
  redis_options o = opts_for({{"127.0.0.1", static_cast<std::uint16_t>(later)},
                              {"127.0.0.1", static_cast<std::uint16_t>(plain.port())}});
  redis_client client(ioc_, o);
  client.start();
  run_until([] { return false; }, 500ms);
  EXPECT_FALSE(client.ready());
  auto r = call(client, {"GET", "x"});
  EXPECT_EQ(r.ec, make_error_code(redis_errc::not_connected));
  EXPECT_EQ(o.node_stats->maps_read(), 0u);
}

TEST_F(ClusterRouter, AClientMadeOnAClusterJoinsWhenTheSeedAnswers) {
  const int port = test::free_cluster_port();
  redis_options o = opts_for({{"127.0.0.1", static_cast<std::uint16_t>(port)}});
  redis_client client(ioc_, o);
  client.start();
  run_until([] { return false; }, 300ms);
  ASSERT_FALSE(client.ready());
  // A one-node cluster appears at the seed's address.
  redis_server node("", {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}, port);
  std::vector<std::string> add = {"CLUSTER", "ADDSLOTSRANGE", "0", "16383"};
  EXPECT_EQ(node.cli(add), "OK\n");
  ASSERT_TRUE(run_until([&] { return client.ready(); }, 15s)) << client.last_error();
  // The node may say CLUSTERDOWN until it has checked its new slots: not for long.
  std::string last;
  EXPECT_TRUE(run_until(
      [&] {
        auto r = call(client, {"SET", "k", "v"});
        last = r.reply.str;
        return r.reply.is_ok();
      },
      10s))
      << last;
}

}  // namespace
}  // namespace tlsfront::cluster
