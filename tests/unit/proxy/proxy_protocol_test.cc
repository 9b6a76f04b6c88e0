// The PROXY protocol codec: headers tlsfront builds parse back to what went in, every prefix of
// a header asks for more, and malformed headers are refused with a reason; trusted networks.
#include "proxy/proxy_protocol.h"

#include <gtest/gtest.h>

namespace tlsfront::proxy {
namespace {

namespace ip = boost::asio::ip;

ip::tcp::endpoint ep(const char* a, unsigned short port) {
  return ip::tcp::endpoint(ip::make_address(a), port);
}

TEST(ProxyProtocol, V1RoundTripsForIpv4AndIpv6) {
  const std::string v4 = build_proxy_v1(ep("203.0.113.7", 5555), ep("192.0.2.1", 443));
  EXPECT_EQ(v4, "PROXY TCP4 203.0.113.7 192.0.2.1 5555 443\r\n");
  const std::string mapped = build_proxy_v1(ep("::ffff:203.0.113.7", 5555), ep("192.0.2.1", 443));
  EXPECT_EQ(mapped, v4) << "an IPv4-mapped address is sent as IPv4";
  const std::string v6 = build_proxy_v1(ep("2001:db8::1", 40000), ep("2001:db8::2", 443));
  EXPECT_EQ(v6, "PROXY TCP6 2001:db8::1 2001:db8::2 40000 443\r\n");
  EXPECT_EQ(build_proxy_v1(ep("2001:db8::1", 1), ep("192.0.2.1", 2)), "PROXY UNKNOWN\r\n");
  for (const std::string& h : {v4, v6}) {
    const proxy_parse r = parse_proxy_header(h + "\x16\x03\x01");  // TLS bytes follow
    ASSERT_EQ(r.result, proxy_parse::status::done) << r.error;
    EXPECT_EQ(r.length, h.size());
    EXPECT_TRUE(r.has_source);
  }
  const proxy_parse r = parse_proxy_header(v6);
  EXPECT_EQ(r.source, ep("2001:db8::1", 40000));
  EXPECT_EQ(r.destination, ep("2001:db8::2", 443));
  const proxy_parse unknown = parse_proxy_header("PROXY UNKNOWN whatever\r\n");
  ASSERT_EQ(unknown.result, proxy_parse::status::done);
  EXPECT_FALSE(unknown.has_source);
}

TEST(ProxyProtocol, V2RoundTripsWithTlsTlvs) {
  const proxy_tls_info tls{"TLSv1.3", "TLS_AES_128_GCM_SHA256", "a.example", "h2"};
  for (const auto& [src, dst] : {std::pair{ep("203.0.113.7", 5555), ep("192.0.2.1", 443)},
                                 std::pair{ep("2001:db8::1", 5555), ep("2001:db8::2", 443)}}) {
    const std::string h = build_proxy_v2(src, dst, tls);
    ASSERT_GE(h.size(), 16u);
    EXPECT_EQ(h.substr(0, 12), std::string("\r\n\r\n\0\r\nQUIT\n", 12));
    EXPECT_EQ(static_cast<unsigned char>(h[12]), 0x21);
    EXPECT_EQ(static_cast<unsigned char>(h[13]), src.address().is_v4() ? 0x11 : 0x21);
    const std::size_t len = (static_cast<std::size_t>(static_cast<unsigned char>(h[14])) << 8) |
                            static_cast<unsigned char>(h[15]);
    EXPECT_EQ(h.size(), 16 + len);
    EXPECT_NE(h.find("a.example"), std::string::npos);
    EXPECT_NE(h.find("TLSv1.3"), std::string::npos);
    EXPECT_NE(h.find("TLS_AES_128_GCM_SHA256"), std::string::npos);
    const proxy_parse r = parse_proxy_header(h + "more");
    ASSERT_EQ(r.result, proxy_parse::status::done) << r.error;
    EXPECT_EQ(r.length, h.size());
    EXPECT_EQ(r.source, src);
    EXPECT_EQ(r.destination, dst);
    // Every prefix: not enough yet, never a verdict.
    for (std::size_t n = 0; n < h.size(); ++n) {
      EXPECT_EQ(parse_proxy_header(h.substr(0, n)).result, proxy_parse::status::need_more) << n;
    }
  }
  std::string local("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16);
  const proxy_parse r = parse_proxy_header(local);
  ASSERT_EQ(r.result, proxy_parse::status::done);
  EXPECT_FALSE(r.has_source) << "LOCAL keeps the peer's address";
}

TEST(ProxyProtocol, MalformedHeadersAreRefused) {
  const std::string sig("\r\n\r\n\0\r\nQUIT\n", 12);
  const std::string bad[] = {
      "\x16\x03\x01\x00",                                                // TLS, no header
      "GET / HTTP/1.1\r\n",                                              // not PROXY
      "PROXY TCP4 1.2.3.4\r\n",                                          // missing fields
      "PROXY TCP4 203.0.113.7 192.0.2.1 5555 443 extra\r\n",             // too many
      "PROXY TCP5 203.0.113.7 192.0.2.1 5555 443\r\n",                   // family
      "PROXY TCP4 2001:db8::1 192.0.2.1 5555 443\r\n",                   // v6 under TCP4
      "PROXY TCP4 203.0.113.7 192.0.2.1 65536 443\r\n",                  // port range
      "PROXY TCP4 203.0.113.7 192.0.2.1 0443 443\r\n",                   // leading zero
      "PROXY TCP4 203.0.113.7 192.0.2.1 -1 443\r\n",                     // sign
      "PROXY " + std::string(120, 'x'),                                  // no end within 107 bytes
      sig + std::string("\x31\x11\x00\x0c", 4) + std::string(12, '\0'),  // version 3
      sig + std::string("\x22\x11\x00\x0c", 4) + std::string(12, '\0'),  // command 2
      sig + std::string("\x21\x11\x00\x04", 4) + std::string(4, '\0'),   // TCP4, 4 bytes
      sig + std::string("\x21\x31\x00\x00", 4),                          // AF_UNIX
      sig + std::string("\x21\x11\xff\xff", 4),                          // 64 KiB
  };
  for (const std::string& b : bad) {
    const proxy_parse r = parse_proxy_header(b);
    EXPECT_EQ(r.result, proxy_parse::status::invalid) << b;
    EXPECT_FALSE(r.error.empty());
  }
}

TEST(ProxyProtocol, TrustedNetworks) {
  network n;
  std::string error;
  ASSERT_TRUE(parse_network("10.0.0.0/8", n, error)) << error;
  EXPECT_TRUE(in_network(ip::make_address("10.200.1.2"), n));
  EXPECT_TRUE(in_network(ip::make_address("::ffff:10.1.2.3"), n));
  EXPECT_FALSE(in_network(ip::make_address("11.0.0.1"), n));
  ASSERT_TRUE(parse_network("192.0.2.7", n, error));
  EXPECT_TRUE(in_network(ip::make_address("192.0.2.7"), n));
  EXPECT_FALSE(in_network(ip::make_address("192.0.2.8"), n));
  ASSERT_TRUE(parse_network("2001:db8::/33", n, error));
  EXPECT_TRUE(in_network(ip::make_address("2001:db8:7fff::1"), n));
  EXPECT_FALSE(in_network(ip::make_address("2001:db8:8000::1"), n));
  ASSERT_TRUE(parse_network("0.0.0.0/0", n, error));
  EXPECT_TRUE(in_network(ip::make_address("203.0.113.9"), n));
  for (const char* b : {"10.0.0.0/33", "2001:db8::/129", "10.0.0.0/", "10.0.0/8", "x", "1.2.3.4/-1",
                        "1.2.3.4/8x"}) {
    EXPECT_FALSE(parse_network(b, n, error)) << b;
  }
}

}  // namespace
}  // namespace tlsfront::proxy
