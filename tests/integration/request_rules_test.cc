// Integration tests of the request rules through the real binary: client identity headers
// removed (as the echo backend sees the request), the normalized path routed and forwarded,
// bad paths refused with 400, chunk-size lines capped in requests (400) and in backend
// responses (502, from a raw backend written here that sends what it is told).
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

// A plain HTTP/1.1 backend on 127.0.0.1:0 that records each request head and answers one
// request per connection: a chunked response whose size line has 24 digits for "/bad-zeros",
// one with a 2000-byte chunk extension for "/bad-ext", else "200 ok".
class raw_backend {
 public:
  raw_backend() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
      ADD_FAILURE() << "raw backend: cannot listen";
    }
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~raw_backend() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> heads() {
    std::lock_guard lock(mu_);
    return heads_;
  }

 private:
  void run() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) {
        continue;
      }
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        continue;
      }
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string head;
      char buf[4096];
      while (head.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) {
          break;
        }
        head.append(buf, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        heads_.push_back(head);
      }
      std::string r;
      const std::string chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
      if (head.find(" /bad-zeros ") != std::string::npos) {
        r = chunked + std::string(23, '0') + "5\r\nhello\r\n0\r\n\r\n";
      } else if (head.find(" /bad-ext ") != std::string::npos) {
        r = chunked + "5;" + std::string(2000, 'e') + "\r\nhello\r\n0\r\n\r\n";
      } else if (head.find(" /fine-chunks ") != std::string::npos) {
        r = chunked + "000000000000005;a=b\r\nhello\r\n0\r\n\r\n";
      } else {
        r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
      }
      ::send(c, r.data(), r.size(), MSG_NOSIGNAL);
      ::shutdown(c, SHUT_WR);
      while (::recv(c, buf, sizeof buf, 0) > 0) {
      }
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::vector<std::string> heads_;
  std::thread thread_;
};

std::string get(const std::string& host, const std::string& target, const std::string& extra = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: " + host + "\r\n" + extra + "\r\n";
}

// Listener "strict" has the defaults; "open" allows encoded slashes and drops only
// X-Custom-Identity. a.example routes only "/public/"; b.example anything (echo backend);
// raw.example goes to the raw backend.
class RequestRules : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(make_temp_dir());
    echo_ = new echo_backend(*dir_);
    raw_ = new raw_backend();
    const std::string cert =
        "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n";
    proxy_ = new proxy_instance(
        "[server]\nthreads = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n[log]\naccess_log = \"off\"\n"
        "[[listener]]\nname = \"strict\"\nlisten = \"127.0.0.1:0\"\n" +
            cert +
            "[[listener]]\nname = \"open\"\nlisten = \"127.0.0.1:0\"\n"
            "allow_encoded_slashes = true\ndrop_client_headers = [\"X-Custom-Identity\"]\n" +
            cert + "[[pool]]\nname = \"echo\"\nservers = [\"" + echo_->address() +
            "\"]\n[[pool]]\nname = \"raw\"\nservers = [\"" + raw_->address() +
            "\"]\nmax_fails = 0\nretries = 0\n"
            "[[route]]\nhost = \"a.example\"\npath_prefix = \"/public/\"\npool = \"echo\"\n"
            "[[route]]\nhost = \"raw.example\"\npool = \"raw\"\n"
            "[[route]]\nhost = \"b.example\"\npool = \"echo\"\n",
        *dir_);
  }
  static void TearDownTestSuite() {
    delete proxy_;
    delete raw_;
    delete echo_;
    delete dir_;
  }
  static int strict() { return proxy_->port("strict"); }
  static int open() { return proxy_->port("open"); }

  static std::string* dir_;
  static echo_backend* echo_;
  static raw_backend* raw_;
  static proxy_instance* proxy_;
};
std::string* RequestRules::dir_ = nullptr;
echo_backend* RequestRules::echo_ = nullptr;
raw_backend* RequestRules::raw_ = nullptr;
proxy_instance* RequestRules::proxy_ = nullptr;

const std::string identity_headers =
    "Forwarded: for=6.6.6.6\r\nX-Real-IP: 6.6.6.1\r\nTrue-Client-IP: 6.6.6.2\r\n"
    "x-client-ip: 6.6.6.3\r\nX-Forwarded-Port: 6666\r\nX-Custom-Identity: admin\r\n"
    "X-Normal: kept\r\n";

TEST_F(RequestRules, ClientIdentityHeadersAreRemovedByDefault) {
  std::string r = https_request(strict(), get("b.example", "/headers", identity_headers));
  ASSERT_EQ(response_status(r), 200) << r;
  const std::string seen = response_body(r);
  EXPECT_NE(seen.find("X-Normal: kept\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Custom-Identity: admin\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Forwarded-For: 127.0.0.1\r\n"), std::string::npos) << seen;
  for (const char* gone :
       {"Forwarded:", "X-Real-IP", "True-Client-IP", "x-client-ip", "X-Forwarded-Port", "6.6.6"}) {
    EXPECT_EQ(seen.find(gone), std::string::npos) << gone << " reached the backend: " << seen;
  }
}

TEST_F(RequestRules, ListenerListReplacesTheDefault) {
  std::string r = https_request(open(), get("b.example", "/headers", identity_headers));
  ASSERT_EQ(response_status(r), 200) << r;
  const std::string seen = response_body(r);
  EXPECT_EQ(seen.find("X-Custom-Identity"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Real-IP: 6.6.6.1\r\n"), std::string::npos) << seen;
  EXPECT_NE(seen.find("X-Normal: kept\r\n"), std::string::npos) << seen;
}

TEST_F(RequestRules, BackendSeesTheNormalizedPathAndTheQueryUnchanged) {
  std::string r =
      https_request(strict(), get("b.example", "/x/./y/%2e%2E/../%68eaders?q=/../a%2f&b=%2e%2e"));
  ASSERT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(response_body(r).rfind("GET /headers?q=/../a%2f&b=%2e%2e HTTP/1.1\r\n", 0), 0u)
      << response_body(r);
  // Escapes that stay are forwarded with upper-case hex, empty segments as they came.
  r = https_request(strict(), get("raw.example", "/a%3a//b/%7euser/./c"));
  ASSERT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(raw_->heads().back().rfind("GET /a%3A//b/~user/c HTTP/1.1\r\n", 0), 0u)
      << raw_->heads().back();
}

TEST_F(RequestRules, DotSegmentsCannotLeaveARoutesPrefix) {
  EXPECT_EQ(response_status(https_request(strict(), get("a.example", "/public/x"))), 200);
  EXPECT_EQ(response_status(https_request(strict(), get("a.example", "/public/./x"))), 200);
  EXPECT_EQ(response_status(https_request(strict(), get("a.example", "/y/../public/x"))), 200);
  for (const char* t : {"/public/../headers", "/public/%2e%2E/headers", "/public/.%2E/headers",
                        "/public/x/../../headers", "/public"}) {
    std::string r = https_request(strict(), get("a.example", t));
    EXPECT_EQ(response_status(r), 404) << t << ": " << r;
  }
}

TEST_F(RequestRules, UnsafePathsAreRefusedWith400) {
  const long before = echo_->requests();
  for (int port : {strict(), open()}) {
    for (std::string t : {"/..", "/../headers", "/a/../../headers", "/%2e%2e/x", "/a%zz", "/a%4",
                          "/a%", "/a%00b"}) {
      tls_client c(port);
      ASSERT_TRUE(c.connected()) << c.error();
      ASSERT_TRUE(c.send(get("b.example", t)));
      std::string r = c.read_response();
      EXPECT_EQ(response_status(r), 400) << t << ": " << r;
      EXPECT_EQ(response_header(r, "Connection"), "close") << t;
      EXPECT_TRUE(c.wait_closed(5000)) << t;
    }
  }
  for (const char* t : {"/a%2Fb", "/a%2fb", "/a%5Cb", "/..%2F..%2Fetc%2Fpasswd"}) {
    EXPECT_EQ(response_status(https_request(strict(), get("b.example", t))), 400) << t;
  }
  EXPECT_EQ(echo_->requests(), before) << "a refused request reached the backend";
  EXPECT_GE(proxy_->metric("tlsfront_bad_requests_total"), 20);
}

TEST_F(RequestRules, EncodedSlashesPassWhereTheListenerAllowsThem) {
  std::string r = https_request(open(), get("raw.example", "/files/a%2fb%5Cc/./d?x=%2F"));
  ASSERT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(raw_->heads().back().rfind("GET /files/a%2Fb%5Cc/d?x=%2F HTTP/1.1\r\n", 0), 0u)
      << raw_->heads().back();
  EXPECT_EQ(response_status(https_request(strict(), get("raw.example", "/files/a%2fb"))), 400);
}

std::string chunked_post(const std::string& body) {
  return "POST /sink HTTP/1.1\r\nHost: b.example\r\nTransfer-Encoding: chunked\r\n\r\n" + body;
}

TEST_F(RequestRules, RequestChunkSizeAndExtensionCapsGive400) {
  const long before = echo_->requests();
  for (std::string body : {std::string(20, '0') + "5\r\nhello\r\n0\r\n\r\n",
                           "5;" + std::string(2000, 'e') + "\r\nhello\r\n0\r\n\r\n",
                           "5\r\nhello\r\n" + std::string(40, '0') + "\r\n\r\n"}) {
    tls_client c(strict());
    ASSERT_TRUE(c.connected()) << c.error();
    ASSERT_TRUE(c.send(chunked_post(body)));
    std::string r = c.read_response();
    EXPECT_EQ(response_status(r), 400) << body.substr(0, 40) << ": " << r;
    EXPECT_TRUE(c.wait_closed(5000));
  }
  // Within the caps: 16 digits and a short extension pass.
  std::string r =
      https_request(strict(), chunked_post("000000000000005;a=b\r\nhello\r\n0\r\n\r\n"));
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_EQ(response_body(r).rfind("bytes=5 ", 0), 0u) << r;
  // The first refused request had reached no backend; the later ones were cut mid-body.
  EXPECT_LE(echo_->requests() - before, 3);
}

TEST_F(RequestRules, BackendChunkSizeAndExtensionCapsGive502) {
  for (const char* t : {"/bad-zeros", "/bad-ext"}) {
    std::string r = https_request(strict(), get("raw.example", t));
    EXPECT_EQ(response_status(r), 502) << t << ": " << r;
  }
  std::string r = https_request(strict(), get("raw.example", "/fine-chunks"));
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_NE(r.find("\r\n\r\n5\r\nhello\r\n0\r\n\r\n"), std::string::npos) << r;  // re-framed
  EXPECT_TRUE(proxy_->proc().running());
}

}  // namespace
}  // namespace tlsfront::test
