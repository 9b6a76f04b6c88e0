// cluster/session_store.h — the fleet (L2) TLS session store on Redis: implements
// tls::remote_session_store for one worker on that worker's redis_client.
//
// Values are the serialized sessions sealed with the fleet sealer (AES-256-GCM) with the Redis
// key as associated data, so a value copied under another key, altered, truncated or written by
// another fleet opens as nothing (a miss, counted as `rejected`). Keys:
// `<prefix>s:<hex of context id and session id>`, written with `SET ... PX <session timeout>`.
// Writes never wait: at most max_pending_writes in flight. A write that cannot go now (Redis
// down, or that many in flight) is sealed and queued, at most `queue_capacity` of them (the
// oldest dropped first, counted), and sent when the connection is ready again (and as replies
// free room), with what is left of its TTL; one whose TTL ran out in the queue is dropped and
// counted. A write in flight when the connection drops is lost (counted as an error): at most
// max_pending_writes, the sessions of the moment Redis went. Lookups answer "" at once when
// Redis is not connected.
//
// A session queued during an outage and revoked before it is written is still refused where
// it is read: every L2 hit passes the revoked-handle set and the generation floors
// (tls::resumption_guard), which the revocation sync keeps fleet-wide.
//
// Thread-safety: none; one per worker, used on its thread. Counters are read by the metrics
// renderer from another thread: they are relaxed atomics (monotonic counts, no ordering needed).
// Ownership: the client and the sealer must outlive the store.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "cluster/fleet_secret.h"
#include "cluster/redis_client.h"
#include "tls/remote_session_store.h"

namespace tlsfront::cluster {

struct session_store_counters {
  std::atomic<std::uint64_t> lookups{0}, hits{0}, misses{0}, timeouts{0}, errors{0}, rejected{0},
      writes{0}, dropped_writes{0}, expired_writes{0}, claims{0};
  std::atomic<std::uint64_t> queued{0};  // a gauge: writes waiting in the outage queue
};

class session_store final : public tls::remote_session_store {
 public:
  session_store(redis_client& client, const sealer& seal, std::string key_prefix,
                std::size_t max_pending_writes = 1024, std::size_t queue_capacity = 4096);
  ~session_store() override;

  void put(std::string_view key, std::string_view session, std::chrono::seconds ttl) override;
  void get(std::string_view key, std::function<void(std::string)> done) override;
  void lookup_timed_out() override { counters_.timeouts.fetch_add(1, std::memory_order_relaxed); }
  // 0-RTT single use: SET <prefix>e:<hex id> 1 NX PX <ttl>.
  void claim_once(std::string_view id, std::chrono::milliseconds ttl,
                  std::function<void(tls::claim_answer)> done) override;
  // What that SET answered: OK first, nil replayed, anything else (or no reply) unavailable.
  // Pure; the claim's decoder.
  static tls::claim_answer claim_reply(const error_code& ec, const redis_reply& r);
  // The Redis key of a 0-RTT claim.
  static std::string early_key(std::string_view prefix, std::string_view id);

  const session_store_counters& counters() const noexcept { return counters_; }
  // The Redis key of a session (`key` as tls::remote_session_key gives it) under `prefix`.
  static std::string redis_key(std::string_view prefix, std::string_view key);
  // The channel on which revoked session IDs (hex) are published.
  static std::string revoke_channel(std::string_view prefix);

  // What a GET of a session's Redis key `redis_key` answered: `hit` (the opened session bytes
  // in `session`), `miss` (nil), `error` (no reply or an error reply) or `rejected` (anything
  // else: another type, or a value that does not open with `seal` under that key). Pure; the
  // lookup's decoder.
  enum class lookup_outcome { hit, miss, error, rejected };
  static lookup_outcome open_reply(const sealer& seal, std::string_view redis_key,
                                   const error_code& ec, const redis_reply& r,
                                   std::string& session);

 private:
  struct queued_write {
    std::string key, sealed;
    std::chrono::steady_clock::time_point expires;
  };
  void send(std::string key, std::string sealed, std::chrono::milliseconds ttl);
  void enqueue(queued_write w);
  void flush();

  redis_client& client_;
  const sealer& seal_;
  std::string prefix_;
  std::size_t max_pending_;
  std::size_t queue_capacity_;
  std::size_t pending_writes_ = 0;
  std::deque<queued_write> queue_;
  session_store_counters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tlsfront::cluster
