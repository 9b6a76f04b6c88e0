// The fleet store on Redis Sentinel: a master, a replica and three real redis-sentinel
// processes (quorum 2), two tlsfront instances asking the sentinels for the master. Sessions and
// tickets resume across the instances; the master is killed (or handed over with SENTINEL
// FAILOVER) while a client loop runs; sharing resumes on the promoted replica without a
// restart, no handshake fails, and the ticket key list written before the failover is still the
// fleet's. With no sentinel reachable an instance serves alone, logs once and keeps trying.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "integration/harness.h"
#include "support/redis_cluster.h"
#include "support/redis_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

using namespace std::chrono_literals;

// The value after `field` in redis-cli's line-per-item output of SENTINEL MASTER, or "".
std::string sentinel_field(const redis_server& s, const std::string& field) {
  const std::string out = s.cli({"SENTINEL", "MASTER", "edge"});
  const std::string key = field + "\n";
  const std::size_t at = out.find(key);
  if (at == std::string::npos) {
    return "";
  }
  const std::size_t from = at + key.size();
  return out.substr(from, out.find('\n', from) - from);
}

// A master, its replica, three sentinels that know each other and the replica, the echo
// backend and two tlsfront instances (tickets from the fleet, two workers each).
class SentinelTest : public ::testing::Test {
 public:
  void SetUp() override {
    dir_ = make_temp_dir();
    secret_file_ = write_fleet_secret(dir_);
  }

  std::string config(const std::string& backend, const std::string& sentinels) const {
    return default_config(backend, "", "", 2) + "[cluster]\nsentinels = [" + sentinels +
           "]\nmaster_name = \"edge\"\nsecret_file = \"" + secret_file_ +
           "\"\npoll_interval = \"200ms\"\nconnect_timeout = \"300ms\"\n"
           "command_timeout = \"500ms\"\nlookup_timeout = \"300ms\"\n[tickets]\n"
           "publish_ahead = \"1s\"\n";
  }

  struct fleet {
    redis_server master;
    redis_server replica;
    std::vector<std::unique_ptr<redis_server>> sentinels;
    std::unique_ptr<echo_backend> backend;
    std::unique_ptr<proxy_instance> a, b;

    explicit fleet(const SentinelTest& t)
        : master("", {"--repl-diskless-sync-delay", "0"}),
          replica("", {"--replicaof", "127.0.0.1", std::to_string(master.port())}) {
      // Redis replicates asynchronously: what a failover keeps is what reached the replica, so
      // the replica's first sync completes before anything is written.
      EXPECT_TRUE(eventually(
          [&] {
            return replica.cli({"INFO", "replication"}).find("master_link_status:up") !=
                   std::string::npos;
          },
          20s))
          << "the replica never synced";
      std::string list;
      for (int i = 0; i < 3; ++i) {
        sentinels.push_back(std::make_unique<redis_server>(sentinel_config{master.port()}));
        list += std::string(i ? ", " : "") + "\"" + sentinels.back()->address() + "\"";
      }
      // A failover needs the sentinels to know each other (quorum and leader election) and the
      // replica: they learn both from the master within a few seconds.
      const bool known = eventually(
          [&] {
            for (const auto& s : sentinels) {
              if (sentinel_field(*s, "num-other-sentinels") != "2" ||
                  sentinel_field(*s, "num-slaves") != "1") {
                return false;
              }
            }
            return true;
          },
          30s);
      EXPECT_TRUE(known) << "the sentinels never found each other and the replica";
      backend = std::make_unique<echo_backend>(t.dir_);
      a = std::make_unique<proxy_instance>(t.config(backend->address(), list), make_temp_dir());
      b = std::make_unique<proxy_instance>(t.config(backend->address(), list), make_temp_dir());
      expect_shared_ticket_keys(*a, *b);
    }
  };

  std::string dir_, secret_file_;
};

// The key list in Redis and the key both instances seal under, before and after: the same.
struct key_state {
  std::string list;
  std::string current;
  double version = 0;
};
key_state keys_of(const redis_server& r, proxy_instance& a) {
  return {r.cli({"GET", "tlsfront:ticket-keys"}), current_key_name(a),
          a.metric("tlsfront_fleet_ticket_keys_version")};
}

TEST_F(SentinelTest, AKilledMasterIsFollowedToThePromotedReplicaWithNoFailedHandshake) {
  fleet f(*this);
  expect_fleet_sharing(*f.a, *f.b, "before the failover");
  const key_state before = keys_of(f.master, *f.a);
  ASSERT_GT(before.list.size(), 80u);
  // Everything written so far is on the replica before the master goes.
  EXPECT_EQ(f.master.cli({"WAIT", "1", "2000"}), "1\n");
  fleet_client_loop loop(f.a->port(), f.b->port());
  std::this_thread::sleep_for(300ms);
  f.master.kill();
  EXPECT_TRUE(eventually([&] { return role_of(f.replica) == "master"; }, 30s))
      << "the sentinels did not promote the replica";
  // Every worker connection (two per instance) is on the new master.
  for (proxy_instance* p : {f.a.get(), f.b.get()}) {
    EXPECT_TRUE(eventually(
        [&] {
          return p->metric("tlsfront_fleet_redis_connections_up") == 2 &&
                 p->metric("tlsfront_fleet_redis_master_changes_total") >= 2;
        },
        20s))
        << p->log();
  }
  std::this_thread::sleep_for(300ms);
  loop.stop();
  EXPECT_EQ(loop.failed.load(), 0)
      << "handshakes or requests failed during the failover; first: " << loop.first_failure();
  EXPECT_GT(loop.done.load(), 20);
  expect_fleet_sharing(*f.a, *f.b, "after the failover");
  expect_fleet_sharing(*f.b, *f.a, "after the failover");
  const key_state after = keys_of(f.replica, *f.a);
  EXPECT_EQ(after.list, before.list) << "the fleet's key list changed in the failover";
  EXPECT_EQ(after.current, before.current);
  EXPECT_EQ(after.version, before.version);
  EXPECT_EQ(current_key_name(*f.b), before.current);
  EXPECT_NE(f.a->log_containing("now at " + f.replica.address()), "") << f.a->log();
}

TEST_F(SentinelTest, AHandedOverMasterIsLeftForTheNewOneWithoutABrokenConnection) {
  fleet f(*this);
  expect_fleet_sharing(*f.a, *f.b, "before the hand-over");
  const key_state before = keys_of(f.master, *f.a);
  EXPECT_EQ(f.master.cli({"WAIT", "1", "2000"}), "1\n");
  fleet_client_loop loop(f.a->port(), f.b->port());
  // A graceful failover: the old master stays up and becomes a replica.
  EXPECT_EQ(f.sentinels[0]->cli({"SENTINEL", "FAILOVER", "edge"}), "OK\n");
  EXPECT_TRUE(eventually(
      [&] { return role_of(f.replica) == "master" && role_of(f.master) == "slave"; }, 30s));
  for (proxy_instance* p : {f.a.get(), f.b.get()}) {
    EXPECT_TRUE(eventually(
        [&] {
          return p->metric("tlsfront_fleet_redis_connections_up") == 2 &&
                 p->metric("tlsfront_fleet_redis_master_changes_total") >= 2 &&
                 p->metric("tlsfront_fleet_redis_switches_total") >= 1;
        },
        20s))
        << p->log();
  }
  loop.stop();
  EXPECT_EQ(loop.failed.load(), 0) << "first: " << loop.first_failure() << "\nA's log:\n"
                                   << f.a->log() << "\nB's log:\n"
                                   << f.b->log();
  // New sessions are written to the new master (the old one, a replica now, would refuse
  // them) and are shared.
  const double errors = f.a->metric("tlsfront_fleet_session_errors_total");
  expect_fleet_sharing(*f.a, *f.b, "after the hand-over");
  EXPECT_EQ(f.a->metric("tlsfront_fleet_session_errors_total"), errors);
  EXPECT_EQ(keys_of(f.replica, *f.a).list, before.list);
  EXPECT_EQ(keys_of(f.replica, *f.a).version, before.version);
}

TEST_F(SentinelTest, NoReachableSentinelMeansServingAloneLoggingOnceAndTryingOn) {
  redis_server not_a_sentinel;  // answers SENTINEL with an error
  const int later = free_port();
  echo_backend backend(dir_);
  proxy_instance a(config(backend.address(), "\"127.0.0.1:" + std::to_string(later) + "\", \"" +
                                                 not_a_sentinel.address() + "\""),
                   make_temp_dir());
  for (int i = 0; i < 3; ++i) {
    tls_client c(a.port());
    ASSERT_TRUE(c.connected()) << c.error();
    c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(response_status(c.read_response()), 200);
  }
  std::this_thread::sleep_for(1500ms);  // several rounds of asking (backoff from 100 ms)
  const std::string log = a.log();
  EXPECT_EQ(occurrences(log, "no sentinel gave"), 1u) << log;
  EXPECT_NE(log.find("ERR unknown command"), std::string::npos) << log;
  EXPECT_EQ(a.metric("tlsfront_fleet_redis_connections_up"), 0);
  // A sentinel comes up where the list said: the instance joins without a restart.
  redis_server master;
  redis_server sentinel(sentinel_config{master.port(), "edge", 1, later});
  EXPECT_TRUE(eventually([&] { return a.metric("tlsfront_fleet_redis_connections_up") == 2; }, 15s))
      << a.log();
  EXPECT_TRUE(eventually([&] { return a.metric("tlsfront_fleet_sentinel_connected") == 1; }, 15s));
}

}  // namespace
}  // namespace tlsfront::test
