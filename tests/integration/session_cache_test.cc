// TLS 1.2 session-ID resumption through tlsfront's lock-free session cache, with real clients:
// openssl s_client (-sess_out/-sess_in) and a BoringSSL client.
#include <gtest/gtest.h>
#include <openssl/rand.h>

#include <thread>

#include "core/hex.h"
#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

// Tickets off, so every TLS 1.2 client gets a session ID.
std::string id_config(const std::string& backend, const std::string& cache = "", int threads = 2) {
  std::string c = default_config(backend, "", "", threads);
  c.replace(c.find("handshake_timeout = \"1s\"\n"), 0, "session_tickets = false\n");
  return c + "[session_cache]\n" + cache;
}

tls_client::options tls12(const std::string& sni, SSL_SESSION* session = nullptr) {
  return tls_client::session_id_only(sni, session);
}

// A TLS 1.2 session made on a fresh connection (after one request).
bssl::UniquePtr<SSL_SESSION> new_session(int port, const std::string& sni) {
  tls_client c(port, tls12(sni));
  EXPECT_TRUE(c.connected()) << c.error();
  EXPECT_FALSE(c.resumed());
  c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(c.read_response()), 200);
  auto s = c.session();
  unsigned len = 0;
  SSL_SESSION_get_id(s.get(), &len);
  EXPECT_EQ(len, 32u) << "the server assigned no session ID";
  return s;
}

std::string session_id_hex(SSL_SESSION* s) {
  unsigned len = 0;
  const uint8_t* id = SSL_SESSION_get_id(s, &len);
  return core::to_hex(std::string_view(reinterpret_cast<const char*>(id), len));
}

class SessionCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  std::string dir_;
};

TEST_F(SessionCacheTest, OpensslClientResumesBySessionId) {
  echo_backend b(dir_);
  proxy_instance p(id_config(b.address()), dir_);
  std::string sess = dir_ + "/openssl.sess";
  std::string base = "openssl s_client -connect 127.0.0.1:" + std::to_string(p.port()) +
                     " -servername a.example -tls1_2 -no_ticket ";
  command_result first = run_command(base + "-sess_out " + sess + " 2>&1", "Q\n");
  EXPECT_NE(first.out.find("New, TLSv1.2"), std::string::npos) << first.out;
  command_result second = run_command(base + "-sess_in " + sess + " 2>&1", "Q\n");
  EXPECT_NE(second.out.find("Reused, TLSv1.2"), std::string::npos) << second.out;
  EXPECT_GE(p.metric("tlsfront_handshakes_total{listener=\"https\",version=\"TLSv1.2\","
                     "resumed=\"id\"}"),
            1);
  EXPECT_GE(p.metric("tlsfront_session_cache_hits_total"), 1);
  EXPECT_GE(p.metric("tlsfront_session_cache_entries"), 1);
}

TEST_F(SessionCacheTest, ResumesOnEveryWorkerThread) {
  echo_backend b(dir_);
  proxy_instance p(id_config(b.address(), "", 2), dir_);
  auto session = new_session(p.port(), "a.example");
  for (int i = 0; i < 40; ++i) {
    tls_client c(p.port(), tls12("a.example", session.get()));
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_TRUE(c.resumed()) << "connection " << i;
  }
  // The kernel spread the 41 connections over both workers (each has its own acceptor), and
  // every one resumed: the cache is shared between threads.
  EXPECT_GT(p.metric("tlsfront_worker_connections_total{worker=\"0\"}"), 0);
  EXPECT_GT(p.metric("tlsfront_worker_connections_total{worker=\"1\"}"), 0);
  EXPECT_EQ(p.metric("tlsfront_handshakes_total{listener=\"https\",version=\"TLSv1.2\","
                     "resumed=\"id\"}"),
            40);
}

TEST_F(SessionCacheTest, ExpiredSessionGivesFullHandshake) {
  echo_backend b(dir_);
  proxy_instance p(id_config(b.address(), "timeout = \"1s\"\n"), dir_);
  auto session = new_session(p.port(), "a.example");
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  tls_client c(p.port(), tls12("a.example", session.get()));
  ASSERT_TRUE(c.connected());
  EXPECT_FALSE(c.resumed());
}

// Issue 18: each mechanism's lifetime is its own. With tickets on, the ticket lifetime (2 s
// here, bound by a 2 s rotation) used to be every TLS 1.2 session's, so a client without
// tickets lost its session-ID session every rotation; it now lives [session_cache] timeout.
// The ticket itself still lives tickets.lifetime.
TEST_F(SessionCacheTest, SessionIdsLiveTheCacheTimeoutAndTicketsTheTicketLifetime) {
  echo_backend b(dir_);
  proxy_instance p(default_config(b.address()) +
                       "[session_cache]\ntimeout = \"1m\"\n"
                       "[tickets]\nrotation = \"2s\"\nlifetime = \"2s\"\npublish_ahead = \"1s\"\n",
                   dir_);
  auto id_session = new_session(p.port(), "a.example");
  auto ticket = ticket_session(p.port(), "a.example", TLS1_2_VERSION);
  ASSERT_TRUE(ticket);
  EXPECT_EQ(SSL_SESSION_get_ticket_lifetime_hint(ticket.get()), 2u);
  std::this_thread::sleep_for(std::chrono::milliseconds(3200));
  tls_client c(p.port(), tls12("a.example", id_session.get()));
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_TRUE(c.resumed()) << "a session-ID session lived only the ticket lifetime";
  EXPECT_FALSE(resumes(p.port(), "a.example", TLS1_2_VERSION, ticket.get()))
      << "a ticket outlived tickets.lifetime";
}

// The other way round: a cache timeout shorter than the ticket lifetime ends ID resumption at
// the timeout while tickets made at the same time still resume.
TEST_F(SessionCacheTest, AShortCacheTimeoutDoesNotShortenTickets) {
  echo_backend b(dir_);
  proxy_instance p(default_config(b.address()) +
                       "[session_cache]\ntimeout = \"1s\"\n[tickets]\nlifetime = \"1h\"\n",
                   dir_);
  auto id_session = new_session(p.port(), "a.example");
  auto ticket = ticket_session(p.port(), "a.example", TLS1_2_VERSION);
  ASSERT_TRUE(ticket);
  std::this_thread::sleep_for(std::chrono::milliseconds(2100));
  tls_client c(p.port(), tls12("a.example", id_session.get()));
  ASSERT_TRUE(c.connected()) << c.error();
  EXPECT_FALSE(c.resumed()) << "a session-ID session outlived [session_cache] timeout";
  EXPECT_TRUE(resumes(p.port(), "a.example", TLS1_2_VERSION, ticket.get()));
}

TEST_F(SessionCacheTest, SessionFromOneVhostNeverResumesOnAnother) {
  echo_backend b(dir_);
  proxy_instance p(id_config(b.address()), dir_);
  auto session = new_session(p.port(), "a.example");
  tls_client other(p.port(), tls12("b.example", session.get()));
  ASSERT_TRUE(other.connected()) << other.error();
  EXPECT_FALSE(other.resumed());
  EXPECT_EQ(other.peer_common_name(), "b.example");
  // Same for the wildcard vhost and the default certificate.
  for (std::string sni : {"x.wild.example", "unknown.example"}) {
    tls_client c(p.port(), tls12(sni, session.get()));
    ASSERT_TRUE(c.connected());
    EXPECT_FALSE(c.resumed()) << sni;
  }
  // And the session still resumes where it belongs.
  tls_client back(p.port(), tls12("a.example", session.get()));
  EXPECT_TRUE(back.resumed());
  EXPECT_EQ(back.peer_common_name(), "a.example");
}

TEST_F(SessionCacheTest, FlushAndRevokeStopResumption) {
  echo_backend b(dir_);
  proxy_instance p(id_config(b.address()), dir_);
  auto s1 = new_session(p.port(), "a.example");
  auto s2 = new_session(p.port(), "a.example");
  // Revoke s1 only.
  std::string r = p.admin_request("DELETE", "/sessions/" + session_id_hex(s1.get()));
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_NE(response_body(r).find("\"removed_local\":1"), std::string::npos) << r;
  EXPECT_FALSE(tls_client(p.port(), tls12("a.example", s1.get())).resumed());
  EXPECT_TRUE(tls_client(p.port(), tls12("a.example", s2.get())).resumed());
  // Revoking again: nothing there.
  EXPECT_EQ(response_status(p.admin_request("DELETE", "/sessions/" + session_id_hex(s1.get()))),
            404);
  // Bad ids are refused, nothing else happens.
  EXPECT_EQ(response_status(p.admin_request("DELETE", "/sessions/xyz")), 400);
  EXPECT_EQ(response_status(p.admin_request("DELETE", "/sessions/" + std::string(66, 'a'))), 400);
  EXPECT_EQ(response_status(p.admin_request("GET", "/sessions/flush")), 405);
  // Flush everything.
  std::string f = p.admin_request("POST", "/sessions/flush");
  EXPECT_EQ(response_status(f), 200) << f;
  EXPECT_FALSE(tls_client(p.port(), tls12("a.example", s2.get())).resumed());
  EXPECT_EQ(p.metric("tlsfront_session_cache_entries"), 1);  // the full handshake just above
}

TEST_F(SessionCacheTest, GarbageSessionIdsAreAPlainMiss) {
  echo_backend b(dir_);
  proxy_instance p(id_config(b.address()), dir_);
  auto real = new_session(p.port(), "a.example");
  double misses_before = p.metric("tlsfront_session_cache_misses_total");
  const std::vector<std::vector<uint8_t>> ids = {
      std::vector<uint8_t>(32, 0xff), std::vector<uint8_t>(32, 0x00), std::vector<uint8_t>(1, 7),
      std::vector<uint8_t>(17, 0x41)};
  for (const auto& id : ids) {
    // A copy of a real session whose ID the server never issued.
    auto forged = session_with_id(real.get(), id);
    ASSERT_TRUE(forged);
    tls_client c(p.port(), tls12("a.example", forged.get()));
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_FALSE(c.resumed());
    ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    EXPECT_EQ(response_status(c.read_response()), 200);
  }
  EXPECT_GE(p.metric("tlsfront_session_cache_misses_total"), misses_before + ids.size());
  EXPECT_TRUE(tls_client(p.port(), tls12("a.example", real.get())).resumed());
}

// Each session-ID lookup is one hit or one miss: N unknown IDs are N misses, N resumptions N
// hits (tlsfront_session_cache_misses_total once counted a miss twice in a fleet; the fleet
// side of this is FleetTest.EachSessionIdLookupCountsOnceInEachTier).
TEST_F(SessionCacheTest, EachLookupCountsOnceAsAHitOrAMiss) {
  echo_backend b(dir_);
  proxy_instance p(id_config(b.address()), dir_);
  auto real = new_session(p.port(), "a.example");
  const double hits = p.metric("tlsfront_session_cache_hits_total");
  const double misses = p.metric("tlsfront_session_cache_misses_total");
  ASSERT_GE(hits, 0);
  ASSERT_GE(misses, 0);
  constexpr int n = 7;
  for (int i = 0; i < n; ++i) {
    auto unknown = session_with_id(real.get());
    ASSERT_TRUE(unknown);
    tls_client c(p.port(), tls12("a.example", unknown.get()));
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_FALSE(c.resumed());
  }
  EXPECT_EQ(p.metric("tlsfront_session_cache_misses_total"), misses + n);
  EXPECT_EQ(p.metric("tlsfront_session_cache_hits_total"), hits);
  for (int i = 0; i < n; ++i) {
    tls_client c(p.port(), tls12("a.example", real.get()));
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_TRUE(c.resumed());
  }
  EXPECT_EQ(p.metric("tlsfront_session_cache_hits_total"), hits + n);
  EXPECT_EQ(p.metric("tlsfront_session_cache_misses_total"), misses + n);
  EXPECT_EQ(p.metric("tlsfront_handshakes_total{listener=\"https\",version=\"TLSv1.2\","
                     "resumed=\"id\"}"),
            n);
}

TEST_F(SessionCacheTest, DisabledCacheMeansNoSessionIdResumption) {
  echo_backend b(dir_);
  proxy_instance p(id_config(b.address(), "enabled = false\n"), dir_);
  tls_client c(p.port(), tls12("a.example"));
  ASSERT_TRUE(c.connected());
  auto s = c.session();
  EXPECT_FALSE(tls_client(p.port(), tls12("a.example", s.get())).resumed());
  EXPECT_EQ(p.metric("tlsfront_session_cache_entries"), -1);  // no cache metrics at all
}

}  // namespace
}  // namespace tlsfront::test
