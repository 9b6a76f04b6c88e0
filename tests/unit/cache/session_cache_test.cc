#include "cache/session_cache.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>

namespace tlsfront::cache {
namespace {

using namespace std::chrono_literals;

std::string id_of(int n) {
  std::string id(32, '\0');
  for (int i = 0; i < 32; ++i) {
    id[static_cast<size_t>(i)] = static_cast<char>((n * 131 + i * 17) & 0xff);
  }
  id[0] = static_cast<char>(n & 0xff);
  id[1] = static_cast<char>((n >> 8) & 0xff);
  return id;
}

struct SessionCacheTest : ::testing::Test {
  core::manual_clock clock;
  std::array<std::uint8_t, 4096> buf{};

  std::string get(session_cache& c, std::uint64_t ctx, const std::string& id) {
    std::size_t n = c.lookup(ctx, id, buf.data(), buf.size());
    return std::string(reinterpret_cast<const char*>(buf.data()), n);
  }
  std::int64_t in(std::chrono::seconds s) { return clock.now_s() + s.count(); }
};

TEST_F(SessionCacheTest, InsertLookupOverwrite) {
  session_cache c({1024, 4, 192}, clock);
  EXPECT_EQ(c.insert(1, id_of(1), "session-one", in(300s)), session_cache::insert_result::inserted);
  EXPECT_EQ(get(c, 1, id_of(1)), "session-one");
  EXPECT_EQ(get(c, 1, id_of(2)), "");
  EXPECT_EQ(c.insert(1, id_of(1), "session-one-v2", in(300s)),
            session_cache::insert_result::replaced);
  EXPECT_EQ(get(c, 1, id_of(1)), "session-one-v2");
  EXPECT_EQ(c.entries_in_use(), 1u);
  auto st = c.total_stats();
  EXPECT_EQ(st.hits, 2u);
  EXPECT_EQ(st.misses, 1u);
  EXPECT_EQ(st.inserts, 2u);
}

TEST_F(SessionCacheTest, ContextsAreIsolated) {
  session_cache c({1024, 4, 192}, clock);
  c.insert(1, id_of(7), "for-context-1", in(300s));
  EXPECT_EQ(get(c, 2, id_of(7)), "");
  EXPECT_EQ(get(c, 1, id_of(7)), "for-context-1");
  c.insert(2, id_of(7), "for-context-2", in(300s));
  EXPECT_EQ(get(c, 1, id_of(7)), "for-context-1");
  EXPECT_EQ(get(c, 2, id_of(7)), "for-context-2");
}

TEST_F(SessionCacheTest, ShortIdsAndPrefixesAreDistinct) {
  session_cache c({1024, 4, 192}, clock);
  c.insert(1, "abc", "three", in(300s));
  EXPECT_EQ(get(c, 1, "abc"), "three");
  EXPECT_EQ(get(c, 1, std::string("abc\0", 4)), "");  // zero padding must not alias
  EXPECT_EQ(get(c, 1, "ab"), "");
}

TEST_F(SessionCacheTest, ExpiryFollowsTheInjectedClock) {
  session_cache c({1024, 4, 192}, clock);
  c.insert(1, id_of(1), "short", in(10s));
  c.insert(1, id_of(2), "long", in(100s));
  clock.advance(9s);
  EXPECT_EQ(get(c, 1, id_of(1)), "short");
  clock.advance(1s);
  EXPECT_EQ(get(c, 1, id_of(1)), "");  // expires at exactly +10 s
  EXPECT_EQ(get(c, 1, id_of(2)), "long");
  EXPECT_EQ(c.total_stats().expirations, 1u);
  EXPECT_EQ(c.entries_in_use(), 1u);
}

TEST_F(SessionCacheTest, OversizeValuesAreNotCachedAndCounted) {
  session_cache c({1024, 4, 64}, clock);
  EXPECT_EQ(c.slot_bytes(), 64u);
  EXPECT_EQ(c.insert(1, id_of(1), std::string(64, 'x'), in(300s)),
            session_cache::insert_result::inserted);
  EXPECT_EQ(c.insert(1, id_of(2), std::string(65, 'x'), in(300s)),
            session_cache::insert_result::oversize);
  EXPECT_EQ(get(c, 1, id_of(2)), "");
  EXPECT_EQ(c.total_stats().oversize, 1u);
  // A lookup whose buffer is too small is a miss, never an overflow.
  EXPECT_EQ(c.lookup(1, id_of(1), buf.data(), 10), 0u);
}

TEST_F(SessionCacheTest, BadKeysAreRefusedAndMiss) {
  session_cache c({1024, 4, 64}, clock);
  EXPECT_EQ(c.insert(1, "", "v", in(300s)), session_cache::insert_result::bad_key);
  EXPECT_EQ(c.insert(1, std::string(33, 'a'), "v", in(300s)),
            session_cache::insert_result::bad_key);
  EXPECT_EQ(get(c, 1, ""), "");
  EXPECT_EQ(get(c, 1, std::string(200, '\xff')), "");
}

TEST_F(SessionCacheTest, RemoveRemoveAllContextsAndClear) {
  session_cache c({1024, 4, 64}, clock);
  for (int i = 0; i < 10; ++i) {
    c.insert(1, id_of(i), "v" + std::to_string(i), in(300s));
  }
  c.insert(2, id_of(3), "other-context", in(300s));
  EXPECT_TRUE(c.remove(1, id_of(3)));
  EXPECT_FALSE(c.remove(1, id_of(3)));
  EXPECT_EQ(get(c, 1, id_of(3)), "");
  EXPECT_EQ(get(c, 2, id_of(3)), "other-context");
  c.insert(1, id_of(3), "back", in(300s));
  EXPECT_EQ(c.remove_all_contexts(id_of(3)), 2u);
  EXPECT_EQ(get(c, 2, id_of(3)), "");
  EXPECT_EQ(c.entries_in_use(), 9u);
  c.clear();
  EXPECT_EQ(c.entries_in_use(), 0u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(get(c, 1, id_of(i)), "") << i;
  }
  c.insert(1, id_of(1), "after-clear", in(300s));
  EXPECT_EQ(get(c, 1, id_of(1)), "after-clear");
}

TEST_F(SessionCacheTest, CapacityAccounting) {
  session_cache c({1000, 4, 192}, clock);
  // 1000 entries → 125 buckets → 32 per shard (power of two) × 4 shards × 8 ways.
  EXPECT_EQ(c.slot_count(), 1024u);
  EXPECT_GE(c.memory_bytes(), c.slot_count() * (56 + 192));
  EXPECT_EQ(session_cache::bytes_per_entry(192), 56u + 192u + 2u);
  // Fill far past capacity: entries in use never exceed the slots, and every insert lands.
  for (int i = 0; i < 5000; ++i) {
    ASSERT_NE(c.insert(1, id_of(i), "v", in(300s)), session_cache::insert_result::busy);
  }
  EXPECT_LE(c.entries_in_use(), c.slot_count());
  EXPECT_GT(c.entries_in_use(), c.slot_count() * 9 / 10);
  auto st = c.total_stats();
  EXPECT_EQ(st.inserts, 5000u);
  EXPECT_GE(st.evictions, 5000u - c.slot_count());
  EXPECT_THROW(session_cache({0, 4, 64}, clock), std::invalid_argument);
  EXPECT_THROW(session_cache({10, 4, 5000}, clock), std::invalid_argument);
}

// With one shard of one bucket the eviction order inside a bucket is observable.
TEST_F(SessionCacheTest, FullBucketEvictsTheExpiredEntryFirst) {
  session_cache c({8, 1, 64}, clock);
  ASSERT_EQ(c.slot_count(), session_cache::ways);
  for (int i = 0; i < 8; ++i) {
    c.insert(1, id_of(i), "v" + std::to_string(i), in(i == 5 ? 5s : 300s));
  }
  clock.advance(6s);  // id 5 is now expired
  c.insert(1, id_of(100), "new-a", in(300s));
  EXPECT_EQ(get(c, 1, id_of(100)), "new-a");
  for (int i = 0; i < 8; ++i) {
    if (i != 5) {
      EXPECT_NE(get(c, 1, id_of(i)), "") << "live entry " << i << " evicted before the expired one";
    }
  }
}

TEST_F(SessionCacheTest, FullBucketEvictsTheEntryNotUsedSinceTheLastSweep) {
  session_cache c({8, 1, 64}, clock);
  for (int i = 0; i < 8; ++i) {
    c.insert(1, id_of(i), "v" + std::to_string(i), in(300s));
  }
  for (int i = 0; i < 8; ++i) {
    if (i != 3) {
      ASSERT_NE(get(c, 1, id_of(i)), "");  // every entry but 3 is used
    }
  }
  c.insert(1, id_of(100), "new", in(300s));
  EXPECT_EQ(get(c, 1, id_of(3)), "") << "the unused entry should be the victim";
  for (int i = 0; i < 8; ++i) {
    if (i != 3) {
      EXPECT_NE(get(c, 1, id_of(i)), "") << i;
    }
  }
  EXPECT_EQ(get(c, 1, id_of(100)), "new");
  // Now all are referenced again except nobody: the sweep gives each a second chance, then the
  // first one it meets twice goes; exactly one entry is evicted per insert.
  c.insert(1, id_of(101), "newer", in(300s));
  int present = 0;
  for (int i : {0, 1, 2, 4, 5, 6, 7, 100, 101}) {
    present += get(c, 1, id_of(i)).empty() ? 0 : 1;
  }
  EXPECT_EQ(present, 8);
  EXPECT_EQ(c.total_stats().evictions, 2u);
}

}  // namespace
}  // namespace tlsfront::cache
