// The fleet store on a Redis Cluster: three masters with a replica each (real redis-server
// nodes in cluster mode), two tlsfront instances given the nodes as seeds. Sessions spread
// over every master resume across the instances, TLS 1.3 tickets too; the slots of the ticket
// key list and of the revocation keys are migrated while a client loop runs (ASK, then MOVED)
// with no failed handshake; a killed master is replaced by its replica and sharing resumes
// without a restart, the key list intact; a revocation reaches every instance whichever node
// it was written and heard through; seeds that are no cluster leave an instance serving alone,
// logging once, until the cluster appears.
#include "support/redis_cluster.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cluster/cluster_slots.h"
#include "core/hex.h"
#include "integration/harness.h"
#include "support/redis_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

using namespace std::chrono_literals;

// The sum of every series of a metric family (e.g. one per cluster node).
double family_sum(proxy_instance& p, const std::string& name) {
  std::istringstream in(p.admin_get("/metrics"));
  double sum = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with(name + "{") || line.starts_with(name + " ")) {
      sum += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return sum;
}

class RedisClusterTest : public ::testing::Test {
 public:
  void SetUp() override {
    dir_ = make_temp_dir();
    secret_file_ = write_fleet_secret(dir_);
    backend_ = std::make_unique<echo_backend>(dir_);
  }

  std::string config(const std::string& seeds) const {
    return default_config(backend_->address(), "", "", 2) + "[cluster]\ncluster_nodes = [" + seeds +
           "]\nsecret_file = \"" + secret_file_ +
           "\"\npoll_interval = \"200ms\"\nconnect_timeout = \"300ms\"\n"
           "command_timeout = \"500ms\"\nlookup_timeout = \"300ms\"\n[tickets]\n"
           "publish_ahead = \"1s\"\n";
  }

  struct fleet {
    redis_cluster cluster;
    std::unique_ptr<proxy_instance> a, b;
    explicit fleet(const RedisClusterTest& t) {
      if (!cluster.created()) {
        return;
      }
      // Different seed orders: the instances' subscribers listen on different nodes.
      std::string reversed;
      for (std::size_t i = cluster.nodes.size(); i-- > 0;) {
        reversed +=
            std::string(reversed.empty() ? "" : ", ") + "\"" + cluster.nodes[i]->address() + "\"";
      }
      a = std::make_unique<proxy_instance>(t.config(cluster.seeds()), make_temp_dir());
      b = std::make_unique<proxy_instance>(t.config(reversed), make_temp_dir());
      for (proxy_instance* p : {a.get(), b.get()}) {
        EXPECT_GE(p->metric_reaching("tlsfront_fleet_revocation_resyncs_total", 1), 1);
      }
      expect_shared_ticket_keys(*a, *b);
    }
    bool ok() const { return cluster.created() && a && b; }
    redis_server& owner_of(const std::string& key) {
      redis_server* o = cluster.owner_of(cluster::key_slot(key), *cluster.masters().front());
      EXPECT_NE(o, nullptr) << key;
      return o ? *o : *cluster.nodes.front();
    }
  };

  std::string dir_, secret_file_;
  std::unique_ptr<echo_backend> backend_;
};

TEST_F(RedisClusterTest, SessionsSpreadOverEveryMasterResumeAcrossInstances) {
  fleet f(*this);
  ASSERT_TRUE(f.ok());
  for (int i = 0; i < 40; ++i) {
    tls_client c(f.a->port(), tls_client::session_id_only("a.example"));
    ASSERT_TRUE(c.connected()) << c.error();
    c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    ASSERT_EQ(response_status(c.read_response()), 200);
  }
  EXPECT_GE(f.a->metric_reaching("tlsfront_fleet_session_writes_total", 40), 40);
  // 40 random session IDs: every master holds some (a chance of missing one of three: 3e-7).
  EXPECT_TRUE(eventually(
      [&] {
        for (redis_server* m : f.cluster.masters()) {
          if (f.cluster.keys_on(*m) < 3) {
            return false;
          }
        }
        return true;
      },
      5s));
  expect_fleet_sharing(*f.a, *f.b, "on the cluster");
  expect_fleet_sharing(*f.b, *f.a, "on the cluster");
  EXPECT_EQ(f.a->metric("tlsfront_fleet_session_errors_total"), 0);
  EXPECT_EQ(f.a->metric("tlsfront_fleet_redis_connections_up"), 2);
  // Per node: each worker connected to each master, none to a replica.
  const std::string m0 = f.cluster.masters().front()->address();
  EXPECT_EQ(f.a->metric("tlsfront_fleet_cluster_node_connections_up{node=\"" + m0 + "\"}"), 2);
  EXPECT_EQ(f.a->metric("tlsfront_fleet_cluster_node_master{node=\"" + m0 + "\"}"), 1);
  EXPECT_EQ(family_sum(*f.a, "tlsfront_fleet_cluster_node_connections_up"), 6);
  EXPECT_EQ(family_sum(*f.a, "tlsfront_fleet_cluster_node_master"), 3);
}

TEST_F(RedisClusterTest, MigratingTheKeyListAndRevocationSlotsUnderLoadFailsNoHandshake) {
  fleet f(*this);
  ASSERT_TRUE(f.ok());
  const std::string list_key = "tlsfront:ticket-keys";
  const std::string before = f.owner_of(list_key).cli({"GET", list_key});
  ASSERT_GT(before.size(), 80u);
  fleet_client_loop loop(f.a->port(), f.b->port());
  std::this_thread::sleep_for(300ms);
  // Each slot moves to the next master, as redis-cli --cluster reshard would move it, with
  // pauses that let the instances' key list polls (every 200 ms) meet each stage.
  for (const std::string& key : {list_key, std::string("tlsfront:{rv}:h")}) {
    const int slot = cluster::key_slot(key);
    redis_server& from = f.owner_of(key);
    std::vector<redis_server*> masters = f.cluster.masters();
    redis_server* to = masters[0] == &from ? masters[1] : masters[0];
    const std::string s = std::to_string(slot);
    EXPECT_EQ(to->cli({"CLUSTER", "SETSLOT", s, "IMPORTING", f.cluster.id_of(from)}), "OK\n");
    EXPECT_EQ(from.cli({"CLUSTER", "SETSLOT", s, "MIGRATING", f.cluster.id_of(*to)}), "OK\n");
    std::this_thread::sleep_for(500ms);
    std::istringstream keys(from.cli({"CLUSTER", "GETKEYSINSLOT", s, "100"}));
    for (std::string k; std::getline(keys, k);) {
      if (!k.empty()) {
        EXPECT_EQ(from.cli({"MIGRATE", "127.0.0.1", std::to_string(to->port()), k, "0", "5000"}),
                  "OK\n");
      }
    }
    std::this_thread::sleep_for(800ms);  // ASK: the keys are on the target, the slot not yet
    for (redis_server* m : masters) {
      m->cli({"CLUSTER", "SETSLOT", s, "NODE", f.cluster.id_of(*to)});
    }
    std::this_thread::sleep_for(800ms);  // MOVED for every client whose map is older
  }
  loop.stop();
  EXPECT_EQ(loop.failed.load(), 0)
      << "handshakes or requests failed during the migration; first: " << loop.first_failure();
  EXPECT_GT(loop.done.load(), 20);
  EXPECT_GT(loop.resumed.load(), loop.done.load() / 2) << "the fleet store was not used";
  // The ASK stage lasts four key list polls; a MOVED needs a command sent on a map older than
  // the move, which the map reads every poll_interval make a matter of luck here (the unit
  // test ClusterRouter.AMovedSlot... shows it for certain): each is counted either way.
  for (proxy_instance* p : {f.a.get(), f.b.get()}) {
    EXPECT_GE(family_sum(*p, "tlsfront_fleet_cluster_ask_total"), 1) << p->log();
    std::printf("MOVED redirections seen: %.0f\n",
                family_sum(*p, "tlsfront_fleet_cluster_moved_total"));
  }
  // The list moved whole and is still the fleet's; revocations go through its new node.
  EXPECT_EQ(f.owner_of(list_key).cli({"GET", list_key}), before);
  EXPECT_EQ(current_key_name(*f.a), current_key_name(*f.b));
  expect_fleet_sharing(*f.a, *f.b, "after the migration");
  // A session made on A and resumed on B (so B holds it too), revoked on A: B hears it
  // through its own subscriber's node, whichever node A published through.
  const double written = f.a->metric("tlsfront_fleet_session_writes_total");
  tls_client c(f.a->port(), tls_client::session_id_only("a.example"));
  ASSERT_TRUE(c.connected());
  c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  c.read_response();
  auto s = c.session();
  f.a->metric_reaching("tlsfront_fleet_session_writes_total", written + 1);
  EXPECT_TRUE(eventually(
      [&] {
        tls_client r(f.b->port(), tls_client::session_id_only("a.example", s.get()));
        return r.connected() && r.resumed();
      },
      5s));
  unsigned len = 0;
  const std::uint8_t* raw = SSL_SESSION_get_id(s.get(), &len);
  const std::string id = core::to_hex(std::string_view(reinterpret_cast<const char*>(raw), len));
  const std::string resp = f.a->admin_request("DELETE", "/sessions/" + id);
  EXPECT_EQ(response_status(resp), 200) << resp;
  EXPECT_NE(resp.find("\"fleet\":\"accepted\""), std::string::npos) << resp;
  EXPECT_TRUE(eventually(
      [&] {
        tls_client r(f.b->port(), tls_client::session_id_only("a.example", s.get()));
        return r.connected() && !r.resumed();
      },
      5s))
      << "a session revoked on A still resumes on B";
}

TEST_F(RedisClusterTest, AKilledMasterIsReplacedByItsReplicaAndSharingResumes) {
  fleet f(*this);
  ASSERT_TRUE(f.ok());
  expect_fleet_sharing(*f.a, *f.b, "before the failover");
  const std::string list_key = "tlsfront:ticket-keys";
  redis_server& victim = f.owner_of(list_key);
  const std::string before = victim.cli({"GET", list_key});
  const std::string current = current_key_name(*f.a);
  EXPECT_EQ(victim.cli({"WAIT", "1", "2000"}), "1\n");  // on its replica before it goes
  fleet_client_loop loop(f.a->port(), f.b->port());
  std::this_thread::sleep_for(300ms);
  victim.kill();
  EXPECT_TRUE(
      eventually([&] { return f.cluster.masters().size() == 3 && f.cluster.wait_ok(0ms); }, 30s))
      << "the replica was not promoted";
  for (proxy_instance* p : {f.a.get(), f.b.get()}) {
    EXPECT_TRUE(eventually(
        [&] {
          return family_sum(*p, "tlsfront_fleet_cluster_node_connections_up") == 6 &&
                 family_sum(*p, "tlsfront_fleet_cluster_promotions_total") >= 1;
        },
        20s))
        << p->admin_get("/metrics") << p->log();
  }
  std::this_thread::sleep_for(300ms);
  loop.stop();
  EXPECT_EQ(loop.failed.load(), 0)
      << "handshakes or requests failed during the failover; first: " << loop.first_failure();
  EXPECT_GT(loop.done.load(), 20);
  expect_fleet_sharing(*f.a, *f.b, "after the failover");
  expect_fleet_sharing(*f.b, *f.a, "after the failover");
  EXPECT_EQ(f.owner_of(list_key).cli({"GET", list_key}), before)
      << "the fleet's key list changed in the failover";
  EXPECT_EQ(current_key_name(*f.a), current);
  EXPECT_EQ(current_key_name(*f.b), current);
}

TEST_F(RedisClusterTest, SeedsThatAreNoClusterMeanServingAloneLoggingOnceAndTryingOn) {
  redis_server plain;  // not in cluster mode: CLUSTER SLOTS is refused
  const int later = free_cluster_port();
  proxy_instance a(
      config("\"127.0.0.1:" + std::to_string(later) + "\", \"" + plain.address() + "\""),
      make_temp_dir());
  for (int i = 0; i < 3; ++i) {
    tls_client c(a.port());
    ASSERT_TRUE(c.connected()) << c.error();
    c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(response_status(c.read_response()), 200);
  }
  std::this_thread::sleep_for(1500ms);  // several rounds (backoff from 100 ms)
  const std::string log = a.log();
  EXPECT_EQ(occurrences(log, "no node gave the slot map"), 1u) << log;
  EXPECT_NE(log.find("cluster support disabled"), std::string::npos) << log;
  EXPECT_EQ(a.metric("tlsfront_fleet_redis_connections_up"), 0);
  // A one-node cluster comes up at the first seed: the instance joins without a restart.
  redis_server node("", {"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}, later);
  EXPECT_EQ(node.cli({"CLUSTER", "ADDSLOTSRANGE", "0", "16383"}), "OK\n");
  EXPECT_TRUE(eventually([&] { return a.metric("tlsfront_fleet_redis_connections_up") == 2; }, 15s))
      << a.log();
  EXPECT_TRUE(eventually([&] { return a.metric("tlsfront_fleet_ticket_keys_shared") == 1; }, 15s))
      << a.log();
}

}  // namespace
}  // namespace tlsfront::test
