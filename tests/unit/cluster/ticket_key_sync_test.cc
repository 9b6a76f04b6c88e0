// ticket_key_sync: the fleet's ticket key list. The format refuses anything malformed; the
// schedule matches a memory ring's; two instances on a real redis-server with a manual clock
// always seal under a key the other instance held a step earlier, across forced rotations,
// a Redis outage (each falls back to keys of its own, counted) and a list that does not open.
#include "cluster/ticket_key_sync.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "cluster/fleet_key_source.h"
#include "core/clock.h"
#include "core/hex.h"
#include "support/redis_server.h"
#include "support/run_until.h"

namespace tlsfront::cluster {
namespace {

using namespace std::chrono_literals;
using key_list = ticket_key_sync::key_list;
using test::redis_server;

const char kSecret[] = "fleet-secret-for-unit-tests-0123456789";

tls::ticket_key_options fleet_opts() {
  tls::ticket_key_options o;
  o.source = tls::ticket_key_options::source_kind::fleet;
  o.rotation = 10s;
  o.lifetime = 10s;
  o.publish_ahead = 1s;
  o.keys_ahead = 1;
  return o;
}

std::string name_of(const tls::ticket_key& k) {
  return core::to_hex(std::string_view(reinterpret_cast<const char*>(k.name.data()), 16));
}

TEST(TicketKeyList, EncodesAndDecodesEveryField) {
  core::manual_clock clock;
  tls::ticket_key_ring ring(fleet_opts(), clock);
  key_list list;
  list.version = 0x0102030405060708ULL;
  for (int i = 0; i < 3; ++i) {
    list.keys.push_back(ring.new_key(1000 + i * 10));
  }
  list.keys[1].hmac_len = list.keys[1].aes_len = 16;
  key_list back;
  ASSERT_TRUE(ticket_key_sync::decode(ticket_key_sync::encode(list), back));
  EXPECT_EQ(back.version, list.version);
  ASSERT_EQ(back.keys.size(), 3u);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(back.keys[i].name, list.keys[i].name);
    EXPECT_EQ(back.keys[i].hmac_key, list.keys[i].hmac_key);
    EXPECT_EQ(back.keys[i].aes_key, list.keys[i].aes_key);
    EXPECT_EQ(back.keys[i].hmac_len, list.keys[i].hmac_len);
    EXPECT_EQ(back.keys[i].not_before, list.keys[i].not_before);
    EXPECT_EQ(back.keys[i].not_after, list.keys[i].not_after);
  }
}

TEST(TicketKeyList, RefusesMalformedLists) {
  core::manual_clock clock;
  tls::ticket_key_ring ring(fleet_opts(), clock);
  key_list list;
  list.keys = {ring.new_key(1000), ring.new_key(1010)};
  const std::string good = ticket_key_sync::encode(list);
  key_list out;
  out.version = 77;
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(ticket_key_sync::decode(good.substr(0, n), out)) << "truncated to " << n;
  }
  EXPECT_FALSE(ticket_key_sync::decode(good + "x", out)) << "trailing byte";
  auto changed = [&](std::size_t at, char to) {
    std::string b = good;
    b[at] = to;
    return b;
  };
  EXPECT_FALSE(ticket_key_sync::decode(changed(0, 2), out)) << "unknown format";
  EXPECT_FALSE(ticket_key_sync::decode(changed(10, 3), out)) << "count says 3, holds 2";
  EXPECT_FALSE(ticket_key_sync::decode(changed(10, 0), out)) << "count 0";
  EXPECT_FALSE(ticket_key_sync::decode(changed(11 + 80, 20), out)) << "HMAC key length 20";
  EXPECT_FALSE(ticket_key_sync::decode(changed(11 + 81, 0), out)) << "AES key length 0";
  key_list inverted = list;
  inverted.keys[0].not_after = inverted.keys[0].not_before;
  EXPECT_FALSE(ticket_key_sync::decode(ticket_key_sync::encode(inverted), out)) << "empty window";
  key_list twice = list;
  twice.keys[1].name = twice.keys[0].name;
  EXPECT_FALSE(ticket_key_sync::decode(ticket_key_sync::encode(twice), out)) << "same name twice";
  key_list many;
  for (std::size_t i = 0; i <= ticket_key_sync::kMaxKeys; ++i) {
    many.keys.push_back(ring.new_key(1000 + static_cast<std::int64_t>(i)));
  }
  EXPECT_FALSE(ticket_key_sync::decode(ticket_key_sync::encode(many), out)) << "too many keys";
  EXPECT_EQ(out.version, 77u) << "a refused list changed the output";
}

TEST(TicketKeyList, PlanSchedulesLikeAMemoryRing) {
  core::manual_clock clock;
  tls::ticket_key_ring ring(fleet_opts(), clock);  // rotation 10 s, lifetime 10 s
  const std::int64_t now = 1'000'000;
  key_list list;
  // Empty: one key, published `ahead` before it seals.
  EXPECT_TRUE(ticket_key_sync::plan(list, ring, now, false, 3));
  ASSERT_EQ(list.keys.size(), 1u);
  EXPECT_EQ(list.keys[0].not_before, now + 3);
  EXPECT_EQ(list.keys[0].not_after, now + 3 + 20);
  EXPECT_EQ(list.version, 1u);
  // Nothing due: unchanged, same version.
  EXPECT_FALSE(ticket_key_sync::plan(list, ring, now, false, 3));
  EXPECT_EQ(list.version, 1u);
  // Once it is current, the next one starts a rotation after it.
  EXPECT_TRUE(ticket_key_sync::plan(list, ring, now + 3, false, 3));
  ASSERT_EQ(list.keys.size(), 2u);
  EXPECT_EQ(list.keys[1].not_before, now + 13);
  // A forced rotation: a key starting `ahead` from now, whatever else is scheduled.
  EXPECT_TRUE(ticket_key_sync::plan(list, ring, now + 5, true, 3));
  ASSERT_EQ(list.keys.size(), 3u);
  EXPECT_EQ(list.keys[1].not_before, now + 8);  // sorted by not_before
  // Expired keys go.
  EXPECT_TRUE(ticket_key_sync::plan(list, ring, now + 23, false, 3));
  for (const auto& k : list.keys) {
    EXPECT_GT(k.not_after, now + 23);
  }
  // However many rotations are asked for, the list stays within kMaxKeys, keeping the latest.
  for (int i = 0; i < 100; ++i) {
    ticket_key_sync::plan(list, ring, now + 24, true, 3 + i);
  }
  EXPECT_EQ(list.keys.size(), ticket_key_sync::kMaxKeys);
  EXPECT_EQ(list.keys.back().not_before, now + 24 + 3 + 99);
}

// Issue 18: keys_ahead keys stay published ahead, one rotation apart, however the list moves.
TEST(TicketKeyList, PlanKeepsKeysAheadPublishedARotationApart) {
  core::manual_clock clock;
  tls::ticket_key_options o = fleet_opts();  // rotation 10 s, lifetime 10 s
  o.keys_ahead = 3;
  tls::ticket_key_ring ring(o, clock);
  const std::int64_t now = 1'000'000;
  key_list list;
  EXPECT_TRUE(ticket_key_sync::plan(list, ring, now, false, 3));
  ASSERT_EQ(list.keys.size(), 3u);
  EXPECT_EQ(list.keys[0].not_before, now + 3);
  EXPECT_EQ(list.keys[1].not_before, now + 13);
  EXPECT_EQ(list.keys[2].not_before, now + 23);
  EXPECT_FALSE(ticket_key_sync::plan(list, ring, now + 2, false, 3)) << "nothing due";
  // The first turns current: one more is published after the last, so 3 are ahead again.
  EXPECT_TRUE(ticket_key_sync::plan(list, ring, now + 3, false, 3));
  ASSERT_EQ(list.keys.size(), 4u);
  EXPECT_EQ(list.keys[3].not_before, now + 33);
  // Three rotations later (no plan in between: Redis was down) the list still had a fleet key
  // current at every moment; the next plan tops it up to 3 ahead again, expired keys gone.
  EXPECT_TRUE(ticket_key_sync::plan(list, ring, now + 33, false, 3));
  std::size_t ahead = 0;
  for (const auto& k : list.keys) {
    EXPECT_GT(k.not_after, now + 33);
    ahead += k.not_before > now + 33 ? 1 : 0;
  }
  EXPECT_EQ(ahead, 3u);
  EXPECT_EQ(list.keys.back().not_before, now + 63);
}

// Two instances (ring + Redis client + sync each) on one real Redis, one manual clock. Each step
// advances the clock, runs maintain() as the server does, and waits until both instances polled.
class FleetKeys : public ::testing::Test {
 protected:
  struct instance {
    tls::ticket_key_ring ring;
    fleet_key_source source;
    redis_client client;
    ticket_key_sync sync;
    instance(boost::asio::io_context& ioc, const core::clock& clock, const redis_options& o,
             const sealer& seal)
        : ring(fleet_opts(), clock),
          source(ring),
          client(ioc, o),
          sync(ioc, client, seal, ring, "t:", 50ms) {
      source.attach(sync);
      std::string error;
      EXPECT_TRUE(source.start(error)) << error;
    }
  };

  void SetUp() override {
    opts_.port = static_cast<std::uint16_t>(redis_.port());
    opts_.connect_timeout = 300ms;
    opts_.command_timeout = 300ms;
    opts_.reconnect_min = 20ms;
    opts_.reconnect_max = 100ms;
    for (auto& inst : inst_) {
      inst = std::make_unique<instance>(ioc_, clock_, opts_, seal_);
      inst->client.start();
      inst->sync.start();
    }
  }
  bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = 10s) {
    return test::run_until(ioc_, done, limit);
  }
  // Both instances completed a poll after this call (a poll takes one real poll_interval).
  void step(std::chrono::milliseconds d) {
    clock_.advance(d);
    std::uint64_t p0 = polls(0), p1 = polls(1);
    for (auto& inst : inst_) {
      inst->source.maintain();
    }
    ASSERT_TRUE(run_until([&] { return polls(0) >= p0 + 2 && polls(1) >= p1 + 2; }));
  }
  std::uint64_t polls(int i) { return inst_[i]->sync.counters().polls.load(); }
  std::shared_ptr<const tls::ticket_key> current(int i) {
    auto s = inst_[i]->ring.view();
    return tls::ticket_key_ring::current(*s, clock_.now_s());
  }
  std::set<std::string> names(int i) {
    std::set<std::string> out;
    for (const auto& k : inst_[i]->ring.view()->keys) {
      out.insert(name_of(*k));
    }
    return out;
  }
  bool converged() {
    auto c0 = current(0), c1 = current(1);
    return inst_[0]->sync.shared() && inst_[1]->sync.shared() && c0 && c1 && c0->name == c1->name &&
           !c0->local;
  }

  redis_server redis_;
  boost::asio::io_context ioc_;
  core::manual_clock clock_;
  redis_options opts_;
  sealer seal_{kSecret, "tlsfront ticket keys v1"};
  std::unique_ptr<instance> inst_[2];
};

TEST_F(FleetKeys, EveryKeyIsHeldFleetWideBeforeItSeals) {
  ASSERT_TRUE(run_until([&] { return converged(); })) << "the instances never shared a key";
  std::set<std::string> sealed_under;
  std::set<std::string> before[2] = {names(0), names(1)};
  for (int t = 0; t < 120; ++t) {
    if (t % 7 == 3) {
      inst_[t % 2]->sync.request_rotation();  // operators rotate on either instance
    }
    step(400ms);
    for (int i = 0; i < 2; ++i) {
      auto cur = current(i);
      ASSERT_TRUE(cur) << "instance " << i << " has no sealing key at step " << t;
      EXPECT_FALSE(cur->local) << "instance " << i << " seals under a key of its own";
      // The key this instance seals under now was already on the other one a step ago.
      EXPECT_TRUE(before[1 - i].count(name_of(*cur)))
          << "step " << t << ": instance " << i << " seals under a key instance " << 1 - i
          << " did not hold yet";
      sealed_under.insert(name_of(*cur));
    }
    before[0] = names(0);
    before[1] = names(1);
  }
  // 48 s of clock: 10 s rotations and 17 forced ones.
  EXPECT_GE(sealed_under.size(), 10u);
  std::uint64_t writes = inst_[0]->sync.counters().added + inst_[1]->sync.counters().added;
  EXPECT_GE(writes, 10u);
  EXPECT_EQ(inst_[0]->sync.counters().errors + inst_[1]->sync.counters().errors, 0u);
  EXPECT_EQ(inst_[0]->ring.local_keys_made() + inst_[1]->ring.local_keys_made(), 0u);
}

TEST_F(FleetKeys, WithoutRedisEachInstanceMakesItsOwnKeysAndConvergesAfter) {
  ASSERT_TRUE(run_until([&] { return converged(); }));
  const std::string shared_key = name_of(*current(0));
  redis_.kill();
  // The keys already published keep the fleet shared for about a rotation.
  step(400ms);
  EXPECT_FALSE(inst_[0]->sync.shared());
  EXPECT_EQ(name_of(*current(0)), name_of(*current(1)));
  // Past every fleet key's window: each instance seals under keys of its own, counted.
  for (int t = 0; t < 60; ++t) {
    step(500ms);
    ASSERT_TRUE(current(0) && current(1)) << "no sealing key without Redis at step " << t;
  }
  EXPECT_GT(inst_[0]->ring.local_keys_made(), 0u);
  EXPECT_GT(inst_[1]->ring.local_keys_made(), 0u);
  EXPECT_NE(name_of(*current(0)), name_of(*current(1)));
  EXPECT_GT(inst_[0]->sync.counters().errors.load(), 0u);
  const auto own0 = inst_[0]->ring.view();
  const std::int64_t restarted_at = clock_.now_s();

  redis_.restart();  // empty: the first instance to read proposes its keys
  ASSERT_TRUE(run_until([&] {
    step(100ms);
    return converged();
  })) << "no convergence after Redis came back";
  // Keys made alone stay, demoted: they open the tickets they sealed, and seal nothing more.
  for (int i = 0; i < 2; ++i) {
    for (const auto& k : inst_[i]->ring.view()->keys) {
      if (k->local) {
        EXPECT_NE(name_of(*k), name_of(*current(i)));
      }
    }
  }
  const std::set<std::string> now0 = names(0);
  for (const auto& k : own0->keys) {
    // A key that may have sealed stays while its tickets can be valid; one published but never
    // sealing may go at once (ticket_key_ring_test covers both).
    if (k->not_before <= restarted_at && clock_.now_s() < k->not_after) {
      EXPECT_TRUE(now0.count(name_of(*k))) << "a key made without Redis that sealed was dropped";
    }
  }
}

TEST_F(FleetKeys, AListThatDoesNotOpenIsNeverOverwritten) {
  ASSERT_TRUE(run_until([&] { return converged(); }));
  const std::string key = ticket_key_sync::redis_key("t:");
  redis_client writer(ioc_, opts_);  // binary-safe SET and GET for the test
  writer.start();
  ASSERT_TRUE(run_until([&] { return writer.ready(); }));
  auto call = [&](std::vector<std::string> argv) {
    std::optional<redis_reply> out;
    writer.command(std::move(argv), [&](const error_code&, const redis_reply& r) { out = r; });
    EXPECT_TRUE(run_until([&] { return out.has_value(); }));
    return out.value_or(redis_reply{});
  };
  const std::string foreign =
      sealer("another-fleet-secret-0123456789abcdef", "tlsfront ticket keys v1")
          .seal(ticket_key_sync::encode(key_list{1, {inst_[0]->ring.new_key(clock_.now_s())}}),
                key);
  const std::string unparsable = seal_.seal("not a key list", key);
  for (const std::string& bad : {std::string("garbage"), foreign, unparsable}) {
    call({"SET", key, bad});
    const std::uint64_t rejected = inst_[0]->sync.counters().rejected;
    const std::string sealing = name_of(*current(0));
    step(400ms);
    step(400ms);
    EXPECT_GT(inst_[0]->sync.counters().rejected.load(), rejected);
    EXPECT_FALSE(inst_[0]->sync.shared());
    ASSERT_TRUE(current(0) && current(1)) << "the instances stopped sealing";
    EXPECT_EQ(name_of(*current(0)), sealing) << "the keys held changed";
    EXPECT_EQ(call({"GET", key}).str, bad) << "a list that did not open was overwritten";
  }
  // A key of another type: an error reply, counted as an error.
  call({"DEL", key});
  call({"HSET", key, "f", "v"});
  const std::uint64_t errors = inst_[1]->sync.counters().errors;
  step(400ms);
  EXPECT_GT(inst_[1]->sync.counters().errors.load(), errors);
  // Deleted: the fleet writes a new list and shares again.
  call({"DEL", key});
  ASSERT_TRUE(run_until([&] {
    step(100ms);
    return converged();
  }));
}

// A list numbered below the one installed (another instance recreated it after Redis lost it,
// not knowing the number) is written back under a higher number: no instance's version ever
// goes back, and the keys stay.
TEST_F(FleetKeys, AListNumberedBelowTheInstalledOneIsNumberedOnAgain) {
  ASSERT_TRUE(run_until([&] { return converged(); }));
  for (int i = 0; i < 3; ++i) {
    inst_[0]->sync.request_rotation();
    step(400ms);
  }
  ASSERT_TRUE(run_until([&] {
    step(100ms);
    return converged() && inst_[0]->sync.counters().version == inst_[1]->sync.counters().version;
  }));
  const std::int64_t before = inst_[0]->sync.counters().version;
  ASSERT_GE(before, 3);
  const std::string key = ticket_key_sync::redis_key("t:");
  redis_client writer(ioc_, opts_);
  writer.start();
  ASSERT_TRUE(run_until([&] { return writer.ready(); }));
  key_list low{1, {}};
  for (const auto& k : inst_[0]->ring.view()->keys) {
    low.keys.push_back(*k);
  }
  bool written = false;
  writer.command({"SET", key, seal_.seal(ticket_key_sync::encode(low), key)},
                 [&](const error_code&, const redis_reply&) { written = true; });
  ASSERT_TRUE(run_until([&] { return written; }));
  std::optional<redis_reply> stored;
  for (int t = 0; t < 10; ++t) {
    step(200ms);
    for (int i = 0; i < 2; ++i) {
      EXPECT_GE(inst_[i]->sync.counters().version.load(), before) << "step " << t;
    }
  }
  EXPECT_GT(inst_[0]->sync.counters().version.load(), before);
  EXPECT_EQ(inst_[0]->sync.counters().version.load(), inst_[1]->sync.counters().version.load());
  writer.command({"GET", key}, [&](const error_code&, const redis_reply& r) { stored = r; });
  ASSERT_TRUE(run_until([&] { return stored.has_value(); }));
  std::string plain;
  ASSERT_EQ(seal_.open(stored->str, key, plain), sealer::open_result::ok);
  key_list back;
  ASSERT_TRUE(ticket_key_sync::decode(plain, back));
  EXPECT_GT(back.version, static_cast<std::uint64_t>(before));
  const std::set<std::string> now_held = names(0);
  for (const auto& k : low.keys) {
    if (clock_.now_s() < k.not_after) {
      EXPECT_TRUE(now_held.count(name_of(k))) << "a key of the list was lost";
    }
  }
  EXPECT_TRUE(converged());
}

}  // namespace
}  // namespace tlsfront::cluster
