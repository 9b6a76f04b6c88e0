// Session tickets under tlsfront's key ring, with real clients: openssl s_client for TLS 1.2 and
// TLS 1.3, and a BoringSSL client that can look inside (key name) and tamper with tickets.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "core/hex.h"
#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

std::string ticket_config(const std::string& backend, const std::string& tickets) {
  return default_config(backend) + "[tickets]\n" + tickets;
}

class TicketTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  std::string dir_;
};

TEST_F(TicketTest, OpensslResumesWithTls12AndTls13Tickets) {
  echo_backend b(dir_);
  proxy_instance p(ticket_config(b.address(), ""), dir_);
  const std::string request = "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  for (std::string version : {"-tls1_2", "-tls1_3"}) {
    std::string sess = dir_ + "/sess" + version;
    // -ign_eof + a request: s_client stays until the response, so TLS 1.3 tickets arrive.
    std::string base = "openssl s_client -connect 127.0.0.1:" + std::to_string(p.port()) +
                       " -servername a.example -ign_eof " + version + " ";
    command_result first = run_command(base + "-sess_out " + sess + " 2>&1", request);
    EXPECT_NE(first.out.find("New, TLSv1."), std::string::npos) << first.out;
    command_result second = run_command(base + "-sess_in " + sess + " 2>&1", request);
    EXPECT_NE(second.out.find("Reused, TLSv1."), std::string::npos) << version << second.out;
    EXPECT_NE(second.out.find("hello from tlsfront-echo-backend"), std::string::npos);
  }
  EXPECT_GE(p.metric("tlsfront_tickets_opened_total{role=\"current\"}"), 2);
  EXPECT_GE(p.metric("tlsfront_tickets_issued_total"), 3);
  EXPECT_GE(p.metric("tlsfront_handshakes_total{listener=\"https\",version=\"TLSv1.3\","
                     "resumed=\"ticket\"}"),
            1);
  EXPECT_GE(p.metric("tlsfront_handshakes_total{listener=\"https\",version=\"TLSv1.2\","
                     "resumed=\"ticket\"}"),
            1);
}

TEST_F(TicketTest, OldTicketResumesAfterRotationAndIsRenewedUnderTheNewKey) {
  echo_backend b(dir_);
  proxy_instance p(ticket_config(b.address(), "publish_ahead = \"1s\"\n"), dir_);
  for (std::uint16_t version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto old = ticket_session(p.port(), "a.example", version);
    std::string old_key = ticket_key_name(old.get());
    EXPECT_EQ(old_key, current_key_name(p));
    std::string r = p.admin_request("POST", "/tickets/rotate");
    ASSERT_EQ(response_status(r), 200) << r;
    std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // past publish_ahead
    std::string new_key = current_key_name(p);
    ASSERT_NE(new_key, old_key);
    bool resumed = false;
    auto renewed = ticket_session(p.port(), "a.example", version, old.get(), &resumed);
    EXPECT_TRUE(resumed) << "version " << version;
    EXPECT_EQ(ticket_key_name(renewed.get()), new_key) << "version " << version;
  }
  EXPECT_GE(p.metric("tlsfront_tickets_opened_total{role=\"previous\"}"), 2);
  EXPECT_EQ(p.metric("tlsfront_tickets_renewed_total{version=\"1.2\"}"), 1);
  EXPECT_EQ(p.metric("tlsfront_tickets_renewed_total{version=\"1.3\"}"), 1);
  // GET /tickets lists names, roles and windows, never secrets.
  std::string list = p.admin_get("/tickets");
  EXPECT_NE(list.find("\"role\":\"previous\""), std::string::npos) << list;
  EXPECT_NE(list.find("\"role\":\"current\""), std::string::npos) << list;
  EXPECT_EQ(list.find("hmac"), std::string::npos);
  EXPECT_EQ(list.find("aes"), std::string::npos);
}

// Renewal is counted per version: a TLS 1.2 ticket under a previous key is re-sealed, a
// TLS 1.3 session resumed under one gets new tickets under the current key; resumptions under
// the current key renew nothing. (The counter once had no version and was documented as
// TLS 1.2 only while it counted both.)
TEST_F(TicketTest, RenewalsAreCountedPerVersion) {
  echo_backend b(dir_);
  proxy_instance p(ticket_config(b.address(), "publish_ahead = \"1s\"\n"), dir_);
  const std::string renewed12 = "tlsfront_tickets_renewed_total{version=\"1.2\"}";
  const std::string renewed13 = "tlsfront_tickets_renewed_total{version=\"1.3\"}";
  const std::string old_key = current_key_name(p);
  std::vector<bssl::UniquePtr<SSL_SESSION>> t12, t13;
  for (int i = 0; i < 2; ++i) {
    t12.push_back(ticket_session(p.port(), "a.example", TLS1_2_VERSION));
  }
  for (int i = 0; i < 3; ++i) {
    t13.push_back(ticket_session(p.port(), "a.example", TLS1_3_VERSION));
  }
  bool resumed = false;
  ticket_session(p.port(), "a.example", TLS1_2_VERSION, t12[0].get(), &resumed);
  EXPECT_TRUE(resumed);
  ticket_session(p.port(), "a.example", TLS1_3_VERSION, t13[0].get(), &resumed);
  EXPECT_TRUE(resumed);
  EXPECT_EQ(p.metric(renewed12), 0) << "a ticket under the current key was counted as renewed";
  EXPECT_EQ(p.metric(renewed13), 0);

  ASSERT_EQ(response_status(p.admin_request("POST", "/tickets/rotate")), 200);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));  // past publish_ahead
  const std::string new_key = current_key_name(p);
  ASSERT_NE(new_key, old_key);
  std::vector<bssl::UniquePtr<SSL_SESSION>> renewed;
  for (auto* list : {&t12, &t13}) {
    for (auto& s : *list) {
      ASSERT_EQ(ticket_key_name(s.get()), old_key);
      const std::uint16_t version = list == &t12 ? TLS1_2_VERSION : TLS1_3_VERSION;
      renewed.push_back(ticket_session(p.port(), "a.example", version, s.get(), &resumed));
      EXPECT_TRUE(resumed) << "version " << version;
      EXPECT_EQ(ticket_key_name(renewed.back().get()), new_key) << "version " << version;
    }
  }
  EXPECT_EQ(p.metric(renewed12), 2);
  EXPECT_EQ(p.metric(renewed13), 3);
  EXPECT_EQ(p.metric("tlsfront_tickets_opened_total{role=\"previous\"}"), 5);
  // The renewed tickets are under the current key: resuming with them renews nothing more.
  for (std::size_t i = 0; i < renewed.size(); ++i) {
    EXPECT_TRUE(
        resumes(p.port(), "a.example", i < 2 ? TLS1_2_VERSION : TLS1_3_VERSION, renewed[i].get()));
  }
  ticket_session(p.port(), "a.example", TLS1_3_VERSION, renewed.back().get(), &resumed);
  EXPECT_TRUE(resumed);
  EXPECT_EQ(p.metric(renewed12), 2);
  EXPECT_EQ(p.metric(renewed13), 3);
}

TEST_F(TicketTest, AfterTheOldKeysWindowAFullHandshake) {
  echo_backend b(dir_);
  // Each key encrypts 2 s and opens for 2 s more (the ticket lifetime).
  proxy_instance p(
      ticket_config(b.address(), "rotation = \"2s\"\nlifetime = \"2s\"\npublish_ahead = \"1s\"\n"),
      dir_);
  auto s = ticket_session(p.port(), "a.example", TLS1_2_VERSION);
  // A client that ignores the ticket lifetime keeps offering it; once the key that sealed it
  // is dropped (not_before + rotation + lifetime = 4 s) the ticket is an unknown key.
  SSL_SESSION_set_timeout(s.get(), 3600);
  EXPECT_TRUE(resumes(p.port(), "a.example", TLS1_2_VERSION, s.get()));
  std::this_thread::sleep_for(std::chrono::milliseconds(5500));
  double unknown_before = p.metric("tlsfront_tickets_unknown_key_total");
  EXPECT_FALSE(resumes(p.port(), "a.example", TLS1_2_VERSION, s.get()));
  EXPECT_EQ(p.metric("tlsfront_tickets_unknown_key_total"), unknown_before + 1);
}

TEST_F(TicketTest, TamperedTruncatedAndForeignTicketsGiveFullHandshakes) {
  echo_backend b(dir_);
  proxy_instance p(ticket_config(b.address(), ""), dir_);
  for (std::uint16_t version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto good = ticket_session(p.port(), "a.example", version);
    const uint8_t* t = nullptr;
    size_t len = 0;
    SSL_SESSION_get0_ticket(good.get(), &t, &len);
    std::vector<uint8_t> ticket(t, t + len);
    struct {
      const char* name;
      std::vector<uint8_t> bytes;
    } cases[] = {
        {"flipped ciphertext byte", ticket},
        {"flipped mac byte", ticket},
        {"truncated", std::vector<uint8_t>(ticket.begin(), ticket.begin() + 20)},
        {"unknown key name", ticket},
        {"garbage", std::vector<uint8_t>(200, 0x5a)},
    };
    cases[0].bytes[40] ^= 1;
    cases[1].bytes.back() ^= 1;
    cases[3].bytes[0] ^= 0xff;
    for (auto& c : cases) {
      bssl::UniquePtr<SSL_SESSION> forged;
      // Copy the real session, then swap its ticket.
      uint8_t* der = nullptr;
      size_t der_len = 0;
      ASSERT_EQ(SSL_SESSION_to_bytes(good.get(), &der, &der_len), 1);
      bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
      forged.reset(SSL_SESSION_from_bytes(der, der_len, ctx.get()));
      OPENSSL_free(der);
      ASSERT_TRUE(forged);
      ASSERT_EQ(SSL_SESSION_set_ticket(forged.get(), c.bytes.data(), c.bytes.size()), 1);
      tls_client cl(p.port(), client("a.example", version, forged.get()));
      ASSERT_TRUE(cl.connected()) << c.name << ": " << cl.error();
      EXPECT_FALSE(cl.resumed()) << c.name << " version " << version;
      ASSERT_TRUE(cl.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
      EXPECT_EQ(response_status(cl.read_response()), 200) << c.name;
    }
    // A ticket made for a.example never resumes under another vhost.
    tls_client other(p.port(), client("b.example", version, good.get()));
    ASSERT_TRUE(other.connected());
    EXPECT_FALSE(other.resumed());
    EXPECT_EQ(other.peer_common_name(), "b.example");
    EXPECT_TRUE(resumes(p.port(), "a.example", version, good.get()));
  }
  EXPECT_GE(p.metric("tlsfront_tickets_rejected_total"), 4);
  EXPECT_GE(p.metric("tlsfront_tickets_unknown_key_total"), 2);
  // Every bad ticket was counted under one of the three.
  EXPECT_GE(p.metric("tlsfront_tickets_rejected_total") +
                p.metric("tlsfront_tickets_unknown_key_total") +
                p.metric("tlsfront_tickets_malformed_total"),
            10);
}

TEST_F(TicketTest, FileKeysReloadOnSighupAndOnAdmin) {
  echo_backend b(dir_);
  std::string key_a(80, '\0'), key_b(80, '\0');
  for (int i = 0; i < 80; ++i) {
    key_a[static_cast<size_t>(i)] = static_cast<char>(0x10 + i);
    key_b[static_cast<size_t>(i)] = static_cast<char>(0x90 + i);
  }
  write_file(dir_ + "/first.key", key_a);
  write_file(dir_ + "/second.key", key_a);
  proxy_instance p(ticket_config(b.address(), "source = \"file\"\nfiles = [\"" + dir_ +
                                                  "/first.key\", \"" + dir_ + "/second.key\"]\n"),
                   dir_);
  const std::string name_a = core::to_hex(key_a.substr(0, 16));
  const std::string name_b = core::to_hex(key_b.substr(0, 16));
  auto under_a = ticket_session(p.port(), "a.example", TLS1_2_VERSION);
  EXPECT_EQ(ticket_key_name(under_a.get()), name_a);

  // The operator rolls: B first (encrypts), A second (still opens).
  write_file(dir_ + "/first.key", key_b);
  write_file(dir_ + "/second.key", key_a);
  p.proc().signal(SIGHUP);
  for (int i = 0; i < 50 && current_key_name(p) != name_b; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_EQ(current_key_name(p), name_b);
  bool resumed = false;
  auto under_b = ticket_session(p.port(), "a.example", TLS1_2_VERSION, under_a.get(), &resumed);
  EXPECT_TRUE(resumed);
  EXPECT_EQ(ticket_key_name(under_b.get()), name_b);  // renewed under the new first key

  // A broken file is refused (admin reload says why) and the running keys stay.
  write_file(dir_ + "/second.key", std::string(33, 'x'));
  std::string r = p.admin_request("POST", "/tickets/reload");
  EXPECT_EQ(response_status(r), 409) << r;
  EXPECT_NE(r.find("33 bytes"), std::string::npos) << r;
  p.proc().signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_TRUE(resumes(p.port(), "a.example", TLS1_2_VERSION, under_a.get()));
  EXPECT_NE(p.log().find("ticket key reload refused"), std::string::npos);

  // A dropped from the files: its tickets no longer resume.
  write_file(dir_ + "/second.key", key_b);
  r = p.admin_request("POST", "/tickets/reload");
  EXPECT_EQ(response_status(r), 200) << r;
  EXPECT_FALSE(resumes(p.port(), "a.example", TLS1_2_VERSION, under_a.get()));
  EXPECT_TRUE(resumes(p.port(), "a.example", TLS1_2_VERSION, under_b.get()));
  // Secrets never leave through the admin endpoint.
  std::string list = p.admin_get("/tickets");
  EXPECT_EQ(list.find(core::to_hex(key_b.substr(16, 16))), std::string::npos);
  EXPECT_EQ(response_status(p.admin_request("POST", "/tickets/rotate")), 409);
}

}  // namespace
}  // namespace tlsfront::test
