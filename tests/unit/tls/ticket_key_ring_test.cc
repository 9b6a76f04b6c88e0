// The ticket key ring's timeline under an injected clock (no sleeping): which key seals, which
// open, when keys are published and dropped, renewal decisions, and the memory and file key
// sources that drive it (tls/key_source.h).
#include "tls/ticket_key_ring.h"

#include <gtest/gtest.h>

#include "tls/file_key_source.h"
#include "tls/memory_key_source.h"

#include <atomic>
#include <cstring>
#include <thread>

#include "support/test_env.h"
#include "support/ticket_ring_clock.h"

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

struct TicketKeyRingTest : ::testing::Test, test::ticket_ring_clock {};

TEST_F(TicketKeyRingTest, FullTimelineOverSeveralRotations) {
  ticket_key_ring r(memory_opts(), clock);
  memory_key_source keys(r);
  std::string error;
  ASSERT_TRUE(keys.start(error));
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
    keys.maintain();
    EXPECT_EQ(current(r), cur);
    advance(1s);
    keys.maintain();
    EXPECT_EQ(current(r), next) << "rotation " << rotation;
    EXPECT_EQ(role(r, cur), key_role::previous);  // still opens, tickets get renewed
    if (prev) {
      // Two rotations back: dropped once every ticket it sealed expired (lifetime 1800 s <
      // rotation 3600 s), so it is gone by now.
      EXPECT_FALSE(find(r, *prev)) << "rotation " << rotation;
    }
    // Half a lifetime later the previous key still opens.
    advance(900s);
    keys.maintain();
    EXPECT_EQ(role(r, cur), key_role::previous);
    EXPECT_TRUE(find(r, *cur));
    // At cur.not_after it is dropped.
    advance(std::chrono::seconds(cur->not_after - clock.now_s()));
    keys.maintain();
    EXPECT_FALSE(find(r, *cur));
    prev = cur;
  }
}

TEST_F(TicketKeyRingTest, RotateNowPublishesAheadThenTakesOver) {
  ticket_key_ring r(memory_opts(), clock);
  memory_key_source keys(r);
  std::string error;
  ASSERT_TRUE(keys.start(error));
  auto before = current(r);
  bool fleet = true;
  ASSERT_TRUE(keys.rotate_now(error, fleet)) << error;
  EXPECT_FALSE(fleet);
  EXPECT_EQ(current(r), before);  // published, not used yet
  advance(59s);
  EXPECT_EQ(current(r), before);
  advance(1s);
  auto after = current(r);
  EXPECT_NE(after, before);
  EXPECT_EQ(after->not_before, t0 + 60);
  EXPECT_EQ(role(r, before), key_role::previous);
  EXPECT_FALSE(keys.reload(error));  // memory keys: nothing to reload
  EXPECT_EQ(error, "ticket keys are generated in memory: there are no files to reload");
}

TEST_F(TicketKeyRingTest, ClockJumpStillLeavesACurrentKey) {
  ticket_key_ring r(memory_opts(), clock);
  memory_key_source keys(r);
  std::string error;
  ASSERT_TRUE(keys.start(error));
  advance(std::chrono::hours(24 * 30));
  keys.maintain();
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
  file_key_source keys(r);
  EXPECT_TRUE(keys.reloads_with_config());
  std::string error;
  ASSERT_TRUE(keys.start(error)) << error;
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
  bool fleet = true;
  EXPECT_FALSE(keys.rotate_now(error, fleet));
  EXPECT_FALSE(fleet);
  EXPECT_EQ(error, "ticket keys come from files: rotate them by changing the files and reloading");

  // Swap the order on disk: after reload B encrypts, A still decrypts.
  test::write_file(dir + "/a.key", b);
  test::write_file(dir + "/b.key", a);
  ASSERT_TRUE(keys.reload(error)) << error;
  EXPECT_EQ(current(r)->name[0], 'B');

  // A damaged file: refused, and the keys in use stay.
  test::write_file(dir + "/a.key", std::string(50, 'C'));
  EXPECT_FALSE(keys.reload(error));
  EXPECT_NE(error.find("50 bytes"), std::string::npos) << error;
  EXPECT_EQ(current(r)->name[0], 'B');
  test::write_file(dir + "/a.key", b);
  ::unlink((dir + "/b.key").c_str());
  EXPECT_FALSE(keys.reload(error));
  EXPECT_NE(error.find("cannot read"), std::string::npos) << error;
  EXPECT_EQ(current(r)->name[0], 'B');
  // File keys never expire on their own.
  advance(std::chrono::hours(24 * 365));
  keys.maintain();
  EXPECT_EQ(current(r)->name[0], 'B');
}

// A file source that cannot read its keys refuses to start with a line naming the file, and
// leaves the ring empty (the server then refuses to start: "ticket keys: ...").
TEST_F(TicketKeyRingTest, FileSourceRefusesToStartOnABadKeyFile) {
  std::string dir = test::make_temp_dir();
  test::write_file(dir + "/short.key", std::string(47, 'S'));
  ticket_key_options o;
  o.source = ticket_key_options::source_kind::file;
  struct bad_case {
    std::vector<std::string> files;
    std::string expected;
  };
  const bad_case cases[] = {
      {{dir + "/short.key"},
       dir + "/short.key: a ticket key file holds one 48-byte key or one or more 80-byte keys, "
             "not 47 bytes"},
      {{dir + "/missing.key"},
       "cannot read ticket key file " + dir + "/missing.key: No such file or directory"},
      {{dir}, ""},  // a directory: refused, whatever the system calls it
      {{}, "no ticket key files"},
  };
  for (const bad_case& c : cases) {
    o.files = c.files;
    ticket_key_ring r(o, clock);
    file_key_source keys(r);
    std::string error;
    EXPECT_FALSE(keys.start(error)) << (c.files.empty() ? "(no files)" : c.files[0]);
    if (!c.expected.empty()) {
      EXPECT_EQ(error, c.expected);
    } else {
      EXPECT_FALSE(error.empty());
    }
    EXPECT_TRUE(r.view()->keys.empty());
    EXPECT_FALSE(current(r));
  }
}

// The configured kind picks the source; each names itself as the configuration does and
// refuses what it cannot do with the same words as before the interface existed.
TEST_F(TicketKeyRingTest, LocalSourcesFollowTheConfiguredKind) {
  ticket_key_options o = memory_opts();
  ticket_key_ring memory_ring(o, clock);
  auto memory = make_local_key_source(memory_ring);
  ASSERT_TRUE(memory);
  EXPECT_STREQ(memory->name(), "memory");
  EXPECT_FALSE(memory->reloads_with_config());
  o.source = ticket_key_options::source_kind::file;
  ticket_key_ring file_ring(o, clock);
  auto file = make_local_key_source(file_ring);
  ASSERT_TRUE(file);
  EXPECT_STREQ(file->name(), "file");
  EXPECT_TRUE(file->reloads_with_config());
  o.source = ticket_key_options::source_kind::fleet;
  ticket_key_ring fleet_ring(o, clock);
  EXPECT_FALSE(make_local_key_source(fleet_ring)) << "the fleet's source is cluster's";
}

// Memory rotation on request: each rotation adds one key published publish_ahead ahead; the
// expired ones go at the next maintain(), so a burst of rotations leaves a bounded ring.
TEST_F(TicketKeyRingTest, MemorySourceRotationsAddKeysThatExpireAgain) {
  ticket_key_ring r(memory_opts(), clock);
  memory_key_source keys(r);
  std::string error;
  ASSERT_TRUE(keys.start(error));
  for (int i = 0; i < 5; ++i) {
    bool fleet = true;
    ASSERT_TRUE(keys.rotate_now(error, fleet)) << error;
    EXPECT_FALSE(fleet);
  }
  EXPECT_EQ(r.view()->keys.size(), 7u);
  EXPECT_EQ(r.local_keys_made(), 0u) << "a memory source's keys are not fleet fallback keys";
  advance(60s);
  keys.maintain();
  EXPECT_EQ(current(r)->not_before, t0 + 60);
  // Past every window of the rotated keys: only the schedule's keys remain.
  advance(std::chrono::seconds(3600 + 1800));
  keys.maintain();
  EXPECT_LE(r.view()->keys.size(), 3u);
  ASSERT_TRUE(current(r));
}

}  // namespace
}  // namespace tlsfront::tls

namespace tlsfront::tls {
namespace {

// Handshake threads read snapshots while the control plane rotates: every read sees a whole
// snapshot with a current key (run under the tsan preset in CI).
TEST(TicketKeyRingConcurrency, ReadersSeeWholeSnapshotsDuringRotation) {
  core::manual_clock clock;
  ticket_key_options o;
  o.rotation = std::chrono::seconds(60);
  o.publish_ahead = std::chrono::seconds(1);
  o.lifetime = std::chrono::seconds(60);
  ticket_key_ring ring(o, clock);
  memory_key_source keys(ring);
  std::string error;
  ASSERT_TRUE(keys.start(error));
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
    bool fleet = false;
    keys.rotate_now(error, fleet);
    clock.advance(std::chrono::seconds(2));
    keys.maintain();
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
