#include "cache/session_cache.h"

#include <bit>
#include <cstring>
#include <random>
#include <stdexcept>

namespace tlsfront::cache {
namespace {

// Slot layout, in 64-bit atomic words:
//   [0] version: even = stable, odd = a writer holds the slot
//   [1] context id
//   [2] meta: id length (bits 0-5) | value length (6-17) | generation (18-31) | expiry s (32-63)
//   [3..6] session id, zero padded to 32 bytes
//   [7..]  value, zero padded to whole words
constexpr std::size_t header_words = 7;
constexpr std::size_t id_words = 4;
constexpr int torn_retry_budget = 4;
constexpr std::uint32_t generation_mask = 0x3fff;

std::uint64_t pack_meta(std::size_t id_len, std::size_t value_len, std::uint32_t generation,
                        std::int64_t expires_at) {
  std::uint64_t exp = expires_at < 0 ? 0 : static_cast<std::uint64_t>(expires_at) & 0xffffffffu;
  return static_cast<std::uint64_t>(id_len) | static_cast<std::uint64_t>(value_len) << 6 |
         static_cast<std::uint64_t>(generation & generation_mask) << 18 | exp << 32;
}

std::uint64_t mix(std::uint64_t x) {
  // splitmix64 finalizer: full avalanche.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  x ^= x >> 31;
  return x;
}

// A slot's fingerprint: 8 hash bits that select neither the shard nor the bucket; never 0
// (0 marks an empty slot).
std::uint8_t fingerprint(std::uint64_t h) {
  std::uint8_t f = static_cast<std::uint8_t>(h >> 56);
  return f == 0 ? 1 : f;
}

void load_id_words(std::string_view id, std::uint64_t (&out)[id_words]) {
  std::memset(out, 0, sizeof out);
  std::memcpy(out, id.data(), id.size());
}

}  // namespace

struct session_cache::slot_header {
  std::uint64_t version = 0;
  std::uint64_t context = 0;
  std::uint64_t meta = 0;
  std::uint64_t id[id_words] = {};
  std::size_t id_len() const { return meta & 0x3f; }
  std::size_t value_len() const { return (meta >> 6) & 0xfff; }
  std::uint32_t generation() const {
    return static_cast<std::uint32_t>(meta >> 18) & generation_mask;
  }
  std::int64_t expires_at() const { return static_cast<std::int64_t>(meta >> 32); }
};

// One cache line per shard, so shards do not share counter lines. Relaxed increments: the
// counters publish nothing.
struct alignas(64) session_cache::shard_counters {
  std::atomic<std::uint64_t> hits{0}, misses{0}, inserts{0}, evictions{0}, expirations{0},
      oversize{0}, torn_retries{0}, busy{0};
  // `removals` would make a ninth word; keep it on a second line.
  alignas(64) std::atomic<std::uint64_t> removals{0};
};

session_cache::stats& session_cache::stats::operator+=(const stats& o) {
  hits += o.hits;
  misses += o.misses;
  inserts += o.inserts;
  evictions += o.evictions;
  expirations += o.expirations;
  oversize += o.oversize;
  torn_retries += o.torn_retries;
  busy += o.busy;
  removals += o.removals;
  return *this;
}

std::size_t session_cache::bytes_per_entry(std::size_t slot_bytes) noexcept {
  std::size_t value_words = (slot_bytes + 7) / 8;
  return (header_words + value_words) * 8 + 16 / ways;
}

session_cache::session_cache(const session_cache_options& opts, const core::clock& clock)
    : clock_(clock) {
  if (opts.capacity == 0) {
    throw std::invalid_argument("session cache capacity must be at least 1");
  }
  if (opts.slot_bytes == 0 || opts.slot_bytes > max_slot_bytes) {
    throw std::invalid_argument("session cache slot_bytes must be 1.." +
                                std::to_string(max_slot_bytes));
  }
  value_words_ = (opts.slot_bytes + 7) / 8;
  stride_words_ = header_words + value_words_;
  std::size_t shards = std::bit_ceil(std::max(1u, opts.shards));
  std::size_t buckets_needed = (opts.capacity + ways - 1) / ways;
  buckets_per_shard_ =
      std::bit_ceil(std::max<std::size_t>(1, (buckets_needed + shards - 1) / shards));
  shard_mask_ = shards - 1;
  bucket_count_ = shards * buckets_per_shard_;
  slot_count_ = bucket_count_ * ways;

  words_ = std::make_unique<std::atomic<std::uint64_t>[]>(slot_count_ * stride_words_);
  buckets_ = std::make_unique<bucket_meta[]>(bucket_count_);
  counters_ = std::make_unique<shard_counters[]>(shards);
  std::random_device rd;
  seed_[0] = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  seed_[1] = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
}

session_cache::~session_cache() = default;

std::uint64_t session_cache::hash(std::uint64_t context, std::string_view id) const noexcept {
  // Keyed (random per process), so which sessions share a bucket cannot be predicted from outside.
  std::uint64_t w[id_words];
  load_id_words(id, w);
  std::uint64_t h = (seed_[0] ^ context) * 0x9e3779b97f4a7c15ull;
  for (std::uint64_t x : w) {
    h = std::rotl(h ^ x, 27) * 0xff51afd7ed558ccdull + seed_[1];
  }
  return mix(h ^ id.size());
}

std::atomic<std::uint64_t>* session_cache::slot_at(std::size_t index) const noexcept {
  return &words_[index * stride_words_];
}

session_cache::shard_counters& session_cache::counters_for(std::size_t bucket) const noexcept {
  return counters_[bucket / buckets_per_shard_];
}

// Reads a slot's header as a consistent snapshot. False if a writer holds it or kept changing it.
bool session_cache::read_header(std::atomic<std::uint64_t>* s, slot_header& h) const noexcept {
  for (int attempt = 0; attempt < torn_retry_budget; ++attempt) {
    // Acquire pairs with the release store of version+2 at the end of a write: if we see that
    // version, we see every word that write stored.
    h.version = s[0].load(std::memory_order_acquire);
    if (h.version & 1) {
      return false;  // a writer holds it: never wait
    }
    // Acquire loads of the words pair with the writer's release stores of them: a word from a
    // newer write brings that write's odd version along, so the re-check below cannot miss it
    // (and, being after acquire loads, cannot be reordered before them).
    h.context = s[1].load(std::memory_order_acquire);
    h.meta = s[2].load(std::memory_order_acquire);
    for (std::size_t i = 0; i < id_words; ++i) {
      h.id[i] = s[3 + i].load(std::memory_order_acquire);
    }
    if (s[0].load(std::memory_order_relaxed) == h.version) {
      return true;
    }
  }
  return false;
}

bool session_cache::key_matches(const slot_header& h, std::uint64_t context,
                                const std::uint64_t* id, std::size_t id_len) const noexcept {
  return h.meta != 0 && h.context == context && h.id_len() == id_len && h.id[0] == id[0] &&
         h.id[1] == id[1] && h.id[2] == id[2] && h.id[3] == id[3];
}

std::size_t session_cache::lookup(std::uint64_t context, std::string_view id, std::uint8_t* out,
                                  std::size_t capacity) noexcept {
  if (id.empty() || id.size() > max_id_bytes) {
    return 0;  // garbage from a ClientHello: a plain miss, not even counted per shard
  }
  std::uint64_t want[id_words];
  load_id_words(id, want);
  const std::uint64_t h = hash(context, id);
  const std::size_t shard = h & shard_mask_;
  const std::size_t bucket = shard * buckets_per_shard_ + ((h >> 32) & (buckets_per_shard_ - 1));
  shard_counters& ctr = counters_[shard];
  // Acquire pairs with the release increment in clear(): entries of older generations are gone.
  const std::uint32_t generation = generation_.load(std::memory_order_acquire) & generation_mask;
  const std::int64_t now = clock_.now_s();

  const std::uint8_t fp = fingerprint(h);
  // Relaxed: the fingerprints are hints; every candidate is verified under its seqlock.
  const std::uint64_t tags = buckets_[bucket].tags.load(std::memory_order_relaxed);
  for (std::size_t way = 0; way < ways; ++way) {
    if (static_cast<std::uint8_t>(tags >> (8 * way)) != fp) {
      continue;
    }
    std::atomic<std::uint64_t>* s = slot_at(bucket * ways + way);
    for (int attempt = 0; attempt < torn_retry_budget; ++attempt) {
      slot_header hd;
      hd.version = s[0].load(std::memory_order_acquire);  // pairs as in read_header()
      if (hd.version & 1) {
        break;  // a writer holds the slot: a miss, never a wait
      }
      // Acquire word loads: see read_header().
      hd.context = s[1].load(std::memory_order_acquire);
      hd.meta = s[2].load(std::memory_order_acquire);
      for (std::size_t i = 0; i < id_words; ++i) {
        hd.id[i] = s[3 + i].load(std::memory_order_acquire);
      }
      if (!key_matches(hd, context, want, id.size())) {
        break;
      }
      const std::size_t len = hd.value_len();
      const std::size_t words = (len + 7) / 8;
      std::uint64_t buf[max_slot_bytes / 8 + 1];
      for (std::size_t i = 0; i < words && i < value_words_; ++i) {
        buf[i] = s[header_words + i].load(std::memory_order_acquire);
      }
      if (s[0].load(std::memory_order_relaxed) != hd.version) {
        ctr.torn_retries.fetch_add(1, std::memory_order_relaxed);
        continue;  // torn by a concurrent writer: copy again
      }
      if (hd.generation() != generation) {
        break;  // cleared
      }
      if (hd.expires_at() <= now) {
        ctr.expirations.fetch_add(1, std::memory_order_relaxed);
        break;
      }
      if (len == 0 || len > capacity || len > value_words_ * 8) {
        break;
      }
      std::memcpy(out, buf, len);
      // CLOCK: mark referenced; load first so a hot entry does not write its line every hit.
      std::atomic<std::uint32_t>& bits = buckets_[bucket].clock;
      const std::uint32_t mask = 1u << way;
      if ((bits.load(std::memory_order_relaxed) & mask) == 0) {
        bits.fetch_or(mask, std::memory_order_relaxed);  // a hint only: relaxed
      }
      ctr.hits.fetch_add(1, std::memory_order_relaxed);
      return len;
    }
  }
  ctr.misses.fetch_add(1, std::memory_order_relaxed);
  return 0;
}

session_cache::insert_result session_cache::insert(std::uint64_t context, std::string_view id,
                                                   std::string_view value,
                                                   std::int64_t expires_at_s) noexcept {
  if (id.empty() || id.size() > max_id_bytes) {
    return insert_result::bad_key;
  }
  const std::uint64_t h = hash(context, id);
  const std::size_t shard = h & shard_mask_;
  const std::size_t bucket = shard * buckets_per_shard_ + ((h >> 32) & (buckets_per_shard_ - 1));
  shard_counters& ctr = counters_[shard];
  if (value.empty() || value.size() > value_words_ * 8) {
    ctr.oversize.fetch_add(1, std::memory_order_relaxed);
    return insert_result::oversize;
  }
  std::uint64_t want[id_words];
  load_id_words(id, want);
  const std::uint32_t generation = generation_.load(std::memory_order_acquire) & generation_mask;
  const std::int64_t now = clock_.now_s();

  // Choose the slot: the same key (replace), else a free/cleared/expired one, else CLOCK.
  int same = -1, free_slot = -1;
  slot_header headers[ways];
  bool readable[ways];
  for (std::size_t way = 0; way < ways; ++way) {
    readable[way] = read_header(slot_at(bucket * ways + way), headers[way]);
    if (!readable[way]) {
      continue;
    }
    const slot_header& hd = headers[way];
    bool live = hd.meta != 0 && hd.generation() == generation && hd.expires_at() > now;
    if (live && key_matches(hd, context, want, id.size())) {
      same = static_cast<int>(way);
      break;
    }
    if (!live && free_slot < 0) {
      free_slot = static_cast<int>(way);
    }
  }
  int victim = same >= 0 ? same : free_slot;
  bool evicting = false;
  if (victim < 0) {
    // CLOCK sweep from the hand: the first slot not referenced since the hand last passed.
    std::atomic<std::uint32_t>& cb = buckets_[bucket].clock;
    std::uint32_t word = cb.load(std::memory_order_relaxed);
    std::uint32_t hand = (word >> 8) & (ways - 1);
    std::uint32_t bits = word & 0xff;
    std::uint32_t chosen = hand;
    for (std::uint32_t i = 0; i < ways; ++i) {
      std::uint32_t w = (hand + i) & (ways - 1);
      if (readable[w] && (bits & (1u << w)) == 0) {
        chosen = w;
        break;
      }
      bits &= ~(1u << w);  // second chance used up
    }
    bits &= ~(1u << chosen);
    // Relaxed CAS: the bits are an approximation; losing a race only ages a slot a bit early.
    cb.compare_exchange_strong(word, bits | (((chosen + 1) & (ways - 1)) << 8),
                               std::memory_order_relaxed);
    victim = static_cast<int>(chosen);
    evicting = true;
  }

  std::atomic<std::uint64_t>* s = slot_at(bucket * ways + static_cast<std::size_t>(victim));
  std::uint64_t v = s[0].load(std::memory_order_relaxed);
  // Claim: even → odd. Relaxed is enough for the CAS itself: each word below is stored with
  // release, which orders this CAS before it for any reader that acquires the word.
  if ((v & 1) || !s[0].compare_exchange_strong(v, v + 1, std::memory_order_relaxed)) {
    ctr.busy.fetch_add(1, std::memory_order_relaxed);
    return insert_result::busy;  // another writer holds it; never wait
  }
  // Release stores pair with the readers' acquire loads of the same words (see read_header()).
  // On x86 both are plain moves; no fence is needed (and ThreadSanitizer does not model fences).
  s[1].store(context, std::memory_order_release);
  s[2].store(pack_meta(id.size(), value.size(), generation, expires_at_s),
             std::memory_order_release);
  for (std::size_t i = 0; i < id_words; ++i) {
    s[3 + i].store(want[i], std::memory_order_release);
  }
  const std::size_t words = (value.size() + 7) / 8;
  for (std::size_t i = 0; i < words; ++i) {
    std::uint64_t w = 0;
    std::memcpy(&w, value.data() + i * 8, std::min<std::size_t>(8, value.size() - i * 8));
    s[header_words + i].store(w, std::memory_order_release);
  }
  // Release: publishes every word above to a reader that acquires this version.
  s[0].store(v + 2, std::memory_order_release);
  set_tag(bucket, static_cast<std::size_t>(victim), fingerprint(h));

  if (same >= 0) {
    ctr.inserts.fetch_add(1, std::memory_order_relaxed);
    return insert_result::replaced;
  }
  ctr.inserts.fetch_add(1, std::memory_order_relaxed);
  if (evicting) {
    ctr.evictions.fetch_add(1, std::memory_order_relaxed);
  }
  return insert_result::inserted;
}

void session_cache::set_tag(std::size_t bucket, std::size_t way, std::uint8_t tag) noexcept {
  // Relaxed CAS loop: writers of other ways of the bucket update their bytes concurrently; the
  // tags only steer lookups (a stale tag costs a miss or a rejected candidate, never a wrong
  // answer).
  std::atomic<std::uint64_t>& tags = buckets_[bucket].tags;
  std::uint64_t old = tags.load(std::memory_order_relaxed);
  std::uint64_t want;
  do {
    want = (old & ~(std::uint64_t{0xff} << (8 * way))) | (std::uint64_t{tag} << (8 * way));
  } while (old != want && !tags.compare_exchange_weak(old, want, std::memory_order_relaxed));
}

bool session_cache::erase_slot(std::atomic<std::uint64_t>* s, std::uint64_t version) noexcept {
  std::uint64_t v = version;
  if (!s[0].compare_exchange_strong(v, v + 1, std::memory_order_relaxed)) {
    return false;
  }
  s[2].store(0, std::memory_order_release);  // meta 0: empty; release as in insert()
  s[0].store(v + 2, std::memory_order_release);
  std::size_t index = static_cast<std::size_t>(s - slot_at(0)) / stride_words_;
  set_tag(index / ways, index % ways, 0);
  return true;
}

bool session_cache::remove(std::uint64_t context, std::string_view id) noexcept {
  if (id.empty() || id.size() > max_id_bytes) {
    return false;
  }
  std::uint64_t want[id_words];
  load_id_words(id, want);
  const std::uint64_t h = hash(context, id);
  const std::size_t shard = h & shard_mask_;
  const std::size_t bucket = shard * buckets_per_shard_ + ((h >> 32) & (buckets_per_shard_ - 1));
  bool removed = false;
  for (std::size_t way = 0; way < ways; ++way) {
    std::atomic<std::uint64_t>* s = slot_at(bucket * ways + way);
    for (int attempt = 0; attempt < torn_retry_budget * 4; ++attempt) {
      slot_header hd;
      if (!read_header(s, hd)) {
        continue;  // held by a writer: try again (revocation should not give up easily)
      }
      if (!key_matches(hd, context, want, id.size())) {
        break;
      }
      if (erase_slot(s, hd.version)) {
        removed = true;
        break;
      }
    }
  }
  if (removed) {
    counters_[shard].removals.fetch_add(1, std::memory_order_relaxed);
  }
  return removed;
}

std::size_t session_cache::remove_all_contexts(std::string_view id) noexcept {
  if (id.empty() || id.size() > max_id_bytes) {
    return 0;
  }
  // The context is part of the bucket hash, so every slot must be looked at (admin path only).
  std::uint64_t want[id_words];
  load_id_words(id, want);
  std::size_t removed = 0;
  for (std::size_t i = 0; i < slot_count_; ++i) {
    std::atomic<std::uint64_t>* s = slot_at(i);
    slot_header hd;
    if (read_header(s, hd) && hd.meta != 0 && key_matches(hd, hd.context, want, id.size()) &&
        erase_slot(s, hd.version)) {
      ++removed;
      counters_[i / ways / buckets_per_shard_].removals.fetch_add(1, std::memory_order_relaxed);
    }
  }
  return removed;
}

void session_cache::clear() noexcept {
  // Release pairs with the acquire loads in lookup()/insert(). Skip the generation value 0 so
  // that meta 0 always means "empty".
  std::uint32_t g = generation_.fetch_add(1, std::memory_order_acq_rel) + 1;
  if ((g & generation_mask) == 0) {
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
}

session_cache::stats session_cache::total_stats() const noexcept {
  stats t;
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    const shard_counters& c = counters_[i];
    stats s;
    s.hits = c.hits.load(std::memory_order_relaxed);
    s.misses = c.misses.load(std::memory_order_relaxed);
    s.inserts = c.inserts.load(std::memory_order_relaxed);
    s.evictions = c.evictions.load(std::memory_order_relaxed);
    s.expirations = c.expirations.load(std::memory_order_relaxed);
    s.oversize = c.oversize.load(std::memory_order_relaxed);
    s.torn_retries = c.torn_retries.load(std::memory_order_relaxed);
    s.busy = c.busy.load(std::memory_order_relaxed);
    s.removals = c.removals.load(std::memory_order_relaxed);
    t += s;
  }
  return t;
}

std::vector<session_cache::stats> session_cache::shard_stats() const {
  std::vector<stats> out(shard_mask_ + 1);
  for (std::size_t i = 0; i <= shard_mask_; ++i) {
    const shard_counters& c = counters_[i];
    out[i].hits = c.hits.load(std::memory_order_relaxed);
    out[i].misses = c.misses.load(std::memory_order_relaxed);
    out[i].inserts = c.inserts.load(std::memory_order_relaxed);
    out[i].evictions = c.evictions.load(std::memory_order_relaxed);
    out[i].expirations = c.expirations.load(std::memory_order_relaxed);
    out[i].oversize = c.oversize.load(std::memory_order_relaxed);
    out[i].torn_retries = c.torn_retries.load(std::memory_order_relaxed);
    out[i].busy = c.busy.load(std::memory_order_relaxed);
    out[i].removals = c.removals.load(std::memory_order_relaxed);
  }
  return out;
}

std::size_t session_cache::entries_in_use() const noexcept {
  const std::uint32_t generation = generation_.load(std::memory_order_acquire) & generation_mask;
  const std::int64_t now = clock_.now_s();
  std::size_t n = 0;
  for (std::size_t i = 0; i < slot_count_; ++i) {
    slot_header hd;
    if (read_header(slot_at(i), hd) && hd.meta != 0 && hd.generation() == generation &&
        hd.expires_at() > now) {
      ++n;
    }
  }
  return n;
}

void session_cache::for_each(const std::function<void(std::uint64_t, std::string_view,
                                                      std::string_view, std::int64_t)>& f) const {
  const std::uint32_t generation = generation_.load(std::memory_order_acquire) & generation_mask;
  const std::int64_t now = clock_.now_s();
  std::uint64_t buf[max_slot_bytes / 8 + 1];
  for (std::size_t i = 0; i < slot_count_; ++i) {
    std::atomic<std::uint64_t>* s = slot_at(i);
    slot_header hd;
    if (!read_header(s, hd) || hd.meta == 0 || hd.generation() != generation ||
        hd.expires_at() <= now) {
      continue;
    }
    const std::size_t len = hd.value_len();
    if (len == 0 || len > value_words_ * 8 || hd.id_len() == 0 || hd.id_len() > max_id_bytes) {
      continue;
    }
    for (std::size_t w = 0; w < (len + 7) / 8; ++w) {
      buf[w] = s[header_words + w].load(std::memory_order_acquire);  // as lookup() copies
    }
    if (s[0].load(std::memory_order_relaxed) != hd.version) {
      continue;  // rewritten meanwhile: the new entry is someone else's to hand over
    }
    std::uint8_t id[max_id_bytes];
    std::memcpy(id, hd.id, sizeof id);
    f(hd.context, std::string_view(reinterpret_cast<const char*>(id), hd.id_len()),
      std::string_view(reinterpret_cast<const char*>(buf), len), hd.expires_at());
  }
}

std::size_t session_cache::memory_bytes() const noexcept {
  return slot_count_ * stride_words_ * 8 + bucket_count_ * sizeof(bucket_meta) +
         (shard_mask_ + 1) * sizeof(shard_counters);
}

}  // namespace tlsfront::cache
