// Client certificates (mutual TLS) with real clients: the BoringSSL test client and curl
// (OpenSSL) offering the certificates of scripts/gen-test-certs. Refusals by reason (alert,
// counter, access-log line); the verified identity at the echo backend and forged copies
// dropped; identity kept on resumption by session ID, TLS 1.2 and TLS 1.3 ticket and through
// the fleet store; sessions never resuming across a change of client-auth settings.
#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <signal.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/hex.h"
#include "integration/harness.h"
#include "support/redis_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

// Listener keys put before the certificates of the default config.
std::string mtls_config(const std::string& backend, const std::string& listener_keys,
                        const std::string& extra = "") {
  std::string c = default_config(backend);
  c.replace(c.find("handshake_timeout = \"1s\"\n"), 0, listener_keys);
  return c + extra;
}

const std::string required_keys =
    "client_auth = \"required\"\nclient_ca = \"{certs}/client-ca.pem\"\n"
    "client_crl = \"{certs}/client-crl.pem\"\n";

tls_client::options with_cert(tls_client::options o, const std::string& name) {
  if (!name.empty()) {
    o.cert_file = certs_dir() + "/" + name + ".crt";
    o.key_file = certs_dir() + "/" + name + ".key";
  }
  return o;
}

// The first certificate of a PEM file.
bssl::UniquePtr<X509> read_cert(const std::string& name) {
  FILE* f = std::fopen((certs_dir() + "/" + name + ".crt").c_str(), "r");
  EXPECT_NE(f, nullptr) << name;
  bssl::UniquePtr<X509> x(f != nullptr ? PEM_read_X509(f, nullptr, nullptr, nullptr) : nullptr);
  if (f != nullptr) {
    std::fclose(f);
  }
  return x;
}

std::string sha256_hex(X509* x) {
  uint8_t d[SHA256_DIGEST_LENGTH];
  unsigned len = 0;
  X509_digest(x, EVP_sha256(), d, &len);
  return core::to_hex(std::string_view(reinterpret_cast<const char*>(d), len));
}

std::string subject_of(X509* x) {
  bssl::UniquePtr<BIO> bio(BIO_new(BIO_s_mem()));
  X509_NAME_print_ex(bio.get(), X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
  const uint8_t* data = nullptr;
  size_t len = 0;
  BIO_mem_contents(bio.get(), &data, &len);
  return std::string(reinterpret_cast<const char*>(data), len);
}

// The value of `key` in an x-forwarded-client-cert value: quoted values unescaped; "" if
// absent. `nth` picks among repeated keys (DNS, URI...).
std::string xfcc_field(const std::string& v, const std::string& key, int nth = 0) {
  std::size_t i = 0;
  while (i < v.size()) {
    const std::size_t eq = v.find('=', i);
    if (eq == std::string::npos) {
      return "";
    }
    const std::string k = v.substr(i, eq - i);
    std::string value;
    i = eq + 1;
    if (i < v.size() && v[i] == '"') {
      for (++i; i < v.size() && v[i] != '"'; ++i) {
        if (v[i] == '\\' && i + 1 < v.size()) {
          ++i;
        }
        value.push_back(v[i]);
      }
      ++i;  // the closing quote
    } else {
      while (i < v.size() && v[i] != ';') {
        value.push_back(v[i++]);
      }
    }
    if (i < v.size() && v[i] == ';') {
      ++i;
    }
    if (k == key && nth-- == 0) {
      return value;
    }
  }
  return "";
}

// One GET /headers; the response ("" if the connection failed), the client's error, resumed.
struct visit {
  bool connected = false;
  bool resumed = false;
  std::string response;
  std::string error;
  bssl::UniquePtr<SSL_SESSION> session;
  std::string header(const std::string& name) const {
    return echoed_header(response_body(response), name);
  }
};
visit get_headers(int port, const tls_client::options& o, const std::string& extra = "") {
  visit v;
  tls_client c(port, o);
  v.connected = c.connected();
  v.resumed = c.connected() && c.resumed();
  if (c.connected()) {
    c.send("GET /headers HTTP/1.1\r\nHost: a.example\r\n" + extra + "\r\n");
    v.response = c.read_response();
    v.session = c.session();
  }
  v.error = c.error();
  return v;
}

std::string series(const std::string& result) {
  return "tlsfront_client_certificates_total{listener=\"https\",result=\"" + result + "\"}";
}

class ClientAuthTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  // Writes `config`, reloads and waits until the reload counted (the n-th of this test).
  void reload(proxy_instance& p, const std::string& config) {
    p.write_config(config);
    p.proc().signal(SIGHUP);
    ++reloads_;
    ASSERT_GE(p.metric_reaching("tlsfront_reloads_total{result=\"ok\"}", reloads_), reloads_)
        << p.log();
  }
  std::string dir_;
  double reloads_ = 0;
};

// Every way a client certificate fails, on TLS 1.2 and TLS 1.3: the handshake is refused with
// the alert for it, counted by reason, and written to the access log with the subject.
TEST_F(ClientAuthTest, RequiredRefusesEachBadCertificateWithItsReason) {
  echo_backend b(dir_);
  proxy_instance p(mtls_config(b.address(), required_keys), dir_);
  struct bad {
    const char* cert;
    const char* result;
    const char* alert12;
    const char* alert13;
    const char* subject;
  };
  const bad cases[] = {
      {"", "no_certificate", "HANDSHAKE_FAILURE", "CERTIFICATE_REQUIRED", ""},
      {"client-stranger", "unknown_ca", "UNKNOWN_CA", "UNKNOWN_CA",
       "CN=stranger.example,O=tlsfront test"},
      {"client-other", "unknown_ca", "UNKNOWN_CA", "UNKNOWN_CA",
       "CN=other.example,O=tlsfront test"},
      {"client-expired", "expired", "CERTIFICATE_EXPIRED", "CERTIFICATE_EXPIRED",
       "CN=expired.example,O=tlsfront test"},
      {"client-revoked", "revoked", "CERTIFICATE_REVOKED", "CERTIFICATE_REVOKED",
       "CN=revoked.example,O=tlsfront test"},
      {"client-serverauth", "wrong_purpose", "UNSUPPORTED_CERTIFICATE", "UNSUPPORTED_CERTIFICATE",
       "CN=serverauth.example,O=tlsfront test"},
  };
  std::map<std::string, int> expected;
  for (const bad& c : cases) {
    for (std::uint16_t version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
      SCOPED_TRACE(std::string(c.cert) + (version == TLS1_3_VERSION ? " TLS 1.3" : " TLS 1.2"));
      const visit v = get_headers(p.port(), with_cert(client("a.example", version), c.cert));
      EXPECT_EQ(response_status(v.response), -1) << v.response;
      const char* alert = version == TLS1_3_VERSION ? c.alert13 : c.alert12;
      EXPECT_NE(v.error.find(alert), std::string::npos) << v.error;
      ++expected[c.result];
    }
    const std::string line =
        std::string("client_cert=") + c.result +
        (c.subject[0] != '\0' ? std::string(" client_subject=\"") + c.subject + "\"" : "");
    EXPECT_NE(file_containing(dir_ + "/access.log", line).find(line), std::string::npos) << line;
  }
  for (const auto& [result, n] : expected) {
    EXPECT_EQ(p.metric_reaching(series(result), n), n) << result;
  }
  EXPECT_EQ(p.metric(series("verified")), 0);
  EXPECT_GE(p.metric("tlsfront_handshake_failures_total{listener=\"https\"}"), 12);
  EXPECT_EQ(b.requests(), 0) << "a refused client reached the backend";
  EXPECT_TRUE(p.proc().running());
}

// A verified certificate reaches the backend as X-Client-Verify: SUCCESS and an
// x-forwarded-client-cert value with its hash, serial, subject, issuer, validity and SANs; a
// client's own copies of both fields never pass. On HTTP/1.1 (BoringSSL client) and HTTP/2
// (curl, OpenSSL).
TEST_F(ClientAuthTest, VerifiedIdentityReachesTheBackendAndForgedFieldsAreDropped) {
  echo_backend b(dir_);
  proxy_instance p(mtls_config(b.address(), required_keys), dir_);
  bssl::UniquePtr<X509> leaf = read_cert("client");
  ASSERT_TRUE(leaf);
  const std::string forged =
      "X-Forwarded-Client-Cert: Hash=forged;Subject=\"CN=admin\"\r\nX-Client-Verify: FORGED\r\n";
  for (std::uint16_t version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    const visit v =
        get_headers(p.port(), with_cert(client("a.example", version), "client"), forged);
    ASSERT_EQ(response_status(v.response), 200) << v.error << v.response;
    EXPECT_EQ(v.header("X-Client-Verify"), "SUCCESS");
    const std::string xfcc = v.header("X-Forwarded-Client-Cert");
    EXPECT_EQ(xfcc_field(xfcc, "Hash"), sha256_hex(leaf.get())) << xfcc;
    EXPECT_EQ(xfcc_field(xfcc, "Subject"), "CN=client.example,O=tlsfront test") << xfcc;
    EXPECT_EQ(xfcc_field(xfcc, "Issuer"),
              "CN=tlsfront test client intermediate CA,O=tlsfront test");
    EXPECT_EQ(xfcc_field(xfcc, "Serial").size() % 2, 0u) << xfcc;
    EXPECT_FALSE(xfcc_field(xfcc, "Serial").empty()) << xfcc;
    EXPECT_EQ(xfcc_field(xfcc, "NotBefore").size(), 20u) << xfcc;  // 2026-12-03T07:00:00Z
    EXPECT_EQ(xfcc_field(xfcc, "NotAfter").back(), 'Z') << xfcc;
    EXPECT_EQ(xfcc_field(xfcc, "DNS"), "client.example");
    EXPECT_EQ(xfcc_field(xfcc, "URI"), "spiffe://tlsfront.test/client");
    EXPECT_EQ(xfcc_field(xfcc, "Email"), "client@example.test");
    EXPECT_EQ(xfcc_field(xfcc, "IP"), "192.0.2.7");
    const std::string body = response_body(v.response);
    EXPECT_EQ(body.find("forged"), std::string::npos) << body;
    EXPECT_EQ(body.find("FORGED"), std::string::npos) << body;
  }
  // A subject with a quote, a semicolon and commas stays one field, unescaped to itself.
  bssl::UniquePtr<X509> odd = read_cert("client-odd");
  const visit o =
      get_headers(p.port(), with_cert(client("a.example", TLS1_3_VERSION), "client-odd"));
  ASSERT_EQ(response_status(o.response), 200) << o.error;
  const std::string odd_xfcc = o.header("X-Forwarded-Client-Cert");
  EXPECT_EQ(xfcc_field(odd_xfcc, "Subject"), subject_of(odd.get())) << odd_xfcc;
  EXPECT_EQ(xfcc_field(odd_xfcc, "DNS"), "odd.example") << odd_xfcc;
  // curl (OpenSSL) over HTTP/2.
  command_result curl = run_command(
      "curl -sS --http2 --max-time 10 --cacert " + certs_dir() + "/ca.crt --cert " + certs_dir() +
      "/client.crt --key " + certs_dir() +
      "/client.key --resolve a.example:" + std::to_string(p.port()) +
      ":127.0.0.1 -H 'X-Client-Verify: FORGED' https://a.example:" + std::to_string(p.port()) +
      "/headers -w '\\n%{http_version}' 2>&1");
  EXPECT_EQ(curl.status, 0) << curl.out;
  EXPECT_NE(curl.out.find("X-Client-Verify: SUCCESS"), std::string::npos) << curl.out;
  EXPECT_NE(curl.out.find("Hash=" + sha256_hex(leaf.get())), std::string::npos) << curl.out;
  EXPECT_EQ(curl.out.find("FORGED"), std::string::npos) << curl.out;
  EXPECT_NE(curl.out.find("\n2"), std::string::npos) << "not HTTP/2: " << curl.out;
  EXPECT_EQ(p.metric_reaching(series("verified"), 4), 4);
  const std::string line =
      "client_cert=verified client_subject=\"CN=client.example,O=tlsfront test\"";
  EXPECT_NE(file_containing(dir_ + "/access.log", line).find(line), std::string::npos);
}

// optional: a client without a certificate is served (X-Client-Verify: NONE, no certificate
// field, a client's forged one dropped); one that sends a bad certificate is still refused.
TEST_F(ClientAuthTest, OptionalServesClientsWithoutACertificate) {
  echo_backend b(dir_);
  proxy_instance p(mtls_config(b.address(),
                               "client_auth = \"optional\"\n"
                               "client_ca = \"{certs}/client-ca.pem\"\n"),
                   dir_);
  for (std::uint16_t version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    const visit none = get_headers(p.port(), client("a.example", version),
                                   "X-Forwarded-Client-Cert: Hash=forged\r\n");
    ASSERT_EQ(response_status(none.response), 200) << none.error;
    EXPECT_EQ(none.header("X-Client-Verify"), "NONE");
    EXPECT_EQ(none.header("X-Forwarded-Client-Cert"), "");
    const visit good = get_headers(p.port(), with_cert(client("a.example", version), "client"));
    ASSERT_EQ(response_status(good.response), 200) << good.error;
    EXPECT_EQ(good.header("X-Client-Verify"), "SUCCESS");
    const visit stranger =
        get_headers(p.port(), with_cert(client("a.example", version), "client-stranger"));
    EXPECT_EQ(response_status(stranger.response), -1);
    EXPECT_NE(stranger.error.find("UNKNOWN_CA"), std::string::npos) << stranger.error;
  }
  EXPECT_EQ(p.metric_reaching(series("none"), 2), 2);
  EXPECT_EQ(p.metric(series("verified")), 2);
  EXPECT_EQ(p.metric_reaching(series("unknown_ca"), 2), 2);
  EXPECT_NE(file_containing(dir_ + "/access.log", "client_cert=none").find("client_cert=none"),
            std::string::npos);
}

// Resumption keeps the identity: by session ID, TLS 1.2 ticket and TLS 1.3 ticket, the resumed
// connection (no certificate sent again) carries the same fields as the full handshake. With
// client_auth on, session-cache slots default to 2048 bytes, so the session with its chain is
// cached by ID.
TEST_F(ClientAuthTest, ResumedConnectionsCarryTheIdentityOfTheirSession) {
  echo_backend b(dir_);
  proxy_instance p(mtls_config(b.address(), required_keys), dir_);
  const std::pair<const char*, tls_client::options> kinds[] = {
      {"session ID", tls_client::session_id_only("a.example")},
      {"TLS 1.2 ticket", client("a.example", TLS1_2_VERSION)},
      {"TLS 1.3 ticket", client("a.example", TLS1_3_VERSION)},
  };
  for (const auto& [kind, base] : kinds) {
    SCOPED_TRACE(kind);
    const visit full = get_headers(p.port(), with_cert(base, "client"));
    ASSERT_EQ(response_status(full.response), 200) << full.error;
    ASSERT_FALSE(full.resumed);
    tls_client::options again = with_cert(base, "client");
    again.session = full.session.get();
    const visit resumed = get_headers(p.port(), again);
    ASSERT_EQ(response_status(resumed.response), 200) << resumed.error;
    EXPECT_TRUE(resumed.resumed);
    EXPECT_EQ(resumed.header("X-Client-Verify"), "SUCCESS");
    EXPECT_EQ(resumed.header("X-Forwarded-Client-Cert"), full.header("X-Forwarded-Client-Cert"));
    EXPECT_FALSE(resumed.header("X-Forwarded-Client-Cert").empty());
  }
  EXPECT_GE(p.metric("tlsfront_session_cache_hits_total"), 1) << "no session-ID resumption";
  EXPECT_EQ(p.metric(series("verified")), 6);
}

// A session resumes only under the client-auth settings it was made under: not after off →
// required, optional → required, a new CA bundle, a new CRL file or another verify depth. The
// same settings reloaded resume (the control), by session ID and by TLS 1.2 and 1.3 ticket.
TEST_F(ClientAuthTest, SessionsNeverResumeUnderOtherClientAuthSettings) {
  echo_backend b(dir_);
  const std::string optional =
      "client_auth = \"optional\"\nclient_ca = \"{certs}/client-ca.pem\"\n"
      "client_crl = \"{certs}/client-crl.pem\"\n";
  const std::string other_bundle =
      "client_auth = \"required\"\nclient_ca = \"{certs}/client-ca-plus-other.pem\"\n";
  const std::string no_crl = "client_auth = \"required\"\nclient_ca = \"{certs}/client-ca.pem\"\n";
  const std::string deeper = required_keys + "client_verify_depth = 3\n";
  // [settings sessions are made under, settings they are offered to, cert sent, resumes]
  struct step {
    const char* what;
    std::string from, to;
    const char* cert;
  };
  const step steps[] = {
      {"unchanged (control)", required_keys, required_keys, "client"},
      {"off -> required", "", required_keys, ""},
      {"optional without a certificate -> required", optional, required_keys, ""},
      {"optional -> required, same CA", optional, required_keys, "client"},
      {"another CA bundle", required_keys, other_bundle, "client"},
      {"the CRL file removed", required_keys, no_crl, "client"},
      {"another verify depth", required_keys, deeper, "client"},
  };
  proxy_instance p(mtls_config(b.address(), required_keys), dir_);
  for (const step& s : steps) {
    SCOPED_TRACE(s.what);
    reload(p, mtls_config(b.address(), s.from));
    std::vector<bssl::UniquePtr<SSL_SESSION>> made;
    const tls_client::options kinds[] = {tls_client::session_id_only("a.example"),
                                         client("a.example", TLS1_2_VERSION),
                                         client("a.example", TLS1_3_VERSION)};
    for (const tls_client::options& k : kinds) {
      visit v = get_headers(p.port(), with_cert(k, s.cert));
      ASSERT_EQ(response_status(v.response), 200) << v.error;
      made.push_back(std::move(v.session));
    }
    reload(p, mtls_config(b.address(), s.to));
    const bool control = s.from == s.to;
    for (std::size_t i = 0; i < made.size(); ++i) {
      SCOPED_TRACE(i == 0 ? "session ID" : i == 1 ? "TLS 1.2 ticket" : "TLS 1.3 ticket");
      // Offered with the good certificate: a full handshake verifies it instead.
      tls_client::options o = with_cert(kinds[i], "client");
      o.session = made[i].get();
      const visit v = get_headers(p.port(), o);
      ASSERT_EQ(response_status(v.response), 200) << v.error;
      EXPECT_EQ(v.resumed, control);
      EXPECT_EQ(v.header("X-Client-Verify"), "SUCCESS");
      if (s.cert[0] == '\0') {
        // Offered without one: refused, never resumed into a connection with no certificate.
        tls_client::options bare = kinds[i];
        bare.session = made[i].get();
        const visit r = get_headers(p.port(), bare);
        EXPECT_EQ(response_status(r.response), -1) << r.response;
        EXPECT_FALSE(r.resumed);
      }
    }
  }
}

// A reload whose client-certificate files are bad is refused whole: the running settings stay
// (a certificate is still required, and the CRL still applies).
TEST_F(ClientAuthTest, AReloadWithBadClientCertificateFilesChangesNothing) {
  echo_backend b(dir_);
  proxy_instance p(mtls_config(b.address(), required_keys), dir_);
  const std::string bad[] = {
      "client_auth = \"required\"\nclient_ca = \"{certs}/missing.pem\"\n",
      "client_auth = \"required\"\nclient_ca = \"{certs}/client.crt\"\n",
      "client_auth = \"required\"\nclient_ca = \"{certs}/client-ca.pem\"\n"
      "client_crl = \"{certs}/client-crl-expired.pem\"\n",
  };
  double refused = 0;
  for (const std::string& keys : bad) {
    p.write_config(mtls_config(b.address(), keys));
    p.proc().signal(SIGHUP);
    ++refused;
    ASSERT_EQ(p.metric_reaching("tlsfront_reloads_total{result=\"refused\"}", refused), refused)
        << p.log();
    const visit none = get_headers(p.port(), client("a.example", TLS1_3_VERSION));
    EXPECT_EQ(response_status(none.response), -1);
    const visit revoked =
        get_headers(p.port(), with_cert(client("a.example", TLS1_3_VERSION), "client-revoked"));
    EXPECT_NE(revoked.error.find("CERTIFICATE_REVOKED"), std::string::npos) << revoked.error;
    const visit good =
        get_headers(p.port(), with_cert(client("a.example", TLS1_3_VERSION), "client"));
    EXPECT_EQ(response_status(good.response), 200) << good.error;
  }
  EXPECT_NE(p.log().find("has expired (nextUpdate passed)"), std::string::npos) << p.log();
  EXPECT_TRUE(p.proc().running());
}

// Through the fleet store: a session made on one instance resumes on another with the same
// client-auth settings and the same identity, and never on a third with another CA bundle.
TEST_F(ClientAuthTest, FleetSessionsResumeWithTheirIdentityOnlyUnderTheSameSettings) {
  echo_backend b(dir_);
  redis_server r;
  const std::string secret = write_fleet_secret(dir_);
  const std::string cluster = "[cluster]\nredis = \"" + r.address() + "\"\nsecret_file = \"" +
                              secret +
                              "\"\npoll_interval = \"200ms\"\nconnect_timeout = \"300ms\"\n"
                              "command_timeout = \"500ms\"\n[tickets]\npublish_ahead = \"1s\"\n";
  proxy_instance a(mtls_config(b.address(), required_keys, cluster), make_temp_dir());
  proxy_instance bb(mtls_config(b.address(), required_keys, cluster), make_temp_dir());
  proxy_instance c(
      mtls_config(b.address(),
                  "client_auth = \"required\"\nclient_ca = \"{certs}/client-ca-plus-other.pem\"\n",
                  cluster),
      make_temp_dir());
  expect_shared_ticket_keys(a, bb);
  expect_shared_ticket_keys(a, c);
  const double written = a.metric("tlsfront_fleet_session_writes_total");
  const visit id =
      get_headers(a.port(), with_cert(tls_client::session_id_only("a.example"), "client"));
  ASSERT_EQ(response_status(id.response), 200) << id.error;
  EXPECT_GE(a.metric_reaching("tlsfront_fleet_session_writes_total", written + 1), written + 1);
  const visit t13 = get_headers(a.port(), with_cert(client("a.example", TLS1_3_VERSION), "client"));
  ASSERT_EQ(response_status(t13.response), 200) << t13.error;
  const std::string identity = id.header("X-Forwarded-Client-Cert");
  ASSERT_FALSE(identity.empty());
  tls_client::options by_id = with_cert(tls_client::session_id_only("a.example"), "client");
  by_id.session = id.session.get();
  tls_client::options by_ticket = with_cert(client("a.example", TLS1_3_VERSION), "client");
  by_ticket.session = t13.session.get();
  visit on_b;
  const bool resumed = eventually(
      [&] {
        on_b = get_headers(bb.port(), by_id);
        return on_b.resumed;
      },
      std::chrono::seconds(5));
  EXPECT_TRUE(resumed) << "a session ID from one instance did not resume on the other";
  EXPECT_EQ(on_b.header("X-Forwarded-Client-Cert"), identity);
  const visit ticket_b = get_headers(bb.port(), by_ticket);
  EXPECT_TRUE(ticket_b.resumed);
  EXPECT_EQ(ticket_b.header("X-Forwarded-Client-Cert"), t13.header("X-Forwarded-Client-Cert"));
  // The third instance trusts another bundle: full handshakes, each verifying the certificate.
  const visit id_c = get_headers(c.port(), by_id);
  ASSERT_EQ(response_status(id_c.response), 200) << id_c.error;
  EXPECT_FALSE(id_c.resumed);
  const visit ticket_c = get_headers(c.port(), by_ticket);
  ASSERT_EQ(response_status(ticket_c.response), 200) << ticket_c.error;
  EXPECT_FALSE(ticket_c.resumed);
  EXPECT_EQ(c.metric(series("verified")), 2);
}

}  // namespace
}  // namespace tlsfront::test
