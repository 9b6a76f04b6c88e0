// cluster/revocation.h — fleet-wide revocation through Redis (issue 14): session IDs, session
// handles, the generation floor, fleet flushes and purges, written to Redis, published on
// `<prefix>revoke` to every instance (this one too) and read back whole by an instance that
// starts or whose subscription comes back.
//
// REDIS LAYOUT (the `{rv}` hash tag keeps every key of a script in one slot):
//   <prefix>{rv}:h      ZSET, member = handle (16 hex), score = unix ms after which nothing
//                       carrying it can resume (its generation + handle_max_age): the TTL the
//                       issue asks for, kept per member; the key expires with its last member.
//   <prefix>{rv}:gone   members removed so far (expired or evicted): lets a paged read-back
//                       correct its offset for removals made while it reads.
//   <prefix>{rv}:floor  the fleet's generation floor (only raised); :flush the unix second of
//                       the last fleet flush; :purge the last purge's floor and :purge_keys its
//                       fleet key list (all only raised), so an instance that missed a purge
//                       completes it from the read-back. They expire after `marker_ttl` (past
//                       it they can refuse nothing).
// The ZSET holds at most `capacity` members: past it the REVOKE script pops the members that
// expire first and raises the floor past their generation (fail closed, as the local set does).
//
// MESSAGES on <prefix>revoke: "h:<16 hex>" a handle; "F:<gen>" a floor; "f:<unix s>" a flush;
// "p:<gen>:<unix s>:<key list version>" a purge; bare hex a session ID (as before handles, so
// older instances in a rolling upgrade keep understanding IDs and ignore the rest).
//
// ORDERING THAT LOSES NOTHING: the read-back starts when the subscriber's SUBSCRIBE is
// confirmed (at start and after every reconnect): a revocation written after the read-back's
// snapshot is published after the subscription and reaches it; one written before is in the
// snapshot.
//
// REDIS DOWN: a revocation is enforced locally at once by the caller; here it is queued
// (bounded by `capacity`; past it the oldest handles are folded into a floor raise, so nothing
// is forgotten) and written, in one pipeline, when the command connection is ready again. A
// failed write is queued again and retried. An instance that dies with a non-empty queue
// loses it (the local set is memory only too).
//
// Thread-safety: the public revoke/mark calls may be called from any thread (they post to the
// io_context); everything else runs on it. Counters are relaxed atomics, for display.
// Ownership: both clients and the guard must outlive this object; callbacks posted after its
// destruction are dropped.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/redis_client.h"
#include "core/metrics.h"
#include "tls/session_handle.h"

namespace tlsfront::cluster {

// The commands that revoke `session_id` in a fleet under `key_prefix`, in the order to send
// them: DEL of its copies under each of `context_ids`, then PUBLISH of the ID.
std::vector<std::vector<std::string>> revocation_commands(
    std::string_view key_prefix, const std::vector<std::uint64_t>& context_ids,
    std::string_view session_id);

// One message of the revocation channel, parsed. nullopt: not one of ours (ignored).
struct fleet_message {
  enum class kind { session_id, handle, floor, flush, purge };
  kind type = kind::session_id;
  std::string session_id;          // session_id: raw bytes
  std::uint64_t handle = 0;        // handle
  std::uint32_t floor = 0;         // floor, purge
  std::int64_t flush_s = 0;        // flush: sessions made before it are refused; purge: its time
  std::uint64_t keys_version = 0;  // purge: the fleet key list that replaced every key (0: none)
};
std::optional<fleet_message> parse_fleet_message(std::string_view payload);
std::string format_fleet_message(const fleet_message& m);

// What the fleet's messages do to this instance beyond the revoked set (which the sync
// updates itself): each may be empty.
struct revocation_hooks {
  std::function<std::size_t(std::string_view id)> drop_id;  // session ID: local entries gone
  std::function<void(std::int64_t unix_s)> flushed;         // a fleet flush
  // A purge (its floor is applied by the sync): the cache emptied, the ticket keys replaced.
  std::function<void(std::uint32_t gen, std::uint64_t keys_version)> purged;
};

// How a revocation stands in the fleet when the caller's callback runs.
enum class fleet_ack {
  accepted,     // Redis has it (written and published)
  queued,       // Redis unreachable or failing: written when it returns
  unavailable,  // (session IDs only, never queued) Redis unreachable: only the local copy went
};
const char* to_string(fleet_ack a) noexcept;

class revocation_sync {
 public:
  // `n`: for a session ID, the Redis copies deleted; 0 otherwise.
  using ack = std::function<void(fleet_ack, long long n)>;

  revocation_sync(asio::io_context& ioc, redis_client& client, redis_client& subscriber,
                  tls::resumption_guard& guard, std::string key_prefix, std::size_t capacity,
                  std::chrono::seconds marker_ttl, revocation_hooks hooks);
  ~revocation_sync();
  revocation_sync(const revocation_sync&) = delete;
  revocation_sync& operator=(const revocation_sync&) = delete;

  // Subscribes and hooks the command client's ready. Before the io_context runs.
  void start();

  // Any thread. `done` (optional) runs on the io_context's thread once Redis accepted it, or
  // at once with `queued` when Redis is unreachable.
  void revoke_handle(std::uint64_t h, ack done = {});
  void raise_floor(std::uint32_t gen, ack done = {});
  void flush(std::int64_t unix_s, ack done = {});
  void purge(std::uint32_t gen, std::int64_t unix_s, std::uint64_t keys_version, ack done = {});
  // The session-ID revocation (revocation_commands): not queued; `n` = copies deleted.
  void revoke_id(std::vector<std::vector<std::string>> commands, ack done);
  // Deletes every fleet session-ID entry (<prefix>s:*) in batches (SCAN + UNLINK), after a
  // flush or purge made them unusable; logs the count. Any thread.
  void unlink_sessions();

  std::size_t queued() const noexcept { return queued_.load(std::memory_order_relaxed); }
  std::uint64_t received() const noexcept { return received_.load(std::memory_order_relaxed); }
  std::uint64_t errors() const noexcept { return errors_.load(std::memory_order_relaxed); }
  std::uint64_t resyncs() const noexcept { return resyncs_.load(std::memory_order_relaxed); }
  std::uint64_t resynced() const noexcept { return resynced_.load(std::memory_order_relaxed); }
  // tlsfront_fleet_revocations_received_total, _queued, _errors_total, _resyncs_total,
  // _resynced_total.
  void register_metrics(core::metrics_registry& metrics) const;

  std::string zset_key() const { return prefix_ + "{rv}:h"; }
  std::string floor_key() const { return prefix_ + "{rv}:floor"; }
  std::string flush_key() const { return prefix_ + "{rv}:flush"; }

 private:
  struct entry {
    fleet_message msg;
    std::int64_t expiry_ms = 0;  // handle: the ZSET score
    ack done;
  };

  void post_entry(entry e);
  void enqueue(entry e);
  void pump();
  void send(entry e);
  void failed(entry e, const std::string& why);
  void arm_retry();
  void apply(const fleet_message& m, bool from_channel);
  // A read-back: pages of the ZSET from one lower bound, the markers with the first page.
  struct page {
    std::int64_t offset;
    long long gone_before;  // :gone when the previous page was read
    std::int64_t from_ms;
    bool first;
  };
  void resync();
  void read_page(page at);
  void on_page(const redis_reply& r, page at);
  // One SCAN page of masters[at] (a Redis Cluster: each master in turn), its keys unlinked.
  void unlink_batch(std::vector<redis_endpoint> masters, std::size_t at, std::string cursor,
                    std::uint64_t deleted);
  std::int64_t now_ms() const;

  asio::io_context& ioc_;
  redis_client& client_;
  redis_client& subscriber_;
  tls::resumption_guard& guard_;
  std::string prefix_;
  std::string channel_;
  std::size_t capacity_;
  std::chrono::seconds marker_ttl_;
  revocation_hooks hooks_;
  std::deque<entry> queue_;
  std::uint32_t folded_floor_ = 0;  // handles dropped from a full queue, as a floor to publish
  bool resync_wanted_ = false;
  bool resyncing_ = false;
  std::int64_t last_flush_s_ = 0;
  asio::steady_timer retry_;
  bool retry_armed_ = false;
  std::atomic<std::size_t> queued_{0};
  std::atomic<std::uint64_t> received_{0};
  std::atomic<std::uint64_t> errors_{0};
  std::atomic<std::uint64_t> resyncs_{0};
  std::atomic<std::uint64_t> resynced_{0};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tlsfront::cluster
