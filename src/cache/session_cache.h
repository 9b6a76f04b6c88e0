// cache/session_cache.h — the sharded, lock-free, fixed-memory store of serialized TLS sessions
// that serves TLS 1.2 session-ID resumption.
//
// CONTRACT
// - Memory is allocated once, in the constructor, from the configured capacity; lookup(),
//   insert(), remove() and clear() never allocate.
// - No mutex anywhere. A lookup never blocks and never waits for a writer: a slot that a writer
//   holds is skipped (a miss), and a copy torn by a concurrent writer is retried a few times,
//   then reported as a miss. Writers claim a slot with one CAS on its version word; a writer that
//   loses the race does not wait either (the insert is dropped and counted as `busy`).
// - Keys are (context id, session id): a session stored under one context (one certificate /
//   vhost) is never returned for another.
// - Every entry carries its own expiry (seconds on the injected clock); an expired entry is a miss
//   and the first slot reused in its bucket.
// - A lookup reads its bucket's fingerprint word (one byte per slot) and then only the slots
//   whose fingerprint matches: a miss usually costs one cache line.
// - Eviction is per bucket (8 slots): a free, cleared or expired slot first, else the least
//   recently used one by a CLOCK sweep over per-slot "referenced" bits that hits set.
// - clear() is O(1): it bumps a generation number that every entry must match.
//
// HOW IT IS RACE-FREE (C++ memory model, TSan-clean)
// Each slot is a run of std::atomic<uint64_t>: a version word used as a seqlock plus the header
// and payload words. Writers: CAS version even→odd, release stores of the words, release store
// of version+2. Readers: acquire load of version (skip if odd), acquire loads of the words,
// relaxed reload of version; equal versions mean the copy is whole (a word from a newer write
// carries, through its release/acquire pair, that write's odd version). All data is accessed
// through atomics, so there is no data race even when a reader overlaps a writer (the seqlock
// only decides whether the copy is used). On x86 acquire loads and release stores are plain
// moves; no fences are used, so ThreadSanitizer checks it exactly. See Boehm, "Can seqlocks get
// along with programming language memory models?" (2012), and abseil's SequenceLock.
//
// FAQ
// - Why is a busy slot a miss and not a wait? The caller is a TLS handshake; a full handshake is
//   always a correct answer, a stall is not.
// - Why fixed-size slots? No allocator on the hot path and a predictable memory bound. Sessions
//   larger than slot_bytes are not cached (counted as `oversize`).
// Thread-safety: every public member may be called from any thread at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace tlsfront::cache {

struct session_cache_options {
  std::size_t capacity = 32768;  // entries; rounded up to whole buckets of every shard
  unsigned shards = 64;          // rounded up to a power of two
  // Largest value stored; rounded up to a multiple of 8. A TLS 1.2 session from BoringSSL
  // serializes to 158 bytes (ECDHE, AES-GCM, ALPN, 32-byte session-ID context; measured by
  // bench/tls), so 176 leaves room for longer ALPN names: 232 bytes an entry, 4519 per MiB.
  std::size_t slot_bytes = 176;
};

class session_cache {
 public:
  static constexpr std::size_t ways = 8;  // slots per bucket
  static constexpr std::size_t max_id_bytes = 32;
  static constexpr std::size_t max_slot_bytes = 4088;  // value length fits 12 bits

  enum class insert_result { inserted, replaced, oversize, bad_key, busy };

  struct stats {
    std::uint64_t hits = 0, misses = 0, inserts = 0, evictions = 0, expirations = 0, oversize = 0,
                  torn_retries = 0, busy = 0, removals = 0;
    stats& operator+=(const stats& o);
  };

  // `clock` must outlive the cache. Throws std::invalid_argument if slot_bytes is over
  // max_slot_bytes or capacity is 0 (control plane only).
  session_cache(const session_cache_options& opts, const core::clock& clock);
  ~session_cache();
  session_cache(const session_cache&) = delete;
  session_cache& operator=(const session_cache&) = delete;

  // Stores `value` under (context, id) until `expires_at_s` (seconds on the clock). An existing
  // entry for the key is replaced. Never blocks; see insert_result for what can go wrong.
  insert_result insert(std::uint64_t context, std::string_view id, std::string_view value,
                       std::int64_t expires_at_s) noexcept;

  // Copies the value for (context, id) into out[0..capacity) and returns its length, or 0 on a
  // miss (absent, expired, cleared, held by a writer, torn beyond the retry budget, or longer
  // than `capacity`). Never blocks, never allocates.
  std::size_t lookup(std::uint64_t context, std::string_view id, std::uint8_t* out,
                     std::size_t capacity) noexcept;

  // Removes the entry; true if one was there. A slot held by a writer at that instant is retried
  // a few times, so a concurrent insert of the same key may still win.
  bool remove(std::uint64_t context, std::string_view id) noexcept;
  // Removes every entry for `id`, whatever its context (admin revocation by id).
  std::size_t remove_all_contexts(std::string_view id) noexcept;
  // Invalidates every entry at once.
  void clear() noexcept;

  // Control-plane reads (metrics): sums, a scan of all slots.
  stats total_stats() const noexcept;
  std::vector<stats> shard_stats() const;
  std::size_t entries_in_use() const noexcept;
  // Every live entry (current generation, unexpired, copied whole under its seqlock), for the
  // upgrade handover (daemon/handover.h): a scan of every slot; an entry a writer holds at that
  // instant is skipped. `f(context, id, value, expires_at_s)`.
  void for_each(const std::function<void(std::uint64_t, std::string_view, std::string_view,
                                         std::int64_t)>& f) const;
  std::size_t slot_count() const noexcept { return slot_count_; }
  std::size_t slot_bytes() const noexcept { return value_words_ * 8; }
  std::size_t memory_bytes() const noexcept;
  // Bytes of cache memory one entry costs (slot header + value area + bucket share).
  static std::size_t bytes_per_entry(std::size_t slot_bytes) noexcept;

 private:
  struct shard_counters;
  struct slot_header;

  std::uint64_t hash(std::uint64_t context, std::string_view id) const noexcept;
  std::atomic<std::uint64_t>* slot_at(std::size_t index) const noexcept;
  shard_counters& counters_for(std::size_t bucket) const noexcept;
  bool read_header(std::atomic<std::uint64_t>* s, slot_header& h) const noexcept;
  bool key_matches(const slot_header& h, std::uint64_t context, const std::uint64_t* id_words,
                   std::size_t id_len) const noexcept;
  bool erase_slot(std::atomic<std::uint64_t>* s, std::uint64_t version) noexcept;
  void set_tag(std::size_t bucket, std::size_t way, std::uint8_t tag) noexcept;

  const core::clock& clock_;
  std::size_t value_words_;
  std::size_t stride_words_;       // words per slot
  std::size_t buckets_per_shard_;  // power of two
  std::size_t shard_mask_;
  std::size_t bucket_count_;
  std::size_t slot_count_;
  std::uint64_t seed_[2];
  std::unique_ptr<std::atomic<std::uint64_t>[]> words_;  // slot_count_ * stride_words_
  // Per bucket, 16 bytes (four buckets per cache line): one fingerprint byte per slot, so a
  // lookup touches only the slots whose fingerprint matches, and the CLOCK bits + hand.
  struct bucket_meta {
    std::atomic<std::uint64_t> tags{0};
    std::atomic<std::uint32_t> clock{0};
  };
  std::unique_ptr<bucket_meta[]> buckets_;
  std::unique_ptr<shard_counters[]> counters_;
  // Incremented by clear(); an entry is valid only under the generation it was written in.
  std::atomic<std::uint32_t> generation_{1};
};

}  // namespace tlsfront::cache
