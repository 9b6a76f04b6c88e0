// cluster/revocation: the commands a fleet-wide revocation sends (DEL of the session's L2 copies
// under every context, then PUBLISH of its hex ID), and the round trip through a real
// redis-server: the copies are gone, the subscriber drops the ID it heard and counts it, and a
// message that is not a hex ID is ignored. The io_context is driven by the test thread;
// `run_until` bounds every wait (no timing is asserted).
#include "cluster/revocation.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

#include "cluster/session_store.h"
#include "core/hex.h"
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
  // No context (no listener yet): nothing to delete, the fleet still hears of it.
  EXPECT_EQ(revocation_commands("p:", {}, id).front(), std::vector<std::string>{"DEL"});
}

TEST(Revocation, RoundTripThroughRedisDropsTheIdAndIgnoresGarbage) {
  test::redis_server redis;
  ASSERT_TRUE(redis.running());
  redis_options o;
  o.port = static_cast<std::uint16_t>(redis.port());
  o.connect_timeout = 500ms;
  o.command_timeout = 500ms;
  o.reconnect_min = 20ms;
  o.reconnect_max = 100ms;
  boost::asio::io_context ioc;
  redis_client publisher(ioc, o);
  redis_client listener(ioc, o);
  std::vector<std::string> dropped;
  revocation_subscriber sub(listener, "t:", [&](std::string_view id) {
    dropped.emplace_back(id);
    return std::size_t{1};
  });
  core::metrics_registry metrics;
  sub.register_metrics(metrics);
  publisher.start();
  listener.start();
  ASSERT_TRUE(test::run_until(ioc, [&] { return publisher.ready() && listener.ready(); }));
  // The subscription is sent once the listener is ready; wait until Redis counts it.
  ASSERT_TRUE(test::run_until(ioc, [&] {
    return redis.cli({"PUBSUB", "NUMSUB", "t:revoke"}).find("\n1") != std::string::npos;
  }));

  const std::string id = "session-42";
  const std::string key = session_store::redis_key("t:", tls::remote_session_key(5, id));
  redis.cli({"SET", key, "sealed"});
  // Garbage first: not hex, and empty. Neither reaches drop().
  redis.cli({"PUBLISH", "t:revoke", "not-hex!"});
  redis.cli({"PUBLISH", "t:revoke", ""});
  send_revocation(publisher, revocation_commands("t:", {5}, id));
  ASSERT_TRUE(test::run_until(ioc, [&] { return !dropped.empty(); }));
  EXPECT_EQ(dropped, std::vector<std::string>{id});
  EXPECT_EQ(sub.received(), 1u);
  EXPECT_EQ(redis.cli({"EXISTS", key}), "0\n") << "the L2 copy must be gone";
  EXPECT_NE(metrics.render().find("tlsfront_fleet_revocations_received_total 1"),
            std::string::npos);
}

}  // namespace
}  // namespace tlsfront::cluster
