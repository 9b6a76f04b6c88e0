#include "cluster/revocation.h"

#include <spdlog/spdlog.h>

#include "cluster/session_store.h"
#include "core/hex.h"
#include "tls/remote_session_store.h"

namespace tlsfront::cluster {

std::vector<std::vector<std::string>> revocation_commands(
    std::string_view key_prefix, const std::vector<std::uint64_t>& context_ids,
    std::string_view session_id) {
  std::vector<std::string> del = {"DEL"};
  for (std::uint64_t ctx : context_ids) {
    del.push_back(session_store::redis_key(key_prefix, tls::remote_session_key(ctx, session_id)));
  }
  std::vector<std::string> pub = {"PUBLISH", session_store::revoke_channel(key_prefix),
                                  core::to_hex(session_id)};
  return {std::move(del), std::move(pub)};
}

void send_revocation(redis_client& redis, std::vector<std::vector<std::string>> commands) {
  for (auto& argv : commands) {
    std::string what = argv.front();
    redis.command(std::move(argv), [what](const error_code& ec, const redis_reply& r) {
      if (ec || r.is_error()) {
        spdlog::warn("fleet revocation: {} failed: {}", what, ec ? ec.message() : r.str);
      }
    });
  }
}

revocation_subscriber::revocation_subscriber(redis_client& subscriber, std::string_view key_prefix,
                                             std::function<std::size_t(std::string_view id)> drop)
    : drop_(std::move(drop)) {
  subscriber.subscribe(
      session_store::revoke_channel(key_prefix), [this](const std::string& message) {
        if (auto id = core::from_hex(message); id && !id->empty()) {
          std::size_t local = drop_(*id);
          received_.fetch_add(1, std::memory_order_relaxed);
          spdlog::info("fleet: session {} revoked ({} local entries)", message, local);
        }
      });
}

void revocation_subscriber::register_metrics(core::metrics_registry& metrics) const {
  metrics.add_counter_fn("tlsfront_fleet_revocations_received_total",
                         "Session revocations received from the fleet channel", "",
                         [this] { return static_cast<double>(received()); });
}

}  // namespace tlsfront::cluster
