// Protocol upgrades through the proxy: a WebSocket echo server written here (RFC 6455 handshake
// and frames) behind tlsfront, a TLS client speaking WebSocket through it; h2c and upgrades a
// route does not allow are stripped and the request is served as a plain one.
#include <gtest/gtest.h>
#include <openssl/base64.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <mutex>
#include <thread>

#include "integration/harness.h"
#include "support/loopback_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

std::string websocket_accept(const std::string& key) {
  const std::string in = key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  uint8_t digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const uint8_t*>(in.data()), in.size(), digest);
  uint8_t out[64];
  size_t n = EVP_EncodeBlock(out, digest, sizeof digest);
  return std::string(reinterpret_cast<char*>(out), n);
}

// One frame: FIN, `opcode`, the payload, masked with `mask` if given (clients mask).
std::string frame(int opcode, const std::string& payload, const char* mask = nullptr) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  const char mask_bit = mask != nullptr ? static_cast<char>(0x80) : 0;
  if (payload.size() < 126) {
    f.push_back(static_cast<char>(mask_bit | static_cast<char>(payload.size())));
  } else {
    f.push_back(static_cast<char>(mask_bit | 126));
    f.push_back(static_cast<char>(payload.size() >> 8));
    f.push_back(static_cast<char>(payload.size() & 0xff));
  }
  if (mask != nullptr) {
    f.append(mask, 4);
  }
  for (std::size_t i = 0; i < payload.size(); ++i) {
    f.push_back(mask != nullptr ? static_cast<char>(payload[i] ^ mask[i % 4]) : payload[i]);
  }
  return f;
}

// A WebSocket echo server: answers the opening handshake, then echoes every data frame
// (unmasked, as servers send) and answers a close frame with a close frame and a close.
class websocket_echo {
 public:
  std::string address() const { return server_.address(); }
  std::string last_request() {
    std::lock_guard lock(mu_);
    return request_;
  }

 private:
  void serve(int c) {
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos) {
      ssize_t r = ::read(c, buf, sizeof buf);
      if (r <= 0) {
        return;
      }
      in.append(buf, static_cast<std::size_t>(r));
    }
    const std::string head = in.substr(0, in.find("\r\n\r\n") + 4);
    {
      std::lock_guard lock(mu_);
      request_ = head;
    }
    const std::string key = response_header(head, "Sec-WebSocket-Key");
    std::string reply =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
        websocket_accept(key) + "\r\n\r\n";
    if (key.empty()) {
      reply = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    }
    ::write(c, reply.data(), reply.size());
    std::string rest = in.substr(head.size());
    for (;;) {
      if (!read_until_size(c, rest, 2)) {
        return;
      }
      const int opcode = rest[0] & 0x0f;
      std::size_t len = static_cast<unsigned char>(rest[1]) & 0x7f, at = 2;
      if (len == 126) {
        if (!read_until_size(c, rest, 4)) {
          return;
        }
        len = (static_cast<std::size_t>(static_cast<unsigned char>(rest[2])) << 8) |
              static_cast<unsigned char>(rest[3]);
        at = 4;
      }
      if (!read_until_size(c, rest, at + 4 + len)) {
        return;
      }
      const std::string mask = rest.substr(at, 4);
      std::string payload = rest.substr(at + 4, len);
      for (std::size_t i = 0; i < payload.size(); ++i) {
        payload[i] = static_cast<char>(payload[i] ^ mask[i % 4]);
      }
      rest.erase(0, at + 4 + len);
      const std::string out = frame(opcode, payload);
      ::write(c, out.data(), out.size());
      if (opcode == 8) {
        return;
      }
    }
  }
  std::mutex mu_;
  std::string request_;
  loopback_server server_{[this](int c) { serve(c); }};  // last: stops before the rest goes
};

const char kMask[4] = {0x12, 0x34, 0x56, 0x78};

std::string upgrade_request(const std::string& path, const std::string& upgrade) {
  return "GET " + path +
         " HTTP/1.1\r\nHost: a.example\r\nConnection: keep-alive, Upgrade\r\nUpgrade: " + upgrade +
         "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
         "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n";
}

class UpgradeTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  std::string dir_;
};

TEST_F(UpgradeTest, AWebSocketEchoesThroughTheProxy) {
  websocket_echo ws;
  proxy_instance p(default_config(ws.address()), dir_);
  auto c_holder = std::make_unique<tls_client>(p.port(), client("a.example", TLS1_3_VERSION));
  tls_client& c = *c_holder;
  ASSERT_TRUE(c.connected()) << c.error();
  c.send(upgrade_request("/chat", "websocket"));
  std::string head = c.read_response();
  ASSERT_EQ(response_status(head), 101) << head;
  EXPECT_EQ(response_header(head, "Sec-WebSocket-Accept"), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(response_header(head, "Upgrade"), "websocket");
  EXPECT_EQ(response_header(head, "Connection"), "Upgrade");
  // The backend saw the upgrade asked for, the key, and the forwarding fields; not the
  // client's other hop-by-hop fields.
  const std::string req = ws.last_request();
  EXPECT_EQ(response_header(req, "Upgrade"), "websocket") << req;
  EXPECT_EQ(response_header(req, "Connection"), "Upgrade") << req;
  EXPECT_EQ(response_header(req, "Sec-WebSocket-Key"), "dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(response_header(req, "X-Forwarded-For"), "127.0.0.1");
  // Frames both ways, small and large (over one TLS record).
  for (const std::string& msg : {std::string("hello"), std::string(20000, 'x')}) {
    c.send(frame(1, msg, kMask));
    const std::string back = c.read_exact(frame(1, msg).size());
    EXPECT_EQ(back, frame(1, msg)) << "size " << msg.size();
  }
  // Close: the server answers and closes; the proxy passes both on.
  c.send(frame(8, "\x03\xe8", kMask));
  EXPECT_EQ(c.read_exact(4), frame(8, "\x03\xe8"));
  EXPECT_TRUE(c.wait_closed(5000));
  c_holder.reset();  // the client's side ends too: the tunnel is over
  EXPECT_GE(p.metric_reaching("tlsfront_requests_total{pool=\"echo\",class=\"1xx\"}", 1), 1);
  std::string access;
  for (int i = 0; i < 100 && access.find("status=101") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    access = read_file(dir_ + "/access.log");
  }
  EXPECT_NE(access.find("path=\"/chat\" status=101"), std::string::npos) << access;
}

TEST_F(UpgradeTest, H2cAndUpgradesTheRouteDoesNotAllowAreStripped) {
  echo_backend b(dir_);
  std::string cfg = default_config(b.address());
  cfg.replace(cfg.find("[[route]]\npool = \"echo\"\n"), 0,
              "[[route]]\npath_prefix = \"/no-ws\"\npool = \"echo\"\nupgrades = []\n");
  proxy_instance p(cfg, dir_);
  struct ask {
    std::string path, upgrade;
  };
  for (const ask& a : {ask{"/headers", "h2c"}, ask{"/headers", "h2c, websocket-not-allowed"},
                       ask{"/no-ws/headers", "websocket"}}) {
    tls_client c(p.port(), client("a.example", TLS1_3_VERSION));
    ASSERT_TRUE(c.connected());
    c.send(upgrade_request(a.path, a.upgrade));
    std::string r = c.read_response();
    ASSERT_EQ(response_status(r), 200) << a.upgrade << "\n" << r;
    // The echo backend lists the request headers it got: no upgrade, no HTTP2-Settings.
    std::string body = response_body(r);
    for (char& ch : body) {
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    EXPECT_EQ(body.find("upgrade"), std::string::npos) << body;
    EXPECT_EQ(body.find("http2-settings"), std::string::npos) << body;
    // The connection goes on as HTTP/1.1.
    c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(response_status(c.read_response()), 200);
  }
}

TEST_F(UpgradeTest, ABackendThatDeclinesTheUpgradeAnswersNormally) {
  echo_backend b(dir_);  // knows nothing of WebSocket: answers 200
  proxy_instance p(default_config(b.address()), dir_);
  tls_client c(p.port(), client("a.example", TLS1_3_VERSION));
  c.send(upgrade_request("/", "websocket"));
  EXPECT_EQ(response_status(c.read_response()), 200);
  c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(c.read_response()), 200);
}

}  // namespace
}  // namespace tlsfront::test
