#include "proxy/proxy_protocol.h"

#include <charconv>
#include <cstring>

namespace tlsfront::proxy {
namespace {

namespace ip = boost::asio::ip;

constexpr char kV2Signature[12] = {'\r', '\n', '\r', '\n', '\0', '\r',
                                   '\n', 'Q',  'U',  'I',  'T',  '\n'};
constexpr unsigned char kV2Proxy = 0x21, kV2Local = 0x20;
constexpr unsigned char kTcp4 = 0x11, kTcp6 = 0x21, kUnspec = 0x00;
constexpr unsigned char kTlvAlpn = 0x01, kTlvAuthority = 0x02, kTlvSsl = 0x20,
                        kSubSslVersion = 0x21, kSubSslCipher = 0x23;
constexpr unsigned char kClientSsl = 0x01;

ip::address plain(const ip::address& a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    return ip::make_address_v4(ip::v4_mapped, a.to_v6());
  }
  return a;
}

void put16(std::string& out, std::size_t v) {
  out.push_back(static_cast<char>((v >> 8) & 0xff));
  out.push_back(static_cast<char>(v & 0xff));
}

void put_tlv(std::string& out, unsigned char type, std::string_view value) {
  out.push_back(static_cast<char>(type));
  put16(out, value.size());
  out.append(value);
}

std::array<std::uint8_t, 16> as_v6_bytes(const ip::address& a) {
  return a.is_v4() ? ip::make_address_v6(ip::v4_mapped, a.to_v4()).to_bytes()
                   : a.to_v6().to_bytes();
}

proxy_parse invalid(std::string why) {
  proxy_parse r;
  r.result = proxy_parse::status::invalid;
  r.error = std::move(why);
  return r;
}

proxy_parse parse_v1(std::string_view bytes) {
  // "PROXY TCP4 192.0.2.1 198.51.100.1 56324 443\r\n", at most 107 bytes.
  const std::size_t eol = bytes.find("\r\n");
  if (eol == std::string_view::npos) {
    if (bytes.size() >= 107) {
      return invalid("PROXY v1 line longer than 107 bytes");
    }
    return {};
  }
  if (eol + 2 > 107) {
    return invalid("PROXY v1 line longer than 107 bytes");
  }
  std::string_view line = bytes.substr(0, eol);
  std::string_view parts[6];
  std::size_t n = 0;
  while (!line.empty() && n < 6) {
    const std::size_t sp = line.find(' ');
    parts[n++] = line.substr(0, sp);
    line = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
  }
  proxy_parse r;
  r.result = proxy_parse::status::done;
  r.length = eol + 2;
  if (n >= 2 && parts[1] == "UNKNOWN") {
    return r;  // the rest of the line is ignored (spec)
  }
  if (n != 6 || !line.empty() || (parts[1] != "TCP4" && parts[1] != "TCP6")) {
    return invalid("malformed PROXY v1 line");
  }
  boost::system::error_code ec;
  const ip::address src = ip::make_address(std::string(parts[2]), ec);
  if (ec || src.is_v4() != (parts[1] == "TCP4")) {
    return invalid("bad source address in PROXY v1 line");
  }
  const ip::address dst = ip::make_address(std::string(parts[3]), ec);
  if (ec || dst.is_v4() != src.is_v4()) {
    return invalid("bad destination address in PROXY v1 line");
  }
  unsigned port = 0, dport = 0;
  for (std::size_t i : {std::size_t{4}, std::size_t{5}}) {
    unsigned v = 0;
    auto [end, err] = std::from_chars(parts[i].data(), parts[i].data() + parts[i].size(), v);
    if (err != std::errc() || end != parts[i].data() + parts[i].size() || v > 65535 ||
        parts[i].empty() || (parts[i].size() > 1 && parts[i][0] == '0')) {
      return invalid("bad port in PROXY v1 line");
    }
    (i == 4 ? port : dport) = v;
  }
  r.has_source = true;
  r.source = ip::tcp::endpoint(src, static_cast<unsigned short>(port));
  r.destination = ip::tcp::endpoint(dst, static_cast<unsigned short>(dport));
  return r;
}

proxy_parse parse_v2(std::string_view bytes) {
  if (bytes.size() < 16) {
    return {};
  }
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t len = (std::size_t{p[14]} << 8) | p[15];
  if (16 + len > kMaxProxyHeader) {
    return invalid("PROXY v2 header too long");
  }
  if ((p[12] & 0xf0) != 0x20 || (p[12] != kV2Proxy && p[12] != kV2Local)) {
    return invalid("unknown PROXY v2 version or command");
  }
  if (bytes.size() < 16 + len) {
    return {};
  }
  proxy_parse r;
  r.result = proxy_parse::status::done;
  r.length = 16 + len;
  if (p[12] == kV2Local || p[13] == kUnspec) {
    return r;  // health check of the balancer itself, or an unknown family: keep the peer
  }
  if (p[13] == kTcp4) {
    if (len < 12) {
      return invalid("PROXY v2 TCP4 addresses truncated");
    }
    ip::address_v4::bytes_type a, b;
    std::memcpy(a.data(), p + 16, 4);
    std::memcpy(b.data(), p + 20, 4);
    r.source =
        ip::tcp::endpoint(ip::address_v4(a), static_cast<unsigned short>((p[24] << 8) | p[25]));
    r.destination =
        ip::tcp::endpoint(ip::address_v4(b), static_cast<unsigned short>((p[26] << 8) | p[27]));
  } else if (p[13] == kTcp6) {
    if (len < 36) {
      return invalid("PROXY v2 TCP6 addresses truncated");
    }
    ip::address_v6::bytes_type a, b;
    std::memcpy(a.data(), p + 16, 16);
    std::memcpy(b.data(), p + 32, 16);
    r.source =
        ip::tcp::endpoint(ip::address_v6(a), static_cast<unsigned short>((p[48] << 8) | p[49]));
    r.destination =
        ip::tcp::endpoint(ip::address_v6(b), static_cast<unsigned short>((p[50] << 8) | p[51]));
  } else {
    return invalid("unsupported PROXY v2 address family (only TCP over IPv4/IPv6)");
  }
  r.has_source = true;
  return r;
}

}  // namespace

std::string build_proxy_v1(const ip::tcp::endpoint& source, const ip::tcp::endpoint& destination) {
  const ip::address s = plain(source.address()), d = plain(destination.address());
  if (s.is_v4() != d.is_v4()) {
    return "PROXY UNKNOWN\r\n";
  }
  return std::string("PROXY ") + (s.is_v4() ? "TCP4 " : "TCP6 ") + s.to_string() + " " +
         d.to_string() + " " + std::to_string(source.port()) + " " +
         std::to_string(destination.port()) + "\r\n";
}

std::string build_proxy_v2(const ip::tcp::endpoint& source, const ip::tcp::endpoint& destination,
                           const proxy_tls_info& tls) {
  const ip::address s = plain(source.address()), d = plain(destination.address());
  std::string body;
  unsigned char family = kUnspec;
  if (s.is_v4() && d.is_v4()) {
    family = kTcp4;
    const auto sb = s.to_v4().to_bytes(), db = d.to_v4().to_bytes();
    body.append(reinterpret_cast<const char*>(sb.data()), 4);
    body.append(reinterpret_cast<const char*>(db.data()), 4);
  } else {
    family = kTcp6;
    const auto sb = as_v6_bytes(s), db = as_v6_bytes(d);
    body.append(reinterpret_cast<const char*>(sb.data()), 16);
    body.append(reinterpret_cast<const char*>(db.data()), 16);
  }
  put16(body, source.port());
  put16(body, destination.port());
  if (!tls.alpn.empty()) {
    put_tlv(body, kTlvAlpn, tls.alpn);
  }
  if (!tls.sni.empty()) {
    put_tlv(body, kTlvAuthority, tls.sni);
  }
  std::string ssl;
  ssl.push_back(static_cast<char>(kClientSsl));
  ssl.append(4, '\0');  // verify: 0 (no client certificate was asked for)
  put_tlv(ssl, kSubSslVersion, tls.version);
  put_tlv(ssl, kSubSslCipher, tls.cipher);
  put_tlv(body, kTlvSsl, ssl);

  std::string out(kV2Signature, sizeof kV2Signature);
  out.push_back(static_cast<char>(kV2Proxy));
  out.push_back(static_cast<char>(family));
  put16(out, body.size());
  return out + body;
}

proxy_parse parse_proxy_header(std::string_view bytes) {
  const std::string_view v2(kV2Signature, sizeof kV2Signature);
  const std::string_view v1 = "PROXY ";
  const std::size_t n = std::min(bytes.size(), v2.size());
  if (bytes.substr(0, n) == v2.substr(0, n)) {
    return bytes.size() < v2.size() ? proxy_parse{} : parse_v2(bytes);
  }
  const std::size_t m = std::min(bytes.size(), v1.size());
  if (bytes.substr(0, m) == v1.substr(0, m)) {
    return bytes.size() < v1.size() ? proxy_parse{} : parse_v1(bytes);
  }
  return invalid("no PROXY protocol header");
}

bool parse_network(std::string_view text, network& out, std::string& error) {
  const std::size_t slash = text.find('/');
  boost::system::error_code ec;
  const ip::address a = ip::make_address(std::string(text.substr(0, slash)), ec);
  if (ec) {
    error = "not an IP address: " + std::string(text.substr(0, slash));
    return false;
  }
  const int max = a.is_v4() ? 32 : 128;
  int prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view p = text.substr(slash + 1);
    auto [end, err] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (err != std::errc() || end != p.data() + p.size() || p.empty() || prefix < 0 ||
        prefix > max) {
      error = "bad prefix length /" + std::string(p) + " (0.." + std::to_string(max) + ")";
      return false;
    }
  }
  out.address = as_v6_bytes(a);
  out.prefix = a.is_v4() ? prefix + 96 : prefix;
  return true;
}

bool in_network(const ip::address& a, const network& n) {
  const auto b = as_v6_bytes(a);
  int bits = n.prefix;
  for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
    const unsigned mask = bits >= 8 ? 0xffu : (0xffu << (8 - bits)) & 0xffu;
    if ((b[i] & mask) != (n.address[i] & mask)) {
      return false;
    }
  }
  return true;
}

}  // namespace tlsfront::proxy
