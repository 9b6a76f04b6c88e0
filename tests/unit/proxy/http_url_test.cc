// proxy::parse_http_url: the OCSP responder addresses tlsfront fetches from (a certificate's
// AIA URL, or ocsp_responder).
#include <gtest/gtest.h>

#include <string>

#include "proxy/ocsp_stapler.h"

namespace tlsfront::proxy {
namespace {

TEST(HttpUrl, TheFormsResponderUrlsTake) {
  struct good {
    const char* url;
    const char* host;
    const char* port;
    const char* path;
    const char* authority;
  };
  const good cases[] = {
      {"http://ocsp.example.net", "ocsp.example.net", "80", "/", "ocsp.example.net"},
      {"http://ocsp.example.net/", "ocsp.example.net", "80", "/", "ocsp.example.net"},
      {"HTTP://r3.o.lencr.org", "r3.o.lencr.org", "80", "/", "r3.o.lencr.org"},
      {"http://127.0.0.1:8080/ocsp/x", "127.0.0.1", "8080", "/ocsp/x", "127.0.0.1:8080"},
      {"http://[::1]:2560/", "::1", "2560", "/", "[::1]:2560"},
      {"http://[2001:db8::1]/a?b", "2001:db8::1", "80", "/a?b", "[2001:db8::1]"},
      {"http://h?q=1", "h", "80", "/?q=1", "h"},
      {"http://h/p#frag", "h", "80", "/p", "h"},
  };
  for (const good& c : cases) {
    http_url u;
    std::string error;
    ASSERT_TRUE(parse_http_url(c.url, u, error)) << c.url << ": " << error;
    EXPECT_EQ(u.host, c.host) << c.url;
    EXPECT_EQ(u.port, c.port) << c.url;
    EXPECT_EQ(u.path, c.path) << c.url;
    EXPECT_EQ(u.authority, c.authority) << c.url;
  }
}

TEST(HttpUrl, WhatIsRefusedAndWhy) {
  const std::pair<const char*, const char*> cases[] = {
      {"https://ocsp.example/", "is not an http:// URL"},
      {"ldap://x/", "is not an http:// URL"},
      {"http:/x", "is not an http:// URL"},
      {"", "is not an http:// URL"},
      {"http://", "names no host"},
      {"http:///p", "names no host"},
      {"http://:80/", "names no host"},
      {"http://h:0/", "the port must be 1..65535"},
      {"http://h:65536/", "the port must be 1..65535"},
      {"http://h:/", "the port must be 1..65535"},
      {"http://h:8x/", "the port must be 1..65535"},
      {"http://h:123456/", "the port must be 1..65535"},
      {"http://[::1/", "without its ']'"},
      {"http://[::1]x/", "junk after the IPv6 literal"},
      {"http://user@h/", "user information is not allowed"},
      {"http://h/a b", "outside printable ASCII"},
      {"http://h/\x7f", "outside printable ASCII"},
      {"http://h/\r\nHost: evil", "outside printable ASCII"},
  };
  for (const auto& [url, why] : cases) {
    http_url u;
    std::string error;
    EXPECT_FALSE(parse_http_url(url, u, error)) << url;
    EXPECT_NE(error.find(why), std::string::npos) << url << ": " << error;
  }
}

}  // namespace
}  // namespace tlsfront::proxy
