// OCSP stapling with real responders: `openssl ocsp` (good and revoked answers, from an index
// the test rewrites), tests/integration/ocsp_responder.py on python3-cryptography (expired,
// still to come, another certificate's, a rogue or broken signature, garbage, HTTP errors, a
// cut answer), a closed port; `openssl s_client -status` sees what is stapled. Also: the
// responder named in the certificate (AIA), ocsp_file, refresh, the staple kept across a
// reload, and must-staple certificates refusing to start without a good response.
#include <gtest/gtest.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "integration/harness.h"
#include "support/redis_server.h"  // free_port()
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

std::string shell_quote(const std::string& s) {
  return "'" + s + "'";
}

// The serial of a certificate file in `openssl ca` index form (upper-case hex).
std::string serial_of(const std::string& crt) {
  command_result r = run_command("openssl x509 -noout -serial -in " + shell_quote(crt));
  std::string s = r.out.substr(r.out.find('=') + 1);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) {
    s.pop_back();
  }
  return s;
}

// An `openssl ocsp` responder for certificates issued by int.crt, signing with the delegated
// responder certificate; each answer is valid `minutes`.
class openssl_responder {
 public:
  // `index`: the CA database it starts with (it reads a changed one at its next request).
  openssl_responder(const std::string& dir, const std::string& index, int port = free_port(),
                    int minutes = 60)
      : dir_(dir), port_(port) {
    index_ = dir_ + "/index.txt";
    set_index(index);
    const std::string c = certs_dir();
    proc_ = std::make_unique<process>(
        std::vector<std::string>{"/usr/bin/openssl", "ocsp", "-index", index_, "-port",
                                 std::to_string(port_), "-rsigner", c + "/ocsp-responder.crt",
                                 "-rkey", c + "/ocsp-responder.key", "-CA", c + "/int.crt", "-nmin",
                                 std::to_string(minutes), "-ignore_err"},
        dir_ + "/openssl-ocsp.log");
    // Not probed by connecting: a connection closed without a request wedges `openssl ocsp`.
    file_containing(dir_ + "/openssl-ocsp.log", "waiting for OCSP client connections");
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/"; }
  // `lines`: the CA database (V or R lines).
  // `openssl ocsp` re-reads its index when the file's mtime (in seconds) moves on, so each
  // version gets an mtime of its own, a second past the last.
  void set_index(const std::string& lines) {
    write_file(index_ + ".tmp", lines);
    const timeval times[2] = {{std::time(nullptr) + version_, 0},
                              {std::time(nullptr) + version_, 0}};
    ++version_;
    ::utimes((index_ + ".tmp").c_str(), times);
    std::rename((index_ + ".tmp").c_str(), index_.c_str());
  }
  static std::string valid(const std::string& crt) {
    return "V\t351231000000Z\t\t" + serial_of(crt) + "\tunknown\t/CN=x\n";
  }
  static std::string revoked(const std::string& crt) {
    return "R\t351231000000Z\t261101000000Z\t" + serial_of(crt) + "\tunknown\t/CN=x\n";
  }

 private:
  std::string dir_, index_;
  int port_;
  int version_ = 0;
  std::unique_ptr<process> proc_;
};

// tests/integration/ocsp_responder.py answering about `leaf`.
class crafted_responder {
 public:
  crafted_responder(const std::string& dir, const std::string& leaf) {
    const std::string port_file = dir + "/crafted.port";
    proc_ = std::make_unique<process>(
        std::vector<std::string>{"/usr/bin/python3",
                                 source_dir() + "/tests/integration/ocsp_responder.py", certs_dir(),
                                 leaf, port_file},
        dir + "/crafted.log");
    port_ = std::stoi(wait_for_file(port_file, std::chrono::seconds(10)));
  }
  std::string url(const std::string& mode) const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/" + mode;
  }

 private:
  int port_ = 0;
  std::unique_ptr<process> proc_;
};

// One listener serving `cert` (from the test PKI) with `cert_keys` in its entry.
std::string ocsp_config(const std::string& backend, const std::string& cert,
                        const std::string& cert_keys, const std::string& ocsp_section = "") {
  return "[server]\nthreads = 2\n[admin]\nlisten = \"127.0.0.1:0\"\n"
         "[log]\nlevel = \"info\"\nerror_log = \"stderr\"\naccess_log = \"{dir}/access.log\"\n" +
         ocsp_section +
         "\n[[listener]]\nname = \"https\"\nlisten = \"127.0.0.1:0\"\n"
         "  [[listener.certificate]]\n  cert = \"{certs}/" +
         cert + ".crt\"\n  key = \"{certs}/" + cert + ".key\"\n" + cert_keys +
         "\n[[pool]]\nname = \"echo\"\nservers = [\"" + backend +
         "\"]\n[[route]]\npool = \"echo\"\n";
}

// What `openssl s_client -status` saw of the staple: "good", "revoked", "none", or the output.
std::string staple_seen(int port, const std::string& sni, const std::string& version) {
  command_result r =
      run_command("echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                  " -servername " + sni + " -status " + version + " 2>&1");
  if (r.out.find("OCSP response: no response sent") != std::string::npos) {
    return "none";
  }
  if (r.out.find("OCSP Response Status: successful") != std::string::npos) {
    if (r.out.find("Cert Status: good") != std::string::npos) {
      return "good";
    }
    if (r.out.find("Cert Status: revoked") != std::string::npos) {
      return "revoked";
    }
  }
  return r.out;
}

std::string fetches(const std::string& name, const std::string& result) {
  return "tlsfront_ocsp_fetches_total{name=\"" + name + "\",result=\"" + result + "\"}";
}

class OcspTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    backend_ = std::make_unique<echo_backend>(dir_);
  }
  std::string dir_;
  std::unique_ptr<echo_backend> backend_;
};

TEST_F(OcspTest, StaplesTheGoodResponseOfTheResponderNamedInTheCertificate) {
  const int port = free_port();
  const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
  // A leaf whose AIA names this responder, issued by the test intermediate now.
  const std::string c = certs_dir();
  const std::string leaf = dir_ + "/aia";
  write_file(leaf + ".ext",
             "basicConstraints = critical, CA:FALSE\n"
             "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:aia.example\n"
             "authorityInfoAccess = OCSP;URI:" +
                 url + "\n");
  ASSERT_EQ(
      run_command(
          "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out " + leaf +
          ".key && openssl req -new -batch -key " + leaf + ".key -subj /CN=aia.example -out " +
          leaf + ".csr && openssl x509 -req -in " + leaf + ".csr -CA " + c + "/int.crt -CAkey " +
          c + "/int.key -days 30 " + "-set_serial 0x7a11 -extfile " + leaf + ".ext -out " + leaf +
          ".leaf.crt 2>&1 && cat " + leaf + ".leaf.crt " + c + "/int.crt > " + leaf + ".crt")
          .status,
      0);
  openssl_responder responder(dir_, openssl_responder::valid(leaf + ".crt"), port);
  std::string config = ocsp_config(backend_->address(), "ocsp", "");
  config.replace(config.find("{certs}/ocsp.crt"), 16, leaf + ".crt");
  config.replace(config.find("{certs}/ocsp.key"), 16, leaf + ".key");
  proxy_instance p(config);
  EXPECT_GE(p.metric_reaching(fetches("aia", "good"), 1), 1);
  EXPECT_EQ(staple_seen(p.port(), "aia.example", "-tls1_2"), "good");
  EXPECT_EQ(staple_seen(p.port(), "aia.example", "-tls1_3"), "good");
  const std::string listing = p.admin_get("/certificates");
  EXPECT_NE(listing.find("\"ocsp\":{\"state\":\"good\",\"must_staple\":false,\"source\":\"" +
                         responder.url() + "\",\"last_result\":\"good\""),
            std::string::npos)
      << listing;
  EXPECT_GT(p.metric("tlsfront_ocsp_staple_expiry_seconds{name=\"aia\"}"), 50 * 60);

  // A reload keeps the certificate's response: nothing is fetched again, it is still stapled.
  const double before = p.metric(fetches("aia", "good"));
  EXPECT_NE(p.admin_request("POST", "/reload").find("200"), std::string::npos);
  EXPECT_EQ(staple_seen(p.port(), "aia.example", "-tls1_3"), "good");
  EXPECT_EQ(p.metric(fetches("aia", "good")), before);
}

TEST_F(OcspTest, ARevocationSeenAtARefreshTakesTheStapleDown) {
  const std::string crt = certs_dir() + "/ocsp.crt";
  openssl_responder responder(dir_, openssl_responder::valid(crt));
  proxy_instance p(ocsp_config(backend_->address(), "ocsp",
                               "  ocsp_responder = \"" + responder.url() + "\"\n",
                               "[ocsp]\nrefresh_interval = \"1s\"\nretry_interval = \"1s\"\n"));
  EXPECT_GE(p.metric_reaching(fetches("ocsp", "good"), 1), 1);
  EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_2"), "good");
  // Refreshed every second while good.
  EXPECT_GE(p.metric_reaching(fetches("ocsp", "good"), 3), 3);
  responder.set_index(openssl_responder::revoked(crt));
  EXPECT_GE(p.metric_reaching(fetches("ocsp", "revoked"), 1), 1);
  EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_2"), "none");
  EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_3"), "none");
  EXPECT_NE(p.log_containing("the staple was taken down").find("revoked"), std::string::npos);
  // Good again: stapled again.
  const double good_before = p.metric(fetches("ocsp", "good"));
  responder.set_index(openssl_responder::valid(crt));
  EXPECT_GE(p.metric_reaching(fetches("ocsp", "good"), good_before + 1), good_before + 1);
  EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_3"), "good");
}

TEST_F(OcspTest, AnUnreachableResponderStaplesNothingAndHandshakesGoOn) {
  const std::string url = "http://127.0.0.1:" + std::to_string(free_port()) + "/";
  proxy_instance p(
      ocsp_config(backend_->address(), "ocsp", "  ocsp_responder = \"" + url + "\"\n"));
  EXPECT_GE(p.metric_reaching(fetches("ocsp", "unreachable"), 1), 1);
  EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_2"), "none");
  const std::string listing = p.admin_get("/certificates");
  EXPECT_NE(listing.find("\"state\":\"none\""), std::string::npos) << listing;
  EXPECT_NE(listing.find("\"last_result\":\"unreachable\""), std::string::npos) << listing;
  EXPECT_NE(p.log().find("not stapled: unreachable: connect to 127.0.0.1"), std::string::npos);
}

TEST_F(OcspTest, NoBadAnswerIsEverStapled) {
  crafted_responder responder(dir_, "ocsp");
  struct bad {
    std::string mode, result;
  };
  const bad cases[] = {{"revoked", "revoked"},
                       {"unknown", "unknown"},
                       {"expired", "expired"},
                       {"future", "not_yet_valid"},
                       {"wrong_serial", "wrong_certificate"},
                       {"rogue", "bad_signature"},
                       {"bad_signature", "bad_signature"},
                       {"foreign_delegate", "bad_signature"},
                       {"stale_unknown", "expired"},
                       {"trylater", "unsuccessful"},
                       {"garbage", "malformed"},
                       {"status500", "http_error"},
                       {"truncated", "http_error"}};
  for (const bad& b : cases) {
    SCOPED_TRACE(b.mode);
    proxy_instance p(ocsp_config(backend_->address(), "ocsp",
                                 "  ocsp_responder = \"" + responder.url(b.mode) + "\"\n"));
    EXPECT_GE(p.metric_reaching(fetches("ocsp", b.result), 1), 1);
    EXPECT_LT(p.metric(fetches("ocsp", "good")), 0) << "no good fetch series";
    EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_3"), "none");
    EXPECT_NE(p.log().find("not stapled: " + b.result), std::string::npos) << p.log();
    // Served all the same.
    tls_client::options o;
    o.sni = "ocsp.example";
    tls_client c(p.port(), o);
    EXPECT_TRUE(c.connected()) << c.error();
  }
  // The control: the same responder's good answer (and one without nextUpdate) is stapled.
  for (const std::string mode : {"good", "no_next_update"}) {
    proxy_instance p(ocsp_config(backend_->address(), "ocsp",
                                 "  ocsp_responder = \"" + responder.url(mode) + "\"\n"));
    EXPECT_GE(p.metric_reaching(fetches("ocsp", "good"), 1), 1) << mode;
    EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_3"), "good") << mode;
  }
}

// A response already past half its validity (one a cache kept) is fetched again at half of
// what is left, not every retry_interval.
TEST_F(OcspTest, AnAgedResponseIsNotFetchedAgainAtEveryRetry) {
  crafted_responder responder(dir_, "ocsp");
  proxy_instance p(ocsp_config(backend_->address(), "ocsp",
                               "  ocsp_responder = \"" + responder.url("aged") + "\"\n",
                               "[ocsp]\nretry_interval = \"1s\"\n"));
  EXPECT_GE(p.metric_reaching(fetches("ocsp", "good"), 1), 1);
  EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_3"), "good");
  std::this_thread::sleep_for(std::chrono::milliseconds(3000));
  EXPECT_EQ(p.metric(fetches("ocsp", "good")), 1);
  const std::string listing = p.admin_get("/certificates");
  EXPECT_NE(listing.find("\"state\":\"good\""), std::string::npos) << listing;
}

TEST_F(OcspTest, AResponseFileIsStapledAndABadOneIsNot) {
  const std::string c = certs_dir();
  openssl_responder responder(dir_, openssl_responder::valid(c + "/ocsp.crt"));
  const std::string file = dir_ + "/ocsp.der";
  ASSERT_EQ(run_command("openssl ocsp -issuer " + c + "/int.crt -cert " + c + "/ocsp.crt -url " +
                        responder.url() + " -CAfile " + c + "/ca.crt -no_nonce -respout " + file +
                        " 2>&1")
                .status,
            0);
  proxy_instance p(ocsp_config(backend_->address(), "ocsp", "  ocsp_file = \"" + file + "\"\n",
                               "[ocsp]\nrefresh_interval = \"1s\"\nretry_interval = \"1s\"\n"));
  EXPECT_GE(p.metric_reaching(fetches("ocsp", "good"), 1), 1);
  EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_2"), "good");
  // The file is re-read: garbage in it is counted and keeps the current staple (still good).
  write_file(file, "garbage");
  EXPECT_GE(p.metric_reaching(fetches("ocsp", "malformed"), 1), 1);
  EXPECT_EQ(staple_seen(p.port(), "ocsp.example", "-tls1_2"), "good");
  std::remove(file.c_str());
  EXPECT_GE(p.metric_reaching(fetches("ocsp", "file_error"), 1), 1);
}

TEST_F(OcspTest, AMustStapleCertificateRefusesToStartWithoutAGoodResponse) {
  crafted_responder responder(dir_, "must-staple");
  auto run_with = [&](const std::string& mode) {
    std::string config = ocsp_config(backend_->address(), "must-staple",
                                     "  ocsp_responder = \"" + responder.url(mode) + "\"\n",
                                     "[ocsp]\ntimeout = \"2s\"\n");
    for (std::size_t at; (at = config.find("{certs}")) != std::string::npos;) {
      config.replace(at, 7, certs_dir());
    }
    for (std::size_t at; (at = config.find("{dir}")) != std::string::npos;) {
      config.replace(at, 5, dir_);
    }
    write_file(dir_ + "/must.toml", config);
    return run_command("timeout 20 " + std::string(TLSFRONT_BINARY) + " -c " + dir_ +
                       "/must.toml 2>&1");
  };
  for (const std::string mode : {"revoked", "expired", "garbage", "status500"}) {
    command_result r = run_with(mode);
    EXPECT_NE(r.status, 0) << mode;
    EXPECT_NE(r.status, 124) << mode << ": it started";
    EXPECT_NE(r.out.find("is must-staple (TLS Feature status_request) and has no good OCSP "
                         "response from " +
                         responder.url(mode)),
              std::string::npos)
        << r.out;
  }
  // With a good response it starts and staples.
  proxy_instance p(ocsp_config(backend_->address(), "must-staple",
                               "  ocsp_responder = \"" + responder.url("good") + "\"\n"));
  EXPECT_EQ(staple_seen(p.port(), "must.example", "-tls1_3"), "good");
  EXPECT_NE(p.admin_get("/certificates").find("\"must_staple\":true"), std::string::npos);
  // A reload that would serve it without one is refused, and it keeps being served.
  p.write_config(ocsp_config(backend_->address(), "must-staple",
                             "  ocsp_responder = \"" + responder.url("revoked") + "\"\n",
                             "[ocsp]\nretry_interval = \"1s\"\n"));
  const std::string reloaded = p.admin_request("POST", "/reload");
  EXPECT_NE(reloaded.find("must-staple"), std::string::npos) << reloaded;
  EXPECT_EQ(staple_seen(p.port(), "must.example", "-tls1_3"), "good");
  // The refused reload's certificate entry is not left behind fetching (every second, as the
  // refused [ocsp] would have had it).
  const double refused = p.metric(fetches("must-staple", "revoked"));
  EXPECT_GE(refused, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(p.metric(fetches("must-staple", "revoked")), refused);
  const std::string listing = p.admin_get("/certificates");
  EXPECT_NE(listing.find("\"source\":\"" + responder.url("good") + "\""), std::string::npos)
      << listing;
}

}  // namespace
}  // namespace tlsfront::test
