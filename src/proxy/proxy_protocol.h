// proxy/proxy_protocol.h — the PROXY protocol (HAProxy's, versions 1 and 2): building the header
// tlsfront sends to a backend, and parsing the header a trusted load balancer sends first.
// Pure functions over bytes (no I/O); the caller reads without consuming past the header.
// Thread-safety: pure functions.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <string>
#include <string_view>

#include "proxy/options.h"

namespace tlsfront::proxy {

// What a v2 header carries besides the addresses (TLVs PP2_TYPE_SSL with its version and cipher
// sub-TLVs, PP2_TYPE_AUTHORITY, PP2_TYPE_ALPN).
struct proxy_tls_info {
  std::string_view version;  // "TLSv1.3"
  std::string_view cipher;   // "TLS_AES_128_GCM_SHA256"
  std::string_view sni;      // empty: no authority TLV
  std::string_view alpn;     // empty: no ALPN TLV
};

// The header for a connection from `source` (the client) to `destination` (tlsfront's address
// the client reached). IPv4-mapped IPv6 addresses are sent as IPv4.
std::string build_proxy_v1(const boost::asio::ip::tcp::endpoint& source,
                           const boost::asio::ip::tcp::endpoint& destination);
std::string build_proxy_v2(const boost::asio::ip::tcp::endpoint& source,
                           const boost::asio::ip::tcp::endpoint& destination,
                           const proxy_tls_info& tls);

struct proxy_parse {
  enum class status { need_more, done, invalid } result = status::need_more;
  std::size_t length = 0;   // done: bytes the header takes (to consume)
  bool has_source = false;  // false for v1 UNKNOWN and v2 LOCAL: keep the peer's address
  boost::asio::ip::tcp::endpoint source, destination;
  std::string error;  // invalid: why
};
// Parses the start of a connection's bytes (v1 or v2, told apart by their signatures).
// need_more until a whole header is there; invalid as soon as the bytes cannot be one.
proxy_parse parse_proxy_header(std::string_view bytes);

// The longest header parse_proxy_header may need to see (v2 with 64 KiB of TLVs is refused
// above this: tlsfront reads at most this much).
constexpr std::size_t kMaxProxyHeader = 16 + 2048;

// A network from "10.0.0.0/8", "192.0.2.7", "2001:db8::/32"; false + `error` if malformed.
bool parse_network(std::string_view text, network& out, std::string& error);
bool in_network(const boost::asio::ip::address& a, const network& n);

}  // namespace tlsfront::proxy
