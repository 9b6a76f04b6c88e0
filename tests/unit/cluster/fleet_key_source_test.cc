// The fleet's key source (source = "redis") driving a ticket key ring under an injected clock:
// the fleet's list installed over the ring's own keys, demoted (local) keys and how long they
// last, the fallback schedule while the list is unreachable, and what it refuses.
#include "cluster/fleet_key_source.h"

#include <gtest/gtest.h>

#include <memory>

#include "core/clock.h"
#include "support/ticket_ring_clock.h"

namespace tlsfront::cluster {
namespace {

using namespace std::chrono_literals;
using tls::key_role;
using tls::ticket_key;
using tls::ticket_key_options;
using tls::ticket_key_ring;

struct FleetKeySourceTest : ::testing::Test, test::ticket_ring_clock {
  static ticket_key_options fleet_opts() {
    ticket_key_options o;
    o.source = ticket_key_options::source_kind::fleet;
    o.rotation = 3600s;
    o.publish_ahead = 60s;
    o.lifetime = 1800s;
    return o;
  }
  struct fleet_ring {
    explicit fleet_ring(const core::clock& c) : ring(fleet_opts(), c), source(ring) {}
    ticket_key_ring ring;
    fleet_key_source source;
  };
  // A started fleet ring with a memory-like schedule (its own two keys, no list yet).
  std::unique_ptr<fleet_ring> started_fleet_ring() {
    auto f = std::make_unique<fleet_ring>(clock);
    std::string error;
    EXPECT_TRUE(f->source.start(error)) << error;
    return f;
  }
};

TEST_F(FleetKeySourceTest, NamesItselfAndHasNoFilesToReload) {
  auto held = started_fleet_ring();
  EXPECT_STREQ(held->source.name(), "redis");
  EXPECT_FALSE(held->source.reloads_with_config());
  std::string error;
  EXPECT_FALSE(held->source.reload(error));
  EXPECT_EQ(error, "ticket keys are generated in memory: there are no files to reload");
  EXPECT_EQ(held->ring.view()->keys.size(), 2u) << "its own keys serve until the list arrives";
  EXPECT_EQ(held->ring.local_keys_made(), 0u);
}

TEST_F(FleetKeySourceTest, FleetRingInstallsTheListAndKeepsItsOwnKeysAsLocal) {
  auto held = started_fleet_ring();
  ticket_key_ring& r = held->ring;
  fleet_key_source& keys = held->source;
  auto own = current(r);
  ASSERT_TRUE(own);
  // The fleet's list: a key that started earlier than ours, and its next one.
  std::vector<ticket_key> fleet = {r.new_key(t0 - 100), r.new_key(t0 + 3500)};
  r.install(fleet);
  auto cur = current(r);
  ASSERT_TRUE(cur);
  EXPECT_EQ(cur->name, fleet[0].name) << "a fleet key must beat a later-started own key";
  EXPECT_FALSE(cur->local);
  auto kept = find(r, *own);
  ASSERT_TRUE(kept) << "our own key must stay to open the tickets it sealed";
  EXPECT_TRUE(kept->local);
  EXPECT_EQ(role(r, kept), key_role::previous);
  // Installing the same list again publishes nothing new.
  const std::uint64_t v = r.version();
  r.install(fleet);
  EXPECT_EQ(r.version(), v);
  // Not in fallback: maintain() makes no key even when the list has no next one.
  r.install({fleet[0]});
  advance(3600s);
  keys.maintain();
  EXPECT_EQ(r.local_keys_made(), 0u);
  EXPECT_EQ(current(r)->name, fleet[0].name);
  std::string why;
  bool via_fleet = true;
  EXPECT_FALSE(keys.rotate_now(why, via_fleet)) << "a shared fleet ring rotates through the fleet";
  EXPECT_FALSE(via_fleet) << "no sync attached: nothing was requested from the fleet";
  EXPECT_EQ(why, "ticket keys come from the fleet list: rotate them through the fleet");
  // Past every window (fleet and local keys alike) nothing seals until the fleet list or the
  // fallback brings keys.
  advance(5500s);
  keys.maintain();
  EXPECT_FALSE(current(r));
  EXPECT_TRUE(r.view()->keys.empty());
  // Fallback: the ring schedules keys of its own, counted.
  r.set_fallback(true);
  keys.maintain();
  ASSERT_TRUE(current(r));
  EXPECT_FALSE(current(r)->local);
  EXPECT_EQ(r.local_keys_made(), 2u);  // a current and a next key
  EXPECT_TRUE(keys.rotate_now(why, via_fleet)) << why;
  EXPECT_FALSE(via_fleet);
  // The fleet is back: its list seals, the fallback keys are demoted.
  auto made_alone = current(r);
  std::vector<ticket_key> back = {r.new_key(clock.now_s() - 1)};
  r.set_fallback(false);
  r.install(back);
  EXPECT_EQ(current(r)->name, back[0].name);
  ASSERT_TRUE(find(r, *made_alone));
  EXPECT_TRUE(find(r, *made_alone)->local);
  // A local key seals only when no other key is valid.
  r.install({});
  ASSERT_TRUE(current(r));
  EXPECT_TRUE(current(r)->local);
}

// Demoted keys last only as long as something can need them: one that never sealed goes at
// once, one that sealed opens (decrypt-only) until the last ticket it sealed has expired, then
// is dropped and, once no reader holds it, wiped.
TEST_F(FleetKeySourceTest, DemotedKeysLastOnlyAsLongAsTheirTickets) {
  // The memory_opts() schedule: rotation 3600 s, ticket lifetime 1800 s.
  auto held = started_fleet_ring();
  ticket_key_ring& r = held->ring;
  fleet_key_source& keys = held->source;
  auto own = current(r);  // seals from t0
  ASSERT_EQ(r.view()->keys.size(), 2u);
  std::weak_ptr<const ticket_key> own_next = r.view()->keys[1];  // published for t0 + 3600
  ASSERT_GT(own_next.lock()->not_before, clock.now_s());
  advance(100s);
  const std::int64_t demoted_at = clock.now_s();
  r.install({r.new_key(t0 - 100), r.new_key(t0 + 3500)});
  EXPECT_EQ(r.view()->keys.size(), 3u) << "the own next key never sealed: it must go";
  EXPECT_TRUE(own_next.expired()) << "a dropped key must be wiped once no reader holds it";
  auto kept = find(r, *own);
  ASSERT_TRUE(kept);
  EXPECT_TRUE(kept->local);
  EXPECT_EQ(kept->opens_until(), demoted_at + 1800 + 1);
  EXPECT_NE(current(r)->name, own->name);
  // Listed as what it is, with the time it goes.
  bool listed = false;
  for (const auto& l : r.list()) {
    if (l.local) {
      listed = true;
      EXPECT_EQ(l.role, key_role::previous);
      EXPECT_EQ(l.not_after, demoted_at + 1801);
    }
  }
  EXPECT_TRUE(listed);
  std::weak_ptr<const ticket_key> watch = kept;
  kept.reset();
  own.reset();
  advance(1800s);  // a ticket sealed at the demotion is still valid
  keys.maintain();
  ASSERT_TRUE(find(r, *watch.lock()));
  EXPECT_EQ(role(r, watch.lock()), key_role::previous);
  advance(1s);
  EXPECT_EQ(role(r, watch.lock()), key_role::dropped);
  keys.maintain();
  EXPECT_EQ(r.view()->keys.size(), 2u);  // view() also let go of this thread's old snapshot
  EXPECT_EQ(r.list().size(), 2u);
  EXPECT_TRUE(watch.expired());
}

// A demoted key seals only as a last resort (no fleet key valid), and then stays while the
// tickets it sealed so can be valid; once it has not sealed for a ticket lifetime it seals no
// more and goes.
TEST_F(FleetKeySourceTest, ALocalKeySealingAsALastResortStaysForItsTickets) {
  auto held = started_fleet_ring();
  ticket_key_ring& r = held->ring;
  fleet_key_source& keys = held->source;
  auto own = current(r);
  advance(10s);
  r.install({r.new_key(clock.now_s() + 5000)});  // the fleet's only key starts much later
  auto last_resort = current(r);
  ASSERT_TRUE(last_resort);
  EXPECT_EQ(last_resort->name, own->name);
  EXPECT_TRUE(last_resort->local);
  advance(1000s);
  ASSERT_TRUE(current(r));
  current(r)->note_sealed(clock.now_s());  // as the ticket callback does
  const std::int64_t sealed_at = clock.now_s();
  advance(1000s);  // past the demotion + lifetime, not past the last seal + lifetime
  keys.maintain();
  ASSERT_TRUE(current(r));
  EXPECT_EQ(current(r)->name, own->name);
  advance(std::chrono::seconds(sealed_at + 1800 - clock.now_s()));
  EXPECT_FALSE(current(r)) << "no ticket it sealed is still valid: it must not seal again";
  EXPECT_EQ(role(r, find(r, *own)), key_role::previous);
  advance(1s);
  keys.maintain();
  EXPECT_FALSE(find(r, *own));
}

}  // namespace
}  // namespace tlsfront::cluster
