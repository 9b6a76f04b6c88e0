// tls/certificate.h and tls/x509_fields.h: the PEM body parser of the admin API, the chain
// check shared with the config, and the name rules, on the test PKI (scripts/gen-test-certs).
#include "tls/certificate.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/test_env.h"
#include "tls/x509_fields.h"

namespace tlsfront::tls {
namespace {

std::string file(const std::string& name) {
  return test::read_file(test::certs_dir() + "/" + name);
}

TEST(CertificatePem, AChainAndItsKeyInAnyOrderParseAndCheck) {
  loaded_certificate c;
  std::string error;
  ASSERT_TRUE(parse_certificate_pem(file("a.key") + file("a.crt"), "body", c, error)) << error;
  EXPECT_EQ(c.chain.size(), 1u);
  EXPECT_EQ(c.names, (std::vector<std::string>{"a.example", "www.a.example"}));
  EXPECT_EQ(c.sha256.size(), 64u);
  EXPECT_LT(c.not_before, c.not_after);
  EXPECT_TRUE(check_certificate_chain(c, c.not_before + 1, error)) << error;
  EXPECT_FALSE(check_certificate_chain(c, c.not_after, error));
  EXPECT_NE(error.find("expired at"), std::string::npos) << error;
  EXPECT_FALSE(check_certificate_chain(c, c.not_before - 1, error));
  EXPECT_NE(error.find("is not valid before"), std::string::npos) << error;
  // What certificate_dir keeps reads back the same.
  const std::string pem = certificate_pem(c);
  loaded_certificate back;
  ASSERT_TRUE(parse_certificate_pem(pem, "copy", back, error)) << error;
  EXPECT_EQ(back.sha256, c.sha256);
  EXPECT_EQ(back.chain.size(), 1u);
}

TEST(CertificatePem, RsaKeysInTheirTraditionalFormParse) {
  loaded_certificate c;
  std::string error;
  EXPECT_TRUE(parse_certificate_pem(file("b.crt") + file("b.key"), "body", c, error)) << error;
}

TEST(CertificateNames, CoverageFollowsOneLabelWildcards) {
  const std::vector<std::string> names = {"a.example", "*.wild.example"};
  EXPECT_TRUE(covers(names, "a.example"));
  EXPECT_TRUE(covers(names, "A.Example"));
  EXPECT_TRUE(covers(names, "x.wild.example"));
  EXPECT_TRUE(covers(names, "*.wild.example"));
  EXPECT_FALSE(covers(names, "wild.example"));
  EXPECT_FALSE(covers(names, "x.y.wild.example"));
  EXPECT_FALSE(covers(names, "b.example"));
  EXPECT_FALSE(covers(names, "*.example"));
  EXPECT_TRUE(valid_certificate_name("edge-1.example_com"));
  for (const char* bad : {"", ".hidden", "-x", "a/b", "..", "a b", "é"}) {
    EXPECT_FALSE(valid_certificate_name(bad)) << bad;
  }
  EXPECT_FALSE(valid_certificate_name(std::string(65, 'a')));
}

}  // namespace
}  // namespace tlsfront::tls
