#include "cluster/cluster_slots.h"

#include <arpa/inet.h>
#include <strings.h>

#include <array>

namespace tlsfront::cluster {
namespace {

constexpr std::array<std::uint16_t, 256> make_crc_table() {
  std::array<std::uint16_t, 256> t{};
  for (unsigned i = 0; i < 256; ++i) {
    std::uint16_t c = static_cast<std::uint16_t>(i << 8);
    for (int b = 0; b < 8; ++b) {
      c = static_cast<std::uint16_t>((c & 0x8000) != 0 ? (c << 1) ^ 0x1021 : c << 1);
    }
    t[i] = c;
  }
  return t;
}
constexpr std::array<std::uint16_t, 256> kCrcTable = make_crc_table();

bool is_ip_literal(const std::string& host) {
  in_addr a4{};
  in6_addr a6{};
  return host.size() <= 64 && (inet_pton(AF_INET, host.c_str(), &a4) == 1 ||
                               inet_pton(AF_INET6, host.c_str(), &a6) == 1);
}

// A node entry of CLUSTER SLOTS: [ip, port, id, ...].
std::optional<redis_endpoint> slots_node(const redis_reply& n, const redis_endpoint& asked,
                                         std::string& why) {
  if (n.type != redis_reply::kind::array || n.elements.size() < 2 ||
      n.elements[0].type != redis_reply::kind::string ||
      n.elements[1].type != redis_reply::kind::integer) {
    why = "a node entry is not [address, port, ...]";
    return std::nullopt;
  }
  redis_endpoint e{n.elements[0].str, 0};
  if (e.host.empty()) {
    e.host = asked.host;
  }
  if (!is_ip_literal(e.host)) {
    why = "node address '" + e.host.substr(0, 64) +
          "' is not an IP literal (tlsfront needs cluster-preferred-endpoint-type ip)";
    return std::nullopt;
  }
  if (n.elements[1].integer < 1 || n.elements[1].integer > 65535) {
    why = "a node port is not in 1..65535";
    return std::nullopt;
  }
  e.port = static_cast<std::uint16_t>(n.elements[1].integer);
  return e;
}

bool iequals(std::string_view a, const char* b) {
  return a.size() == std::char_traits<char>::length(b) && strncasecmp(a.data(), b, a.size()) == 0;
}

}  // namespace

std::uint16_t crc16(std::string_view data) noexcept {
  std::uint16_t crc = 0;
  for (unsigned char c : data) {
    crc = static_cast<std::uint16_t>((crc << 8) ^ kCrcTable[((crc >> 8) ^ c) & 0xff]);
  }
  return crc;
}

std::uint16_t key_slot(std::string_view key) noexcept {
  if (const std::size_t open = key.find('{'); open != std::string_view::npos) {
    const std::size_t close = key.find('}', open + 1);
    if (close != std::string_view::npos && close > open + 1) {
      key = key.substr(open + 1, close - open - 1);
    }
  }
  return static_cast<std::uint16_t>(crc16(key) & (kClusterSlots - 1));
}

std::optional<std::vector<slot_range>> parse_cluster_slots(const redis_reply& r,
                                                           const redis_endpoint& asked,
                                                           std::string& why) {
  if (r.is_error()) {
    why = "answered " + r.str.substr(0, 200);
    return std::nullopt;
  }
  if (r.type != redis_reply::kind::array) {
    why = "gave a CLUSTER SLOTS reply that is not an array";
    return std::nullopt;
  }
  std::vector<slot_range> out;
  std::vector<bool> taken(kClusterSlots, false);
  for (const redis_reply& e : r.elements) {
    if (e.type != redis_reply::kind::array || e.elements.size() < 3 ||
        e.elements[0].type != redis_reply::kind::integer ||
        e.elements[1].type != redis_reply::kind::integer) {
      why = "gave a slot range that is not [first, last, master, ...]";
      return std::nullopt;
    }
    const long long first = e.elements[0].integer, last = e.elements[1].integer;
    if (first < 0 || last >= static_cast<long long>(kClusterSlots) || first > last) {
      why = "gave a slot range " + std::to_string(first) + "-" + std::to_string(last) +
            " outside 0..16383";
      return std::nullopt;
    }
    slot_range range;
    range.first = static_cast<std::uint16_t>(first);
    range.last = static_cast<std::uint16_t>(last);
    for (long long s = first; s <= last; ++s) {
      if (taken[static_cast<std::size_t>(s)]) {
        why = "gave slot " + std::to_string(s) + " twice";
        return std::nullopt;
      }
      taken[static_cast<std::size_t>(s)] = true;
    }
    auto master = slots_node(e.elements[2], asked, why);
    if (!master) {
      return std::nullopt;
    }
    range.master = *master;
    for (std::size_t i = 3; i < e.elements.size(); ++i) {
      auto replica = slots_node(e.elements[i], asked, why);
      if (!replica) {
        return std::nullopt;
      }
      range.replicas.push_back(*replica);
    }
    out.push_back(std::move(range));
  }
  if (out.empty()) {
    why = "has no slot assigned (is the cluster created?)";
    return std::nullopt;
  }
  return out;
}

std::optional<redirect> parse_redirect(std::string_view error, const std::string& from) {
  redirect rd;
  if (error.starts_with("MOVED ")) {
    error.remove_prefix(6);
  } else if (error.starts_with("ASK ")) {
    rd.ask = true;
    error.remove_prefix(4);
  } else {
    return std::nullopt;
  }
  const std::size_t space = error.find(' ');
  if (space == std::string_view::npos || space == 0 || space > 5) {
    return std::nullopt;
  }
  unsigned slot = 0;
  for (char c : error.substr(0, space)) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    slot = slot * 10 + static_cast<unsigned>(c - '0');
  }
  if (slot >= kClusterSlots) {
    return std::nullopt;
  }
  rd.slot = static_cast<std::uint16_t>(slot);
  const std::string_view addr = error.substr(space + 1);
  const std::size_t colon = addr.rfind(':');
  if (colon == std::string_view::npos || addr.size() - colon - 1 == 0 ||
      addr.size() - colon - 1 > 5) {
    return std::nullopt;
  }
  unsigned port = 0;
  for (char c : addr.substr(colon + 1)) {
    if (c < '0' || c > '9') {
      return std::nullopt;
    }
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  if (port == 0 || port > 65535) {
    return std::nullopt;
  }
  rd.to.host = colon == 0 ? from : std::string(addr.substr(0, colon));
  if (!is_ip_literal(rd.to.host)) {
    return std::nullopt;
  }
  rd.to.port = static_cast<std::uint16_t>(port);
  return rd;
}

command_route route_of(const std::vector<std::string>& argv) {
  command_route route;
  if (argv.empty()) {
    return route;
  }
  const std::string_view name = argv[0];
  if (iequals(name, "PUBLISH") || iequals(name, "PING") || iequals(name, "INFO") ||
      argv.size() < 2) {
    return route;  // any
  }
  if (iequals(name, "SCAN")) {
    route.type = command_route::kind::per_node;
    return route;
  }
  if (iequals(name, "EVAL") || iequals(name, "EVALSHA")) {
    if (argv.size() < 4 || argv[2] == "0") {
      return route;  // a script without keys
    }
    route.type = command_route::kind::slot;
    route.slot = key_slot(argv[3]);
    return route;
  }
  route.type = command_route::kind::slot;
  route.slot = key_slot(argv[1]);
  if (argv.size() > 2 && (iequals(name, "DEL") || iequals(name, "UNLINK") ||
                          iequals(name, "EXISTS") || iequals(name, "TOUCH"))) {
    for (std::size_t i = 2; i < argv.size(); ++i) {
      if (key_slot(argv[i]) != route.slot) {
        route.type = command_route::kind::split;
        break;
      }
    }
  }
  return route;
}

}  // namespace tlsfront::cluster
