// cluster/revocation.h — fleet-wide session revocation through Redis: the publisher's commands
// (DEL of the session's L2 copies under every certificate context, then PUBLISH of its ID, hex,
// on `<prefix>revoke`) and the subscriber that hears every instance's revocations (this one's
// too) and drops the session from the local cache.
//
// Thread-safety: revocation_commands() is pure (any thread); send_revocation() runs on the
// client's io_context thread. revocation_subscriber: constructed before its client starts, its
// callback runs on the client's thread; received() and the metric it registers are readable
// from any thread (a relaxed count for display).
// Failure: a failed DEL or PUBLISH is logged (warning) and nothing else happens (the L2 copies
// expire with their TTL); a message that is not a non-empty hex ID is ignored. Messages
// published while the subscriber is disconnected are lost (pub/sub has no backlog).
// Ownership: the clients must outlive the subscriber; the subscriber outlives its client's last
// callback.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/redis_client.h"
#include "core/metrics.h"

namespace tlsfront::cluster {

// The commands that revoke `session_id` in a fleet under `key_prefix`, in the order to send
// them: DEL of its copies under each of `context_ids`, then PUBLISH of the ID.
std::vector<std::vector<std::string>> revocation_commands(
    std::string_view key_prefix, const std::vector<std::uint64_t>& context_ids,
    std::string_view session_id);
// Sends `commands` on `redis` in order (one connection: the L2 copies are gone before any
// instance hears of it). On `redis`' thread.
void send_revocation(redis_client& redis, std::vector<std::vector<std::string>> commands);

class revocation_subscriber {
 public:
  // `drop(id)`: removes the session ID (raw bytes) from the local cache and returns how many
  // entries went. Subscribes `subscriber` (a client used for nothing else) to the channel.
  revocation_subscriber(redis_client& subscriber, std::string_view key_prefix,
                        std::function<std::size_t(std::string_view id)> drop);
  revocation_subscriber(const revocation_subscriber&) = delete;
  revocation_subscriber& operator=(const revocation_subscriber&) = delete;

  // tlsfront_fleet_revocations_received_total.
  void register_metrics(core::metrics_registry& metrics) const;
  std::uint64_t received() const noexcept { return received_.load(std::memory_order_relaxed); }

 private:
  std::function<std::size_t(std::string_view)> drop_;
  // Relaxed: a count for display, bumped on the subscriber's thread, read by the renderer.
  std::atomic<std::uint64_t> received_{0};
};

}  // namespace tlsfront::cluster
