// cluster/sentinel_watch.h — the sentinels' failover announcements, heard once per process and
// passed to every Redis connection that follows the same master.
//
// One subscriber connection (a redis_client rotating over the sentinel list: each reconnect goes
// to the next sentinel) on SUBSCRIBE +switch-master. A message for our master name
// ("<name> <old ip> <old port> <new ip> <new port>") is posted to each followed client's own
// io_context as redis_client::master_moved(), so every worker connection and the revocation
// subscriber move to the new master without waiting for their connection to break. A switch
// announced while the watch had no sentinel is not heard here; the clients still find the new
// master on their own (a lost connection or a READONLY reply sends them back to the sentinels).
//
// Thread-safety: construct, follow() and start() before the io_contexts run; the watch then
// lives on its own io_context's thread; switches() is a relaxed atomic (metrics). Ownership:
// the followed clients must outlive the watch's io_contexts' run (the server joins its threads
// before destroying workers).
#pragma once

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/redis_client.h"

namespace tlsfront::cluster {

class sentinel_watch {
 public:
  // `opts`: the sentinel-mode options the followed clients use (sentinels, master_name,
  // sentinel_password, timeouts).
  sentinel_watch(asio::io_context& ioc, const redis_options& opts);

  void follow(asio::io_context& ioc, redis_client& client);
  void start();

  // +switch-master messages heard for our master (relaxed, for metrics).
  std::uint64_t switches() const noexcept { return switches_.load(std::memory_order_relaxed); }
  bool connected() const noexcept { return sub_.connected(); }

  // The new address in a +switch-master payload for `master_name`; nullopt for another master's
  // or a malformed payload. Pure.
  static std::optional<redis_endpoint> parse_switch(std::string_view payload,
                                                    std::string_view master_name);

 private:
  struct followed {
    asio::io_context* ioc;
    redis_client* client;
  };
  static redis_options subscriber_options(const redis_options& opts);
  void on_message(const std::string& payload);

  std::string master_name_;
  redis_client sub_;
  std::vector<followed> followed_;
  std::atomic<std::uint64_t> switches_{0};
};

}  // namespace tlsfront::cluster
