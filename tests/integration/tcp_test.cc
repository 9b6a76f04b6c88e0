// TCP mode: TLS terminated, bytes relayed to a real TCP echo backend written here, which also
// parses (itself, byte by byte) the PROXY v1 or v2 header tlsfront sends first; half-close
// passed on both ways. And the other direction: PROXY headers accepted from trusted load
// balancers only.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mutex>
#include <thread>

#include "integration/harness.h"
#include "support/loopback_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

// What the backend learned from a v2 header.
struct v2_header {
  int command = -1, family = -1;
  std::string source_ip;
  int source_port = 0;
  std::string authority, alpn, ssl_version, ssl_cipher;
  int ssl_client = -1;
};

// A TCP echo server: reads the expected PROXY header (none, v1 or v2) and records it, echoes
// every byte, and when the client half-closes sends "bye\n" and closes.
class tcp_echo {
 public:
  enum class expect { none, v1, v2 };
  explicit tcp_echo(expect e) : expect_(e) {}
  std::string address() const { return server_.address(); }
  std::string v1_line() {
    std::lock_guard lock(mu_);
    return v1_;
  }
  v2_header v2() {
    std::lock_guard lock(mu_);
    return v2_;
  }

 private:
  void serve(int c) {
    std::string in;
    if (expect_ == expect::v1) {
      while (in.find("\r\n") == std::string::npos) {
        if (!read_until_size(c, in, in.size() + 1)) {
          return;
        }
      }
      std::lock_guard lock(mu_);
      v1_ = in.substr(0, in.size() - 2);
      in.clear();
    } else if (expect_ == expect::v2) {
      if (!read_until_size(c, in, 16)) {
        return;
      }
      const auto* h = reinterpret_cast<const unsigned char*>(in.data());
      const std::size_t len = (std::size_t{h[14]} << 8) | h[15];
      if (!read_until_size(c, in, 16 + len)) {
        return;
      }
      parse_v2(in);
      in.clear();
    }
    char buf[16384];
    for (;;) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      ::write(c, buf, static_cast<std::size_t>(n));
    }
    ::write(c, "bye\n", 4);  // after the client's half-close: the other way still works
  }
  void parse_v2(const std::string& in) {
    const auto* h = reinterpret_cast<const unsigned char*>(in.data());
    v2_header v;
    v.command = h[12];
    v.family = h[13];
    char ip[INET_ADDRSTRLEN] = {};
    inet_ntop(AF_INET, h + 16, ip, sizeof ip);
    v.source_ip = ip;
    v.source_port = (h[24] << 8) | h[25];
    for (std::size_t at = 28; at + 3 <= in.size();) {
      const int type = h[at];
      const std::size_t len = (std::size_t{h[at + 1]} << 8) | h[at + 2];
      const std::string value = in.substr(at + 3, len);
      if (type == 0x01) {
        v.alpn = value;
      } else if (type == 0x02) {
        v.authority = value;
      } else if (type == 0x20) {
        v.ssl_client = static_cast<unsigned char>(value[0]);
        for (std::size_t s = 5; s + 3 <= value.size();) {
          const int sub = static_cast<unsigned char>(value[s]);
          const std::size_t sl = (std::size_t{static_cast<unsigned char>(value[s + 1])} << 8) |
                                 static_cast<unsigned char>(value[s + 2]);
          if (sub == 0x21) {
            v.ssl_version = value.substr(s + 3, sl);
          } else if (sub == 0x23) {
            v.ssl_cipher = value.substr(s + 3, sl);
          }
          s += 3 + sl;
        }
      }
      at += 3 + len;
    }
    std::lock_guard lock(mu_);
    v2_ = v;
  }

  expect expect_;
  std::mutex mu_;
  std::string v1_;
  v2_header v2_;
  loopback_server server_{[this](int c) { serve(c); }};  // last: stops before the rest goes
};

std::string tcp_config(const std::string& backend, const std::string& proxy_protocol) {
  return "[server]\nthreads = 2\n[admin]\nlisten = \"127.0.0.1:0\"\n"
         "[log]\nerror_log = \"stderr\"\naccess_log = \"{dir}/access.log\"\n"
         "[[listener]]\nname = \"https\"\nlisten = \"127.0.0.1:0\"\nmode = \"tcp\"\n"
         "pool = \"db\"\n" +
         (proxy_protocol.empty() ? "" : "proxy_protocol = \"" + proxy_protocol + "\"\n") +
         "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n"
         "[[pool]]\nname = \"db\"\nservers = [\"" +
         backend + "\"]\n";
}

class TcpModeTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  // Sends a payload, reads it back, half-closes, reads the backend's goodbye and the close.
  static void echo_and_half_close(tls_client& c) {
    const std::string big(100000, 'z');
    c.send("ping\n");
    EXPECT_EQ(c.read_exact(5), "ping\n");
    c.send(big);
    EXPECT_EQ(c.read_exact(big.size()), big);
    c.shutdown_write();
    EXPECT_EQ(c.read_exact(4), "bye\n") << "the half-close did not reach the backend";
    EXPECT_TRUE(c.wait_closed(5000));
  }
  std::string dir_;
};

TEST_F(TcpModeTest, RelaysBothWaysWithAProxyV2HeaderCarryingTheTlsDetails) {
  tcp_echo backend(tcp_echo::expect::v2);
  proxy_instance p(tcp_config(backend.address(), "v2"), dir_);
  tls_client c(p.port(), client("a.example", TLS1_3_VERSION));
  ASSERT_TRUE(c.connected()) << c.error();
  echo_and_half_close(c);
  const v2_header h = backend.v2();
  EXPECT_EQ(h.command, 0x21);  // version 2, PROXY
  EXPECT_EQ(h.family, 0x11);   // TCP over IPv4
  EXPECT_EQ(h.source_ip, "127.0.0.1");
  EXPECT_EQ(h.source_port, c.local_port());
  EXPECT_EQ(h.authority, "a.example");
  EXPECT_EQ(h.alpn, "http/1.1");
  EXPECT_EQ(h.ssl_client, 1);
  EXPECT_EQ(h.ssl_version, "TLSv1.3");
  EXPECT_EQ(h.ssl_cipher, SSL_get_cipher_name(c.ssl()));
}

TEST_F(TcpModeTest, ProxyV1HeaderNamesTheClient) {
  tcp_echo backend(tcp_echo::expect::v1);
  proxy_instance p(tcp_config(backend.address(), "v1"), dir_);
  tls_client c(p.port(), client("a.example", TLS1_2_VERSION));
  ASSERT_TRUE(c.connected()) << c.error();
  echo_and_half_close(c);
  EXPECT_EQ(backend.v1_line(), "PROXY TCP4 127.0.0.1 127.0.0.1 " + std::to_string(c.local_port()) +
                                   " " + std::to_string(p.port()));
  std::string access;
  for (int i = 0; i < 100 && access.find("method=\"TCP\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    access = read_file(dir_ + "/access.log");
  }
  EXPECT_NE(access.find("method=\"TCP\" path=\"-\" status=0 bytes_sent=100009"), std::string::npos)
      << access;
}

TEST_F(TcpModeTest, NoBackendClosesTheConnectionAfterTheHandshake) {
  int port = 0;
  int fd = listen_on_loopback(port);
  ::close(fd);  // nothing listens there now
  proxy_instance p(tcp_config("127.0.0.1:" + std::to_string(port), ""), dir_);
  tls_client c(p.port(), client("a.example", TLS1_3_VERSION));
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_TRUE(c.wait_closed(5000));
  EXPECT_GE(p.metric("tlsfront_backend_connect_errors_total{pool=\"db\"}"), 1);
  EXPECT_TRUE(p.proc().running());
}

// ---- PROXY headers from a load balancer in front ----

std::string trusting_config(const std::string& backend, const std::string& trusted) {
  std::string c = default_config(backend);
  c.replace(c.find("handshake_timeout = \"1s\"\n"), 0, "trusted_proxies = [\"" + trusted + "\"]\n");
  return c;
}

// The echo backend's /headers answer: the X-Forwarded-For it got.
std::string forwarded_for(proxy_instance& p, const std::string& preamble, bool* connected) {
  tls_client::options o = client("a.example", TLS1_3_VERSION);
  o.preamble = preamble;
  tls_client c(p.port(), o);
  *connected = c.connected();
  if (!c.connected()) {
    return "";
  }
  c.send("GET /headers HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
  std::string body = response_body(c.read_response());
  const std::size_t at = body.find("X-Forwarded-For: ");
  if (at == std::string::npos) {
    return "";
  }
  std::string v = body.substr(at + 17, body.find('\n', at) - at - 17);
  if (!v.empty() && v.back() == '\r') {
    v.pop_back();
  }
  return v;
}

std::string v2_preamble(const char (&ip)[4], int port) {
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += '\x21';  // v2, PROXY
  h += '\x11';  // TCP4
  h += std::string("\x00\x0c", 2);
  h.append(ip, 4);
  h += std::string("\xc0\x00\x02\x01", 4);  // destination 192.0.2.1
  h += static_cast<char>(port >> 8);
  h += static_cast<char>(port & 0xff);
  h += std::string("\x01\xbb", 2);  // 443
  return h;
}

TEST_F(TcpModeTest, ProxyHeadersFromATrustedBalancerNameTheClient) {
  echo_backend b(dir_);
  proxy_instance p(trusting_config(b.address(), "127.0.0.0/8"), dir_);
  bool ok = false;
  EXPECT_EQ(forwarded_for(p, "PROXY TCP4 203.0.113.7 192.0.2.1 5555 443\r\n", &ok), "203.0.113.7");
  EXPECT_TRUE(ok);
  const char ip[4] = {static_cast<char>(198), 51, 100, 9};
  EXPECT_EQ(forwarded_for(p, v2_preamble(ip, 6000), &ok), "198.51.100.9");
  EXPECT_EQ(forwarded_for(p, "PROXY UNKNOWN\r\n", &ok), "127.0.0.1");  // keeps the peer
  std::string access;
  for (int i = 0; i < 100 && access.find("client=198.51.100.9:6000") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    access = read_file(dir_ + "/access.log");
  }
  EXPECT_NE(access.find("client=203.0.113.7:5555"), std::string::npos) << access;
  EXPECT_NE(access.find("client=198.51.100.9:6000"), std::string::npos) << access;
  // From a trusted source a header is required: none, or a bad one, closes the connection.
  for (const std::string& bad : {std::string(""), std::string("PROXY TCP4 1.2.3.4\r\n"),
                                 std::string("PROXY TCP4 203.0.113.7 192.0.2.1 99999 443\r\n"),
                                 std::string("GET / HTTP/1.1\r\n\r\n")}) {
    forwarded_for(p, bad, &ok);
    EXPECT_FALSE(ok) << "accepted: " << bad;
  }
  EXPECT_EQ(p.metric("tlsfront_proxy_protocol_errors_total{listener=\"https\"}"), 4);
  EXPECT_TRUE(p.proc().running());
}

TEST_F(TcpModeTest, UntrustedSourcesCannotSpoofTheirAddress) {
  echo_backend b(dir_);
  proxy_instance p(trusting_config(b.address(), "10.0.0.0/8"), dir_);
  bool ok = false;
  EXPECT_EQ(forwarded_for(p, "", &ok), "127.0.0.1");
  EXPECT_TRUE(ok);
  forwarded_for(p, "PROXY TCP4 203.0.113.7 192.0.2.1 5555 443\r\n", &ok);
  EXPECT_FALSE(ok) << "a PROXY header from an untrusted source was taken";
}

}  // namespace
}  // namespace tlsfront::test
