// cluster/cluster_slots.h — the pure pieces of Redis Cluster routing: a key's hash slot (CRC16
// of the key or of its {hash tag}, mod 16384), the slot map in a CLUSTER SLOTS reply, MOVED and
// ASK redirections, and which slot a command of tlsfront's goes to. No I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cluster/redis_client.h"

namespace tlsfront::cluster {

constexpr std::size_t kClusterSlots = 16384;

// CRC16/XMODEM (polynomial 0x1021, initial value 0), Redis Cluster's key hash.
std::uint16_t crc16(std::string_view data) noexcept;
// The key's slot: the CRC16 of the part between the first '{' and the first '}' after it when
// that part is not empty, else of the whole key; mod 16384.
std::uint16_t key_slot(std::string_view key) noexcept;

// One range of a slot map: slots first..last served by `master` (its replicas listed after).
struct slot_range {
  std::uint16_t first = 0, last = 0;
  redis_endpoint master;
  std::vector<redis_endpoint> replicas;
};
// A CLUSTER SLOTS reply as ranges; nullopt with `why` set when it is not one (an error reply
// such as "cluster support disabled", no slot assigned, a slot out of 0..16383, a range upside
// down or overlapping another, an address that is not an IP literal, a port not in 1..65535).
// An empty address means the node that was asked (`asked`).
std::optional<std::vector<slot_range>> parse_cluster_slots(const redis_reply& r,
                                                           const redis_endpoint& asked,
                                                           std::string& why);

// A "MOVED <slot> <ip>:<port>" or "ASK <slot> <ip>:<port>" error reply; nullopt for any other
// text or a malformed one. An empty address means the host of the node that answered (`from`).
struct redirect {
  bool ask = false;
  std::uint16_t slot = 0;
  redis_endpoint to;
};
std::optional<redirect> parse_redirect(std::string_view error, const std::string& from);

// Where a command goes in a cluster.
struct command_route {
  enum class kind {
    slot,      // every key in `slot`
    any,       // no key (PUBLISH, PING): any master
    split,     // several keys of different slots (DEL, UNLINK, EXISTS, TOUCH): one per slot, summed
    per_node,  // SCAN: it reads one node; command_at() a master
  };
  kind type = kind::any;
  std::uint16_t slot = 0;
};
// EVAL/EVALSHA: the slot of its first key (tlsfront's scripts keep their keys in one slot);
// keyless commands: any; other commands: the slot of argv[1].
command_route route_of(const std::vector<std::string>& argv);

}  // namespace tlsfront::cluster
