// Integration tests of the TLS policy through the real binary: the default TLS 1.2 suites
// (ECDHE + AEAD, Mozilla "intermediate", server order) seen by BoringSSL and OpenSSL clients,
// BoringSSL's fixed TLS 1.3 suites, the weak-cipher warning at load, reload and `-t`, and
// scans by testssl.sh and sslscan (Debian packages) against an ECDSA and an RSA certificate.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

const std::vector<std::string> ecdsa_order = {"ECDHE-ECDSA-AES128-GCM-SHA256",
                                              "ECDHE-ECDSA-AES256-GCM-SHA384",
                                              "ECDHE-ECDSA-CHACHA20-POLY1305"};
const std::vector<std::string> rsa_order = {
    "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) {
    out += (out.empty() ? "" : ":") + s;
  }
  return out;
}

// Two listeners on one certificate each (no SNI needed): "ecdsa" (a.example, P-256) and
// "rsa" (b.example, RSA 2048), with `extra` added to each listener.
std::string two_listener_config(const std::string& backend, const std::string& extra = "") {
  return "[server]\nthreads = 1\n[admin]\nlisten = \"127.0.0.1:0\"\n"
         "[log]\naccess_log = \"off\"\nerror_log = \"{dir}/error.log\"\n"
         "[[listener]]\nname = \"ecdsa\"\nlisten = \"127.0.0.1:0\"\n" +
         extra +
         "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n"
         "[[listener]]\nname = \"rsa\"\nlisten = \"127.0.0.1:0\"\n" +
         extra +
         "  [[listener.certificate]]\n  cert = \"{certs}/b.crt\"\n  key = \"{certs}/b.key\"\n"
         "[[pool]]\nname = \"echo\"\nservers = [\"" +
         backend + "\"]\n[[route]]\npool = \"echo\"\n";
}

// The TLS 1.2 suite the server picks from `offered` (in the client's order), "" if the
// handshake fails.
std::string negotiated(int port, const std::string& offered) {
  tls_client::options o;
  o.max_version = TLS1_2_VERSION;
  o.ciphers = offered;
  o.timeout_ms = 5000;
  tls_client c(port, o);
  if (!c.connected()) {
    return "";
  }
  EXPECT_TRUE(c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(response_status(c.read_response()), 200);
  return SSL_CIPHER_get_name(SSL_get_current_cipher(c.ssl()));
}

class TlsPolicy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(make_temp_dir());
    backend_ = new echo_backend(*dir_);
    proxy_ = new proxy_instance(two_listener_config(backend_->address()), *dir_);
  }
  static void TearDownTestSuite() {
    delete proxy_;
    delete backend_;
    delete dir_;
  }
  static std::string* dir_;
  static echo_backend* backend_;
  static proxy_instance* proxy_;
};
std::string* TlsPolicy::dir_ = nullptr;
echo_backend* TlsPolicy::backend_ = nullptr;
proxy_instance* TlsPolicy::proxy_ = nullptr;

// Offering every default suite in reverse order, the server still picks its own first for the
// certificate; taking that one away, its second; and so on until none is left. So the server
// offers exactly those suites, in that order.
TEST_F(TlsPolicy, DefaultSuitesAreExactlyTheIntermediateListInServerOrder) {
  for (const auto& [listener, order] :
       {std::pair{"ecdsa", ecdsa_order}, std::pair{"rsa", rsa_order}}) {
    std::vector<std::string> offered = {
        "ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"};
    for (const std::string& expected : order) {
      EXPECT_EQ(negotiated(proxy_->port(listener), join(offered)), expected)
          << listener << " offered " << join(offered);
      offered.erase(std::find(offered.begin(), offered.end(), expected));
    }
    EXPECT_EQ(negotiated(proxy_->port(listener), join(offered)), "")
        << listener << ": a suite for the other key type was accepted";
    // Everything BoringSSL has but the six: refused.
    EXPECT_EQ(negotiated(proxy_->port(listener),
                         "ALL:!ECDHE-ECDSA-AES128-GCM-SHA256:!ECDHE-RSA-AES128-GCM-SHA256:"
                         "!ECDHE-ECDSA-AES256-GCM-SHA384:!ECDHE-RSA-AES256-GCM-SHA384:"
                         "!ECDHE-ECDSA-CHACHA20-POLY1305:!ECDHE-RSA-CHACHA20-POLY1305"),
              "")
        << listener;
  }
}

TEST_F(TlsPolicy, ServerOrderWinsOverTheClientsOrder) {
  EXPECT_EQ(
      negotiated(proxy_->port("rsa"), "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES128-GCM-SHA256"),
      "ECDHE-RSA-AES128-GCM-SHA256");
  EXPECT_EQ(negotiated(proxy_->port("ecdsa"),
                       "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256"),
            "ECDHE-ECDSA-AES128-GCM-SHA256");
  // A client offering only one allowed suite gets it.
  EXPECT_EQ(negotiated(proxy_->port("rsa"), "ECDHE-RSA-CHACHA20-POLY1305"),
            "ECDHE-RSA-CHACHA20-POLY1305");
}

TEST_F(TlsPolicy, StaticRsaTripleDesAndCbcAreRefused) {
  for (const char* listener : {"ecdsa", "rsa"}) {
    for (const char* suites : {"AES256-SHA:DES-CBC3-SHA:AES128-SHA", "DES-CBC3-SHA",
                               "AES128-GCM-SHA256:AES256-GCM-SHA384", "ECDHE-RSA-AES128-SHA",
                               "ECDHE-ECDSA-AES256-SHA:ECDHE-RSA-AES256-SHA"}) {
      EXPECT_EQ(negotiated(proxy_->port(listener), suites), "") << listener << " " << suites;
    }
  }
  // The same with OpenSSL's client (SECLEVEL=0 so that it offers 3DES at all).
  for (const char* listener : {"ecdsa", "rsa"}) {
    command_result r = run_command(
        "openssl s_client -connect 127.0.0.1:" + std::to_string(proxy_->port(listener)) +
            " -tls1_2 -cipher 'AES256-SHA:DES-CBC3-SHA:AES128-SHA@SECLEVEL=0' 2>&1",
        "Q\n");
    EXPECT_NE(r.out.find("alert handshake failure"), std::string::npos) << listener << r.out;
    EXPECT_NE(r.out.find("Cipher is (NONE)"), std::string::npos) << listener << r.out;
  }
  command_result ok = run_command(
      "openssl s_client -connect 127.0.0.1:" + std::to_string(proxy_->port("rsa")) +
          " -tls1_2 -cipher 'ECDHE-RSA-CHACHA20-POLY1305:ECDHE-RSA-AES256-GCM-SHA384' 2>&1",
      "Q\n");
  EXPECT_NE(ok.out.find("Cipher is ECDHE-RSA-AES256-GCM-SHA384"), std::string::npos) << ok.out;
}

// TLS 1.3: BoringSSL's three suites are fixed (the `ciphers` list does not touch them) and it
// follows the client's order among them.
TEST_F(TlsPolicy, Tls13SuitesAreBoringSslsFixedThreeInTheClientsOrder) {
  const struct {
    const char* offered;
    const char* chosen;
  } cases[] = {
      {"TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256"},
      {"TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384"},
      {"TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
      {"TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256", "TLS_CHACHA20_POLY1305_SHA256"},
      {"TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"},
  };
  for (const auto& tc : cases) {
    command_result r =
        run_command("openssl s_client -connect 127.0.0.1:" + std::to_string(proxy_->port("rsa")) +
                        " -tls1_3 -ciphersuites " + tc.offered + " 2>&1",
                    "Q\n");
    EXPECT_NE(r.out.find(std::string("TLSv1.3, Cipher is ") + tc.chosen), std::string::npos)
        << tc.offered << ": " << r.out;
  }
}

std::string tlsfront_binary() {
  return TLSFRONT_BINARY;
}

// The configured cipher list enables static RSA / 3DES: a warning with file:line:column under
// -t, at start and at reload; a sound list or the default gives none.
TEST(TlsPolicyWarning, WeakCipherListWarnsAtCheckStartAndReload) {
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  const std::string weak =
      two_listener_config(b.address(), "ciphers = \"AES128-SHA:DES-CBC3-SHA\"\n");
  const std::string strong = two_listener_config(
      b.address(), "ciphers = \"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384\"\n");

  // `tlsfront -t`: valid (exit 0), with the warning naming the line of `ciphers`.
  std::string text = weak;
  for (auto [k, v] :
       {std::pair<std::string, std::string>{"{certs}", certs_dir()}, {"{dir}", dir}}) {
    for (size_t pos; (pos = text.find(k)) != std::string::npos;) {
      text.replace(pos, k.size(), v);
    }
  }
  write_file(dir + "/weak.toml", text);
  command_result t = run_command(tlsfront_binary() + " -t -c " + dir + "/weak.toml 2>&1");
  EXPECT_EQ(t.status, 0) << t.out;
  EXPECT_NE(t.out.find(dir + "/weak.toml:11:11: warning: listener 'ecdsa': the cipher list "
                             "enables weak TLS 1.2 suites: AES128-SHA (static RSA key exchange), "
                             "DES-CBC3-SHA (3DES, static RSA key exchange)"),
            std::string::npos)
      << t.out;
  EXPECT_NE(t.out.find("warning: listener 'rsa'"), std::string::npos) << t.out;

  // At start: in the error log. A client offering 3DES gets it (the warning does not refuse).
  {
    proxy_instance p(weak, dir);
    EXPECT_EQ(negotiated(p.port("rsa"), "DES-CBC3-SHA"), "DES-CBC3-SHA");
    const std::string at_start =
        "[warning] " + dir + "/tlsfront.toml:11:11: warning: listener 'ecdsa'";
    const std::string log = file_containing(dir + "/error.log", at_start);
    EXPECT_NE(log.find(at_start), std::string::npos) << log;
    // Reload onto a sound list: no new warning; back onto the weak one: warned again.
    p.write_config(strong);
    EXPECT_NE(p.admin_request("POST", "/reload").find("200"), std::string::npos);
    EXPECT_EQ(negotiated(p.port("rsa"), "DES-CBC3-SHA"), "");
    std::string after = read_file(dir + "/error.log");
    EXPECT_EQ(after.find("admin: " + dir + "/tlsfront.toml"), std::string::npos) << after;
    p.write_config(weak);
    EXPECT_NE(p.admin_request("POST", "/reload").find("200"), std::string::npos);
    const std::string on_reload =
        "admin: " + dir + "/tlsfront.toml:11:11: warning: listener 'ecdsa'";
    after = file_containing(dir + "/error.log", on_reload);
    EXPECT_NE(after.find(on_reload), std::string::npos) << after;
  }
  // The default list: no warning.
  write_file(dir + "/error.log", "");
  proxy_instance quiet(two_listener_config(b.address()), dir);
  EXPECT_EQ(read_file(dir + "/error.log").find("warning"), std::string::npos)
      << read_file(dir + "/error.log");
}

// --- scans by testssl.sh and sslscan ---------------------------------------------------------

// testssl.sh findings that are about the self-signed test certificate, not the TLS setup, and
// so are exempt (none of them is produced by the checks run below, which leave out the
// certificate checks (-S), but a testssl.sh update may add some to -U): trust (the test CA is
// not a public one), chain of trust, OCSP and OCSP stapling (no responder for a test CA),
// certificate transparency (test certificates are never logged), CAA records and DNS names
// (127.0.0.1 has none), revocation lists. Also testssl's own notices about the local OpenSSL
// build (engine, RC4 support), which are not findings about the server.
bool exempt(const std::string& id) {
  static const char* prefixes[] = {"cert_",
                                   "OCSP",
                                   "CRL",
                                   "certificate_transparency",
                                   "chain_of_trust",
                                   "trust",
                                   "DNS_CAArecord",
                                   "engine_problem",
                                   "RC4",
                                   "scanProblem"};
  for (const char* p : prefixes) {
    if (id.rfind(p, 0) == 0) {
      return true;
    }
  }
  return false;
}

struct finding {
  std::string id, severity, text;
};

// testssl.sh's flat JSON: one object per line-ish, fields "id", "severity", "finding". Parsed
// by a python3 one-liner into "id<TAB>severity<TAB>finding" lines.
std::vector<finding> read_testssl_json(const std::string& path) {
  command_result r = run_command(
      "python3 -c 'import json,sys\nfor f in json.load(open(sys.argv[1])):\n"
      "  print(f[\"id\"], f[\"severity\"], f.get(\"finding\",\"\").replace(\"\\n\",\" \"), "
      "sep=\"\\t\")' " +
      path);
  std::vector<finding> out;
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    finding f;
    std::istringstream l(line);
    std::getline(l, f.id, '\t');
    std::getline(l, f.severity, '\t');
    std::getline(l, f.text);
    out.push_back(f);
  }
  return out;
}

TEST(TlsScan, TestsslAndSslscanFindNothingAtMediumOrAboveForEcdsaAndRsa) {
  ASSERT_EQ(run_command("command -v testssl && command -v sslscan").status, 0)
      << "testssl.sh and sslscan are needed (scripts/install-deps installs them)";
  std::string dir = make_temp_dir();
  echo_backend b(dir);
  proxy_instance p(two_listener_config(b.address()), dir);
  for (const char* listener : {"ecdsa", "rsa"}) {
    const std::string target = "127.0.0.1:" + std::to_string(p.port(listener));
    const std::string json = dir + "/testssl-" + listener + ".json";
    // Protocols, standard cipher categories, server preference, forward secrecy and the
    // vulnerability checks; --fast uses the local OpenSSL for the cipher checks. A fixed
    // limit: `timeout` kills a scan that hangs (each takes 25-60 s here), so both listeners'
    // scans stay inside CTest's 300 s.
    command_result scan = run_command(
        "timeout 100 testssl --quiet --fast --warnings off --color 0 -p -s -P -f -U --jsonfile " +
        json + " " + target + " 2>&1");
    ASSERT_NE(scan.status, 124) << listener << ": testssl.sh did not finish in 100 s";
    std::vector<finding> findings = read_testssl_json(json);
    ASSERT_GT(findings.size(), 20u) << listener << ": no testssl.sh result\n" << scan.out;
    bool saw_order = false;
    for (const finding& f : findings) {
      saw_order = saw_order || f.id == "cipher_order";
      const bool serious =
          f.severity == "MEDIUM" || f.severity == "HIGH" || f.severity == "CRITICAL";
      EXPECT_FALSE(serious && !exempt(f.id))
          << listener << ": " << f.id << " " << f.severity << ": " << f.text;
    }
    EXPECT_TRUE(saw_order) << listener << ": testssl.sh did not check the cipher order";

    // sslscan: only TLS 1.2 and 1.3, every accepted suite strong or acceptable and one of the
    // policy's, no insecure renegotiation, no heartbleed.
    command_result s = run_command("timeout 30 sslscan --no-colour --xml=- " + target + " 2>&1");
    ASSERT_EQ(s.status, 0) << s.out;
    for (const char* off :
         {"type=\"ssl\" version=\"2\" enabled=\"0\"", "type=\"ssl\" version=\"3\" enabled=\"0\"",
          "type=\"tls\" version=\"1.0\" enabled=\"0\"",
          "type=\"tls\" version=\"1.1\" enabled=\"0\""}) {
      EXPECT_NE(s.out.find(off), std::string::npos) << listener << " " << off << "\n" << s.out;
    }
    EXPECT_EQ(s.out.find("vulnerable=\"1\""), std::string::npos) << s.out;
    EXPECT_EQ(s.out.find("<renegotiation supported=\"1\" secure=\"0\""), std::string::npos)
        << s.out;
    const std::vector<std::string>& allowed =
        std::string(listener) == "ecdsa" ? ecdsa_order : rsa_order;
    std::istringstream in(s.out);
    std::string line;
    int tls12 = 0;
    while (std::getline(in, line)) {
      if (line.find("<cipher ") == std::string::npos) {
        continue;
      }
      EXPECT_TRUE(line.find("strength=\"strong\"") != std::string::npos ||
                  line.find("strength=\"acceptable\"") != std::string::npos)
          << listener << ": " << line;
      if (line.find("sslversion=\"TLSv1.2\"") != std::string::npos) {
        ++tls12;
        const bool known = std::any_of(allowed.begin(), allowed.end(), [&](const std::string& c) {
          return line.find("cipher=\"" + c + "\"") != std::string::npos;
        });
        EXPECT_TRUE(known) << listener << ": " << line;
      }
    }
    EXPECT_EQ(tls12, 3) << listener << "\n" << s.out;
    // sslscan lists the server's preferred TLS 1.2 suite first: the policy's first.
    EXPECT_NE(s.out.find("status=\"preferred\" sslversion=\"TLSv1.2\" bits=\"128\" cipher=\"" +
                         allowed[0] + "\""),
              std::string::npos)
        << listener << "\n"
        << s.out;
  }
}

}  // namespace
}  // namespace tlsfront::test
