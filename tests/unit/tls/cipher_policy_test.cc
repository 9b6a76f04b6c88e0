// Unit tests of tls/cipher_policy.h: the default list as BoringSSL expands it, and the weak
// suites named from the expanded list (not the string).
#include "tls/cipher_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "tls/certificate.h"
#include "tls/server_context.h"
#include "support/test_env.h"

namespace tlsfront::tls {
namespace {

const std::vector<std::string> mozilla_intermediate = {
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"};

std::vector<std::string> names(const std::vector<std::string>& weak) {
  std::vector<std::string> out;
  for (const std::string& w : weak) {
    out.push_back(w.substr(0, w.find(' ')));
  }
  return out;
}

TEST(CipherPolicy, DefaultIsEcdheAeadInMozillaIntermediateOrder) {
  std::string error;
  ASSERT_TRUE(check_cipher_list(default_tls12_ciphers, error)) << error;
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  ASSERT_EQ(SSL_CTX_set_strict_cipher_list(ctx.get(), default_tls12_ciphers), 1);
  EXPECT_EQ(enabled_ciphers(ctx.get()), mozilla_intermediate);
  EXPECT_TRUE(weak_ciphers(ctx.get()).empty());
}

TEST(CipherPolicy, ServerContextUsesTheDefaultWithServerPreference) {
  for (const char* cert : {"a", "b"}) {  // ECDSA, RSA
    listener_tls_options opts;
    certificate_options co;
    co.cert_file = test::certs_dir() + "/" + cert + ".crt";
    co.key_file = test::certs_dir() + "/" + cert + ".key";
    opts.certificates.push_back(co);
    std::string error;
    auto sc = server_context::create(opts, error);
    ASSERT_TRUE(sc) << error;
    bssl::UniquePtr<SSL> ssl = sc->new_ssl();
    SSL_CTX* ctx = SSL_get_SSL_CTX(ssl.get());
    EXPECT_EQ(enabled_ciphers(ctx), mozilla_intermediate) << cert;
    EXPECT_NE(SSL_CTX_get_options(ctx) & SSL_OP_CIPHER_SERVER_PREFERENCE, 0u) << cert;
  }
}

TEST(CipherPolicy, WeakSuitesAreNamedFromTheExpandedList) {
  EXPECT_EQ(names(weak_ciphers(std::string("AES128-SHA:DES-CBC3-SHA"))),
            (std::vector<std::string>{"AES128-SHA", "DES-CBC3-SHA"}));
  // Names that do not say "RSA" or "3DES" still expand to them.
  const std::vector<std::string> all = names(weak_ciphers(std::string("ALL")));
  for (const char* s : {"AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-SHA", "AES256-SHA",
                        "DES-CBC3-SHA"}) {
    EXPECT_NE(std::find(all.begin(), all.end(), s), all.end()) << s;
  }
  EXPECT_EQ(names(weak_ciphers(std::string("kRSA"))).size(), 5u);
  EXPECT_EQ(names(weak_ciphers(std::string("3DES"))),
            (std::vector<std::string>{"DES-CBC3-SHA"}));
  // Excluded by the list itself: nothing to warn about.
  EXPECT_TRUE(weak_ciphers(std::string("ALL:!kRSA:!3DES")).empty());
  EXPECT_TRUE(weak_ciphers(std::string("ECDHE-RSA-AES128-SHA")).empty());  // CBC, but ECDHE
  EXPECT_TRUE(weak_ciphers(std::string("no-such-cipher")).empty());  // refused: not a warning
  const std::vector<std::string> both = weak_ciphers(std::string("DES-CBC3-SHA"));
  ASSERT_EQ(both.size(), 1u);
  EXPECT_EQ(both[0], "DES-CBC3-SHA (3DES, static RSA key exchange)");
}

TEST(CipherPolicy, WarningNamesEverySuite) {
  EXPECT_EQ(weak_cipher_warning({}), "");
  const std::string w = weak_cipher_warning(weak_ciphers(std::string("AES128-SHA:DES-CBC3-SHA")));
  EXPECT_NE(w.find("AES128-SHA (static RSA key exchange)"), std::string::npos) << w;
  EXPECT_NE(w.find("DES-CBC3-SHA (3DES, static RSA key exchange)"), std::string::npos) << w;
}

}  // namespace
}  // namespace tlsfront::tls
