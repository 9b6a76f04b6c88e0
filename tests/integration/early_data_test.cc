// TLS 1.3 0-RTT (issue 15), against the real binary, the echo backend and (for the fleet) a real
// redis-server: early data is accepted at most once per ticket, here and across instances; a
// replayed ClientHello resumes at most as 1-RTT and its early request never reaches the
// backend, nor does a recorded flight replayed verbatim; requests that may not go early (a POST)
// wait for the client's Finished; a stale ticket age or Redis down means no early data, with
// resumption unaffected; a backend's 425 is retried once after the handshake; the backend sees
// Early-Data: 1 exactly on requests forwarded early (HTTP/1.1 and HTTP/2), never a client's
// (a trusted intermediary's is kept).
// Clients: the harness's BoringSSL client and openssl s_client (OpenSSL 3).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "integration/harness.h"
#include "support/redis_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

const std::string get_headers = "GET /headers HTTP/1.1\r\nHost: a.example\r\n\r\n";

// The early-data keys on the default config's listener.
std::string with_early_data(std::string config, const std::string& extra = "") {
  const std::string anchor = "handshake_timeout = \"1s\"\n";
  config.replace(config.find(anchor), anchor.size(), anchor + "early_data = true\n" + extra);
  return config;
}

tls_client::options early(SSL_SESSION* s, const std::string& data) {
  tls_client::options o = client("a.example", TLS1_3_VERSION, s);
  o.early_data = data;
  return o;
}

// What came back over a raw TCP connection that sent `bytes` (a recorded flight) and then
// waited for the server to close or `ms` to pass.
std::string replay(int port, const std::string& bytes, int ms = 1500) {
  const int fd = connect_tcp(port);
  if (fd < 0) {
    return "connect failed";
  }
  timeval tv{0, 100 * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  std::string got;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  char buf[4096];
  while (std::chrono::steady_clock::now() < end) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0) {
      break;
    }
    if (n > 0) {
      got.append(buf, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return got;
}

class EarlyDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    backend_ = std::make_unique<echo_backend>(dir_);
  }
  std::string local_config(const std::string& extra = "") const {
    return with_early_data(default_config(backend_->address()), extra);
  }
  std::string fleet_config(const redis_server& r) const {
    const std::string secret = dir_ + "/fleet.secret";
    write_file(secret, "fleet-secret-for-early-data-tests-0123456789\n");
    ::chmod(secret.c_str(), 0600);
    return with_early_data(default_config(backend_->address())) + "[cluster]\nredis = \"" +
           r.address() + "\"\nsecret_file = \"" + secret +
           "\"\npoll_interval = \"200ms\"\nconnect_timeout = \"300ms\"\n"
           "command_timeout = \"500ms\"\nlookup_timeout = \"300ms\"\n"
           "[tickets]\npublish_ahead = \"1s\"\n";
  }
  static void wait_shared(proxy_instance& a, proxy_instance& b) {
    for (int i = 0; i < 200; ++i) {
      const std::string k = current_key_name(a);
      if (!k.empty() && k == current_key_name(b) &&
          a.metric("tlsfront_fleet_ticket_keys_shared") == 1 &&
          b.metric("tlsfront_fleet_ticket_keys_shared") == 1) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ADD_FAILURE() << "the instances never shared their ticket keys";
  }
  // Polls the backend's request count until it reaches `n` (at most `ms`); the last count.
  long backend_reaching(long n, int ms = 3000) {
    long got = backend_->requests();
    for (int i = 0; i < ms / 20 && got < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      got = backend_->requests();
    }
    return got;
  }

  std::string dir_;
  std::unique_ptr<echo_backend> backend_;
};

TEST_F(EarlyDataTest, ATicketsEarlyDataIsAcceptedOnceAndItsSecondUseIsServedAfterTheHandshake) {
  proxy_instance p(local_config());
  auto s = ticket_session(p.port(), "a.example", TLS1_3_VERSION);
  ASSERT_TRUE(SSL_SESSION_early_data_capable(s.get())) << "the ticket does not allow 0-RTT";
  const long before = backend_->requests();

  tls_client first(p.port(), early(s.get(), get_headers));
  ASSERT_TRUE(first.connected()) << first.error();
  EXPECT_TRUE(first.resumed());
  EXPECT_TRUE(first.early_accepted());
  const std::string r1 = first.read_response();
  EXPECT_EQ(response_status(r1), 200);
  EXPECT_EQ(echoed_header(response_body(r1), "Early-Data"), "1");
  EXPECT_EQ(backend_reaching(before + 1), before + 1);

  // The same ticket again: resumed, early data rejected, the request (sent again by the client
  // after the handshake) served once, not as early.
  tls_client second(p.port(), early(s.get(), get_headers));
  ASSERT_TRUE(second.connected()) << second.error();
  EXPECT_TRUE(second.resumed());
  EXPECT_FALSE(second.early_accepted());
  const std::string r2 = second.read_response();
  EXPECT_EQ(response_status(r2), 200);
  EXPECT_EQ(echoed_header(response_body(r2), "Early-Data"), "");
  EXPECT_EQ(backend_reaching(before + 2), before + 2);

  EXPECT_EQ(p.metric_reaching("tlsfront_early_data_offered_total", 2), 2);
  EXPECT_EQ(p.metric("tlsfront_early_data_accepted_total"), 1);
  EXPECT_EQ(p.metric("tlsfront_early_data_rejected_total{reason=\"replayed\"}"), 1);
  EXPECT_EQ(p.metric("tlsfront_early_requests_total"), 1);
  EXPECT_TRUE(has(file_containing(p.dir() + "/access.log", "early=1"), "early=1"));

  // The tickets sent on the rejected connection still allow 0-RTT (early data was turned back
  // on for them), and a fresh one is accepted.
  auto renewed = second.session();
  EXPECT_TRUE(SSL_SESSION_early_data_capable(renewed.get()));
  tls_client third(p.port(), early(renewed.get(), get_headers));
  ASSERT_TRUE(third.connected()) << third.error();
  EXPECT_TRUE(third.early_accepted());
  EXPECT_EQ(response_status(third.read_response()), 200);
}

TEST_F(EarlyDataTest, ARequestThatMayNotGoEarlyWaitsForTheClientsFinished) {
  proxy_instance p(local_config());
  // A GET goes to the backend before the client's Finished...
  auto s1 = ticket_session(p.port(), "a.example", TLS1_3_VERSION);
  long before = backend_->requests();
  tls_client::options o = early(s1.get(), get_headers);
  o.hold_finished = true;
  tls_client get(p.port(), o);
  EXPECT_EQ(backend_reaching(before + 1), before + 1) << "the early GET was not forwarded early";
  ASSERT_TRUE(get.finish_handshake()) << get.error();
  EXPECT_TRUE(get.early_accepted());
  EXPECT_EQ(echoed_header(response_body(get.read_response()), "Early-Data"), "1");

  // ...a POST (a body, and not an early method) only after it.
  auto s2 = ticket_session(p.port(), "a.example", TLS1_3_VERSION);
  before = backend_->requests();
  o = early(s2.get(), "POST /headers HTTP/1.1\r\nHost: a.example\r\nContent-Length: 2\r\n\r\nhi");
  o.hold_finished = true;
  tls_client post(p.port(), o);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(backend_->requests(), before) << "a POST in early data went before the handshake";
  ASSERT_TRUE(post.finish_handshake()) << post.error();
  EXPECT_TRUE(post.early_accepted());
  const std::string r = post.read_response();
  EXPECT_EQ(response_status(r), 200);
  EXPECT_EQ(echoed_header(response_body(r), "Early-Data"), "");
  EXPECT_EQ(backend_reaching(before + 1), before + 1);
  EXPECT_GE(p.metric("tlsfront_early_requests_waited_total"), 1);

  // A route may allow no method early at all.
  proxy_instance strict(local_config() + "early_data_methods = []\n");
  auto s3 = ticket_session(strict.port(), "a.example", TLS1_3_VERSION);
  before = backend_->requests();
  o = early(s3.get(), get_headers);
  o.hold_finished = true;
  tls_client held(strict.port(), o);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(backend_->requests(), before);
  ASSERT_TRUE(held.finish_handshake());
  EXPECT_EQ(echoed_header(response_body(held.read_response()), "Early-Data"), "");
}

TEST_F(EarlyDataTest, AKeepAliveConnectionIdleAfterItsHandshakeCompletedIsNotTimedOutAsARequest) {
  // The client's Finished arrives while the connection waits between requests: that is not the
  // start of a request (no 408 after client_read_timeout; the idle limit applies).
  proxy_instance p(with_early_data(default_config(backend_->address(),
                                                  "client_read_timeout = \"1s\"\n"
                                                  "client_idle_timeout = \"10s\"\n")));
  auto s = ticket_session(p.port(), "a.example", TLS1_3_VERSION);
  tls_client c(p.port(), early(s.get(), get_headers));
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.early_accepted());
  EXPECT_EQ(response_status(c.read_response()), 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1800));
  ASSERT_TRUE(c.send(get_headers));
  const std::string r = c.read_response();
  EXPECT_EQ(response_status(r), 200) << r;
}

TEST_F(EarlyDataTest, ATicketAgeOutsideTheFreshnessWindowGetsNoEarlyData) {
  proxy_instance p(local_config("early_data_window = \"5s\"\n"));
  auto s = ticket_session(p.port(), "a.example", TLS1_3_VERSION);
  const long before = backend_->requests();
  tls_client::options o = early(s.get(), get_headers);
  o.clock_offset_s = 20;  // the client's age of the ticket is 20 s more than the server's
  tls_client c(p.port(), o);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_TRUE(c.resumed());
  EXPECT_FALSE(c.early_accepted());
  const std::string r = c.read_response();
  EXPECT_EQ(response_status(r), 200);
  EXPECT_EQ(echoed_header(response_body(r), "Early-Data"), "");
  EXPECT_EQ(backend_reaching(before + 1), before + 1);
  EXPECT_EQ(p.metric_reaching("tlsfront_early_data_rejected_total{reason=\"stale\"}", 1), 1);
  EXPECT_EQ(p.metric("tlsfront_early_data_accepted_total"), 0);
}

TEST_F(EarlyDataTest, ABackendsTooEarlyIsRetriedOnceAfterTheHandshake) {
  proxy_instance p(local_config());
  auto s = ticket_session(p.port(), "a.example", TLS1_3_VERSION);
  const long before = backend_->requests();
  tls_client c(p.port(), early(s.get(), "GET /too-early HTTP/1.1\r\nHost: a.example\r\n\r\n"));
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_TRUE(c.early_accepted());
  const std::string r = c.read_response();
  EXPECT_EQ(response_status(r), 200) << r;  // the client never sees the 425
  EXPECT_EQ(echoed_header(response_body(r), "Early-Data"), "");
  EXPECT_EQ(backend_reaching(before + 2), before + 2);  // the early one and the retry
  EXPECT_EQ(p.metric_reaching("tlsfront_early_data_retries_total", 1), 1);
  // The connection goes on.
  ASSERT_TRUE(c.send(get_headers));
  EXPECT_EQ(response_status(c.read_response()), 200);
}

TEST_F(EarlyDataTest, AClientsOwnEarlyDataFieldNeverReachesTheBackend) {
  proxy_instance p(local_config());
  const std::string r = https_request(
      p.port(),
      "GET /headers HTTP/1.1\r\nHost: a.example\r\nEarly-Data: 1\r\nConnection: close\r\n\r\n",
      "a.example");
  EXPECT_EQ(response_status(r), 200);
  EXPECT_EQ(echoed_header(response_body(r), "Early-Data"), "");
}

TEST_F(EarlyDataTest, ATrustedIntermediarysEarlyDataIsKeptAndItsTooEarlyIsNotRetried) {
  // A CDN in front (a trusted proxy, PROXY header first) forwarded its client's early data: the
  // backend must still be told (RFC 8470 §5.1), and a 425 goes back to the intermediary, which
  // understands it, rather than being retried here.
  proxy_instance p(local_config("trusted_proxies = [\"127.0.0.1/32\"]\n"));
  tls_client::options o = client("a.example", TLS1_3_VERSION);
  o.preamble = "PROXY TCP4 192.0.2.7 127.0.0.1 40000 443\r\n";
  tls_client c(p.port(), o);
  ASSERT_TRUE(c.connected()) << c.error();
  ASSERT_TRUE(c.send("GET /headers HTTP/1.1\r\nHost: a.example\r\nEarly-Data: 1\r\n\r\n"));
  EXPECT_EQ(echoed_header(response_body(c.read_response()), "Early-Data"), "1");
  const long before = backend_->requests();
  ASSERT_TRUE(c.send("GET /too-early HTTP/1.1\r\nHost: a.example\r\nEarly-Data: 1\r\n\r\n"));
  EXPECT_EQ(response_status(c.read_response()), 425);
  EXPECT_EQ(backend_reaching(before + 1), before + 1);
  EXPECT_EQ(p.metric("tlsfront_early_data_retries_total"), 0);
}

TEST_F(EarlyDataTest, WithEarlyDataOffTheTicketsAllowNo0Rtt) {
  proxy_instance p(default_config(backend_->address()));
  auto s = ticket_session(p.port(), "a.example", TLS1_3_VERSION);
  EXPECT_FALSE(SSL_SESSION_early_data_capable(s.get()));
}

TEST_F(EarlyDataTest, AnInstanceWithEarlyDataOffResumesA0RttTicketAs1Rtt) {
  // A rolling change: A and B share a key file, only A has early data on.
  std::string key(80, '\0');
  for (int i = 0; i < 80; ++i) {
    key[static_cast<std::size_t>(i)] = static_cast<char>(0x21 + i);
  }
  write_file(dir_ + "/shared.key", key);
  const std::string keys = "[tickets]\nsource = \"file\"\nfiles = [\"" + dir_ + "/shared.key\"]\n";
  proxy_instance a(local_config() + keys);
  proxy_instance b(default_config(backend_->address()) + keys);
  auto s = ticket_session(a.port(), "a.example", TLS1_3_VERSION);
  ASSERT_TRUE(SSL_SESSION_early_data_capable(s.get()));
  const long before = backend_->requests();
  tls_client c(b.port(), early(s.get(), get_headers));
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_TRUE(c.resumed());
  EXPECT_FALSE(c.early_accepted());
  EXPECT_EQ(echoed_header(response_body(c.read_response()), "Early-Data"), "");
  EXPECT_EQ(backend_reaching(before + 1), before + 1);
  EXPECT_EQ(b.metric_reaching("tlsfront_early_data_rejected_total{reason=\"disabled\"}", 1), 1);
  // The same ticket still has its early data accepted on A: B claimed nothing.
  tls_client on_a(a.port(), early(s.get(), get_headers));
  ASSERT_TRUE(on_a.connected()) << on_a.error();
  EXPECT_TRUE(on_a.early_accepted());
}

TEST_F(EarlyDataTest, EarlyBytesPastMaxEarlyDataWaitForTheHandshake) {
  proxy_instance p(local_config("max_early_data = 64\n"));
  auto s = ticket_session(p.port(), "a.example", TLS1_3_VERSION);
  const long before = backend_->requests();
  // One GET whose head alone is past 64 bytes: it may not go early.
  tls_client::options o =
      early(s.get(), "GET /headers HTTP/1.1\r\nHost: a.example\r\nX-Pad: " + std::string(100, 'p') +
                         "\r\n\r\n");
  o.hold_finished = true;
  tls_client c(p.port(), o);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_EQ(backend_->requests(), before);
  ASSERT_TRUE(c.finish_handshake()) << c.error();
  EXPECT_TRUE(c.early_accepted());
  EXPECT_EQ(echoed_header(response_body(c.read_response()), "Early-Data"), "");
  EXPECT_EQ(backend_reaching(before + 1), before + 1);
  EXPECT_EQ(p.metric("tlsfront_early_data_rejected_total{reason=\"too_large\"}"), 1);
}

// HTTP/2 in early data: the preface, SETTINGS and a HEADERS frame (HPACK from the static table
// and literals) in the client's first flight.
std::string h2_frame(std::uint8_t type, std::uint8_t flags, std::uint32_t stream,
                     const std::string& payload) {
  std::string f;
  f.push_back(static_cast<char>(payload.size() >> 16));
  f.push_back(static_cast<char>(payload.size() >> 8));
  f.push_back(static_cast<char>(payload.size()));
  f.push_back(static_cast<char>(type));
  f.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8) {
    f.push_back(static_cast<char>(stream >> shift));
  }
  return f + payload;
}

std::string h2_get(std::uint32_t stream, const std::string& path) {
  std::string block = "\x82\x87";  // :method GET, :scheme https
  block += '\x04';                 // :path, literal without indexing, name index 4
  block += static_cast<char>(path.size());
  block += path;
  block += '\x01';  // :authority, literal without indexing, name index 1
  block += static_cast<char>(9);
  block += "a.example";
  return h2_frame(1, 0x05, stream, block);  // END_STREAM | END_HEADERS
}

// The DATA payloads of `stream` in what the server sent, until END_STREAM.
std::string h2_read_body(tls_client& c, std::uint32_t stream) {
  std::string body;
  for (int frames = 0; frames < 64; ++frames) {
    const std::string head = c.read_exact(9);
    if (head.size() != 9) {
      break;
    }
    const std::size_t len = (static_cast<std::uint8_t>(head[0]) << 16) |
                            (static_cast<std::uint8_t>(head[1]) << 8) |
                            static_cast<std::uint8_t>(head[2]);
    const std::uint32_t id =
        (static_cast<std::uint32_t>(static_cast<std::uint8_t>(head[5]) & 0x7f) << 24) |
        (static_cast<std::uint8_t>(head[6]) << 16) | (static_cast<std::uint8_t>(head[7]) << 8) |
        static_cast<std::uint8_t>(head[8]);
    const std::string payload = c.read_exact(len);
    if (id == stream && head[3] == 0) {
      body += payload;
    }
    if (id == stream && (head[4] & 0x01) != 0 && (head[3] == 0 || head[3] == 1)) {
      break;
    }
  }
  return body;
}

TEST_F(EarlyDataTest, AnHttp2RequestInEarlyDataIsForwardedWithEarlyData) {
  proxy_instance p(local_config());
  tls_client::options made = client("a.example", TLS1_3_VERSION);
  made.alpn = {"h2"};
  bssl::UniquePtr<SSL_SESSION> s;
  {
    tls_client c(p.port(), made);
    ASSERT_TRUE(c.connected()) << c.error();
    ASSERT_EQ(c.alpn(), "h2");
    ASSERT_TRUE(c.send(std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + h2_frame(4, 0, 0, "") +
                       h2_get(1, "/headers")));
    EXPECT_TRUE(has(h2_read_body(c, 1), "GET /headers"));
    s = c.session();
  }
  const long before = backend_->requests();
  tls_client::options o = made;
  o.session = s.get();
  o.early_data = std::string("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + h2_frame(4, 0, 0, "") +
                 h2_get(1, "/headers");
  tls_client c(p.port(), o);
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_TRUE(c.early_accepted());
  ASSERT_TRUE(c.send(h2_frame(4, 0x01, 0, "")));  // SETTINGS ack
  const std::string body = h2_read_body(c, 1);
  EXPECT_TRUE(has(body, "Early-Data: 1")) << body;
  EXPECT_EQ(backend_reaching(before + 1), before + 1);
}

TEST_F(EarlyDataTest, OpenSslClientsEarlyDataIsAcceptedOnceThenRejected) {
  proxy_instance p(local_config());
  const std::string sess = dir_ + "/s.pem", req = dir_ + "/req.txt";
  write_file(req, "GET /headers HTTP/1.1\r\nHost: a.example\r\nConnection: close\r\n\r\n");
  const std::string base =
      "openssl s_client -tls1_3 -alpn http/1.1 -connect 127.0.0.1:" + std::to_string(p.port()) +
      " -servername a.example ";
  // The first connection stays until its response (and the tickets before it) arrived.
  command_result made = run_command(
      "(printf 'GET / HTTP/1.1\\r\\nHost: a\\r\\nConnection: close\\r\\n\\r\\n'; "
      "sleep 1) | timeout 10 " +
      base + "-ign_eof -sess_out " + sess + " 2>&1");
  ASSERT_TRUE(has(made.out, "HTTP/1.1 200")) << made.out;
  const long before = backend_->requests();
  const std::string zero = "timeout 10 " + base + "-ign_eof -sess_in " + sess + " -early_data " +
                           req + " < /dev/null 2>&1";
  command_result first = run_command(zero);
  EXPECT_TRUE(has(first.out, "Early data was accepted")) << first.out;
  EXPECT_TRUE(has(first.out, "Early-Data: 1")) << first.out << "\n---\n" << made.out;
  EXPECT_EQ(backend_reaching(before + 1), before + 1);
  // Its early data rejected, s_client sends nothing: it is ended after its handshake.
  command_result second = run_command("timeout 3 " + base + "-ign_eof -sess_in " + sess +
                                      " -early_data " + req + " < /dev/null 2>&1");
  EXPECT_TRUE(has(second.out, "Reused, TLSv1.3")) << second.out;
  EXPECT_TRUE(has(second.out, "Early data was rejected")) << second.out;
  // s_client does not send rejected early data again: nothing more reached the backend.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(backend_->requests(), before + 1);
}

TEST_F(EarlyDataTest, InAFleetATicketsEarlyDataIsAcceptedOnceAndARecordedFlightReplaysNowhere) {
  redis_server r;
  proxy_instance a(fleet_config(r), make_temp_dir());
  proxy_instance b(fleet_config(r), make_temp_dir());
  wait_shared(a, b);
  auto s = ticket_session(a.port(), "a.example", TLS1_3_VERSION);
  const long before = backend_->requests();
  tls_client first(a.port(), early(s.get(), get_headers));
  ASSERT_TRUE(first.connected()) << first.error();
  ASSERT_TRUE(first.early_accepted());
  EXPECT_EQ(echoed_header(response_body(first.read_response()), "Early-Data"), "1");
  EXPECT_EQ(backend_reaching(before + 1), before + 1);

  // The same ticket on the other instance: resumed, no early data, served once after.
  tls_client on_b(b.port(), early(s.get(), get_headers));
  ASSERT_TRUE(on_b.connected()) << on_b.error();
  EXPECT_TRUE(on_b.resumed());
  EXPECT_FALSE(on_b.early_accepted());
  EXPECT_EQ(echoed_header(response_body(on_b.read_response()), "Early-Data"), "");
  EXPECT_EQ(backend_reaching(before + 2), before + 2);
  EXPECT_EQ(b.metric_reaching("tlsfront_early_data_rejected_total{reason=\"replayed\"}", 1), 1);

  // The accepted connection's bytes, replayed verbatim on new TCP connections to A and B.
  const std::string flight = first.sent_bytes();
  replay(a.port(), flight);
  replay(b.port(), flight);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(backend_->requests(), before + 2) << "a replayed flight reached the backend";
  EXPECT_EQ(a.metric_reaching("tlsfront_early_data_rejected_total{reason=\"replayed\"}", 1), 1);
  EXPECT_EQ(b.metric_reaching("tlsfront_early_data_rejected_total{reason=\"replayed\"}", 2), 2);
  EXPECT_EQ(a.metric("tlsfront_early_data_accepted_total") +
                b.metric("tlsfront_early_data_accepted_total"),
            1);
}

TEST_F(EarlyDataTest, WithoutASessionCacheTheFleetStillClaimsInRedis) {
  redis_server r;
  const std::string no_cache = "[session_cache]\nenabled = false\n";
  proxy_instance a(fleet_config(r) + no_cache, make_temp_dir());
  proxy_instance b(fleet_config(r) + no_cache, make_temp_dir());
  wait_shared(a, b);
  auto s = ticket_session(a.port(), "a.example", TLS1_3_VERSION);
  tls_client first(a.port(), early(s.get(), get_headers));
  ASSERT_TRUE(first.connected()) << first.error();
  EXPECT_TRUE(first.early_accepted());
  tls_client again(b.port(), early(s.get(), get_headers));
  ASSERT_TRUE(again.connected()) << again.error();
  EXPECT_TRUE(again.resumed());
  EXPECT_FALSE(again.early_accepted()) << "B accepted early data A had accepted";
  EXPECT_EQ(b.metric_reaching("tlsfront_early_data_rejected_total{reason=\"replayed\"}", 1), 1);
}

TEST_F(EarlyDataTest, WithRedisDownNoEarlyDataIsAcceptedAndResumptionGoesOn) {
  redis_server r;
  proxy_instance a(fleet_config(r), make_temp_dir());
  for (int i = 0; i < 200 && a.metric("tlsfront_fleet_ticket_keys_shared") != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  auto s1 = ticket_session(a.port(), "a.example", TLS1_3_VERSION);
  auto s2 = ticket_session(a.port(), "a.example", TLS1_3_VERSION);
  tls_client up(a.port(), early(s1.get(), get_headers));  // Redis up: accepted
  ASSERT_TRUE(up.connected()) << up.error();
  EXPECT_TRUE(up.early_accepted());
  EXPECT_EQ(response_status(up.read_response()), 200);

  r.kill();
  const long before = backend_->requests();
  tls_client down(a.port(), early(s2.get(), get_headers));
  ASSERT_TRUE(down.connected()) << down.error();
  EXPECT_TRUE(down.resumed());
  EXPECT_FALSE(down.early_accepted());
  const std::string resp = down.read_response();
  EXPECT_EQ(response_status(resp), 200);
  EXPECT_EQ(echoed_header(response_body(resp), "Early-Data"), "");
  EXPECT_EQ(backend_reaching(before + 1), before + 1);
  EXPECT_GE(a.metric_reaching("tlsfront_early_data_rejected_total{reason=\"unavailable\"}", 1), 1);
}

}  // namespace
}  // namespace tlsfront::test
