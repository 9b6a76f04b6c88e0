// Certificates replaced without a reload (admin PUT /certificates/<name>) and listed
// (GET /certificates), with the real binary, curl as the admin client and the BoringSSL test
// client looking at what each new handshake is served: a replacement reaches new handshakes,
// survives a reload, is persisted in certificate_dir and served after a restart; every bad
// body or name is refused with its reason and changes nothing; the expiry metric.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <string>
#include <utility>
#include <vector>

#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

// A self-signed replacement for the certificate "a" (a.example, www.a.example), CN `cn`, in
// `dir`/`cn`.pem: the certificate then its key, the body PUT takes.
std::string make_replacement(const std::string& dir, const std::string& cn,
                             const std::string& sans = "DNS:a.example,DNS:www.a.example") {
  const std::string base = dir + "/" + cn;
  command_result r = run_command(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -keyout " +
      base + ".key -out " + base + ".crt -subj /CN=" + cn + " -addext subjectAltName=" + sans +
      " 2>&1 && cat " + base + ".crt " + base + ".key > " + base + ".pem");
  EXPECT_EQ(r.status, 0) << r.out;
  return base + ".pem";
}

struct put_result {
  int status = 0;
  std::string body;
};

// PUT `file`'s bytes to /certificates/`name` with curl; its status and body.
put_result put_certificate(const proxy_instance& p, const std::string& name,
                           const std::string& file) {
  const std::string out = p.dir() + "/put.out";
  command_result r = run_command(
      "curl -s --path-as-is -o " + out + " -w '%{http_code}' -X PUT --data-binary @" + file +
      " http://127.0.0.1:" + std::to_string(p.admin_port()) + "/certificates/" + name);
  put_result res;
  res.status = std::atoi(r.out.c_str());
  res.body = read_file(out);
  return res;
}

// The CN served to a new handshake with SNI `sni`.
std::string served_cn(const proxy_instance& p, const std::string& sni) {
  tls_client::options o;
  o.sni = sni;
  tls_client c(p.port(), o);
  EXPECT_TRUE(c.connected()) << c.error();
  return c.peer_common_name();
}

// The body of `pem_files` (paths) concatenated into `dir`/`name`.
std::string concat(const std::string& dir, const std::string& name,
                   const std::vector<std::string>& pem_files) {
  std::string body;
  for (const std::string& f : pem_files) {
    body += read_file(f);
  }
  const std::string path = dir + "/" + name;
  write_file(path, body);
  return path;
}

class CertificateTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = make_temp_dir(); }
  std::string dir_;
};

TEST_F(CertificateTest, APutCertificateReachesNewHandshakesIsListedAndOutlivesAReload) {
  echo_backend backend(dir_);
  proxy_instance p(default_config(backend.address()), dir_);
  EXPECT_EQ(served_cn(p, "a.example"), "a.example");
  // Sessions made under the old certificate (TLS 1.2 session ID, TLS 1.3 ticket).
  bssl::UniquePtr<SSL_SESSION> by_id;
  {
    tls_client c(p.port(), tls_client::session_id_only("a.example"));
    ASSERT_TRUE(c.connected()) << c.error();
    by_id = c.session();
  }
  bssl::UniquePtr<SSL_SESSION> ticket = ticket_session(p.port(), "a.example", TLS1_3_VERSION);

  std::string listed = p.admin_get("/certificates");
  EXPECT_NE(listed.find("\"name\":\"a\",\"source\":\"config\""), std::string::npos) << listed;
  EXPECT_NE(listed.find("\"dns_names\":[\"a.example\",\"www.a.example\"]"), std::string::npos)
      << listed;
  EXPECT_NE(listed.find("\"name\":\"default\""), std::string::npos) << listed;

  const std::string pem = make_replacement(dir_, "a-replaced");
  put_result r = put_certificate(p, "a", pem);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_NE(r.body.find("\"replaced\":true"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"persisted\":false"), std::string::npos) << r.body;
  EXPECT_EQ(served_cn(p, "a.example"), "a-replaced");
  EXPECT_EQ(served_cn(p, "www.a.example"), "a-replaced");
  EXPECT_EQ(served_cn(p, "b.example"), "b.example");  // the others as they were
  // Sessions of the old certificate do not resume under the new one (its digest is the
  // session context); the clients still connect, with a full handshake.
  {
    tls_client c(p.port(), tls_client::session_id_only("a.example", by_id.get()));
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_FALSE(c.resumed());
    EXPECT_EQ(c.peer_common_name(), "a-replaced");
  }
  {
    tls_client c(p.port(), client("a.example", TLS1_3_VERSION, ticket.get()));
    ASSERT_TRUE(c.connected()) << c.error();
    EXPECT_FALSE(c.resumed());
  }

  listed = p.admin_get("/certificates");
  EXPECT_NE(listed.find("\"name\":\"a\",\"source\":\"admin\""), std::string::npos) << listed;
  EXPECT_NE(listed.find("\"subject\":\"CN=a-replaced\""), std::string::npos) << listed;
  EXPECT_EQ(listed.find("PRIVATE"), std::string::npos) << listed;
  EXPECT_EQ(listed.find("BEGIN"), std::string::npos) << listed;
  const double left = p.metric("tlsfront_certificate_expiry_seconds{name=\"a\"}");
  EXPECT_GT(left, 29 * 86400.0);
  EXPECT_LE(left, 30 * 86400.0 + 5);
  EXPECT_GT(p.metric("tlsfront_certificate_expiry_seconds{name=\"b\"}"), 3000 * 86400.0);
  EXPECT_EQ(p.metric("tlsfront_certificate_replacements_total{result=\"ok\"}"), 1);
  EXPECT_NE(p.log().find("admin: certificate 'a' replaced"), std::string::npos) << p.log();

  // A reload re-reads the config (still naming a.crt): the replacement stays in force.
  const std::string reloaded = p.admin_request("POST", "/reload");
  EXPECT_NE(reloaded.find("\"reloaded\":true"), std::string::npos) << reloaded;
  EXPECT_EQ(served_cn(p, "a.example"), "a-replaced");
  EXPECT_NE(p.log().find("serving the one installed through the admin API"), std::string::npos)
      << p.log();
  // Replaced again: the newest is served.
  r = put_certificate(p, "a", make_replacement(dir_, "a-third"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(served_cn(p, "a.example"), "a-third");
}

TEST_F(CertificateTest, EveryBadReplacementIsRefusedWithItsReasonAndChangesNothing) {
  echo_backend backend(dir_);
  proxy_instance p(default_config(backend.address()), dir_);
  const std::string c = certs_dir();
  command_result leaf =
      run_command("openssl x509 -in " + c + "/a.crt -out " + dir_ + "/a-leaf.crt");
  ASSERT_EQ(leaf.status, 0) << leaf.out;
  command_result enc = run_command("openssl pkcs8 -topk8 -in " + c + "/a.key -out " + dir_ +
                                   "/a-enc.key -v2 aes-256-cbc -passout pass:secret 2>&1");
  ASSERT_EQ(enc.status, 0) << enc.out;
  write_file(dir_ + "/bad-der.pem",
             "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n-----END CERTIFICATE-----\n" +
                 read_file(c + "/a.key"));
  write_file(dir_ + "/empty.pem", "");
  struct bad {
    std::string name;
    std::string file;
    int status;
    std::string why;
  };
  const std::vector<bad> cases = {
      {"a", dir_ + "/empty.pem", 400, "as the request body"},
      {"a", c + "/garbage.pem", 400, "damaged PEM block in the request body"},
      {"a", concat(dir_, "cert-only", {c + "/a.crt"}), 400, "no private key"},
      {"a", concat(dir_, "key-only", {c + "/a.key"}), 400, "no certificate"},
      {"a", concat(dir_, "mismatch", {c + "/a.crt", c + "/other.key"}), 400, "does not match"},
      {"a", concat(dir_, "two-keys", {c + "/a.crt", c + "/a.key", c + "/a.key"}), 400,
       "more than one private key"},
      {"a", concat(dir_, "encrypted", {c + "/a.crt", dir_ + "/a-enc.key"}), 400, "encrypted"},
      {"a", concat(dir_, "with-crl", {c + "/a.crt", c + "/a.key", c + "/client-crl.pem"}), 400,
       "PEM block of kind"},
      {"a", dir_ + "/bad-der.pem", 400, "not valid DER"},
      {"a",
       concat(dir_, "wrong-chain", {dir_ + "/a-leaf.crt", c + "/client-root.crt", c + "/a.key"}),
       400, "was not issued by the certificate after it"},
      {"a", concat(dir_, "expired", {c + "/client-expired.crt", c + "/client-expired.key"}), 400,
       "expired at 2021-01-01T00:00:00Z"},
      {"a", concat(dir_, "other-names", {c + "/b.crt", c + "/b.key"}), 400, "does not cover"},
      {"nope", concat(dir_, "good", {c + "/a.crt", c + "/a.key"}), 404, "no certificate is named"},
      {"..", dir_ + "/good", 404, "no certificate is named"},
  };
  for (const bad& b : cases) {
    put_result r = put_certificate(p, b.name, b.file);
    EXPECT_EQ(r.status, b.status) << b.file << ": " << r.body;
    EXPECT_NE(r.body.find(b.why), std::string::npos) << b.file << ": " << r.body;
  }
  EXPECT_EQ(p.metric("tlsfront_certificate_replacements_total{result=\"refused\"}"),
            static_cast<double>(cases.size()));
  EXPECT_EQ(p.metric("tlsfront_certificate_replacements_total{result=\"ok\"}"), 0);
  EXPECT_EQ(served_cn(p, "a.example"), "a.example");
  EXPECT_EQ(served_cn(p, "b.example"), "b.example");
  const std::string listed = p.admin_get("/certificates");
  EXPECT_EQ(listed.find("\"source\":\"admin\""), std::string::npos) << listed;
  // The same chain the config serves is accepted (the chain check passes a real chain).
  put_result ok = put_certificate(p, "a", dir_ + "/good");
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(CertificateTest, WithCertificateDirAReplacementIsKeptAndServedAfterARestart) {
  echo_backend backend(dir_);
  const std::string store = dir_ + "/store";
  ASSERT_EQ(::mkdir(store.c_str(), 0700), 0);
  std::string config = default_config(backend.address());
  config.replace(config.find("[admin]\n") + 8, 0, "certificate_dir = \"" + store + "\"\n");
  const std::string pem = make_replacement(dir_, "a-kept");
  {
    proxy_instance p(config, dir_);
    put_result r = put_certificate(p, "a", pem);
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.body.find("\"persisted\":\"" + store + "/a.pem\""), std::string::npos) << r.body;
    EXPECT_EQ(served_cn(p, "a.example"), "a-kept");
  }
  struct stat st {};
  ASSERT_EQ(::stat((store + "/a.pem").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  const std::string kept = read_file(store + "/a.pem");
  EXPECT_NE(kept.find("PRIVATE KEY"), std::string::npos);
  const std::string second = dir_ + "/second";
  ASSERT_EQ(::mkdir(second.c_str(), 0700), 0);
  {
    proxy_instance p(config, second);
    EXPECT_EQ(served_cn(p, "a.example"), "a-kept");
    EXPECT_EQ(served_cn(p, "b.example"), "b.example");
    const std::string listed = p.admin_get("/certificates");
    EXPECT_NE(listed.find("\"name\":\"a\",\"source\":\"certificate_dir\""), std::string::npos)
        << listed;
  }
  // A damaged copy stops the config with its reason and the way out.
  write_file(store + "/a.pem",
             "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n");
  std::string text = config;
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{"{certs}", certs_dir()}, {"{dir}", dir_}}) {
    for (std::size_t at; (at = text.find(from)) != std::string::npos;) {
      text.replace(at, from.size(), to);
    }
  }
  write_file(dir_ + "/check.toml", text);
  command_result r =
      run_command(std::string(TLSFRONT_BINARY) + " -t -c " + dir_ + "/check.toml 2>&1");
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("certificate 'a' from certificate_dir"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("remove " + store + "/a.pem"), std::string::npos) << r.out;
}

// A reload that is refused (here: a new listener on a port already taken) forgets no
// replacement, even one whose name the refused config lacked; one that takes effect without the
// name drops it, and the config's file is served when the name comes back.
TEST_F(CertificateTest, OnlyAReloadThatTakesEffectDropsAReplacementItsConfigLacks) {
  echo_backend backend(dir_);
  const std::string config = default_config(backend.address());
  proxy_instance p(config, dir_);
  ASSERT_EQ(put_certificate(p, "a", make_replacement(dir_, "a-replaced")).status, 200);
  std::string without_a = config;
  const std::string a_entry =
      "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n";
  ASSERT_NE(without_a.find(a_entry), std::string::npos);
  without_a.erase(without_a.find(a_entry), a_entry.size());
  const std::string busy =
      "[[listener]]\nname = \"busy\"\nlisten = \"127.0.0.1:" + std::to_string(p.admin_port()) +
      "\"\n  [[listener.certificate]]\n  cert = \"{certs}/b.crt\"\n"
      "  key = \"{certs}/b.key\"\n";
  p.write_config(without_a + busy);
  std::string r = p.admin_request("POST", "/reload");
  EXPECT_NE(r.find("\"error\""), std::string::npos) << r;
  p.write_config(config);
  r = p.admin_request("POST", "/reload");
  EXPECT_NE(r.find("\"reloaded\":true"), std::string::npos) << r;
  EXPECT_EQ(served_cn(p, "a.example"), "a-replaced");

  p.write_config(without_a);
  r = p.admin_request("POST", "/reload");
  EXPECT_NE(r.find("\"reloaded\":true"), std::string::npos) << r;
  EXPECT_NE(p.log().find("certificate 'a': no longer in the config"), std::string::npos) << p.log();
  p.write_config(config);
  r = p.admin_request("POST", "/reload");
  EXPECT_NE(r.find("\"reloaded\":true"), std::string::npos) << r;
  EXPECT_EQ(served_cn(p, "a.example"), "a.example");
}

}  // namespace
}  // namespace tlsfront::test
