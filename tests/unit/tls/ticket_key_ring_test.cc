// The ticket key ring's timeline under an injected clock (no sleeping): which key seals, which
// open, when keys are published and dropped, renewal decisions, and key files.
#include "tls/ticket_key_ring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "support/test_env.h"

namespace tlsfront::tls {
namespace {

using namespace std::chrono_literals;

ticket_key_options memory_opts() {
  ticket_key_options o;
  o.rotation = 3600s;
  o.publish_ahead = 60s;
  o.lifetime = 1800s;
  return o;
}

struct TicketKeyRingTest : ::testing::Test {
  core::manual_clock clock{1'700'000'000'000};
  std::int64_t t0 = clock.now_s();
  void advance(std::chrono::seconds s) { clock.advance(s); }
  key_role role(ticket_key_ring& r, const std::shared_ptr<const ticket_key>& k) {
    auto s = r.view();
    return ticket_key_ring::role_of(*s, *k, clock.now_s());
  }
  std::shared_ptr<const ticket_key> current(ticket_key_ring& r) {
    return ticket_key_ring::current(*r.view(), clock.now_s());
  }
  std::shared_ptr<const ticket_key> find(ticket_key_ring& r, const ticket_key& k) {
    return ticket_key_ring::find(*r.view(), k.name.data());
  }
  // A started fleet ring with the memory_opts() schedule (its own two keys, no list yet).
  std::unique_ptr<ticket_key_ring> started_fleet_ring() {
    ticket_key_options o = memory_opts();
    o.source = ticket_key_options::source_kind::fleet;
    auto r = std::make_unique<ticket_key_ring>(o, clock);
    std::string error;
    EXPECT_TRUE(r->start(error)) << error;
    return r;
  }
};

TEST_F(TicketKeyRingTest, FullTimelineOverSeveralRotations) {
  ticket_key_ring r(memory_opts(), clock);
  std::string error;
  ASSERT_TRUE(r.start(error));
  auto k0 = current(r);
  ASSERT_TRUE(k0);
  EXPECT_EQ(k0->not_before, t0);
  EXPECT_EQ(k0->not_after, t0 + 3600 + 1800);
  // At start the next key is already published, a whole rotation ahead.
  auto list = r.list();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_EQ(list[1].role, key_role::next);
  EXPECT_EQ(list[1].not_before, t0 + 3600);

  std::shared_ptr<const ticket_key> prev;
  for (int rotation = 1; rotation <= 4; ++rotation) {
    auto cur = current(r);
    auto s = r.view();
    std::shared_ptr<const ticket_key> next;
    for (const auto& k : s->keys) {
      if (ticket_key_ring::role_of(*s, *k, clock.now_s()) == key_role::next) {
        next = k;
      }
    }
    ASSERT_TRUE(next) << "rotation " << rotation << ": no next key published";
    // The next key was published at least publish_ahead before it starts.
    EXPECT_GE(next->not_before - clock.now_s(), 60);
    // It opens tickets (an instance that already switched) but does not seal.
    EXPECT_EQ(role(r, next), key_role::next);
    EXPECT_EQ(find(r, *next), next);

    // One second before the switch: cur still seals.
    advance(std::chrono::seconds(next->not_before - clock.now_s() - 1));
    r.maintain();
    EXPECT_EQ(current(r), cur);
    advance(1s);
    r.maintain();
    EXPECT_EQ(current(r), next) << "rotation " << rotation;
    EXPECT_EQ(role(r, cur), key_role::previous);  // still opens, tickets get renewed
    if (prev) {
      // Two rotations back: dropped once every ticket it sealed expired (lifetime 1800 s <
      // rotation 3600 s), so it is gone by now.
      EXPECT_FALSE(find(r, *prev)) << "rotation " << rotation;
    }
    // Half a lifetime later the previous key still opens.
    advance(900s);
    r.maintain();
    EXPECT_EQ(role(r, cur), key_role::previous);
    EXPECT_TRUE(find(r, *cur));
    // At cur.not_after it is dropped.
    advance(std::chrono::seconds(cur->not_after - clock.now_s()));
    r.maintain();
    EXPECT_FALSE(find(r, *cur));
    prev = cur;
  }
}

TEST_F(TicketKeyRingTest, RotateNowPublishesAheadThenTakesOver) {
  ticket_key_ring r(memory_opts(), clock);
  std::string error;
  ASSERT_TRUE(r.start(error));
  auto before = current(r);
  ASSERT_TRUE(r.rotate_now(error)) << error;
  EXPECT_EQ(current(r), before);  // published, not used yet
  advance(59s);
  EXPECT_EQ(current(r), before);
  advance(1s);
  auto after = current(r);
  EXPECT_NE(after, before);
  EXPECT_EQ(after->not_before, t0 + 60);
  EXPECT_EQ(role(r, before), key_role::previous);
  EXPECT_FALSE(r.reload(error));  // memory keys: nothing to reload
}

TEST_F(TicketKeyRingTest, ClockJumpStillLeavesACurrentKey) {
  ticket_key_ring r(memory_opts(), clock);
  std::string error;
  ASSERT_TRUE(r.start(error));
  advance(std::chrono::hours(24 * 30));
  r.maintain();
  auto cur = current(r);
  ASSERT_TRUE(cur);
  EXPECT_EQ(cur->not_before, clock.now_s());
  EXPECT_EQ(r.view()->keys.size(), 2u);  // the new current and its next; the old ones dropped
}

TEST_F(TicketKeyRingTest, KeysAreWipedWhenDropped) {
  // Inspect the raw storage after the destructor ran (as bytes, which is allowed).
  alignas(ticket_key) unsigned char storage[sizeof(ticket_key)];
  auto* k = new (storage) ticket_key();
  k->hmac_key.fill(0xaa);
  k->aes_key.fill(0xbb);
  const std::size_t hmac_at = reinterpret_cast<unsigned char*>(k->hmac_key.data()) - storage;
  const std::size_t aes_at = reinterpret_cast<unsigned char*>(k->aes_key.data()) - storage;
  k->~ticket_key();
  for (std::size_t i = 0; i < 32; ++i) {
    EXPECT_EQ(storage[hmac_at + i], 0);
    EXPECT_EQ(storage[aes_at + i], 0);
  }
}

TEST_F(TicketKeyRingTest, KeyFileLayouts) {
  std::vector<ticket_key> keys;
  std::string error;
  std::string one80(80, '\0');
  for (int i = 0; i < 80; ++i) {
    one80[static_cast<size_t>(i)] = static_cast<char>(i);
  }
  ASSERT_TRUE(ticket_key_ring::parse_key_file(one80, keys, error));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].name[0], 0);
  EXPECT_EQ(keys[0].hmac_key[0], 16);
  EXPECT_EQ(keys[0].aes_key[0], 48);
  EXPECT_EQ(keys[0].aes_len, 32u);

  keys.clear();
  ASSERT_TRUE(ticket_key_ring::parse_key_file(std::string(48, 'x'), keys, error));
  ASSERT_EQ(keys.size(), 1u);
  EXPECT_EQ(keys[0].aes_len, 16u);
  EXPECT_EQ(keys[0].hmac_len, 16u);

  keys.clear();
  ASSERT_TRUE(ticket_key_ring::parse_key_file(std::string(240, 'y'), keys, error));
  EXPECT_EQ(keys.size(), 3u);

  for (std::size_t bad : {0u, 47u, 49u, 79u, 81u, 96u, 100u}) {
    keys.clear();
    EXPECT_FALSE(ticket_key_ring::parse_key_file(std::string(bad, 'z'), keys, error)) << bad;
    EXPECT_NE(error.find(std::to_string(bad) + " bytes"), std::string::npos) << error;
  }
}

TEST_F(TicketKeyRingTest, FileRingOrderReloadAndBadFilesKeepRunningKeys) {
  std::string dir = test::make_temp_dir();
  std::string a(80, 'A'), b(80, 'B');
  test::write_file(dir + "/a.key", a);
  test::write_file(dir + "/b.key", b);
  ticket_key_options o;
  o.source = ticket_key_options::source_kind::file;
  o.files = {dir + "/a.key", dir + "/b.key"};
  ticket_key_ring r(o, clock);
  std::string error;
  ASSERT_TRUE(r.start(error)) << error;
  auto cur = current(r);
  ASSERT_TRUE(cur);
  EXPECT_EQ(cur->name[0], 'A');  // the first file's key encrypts
  auto list = r.list();
  ASSERT_EQ(list.size(), 2u);
  int previous = 0;
  for (const auto& k : list) {
    previous += k.role == key_role::previous ? 1 : 0;
  }
  EXPECT_EQ(previous, 1);
  EXPECT_FALSE(r.rotate_now(error));

  // Swap the order on disk: after reload B encrypts, A still decrypts.
  test::write_file(dir + "/a.key", b);
  test::write_file(dir + "/b.key", a);
  ASSERT_TRUE(r.reload(error)) << error;
  EXPECT_EQ(current(r)->name[0], 'B');

  // A damaged file: refused, and the keys in use stay.
  test::write_file(dir + "/a.key", std::string(50, 'C'));
  EXPECT_FALSE(r.reload(error));
  EXPECT_NE(error.find("50 bytes"), std::string::npos) << error;
  EXPECT_EQ(current(r)->name[0], 'B');
  test::write_file(dir + "/a.key", b);
  ::unlink((dir + "/b.key").c_str());
  EXPECT_FALSE(r.reload(error));
  EXPECT_NE(error.find("cannot read"), std::string::npos) << error;
  EXPECT_EQ(current(r)->name[0], 'B');
  // File keys never expire on their own.
  advance(std::chrono::hours(24 * 365));
  r.maintain();
  EXPECT_EQ(current(r)->name[0], 'B');
}

}  // namespace
}  // namespace tlsfront::tls

namespace tlsfront::tls {
namespace {

// Handshake threads read snapshots while the control plane rotates: every read sees a whole
// snapshot with a current key (run under the tsan preset in CI).
TEST_F(TicketKeyRingTest, FleetRingInstallsTheListAndKeepsItsOwnKeysAsLocal) {
  auto ring = started_fleet_ring();
  ticket_key_ring& r = *ring;
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
  r.maintain();
  EXPECT_EQ(r.local_keys_made(), 0u);
  EXPECT_EQ(current(r)->name, fleet[0].name);
  std::string why;
  EXPECT_FALSE(r.rotate_now(why)) << "a shared fleet ring rotates through the fleet";
  // Past every window (fleet and local keys alike) nothing seals until the fleet list or the
  // fallback brings keys.
  advance(5500s);
  r.maintain();
  EXPECT_FALSE(current(r));
  EXPECT_TRUE(r.view()->keys.empty());
  // Fallback: the ring schedules keys of its own, counted.
  r.set_fallback(true);
  r.maintain();
  ASSERT_TRUE(current(r));
  EXPECT_FALSE(current(r)->local);
  EXPECT_EQ(r.local_keys_made(), 2u);  // a current and a next key
  EXPECT_TRUE(r.rotate_now(why)) << why;
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
TEST_F(TicketKeyRingTest, DemotedKeysLastOnlyAsLongAsTheirTickets) {
  // The memory_opts() schedule: rotation 3600 s, ticket lifetime 1800 s.
  auto ring = started_fleet_ring();
  ticket_key_ring& r = *ring;
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
  r.maintain();
  ASSERT_TRUE(find(r, *watch.lock()));
  EXPECT_EQ(role(r, watch.lock()), key_role::previous);
  advance(1s);
  EXPECT_EQ(role(r, watch.lock()), key_role::dropped);
  r.maintain();
  EXPECT_EQ(r.view()->keys.size(), 2u);  // view() also let go of this thread's old snapshot
  EXPECT_EQ(r.list().size(), 2u);
  EXPECT_TRUE(watch.expired());
}

// A demoted key seals only as a last resort (no fleet key valid), and then stays while the
// tickets it sealed so can be valid; once it has not sealed for a ticket lifetime it seals no
// more and goes.
TEST_F(TicketKeyRingTest, ALocalKeySealingAsALastResortStaysForItsTickets) {
  auto ring = started_fleet_ring();
  ticket_key_ring& r = *ring;
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
  r.maintain();
  ASSERT_TRUE(current(r));
  EXPECT_EQ(current(r)->name, own->name);
  advance(std::chrono::seconds(sealed_at + 1800 - clock.now_s()));
  EXPECT_FALSE(current(r)) << "no ticket it sealed is still valid: it must not seal again";
  EXPECT_EQ(role(r, find(r, *own)), key_role::previous);
  advance(1s);
  r.maintain();
  EXPECT_FALSE(find(r, *own));
}

TEST(TicketKeyRingConcurrency, ReadersSeeWholeSnapshotsDuringRotation) {
  core::manual_clock clock;
  ticket_key_options o;
  o.rotation = std::chrono::seconds(60);
  o.publish_ahead = std::chrono::seconds(1);
  o.lifetime = std::chrono::seconds(60);
  ticket_key_ring ring(o, clock);
  std::string error;
  ASSERT_TRUE(ring.start(error));
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> reads{0}, missing{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        // The handshake path reads the snapshot and the clock together; a reader preempted
        // across a rotation would judge an old snapshot by a later time, so such reads are
        // taken again (the clock did not move across the view means they belong together).
        const std::int64_t before = clock.now_s();
        auto s = ring.view();
        if (clock.now_s() != before) {
          continue;
        }
        auto k = ticket_key_ring::current(*s, before);
        if (!k || ticket_key_ring::find(*s, k->name.data()) != k) {
          missing.fetch_add(1, std::memory_order_relaxed);
        }
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (int i = 0; i < 300; ++i) {
    ring.rotate_now(error);
    clock.advance(std::chrono::seconds(2));
    ring.maintain();
    // Let the readers judge every state: wait for some consistent reads after each step.
    const std::uint64_t seen = reads.load();
    while (reads.load() < seen + 3) {
      std::this_thread::yield();
    }
  }
  stop.store(true);
  for (auto& th : readers) {
    th.join();
  }
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(missing.load(), 0u);
  // Old keys were dropped along the way: the ring stays small.
  EXPECT_LE(ring.view()->keys.size(), 64u);
}

}  // namespace
}  // namespace tlsfront::tls
