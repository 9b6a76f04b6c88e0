// cluster/ticket_key_sync.h — the fleet's session-ticket keys, shared through Redis.
//
// One Redis key, `<prefix>ticket-keys`, holds the fleet's key list: a version number and the
// keys (name, HMAC and AES secrets, not_before, not_after), sealed with the fleet sealer
// (purpose "tlsfront ticket keys v1", the Redis key as associated data). Every poll_interval
// each instance reads it and installs exactly what it read into its ring (fleet source).
// When the list needs a change (a key expired, no next key is published, or an operator asked
// for a rotation), the instance proposes the changed list with a compare-and-set Lua script
// (the write happens only if the stored value is still the one it read: of concurrent
// proposals exactly one wins), then reads the list back and installs that, won or lost. A new
// key is published `ahead` seconds before it starts sealing, ahead >= publish_ahead and
// >= 2 poll intervals, so every instance holds it before any ticket under it exists.
// The version only grows, as each instance sees it: when Redis lost the list (a restart
// without persistence, a deleted key) the instance that writes it again from the keys it holds
// numbers it after the last list it installed, and an instance that reads a list numbered
// below the one it installed writes the same keys back under its next number.
//
// FAILURE. Redis down or slow, an error reply, or a list that does not open (another fleet's
// secret, tampered) or does not parse: the ring keeps its keys and falls back to scheduling its
// own (ticket_key_ring::set_fallback) — the `keys_ahead` keys published ahead keep the fleet
// sealing under shared keys for that many rotations; only once the last of them is current does
// each instance make keys of its own (counted: tlsfront_fleet_ticket_local_keys_total), and
// from then on tickets resume only on the instance that sealed them until Redis is back. Counted,
// one log line per change of state. A list that does not open is never overwritten (it may be
// another fleet's under the same prefix): delete the key to let the fleet write a new one. When the
// list is readable again the instance installs it and its own keys become `local` (open, never
// seal).
//
// Thread-safety: start() and everything else on the io_context's thread, except
// request_rotation() (any thread: posts) and the counters (relaxed atomics, for display).
// Ownership: the client, the sealer and the ring must outlive this object.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/fleet_secret.h"
#include "cluster/redis_client.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::cluster {

struct ticket_sync_counters {
  std::atomic<std::uint64_t> polls{0};      // list reads sent
  std::atomic<std::uint64_t> errors{0};     // reads or writes that failed (Redis down, error reply)
  std::atomic<std::uint64_t> rejected{0};   // lists that did not open or parse
  std::atomic<std::uint64_t> added{0};      // changed lists this instance wrote (CAS won)
  std::atomic<std::uint64_t> conflicts{0};  // proposals another instance's write beat
  std::atomic<std::int64_t> version{-1};    // highest version installed; -1 before any
  std::atomic<std::int64_t> read_at{0};     // clock seconds of the last good read
  std::atomic<bool> shared{false};          // the last poll installed the fleet list
};

class ticket_key_sync {
 public:
  struct key_list {
    std::uint64_t version = 0;
    std::vector<tls::ticket_key> keys;
  };

  ticket_key_sync(asio::io_context& ioc, redis_client& client, const sealer& seal,
                  tls::ticket_key_ring& ring, std::string key_prefix,
                  std::chrono::milliseconds poll_interval);
  ~ticket_key_sync();
  ticket_key_sync(const ticket_key_sync&) = delete;
  ticket_key_sync& operator=(const ticket_key_sync&) = delete;

  // Polls whenever the client becomes ready (a hook on the client's ready) and every
  // poll_interval.
  void start();
  // Asks the fleet for a new key: the next poll proposes one starting `ahead()` from now.
  void request_rotation();
  // A purge (any thread: posts): the ring's keys are replaced at once by fresh ones (the old
  // ones wiped), and the next poll writes those as the fleet's whole list (compare-and-set
  // against what it read, retried until it wins, across Redis outages); once this instance
  // installed it, the purge hook runs with the list's version.
  void request_purge();
  // The hook a won purge runs (on the io thread) with the list's version; set before start().
  void on_purged(std::function<void(std::uint64_t version)> hook) { purged_ = std::move(hook); }
  // Another instance purged (any thread: posts): the first list read numbered >= `version`
  // is installed in purge mode (keys missing from it dropped, not demoted).
  void purge_install(std::uint64_t version);
  bool shared() const { return counters_.shared.load(std::memory_order_relaxed); }
  const ticket_sync_counters& counters() const { return counters_; }
  // Seconds between publishing a key and its first use.
  std::int64_t ahead() const { return ahead_s_; }

  static constexpr std::size_t kMaxKeys = 64;  // a longer list is refused, and never written

  static std::string redis_key(std::string_view prefix);
  static std::string encode(const key_list& list);
  // False when `bytes` is not a well-formed list (sizes, counts, key lengths, windows).
  static bool decode(std::string_view bytes, key_list& out);
  // Applies the fleet's schedule to `list` at `now`: drops expired keys, adds a key starting
  // `ahead_s` from now when `rotate`, and next keys until the ring's options' keys_ahead are
  // published (each a rotation after the one before), keeps at most
  // kMaxKeys (the latest), sorts by not_before. True (and version + 1) if changed.
  static bool plan(key_list& list, const tls::ticket_key_ring& ring, std::int64_t now, bool rotate,
                   std::int64_t ahead_s);

 private:
  void poll();
  void poll_now();
  void schedule_poll();
  void on_read(const error_code& ec, const redis_reply& r);
  void propose(key_list list, std::string expected, bool rotating, bool purging = false);
  void propose_purge(std::uint64_t read_version, std::string expected);
  void degrade(const std::string& why);
  void done();

  asio::io_context& ioc_;
  redis_client& client_;
  const sealer& seal_;
  tls::ticket_key_ring& ring_;
  std::string key_;
  std::chrono::milliseconds poll_interval_;
  std::int64_t ahead_s_;
  asio::steady_timer timer_;
  bool busy_ = false;                // a read or a proposal is in flight
  bool rotate_ = false;              // an operator asked for a new key
  bool again_ = false;               // poll again as soon as the one in flight ends
  bool purge_ = false;               // a purge's list is still to be written
  std::uint64_t purge_install_ = 0;  // install the first list numbered >= this in purge mode
  std::uint64_t purge_won_ = 0;      // the version this instance's purge wrote (hook pending)
  std::function<void(std::uint64_t)> purged_;
  bool logged_degraded_ = false;
  ticket_sync_counters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tlsfront::cluster
