// Session handles and their revocation on one instance (issue 14), with real clients (a BoringSSL
// client, openssl s_client, curl over HTTP/1.1 and HTTP/2) and the echo backend, whose /logout
// answers with "TLS-Logout: 1" and "TLS-Session: from-backend".
// For each resumption path (TLS 1.2 session ID, TLS 1.2 ticket, TLS 1.3 ticket/PSK): the handle
// the backend sees is stable across resumptions and differs between clients; a backend logout
// (or DELETE /sessions/handle/<h>) refuses every later resumption of that session, including
// tickets issued after it was made, while another client's session still resumes; the
// session-handle fields never pass from client to backend or from backend to client.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/hex.h"
#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

bool is_handle(const std::string& v) {
  return v.size() == 16 && v.find_first_not_of("0123456789abcdef") == std::string::npos;
}

struct mode {
  const char* name;
  const char* kind;  // tlsfront_resumptions_refused_total's kind label
  tls_client::options (*opts)(SSL_SESSION* s);
};

const std::vector<mode>& modes() {
  static const std::vector<mode> m = {
      {"TLS 1.2 session ID", "id",
       [](SSL_SESSION* s) { return tls_client::session_id_only("a.example", s); }},
      {"TLS 1.2 ticket", "ticket12",
       [](SSL_SESSION* s) { return client("a.example", TLS1_2_VERSION, s); }},
      {"TLS 1.3 ticket", "psk13",
       [](SSL_SESSION* s) { return client("a.example", TLS1_3_VERSION, s); }},
  };
  return m;
}

using visit = session_visit;

visit connect_and_get(int port, const tls_client::options& o, const std::string& path) {
  return visit_with(port, o, path);
}

class RevocationTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  void start(const std::string& extra = "", bool send_handle = true) {
    backend_ = std::make_unique<echo_backend>(dir_);
    std::string cfg = default_config(backend_->address());
    if (send_handle) {
      cfg += "send_session_handle = true\n";  // the catch-all route ends the default config
    }
    proxy_ = std::make_unique<proxy_instance>(cfg + extra, dir_);
  }
  int port() const { return proxy_->port(); }
  std::string dir_;
  std::unique_ptr<echo_backend> backend_;
  std::unique_ptr<proxy_instance> proxy_;
};

TEST_F(RevocationTest, TheHandleIsStableAcrossResumptionsAndDiffersBetweenSessions) {
  start();
  for (const mode& m : modes()) {
    SCOPED_TRACE(m.name);
    visit first = connect_and_get(port(), m.opts(nullptr), "/headers");
    ASSERT_TRUE(is_handle(first.handle)) << first.response;
    EXPECT_FALSE(first.resumed);
    visit again = connect_and_get(port(), m.opts(first.session.get()), "/headers");
    EXPECT_TRUE(again.resumed);
    EXPECT_EQ(again.handle, first.handle) << "a resumption inherits the handle";
    // And the session issued on the resumed connection (renewed ticket, new TLS 1.3 tickets).
    visit third = connect_and_get(port(), m.opts(again.session.get()), "/headers");
    EXPECT_TRUE(third.resumed);
    EXPECT_EQ(third.handle, first.handle);
    visit other = connect_and_get(port(), m.opts(nullptr), "/headers");
    ASSERT_TRUE(is_handle(other.handle));
    EXPECT_NE(other.handle, first.handle) << "each full handshake mints its own";
  }
}

TEST_F(RevocationTest, ABackendLogoutRefusesEveryResumptionOfThatSessionOnly) {
  start();
  for (const mode& m : modes()) {
    SCOPED_TRACE(m.name);
    visit made = connect_and_get(port(), m.opts(nullptr), "/headers");
    visit resumed = connect_and_get(port(), m.opts(made.session.get()), "/headers");
    ASSERT_TRUE(resumed.resumed);
    visit bystander = connect_and_get(port(), m.opts(nullptr), "/headers");
    // The logout goes over a resumed connection: it revokes the session it resumed.
    visit logout = connect_and_get(port(), m.opts(resumed.session.get()), "/logout");
    ASSERT_TRUE(logout.resumed);
    EXPECT_EQ(response_status(logout.response), 200) << logout.response;
    EXPECT_EQ(response_body(logout.response), "logged out\n");
    EXPECT_EQ(response_header(logout.response, "TLS-Logout"), "") << logout.response;
    EXPECT_EQ(response_header(logout.response, "TLS-Session"), "") << logout.response;
    // Every session of that chain: the first, the one renewed on the resumption, the one issued
    // on the logout connection itself.
    for (SSL_SESSION* s : {made.session.get(), resumed.session.get(), logout.session.get()}) {
      visit refused = connect_and_get(port(), m.opts(s), "/headers");
      EXPECT_FALSE(refused.resumed);
      EXPECT_EQ(response_status(refused.response), 200) << "a refusal is a full handshake";
      EXPECT_TRUE(is_handle(refused.handle));
      EXPECT_NE(refused.handle, made.handle) << "and a new session with a new handle";
    }
    visit still = connect_and_get(port(), m.opts(bystander.session.get()), "/headers");
    EXPECT_TRUE(still.resumed) << "another client's session is not touched";
    EXPECT_EQ(still.handle, bystander.handle);
    // A refused session-ID entry is removed from the cache, so the later offers of that one ID
    // are plain misses; each ticket is refused by its handle.
    EXPECT_GE(proxy_->metric(std::string("tlsfront_resumptions_refused_total{kind=\"") + m.kind +
                             "\",reason=\"revoked\"}"),
              std::string(m.kind) == "id" ? 1 : 3);
  }
  EXPECT_EQ(proxy_->metric("tlsfront_revocations_total{source=\"backend\"}"), 3);
}

TEST_F(RevocationTest, OpensslSessionsAreRefusedAfterALogout) {
  start();
  const std::string get = "GET /headers HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  const std::string logout = "GET /logout HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  for (std::string flags : {"-tls1_2 -no_ticket", "-tls1_2", "-tls1_3"}) {
    SCOPED_TRACE(flags);
    const std::string sess = dir_ + "/sess";
    const std::string base = "openssl s_client -connect 127.0.0.1:" + std::to_string(port()) +
                             " -servername a.example -ign_eof " + flags + " ";
    command_result made = run_command(base + "-sess_out " + sess + " 2>&1", get);
    ASSERT_TRUE(has(made.out, "New, TLSv1.")) << made.out;
    command_result out = run_command(base + "-sess_in " + sess + " 2>&1", logout);
    ASSERT_TRUE(has(out.out, "Reused, TLSv1.")) << out.out;
    EXPECT_TRUE(has(out.out, "logged out")) << out.out;
    EXPECT_FALSE(has(out.out, "TLS-Logout")) << out.out;
    command_result after = run_command(base + "-sess_in " + sess + " 2>&1", get);
    EXPECT_TRUE(has(after.out, "New, TLSv1.")) << after.out;
    EXPECT_TRUE(has(after.out, "200 OK")) << after.out;
  }
}

TEST_F(RevocationTest, AdminRevokesAHandleTheApplicationStored) {
  start();
  for (const mode& m : modes()) {
    SCOPED_TRACE(m.name);
    visit made = connect_and_get(port(), m.opts(nullptr), "/headers");
    ASSERT_TRUE(is_handle(made.handle));
    std::string r = proxy_->admin_request("DELETE", "/sessions/handle/" + made.handle);
    EXPECT_EQ(response_status(r), 200) << r;
    EXPECT_TRUE(has(r, "\"handle\":\"" + made.handle + "\"")) << r;
    EXPECT_FALSE(has(r, "already_refused")) << r;
    EXPECT_FALSE(connect_and_get(port(), m.opts(made.session.get()), "/headers").resumed);
    r = proxy_->admin_request("DELETE", "/sessions/handle/" + made.handle);
    EXPECT_EQ(response_status(r), 200) << r;
    EXPECT_TRUE(has(r, "\"already_refused\":true")) << r;
  }
  EXPECT_EQ(proxy_->metric("tlsfront_revocations_total{source=\"admin\"}"), 3);
  for (std::string bad : {"xyz", "0000000000000000", "00000000000000001", "0123456789abcdeg"}) {
    std::string r = proxy_->admin_request("DELETE", "/sessions/handle/" + bad);
    EXPECT_EQ(response_status(r), 400) << bad << r;
  }
  EXPECT_EQ(proxy_->metric("tlsfront_revocations_total{source=\"admin\"}"), 3);
}

TEST_F(RevocationTest, ClientSentSessionFieldsNeverReachTheBackendNorRevoke) {
  for (bool send : {false, true}) {
    SCOPED_TRACE(send ? "route sends the handle" : "route does not send the handle");
    start("", send);
    tls_client c(port(), client("a.example", TLS1_3_VERSION));
    ASSERT_TRUE(c.connected()) << c.error();
    c.send(
        "GET /headers HTTP/1.1\r\nHost: a\r\nTLS-Session: 0123456789abcdef\r\n"
        "tls-logout: 1\r\n\r\n");
    std::string body = response_body(c.read_response());
    EXPECT_FALSE(has(body, "0123456789abcdef")) << body;
    EXPECT_FALSE(has(body, "ogout")) << body;
    EXPECT_EQ(is_handle(echoed_header(body, "TLS-Session")), send) << body;
    auto s = c.session();
    EXPECT_TRUE(resumes(port(), "a.example", TLS1_3_VERSION, s.get()))
        << "a client cannot log itself out through the request";
    // HTTP/2 (curl), including a request trailer.
    command_result r = run_command(
        "curl -sk --http2 -H 'TLS-Session: 0123456789abcdef' -H 'TLS-Logout: 1' "
        "https://127.0.0.1:" +
        std::to_string(port()) + "/headers");
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_FALSE(has(r.out, "0123456789abcdef")) << r.out;
    EXPECT_FALSE(has(r.out, "ogout")) << r.out;
    EXPECT_EQ(is_handle(echoed_header(r.out, "TLS-Session")), send) << r.out;
    EXPECT_EQ(proxy_->metric("tlsfront_revocations_total{source=\"backend\"}"), 0);
    proxy_.reset();
    backend_.reset();
  }
}

TEST_F(RevocationTest, BackendSentSessionFieldsNeverReachTheClientOverHttp2) {
  start();
  command_result r =
      run_command("curl -sk --http2 -D - https://127.0.0.1:" + std::to_string(port()) + "/logout");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_TRUE(has(r.out, "HTTP/2 200")) << r.out;
  EXPECT_TRUE(has(r.out, "logged out")) << r.out;
  EXPECT_FALSE(has(r.out, "tls-logout")) << r.out;
  EXPECT_FALSE(has(r.out, "tls-session")) << r.out;
  EXPECT_FALSE(has(r.out, "from-backend")) << r.out;
  EXPECT_EQ(proxy_->metric_reaching("tlsfront_revocations_total{source=\"backend\"}", 1), 1);
}

TEST_F(RevocationTest, RenamedFieldsAreTheOnlyOnesTlsfrontActsOn) {
  start("[http]\nsession_header = \"X-App-Session\"\nlogout_header = \"X-App-Logout\"\n");
  // The backend's TLS-Logout is now an ordinary field: it reaches the client, revokes nothing.
  visit made = connect_and_get(port(), client("a.example", TLS1_3_VERSION), "/logout");
  EXPECT_EQ(response_header(made.response, "TLS-Logout"), "1") << made.response;
  EXPECT_TRUE(resumes(port(), "a.example", TLS1_3_VERSION, made.session.get()));
  tls_client c(port(), client("a.example", TLS1_3_VERSION));
  ASSERT_TRUE(c.connected());
  c.send("GET /headers HTTP/1.1\r\nHost: a\r\nX-App-Session: forged\r\n\r\n");
  std::string body = response_body(c.read_response());
  EXPECT_FALSE(has(body, "forged")) << body;
  EXPECT_TRUE(is_handle(echoed_header(body, "X-App-Session"))) << body;
  EXPECT_EQ(echoed_header(body, "TLS-Session"), "");
  EXPECT_EQ(proxy_->metric("tlsfront_revocations_total{source=\"backend\"}"), 0);
}

TEST_F(RevocationTest, APurgeWithoutAFleetRefusesEverythingOldAndReplacesTheKeys) {
  start();
  std::vector<visit> old;
  for (const mode& m : modes()) {
    old.push_back(connect_and_get(port(), m.opts(nullptr), "/headers"));
  }
  const std::string key_before = current_key_name(*proxy_);
  std::string r = proxy_->admin_request("POST", "/sessions/purge");
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_TRUE(has(r, "\"ticket_keys\":\"replaced\"")) << r;
  EXPECT_TRUE(has(r, "\"fleet\":\"off\"")) << r;
  EXPECT_NE(current_key_name(*proxy_), key_before);
  EXPECT_FALSE(has(proxy_->admin_get("/tickets"), key_before)) << "the old keys are gone";
  for (std::size_t i = 0; i < modes().size(); ++i) {
    SCOPED_TRACE(modes()[i].name);
    visit refused = connect_and_get(port(), modes()[i].opts(old[i].session.get()), "/headers");
    EXPECT_FALSE(refused.resumed) << "a session made before the purge resumed";
    visit again = connect_and_get(port(), modes()[i].opts(refused.session.get()), "/headers");
    EXPECT_TRUE(again.resumed) << "sessions made after the purge resume";
  }
  EXPECT_EQ(proxy_->metric("tlsfront_revocations_total{source=\"purge\"}"), 1);
}

TEST_F(RevocationTest, RevokingASessionIdRevokesItsHandleToo) {
  start();
  const mode& id = modes()[0];
  visit made = connect_and_get(port(), id.opts(nullptr), "/headers");
  ASSERT_TRUE(is_handle(made.handle));
  unsigned len = 0;
  const uint8_t* raw = SSL_SESSION_get_id(made.session.get(), &len);
  const std::string hex = core::to_hex(std::string_view(reinterpret_cast<const char*>(raw), len));
  std::string r = proxy_->admin_request("DELETE", "/sessions/" + hex);
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_TRUE(has(r, "\"removed_local\":1,\"fleet\":\"off\"")) << r;
  EXPECT_TRUE(has(r, "\"handle\":\"" + made.handle + "\"")) << r;
  // The handle is refused now: so are the tickets a client of that session would hold.
  r = proxy_->admin_request("DELETE", "/sessions/handle/" + made.handle);
  EXPECT_TRUE(has(r, "\"already_refused\":true")) << r;
  EXPECT_FALSE(connect_and_get(port(), id.opts(made.session.get()), "/headers").resumed);
  // Gone: 404, and it says how tickets are revoked.
  r = proxy_->admin_request("DELETE", "/sessions/" + hex);
  EXPECT_EQ(response_status(r), 404) << r;
  EXPECT_TRUE(has(r, "revoked by handle")) << r;
}

}  // namespace
}  // namespace tlsfront::test
