// The fleet secret file and the sealer: what opens, and how every kind of bad value is refused.
#include "cluster/fleet_secret.h"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <sys/stat.h>

#include <string>

#include "support/test_env.h"

namespace tlsfront::cluster {
namespace {

using test::make_temp_dir;
using test::write_file;
using r = sealer::open_result;

const std::string kSecret = "0123456789abcdef0123456789abcdef-fleet-A";

TEST(FleetSecret, LoadsAFileAndDropsTheTrailingNewline) {
  std::string dir = make_temp_dir(), secret, error, warning;
  write_file(dir + "/s", kSecret + "\n");
  ::chmod((dir + "/s").c_str(), 0600);
  ASSERT_TRUE(load_fleet_secret(dir + "/s", secret, error, warning)) << error;
  EXPECT_EQ(secret, kSecret);
  EXPECT_EQ(warning, "");
}

TEST(FleetSecret, RefusesMissingShortAndHugeFilesAndWarnsWhenOthersCanRead) {
  std::string dir = make_temp_dir(), secret, error, warning;
  EXPECT_FALSE(load_fleet_secret(dir + "/missing", secret, error, warning));
  EXPECT_NE(error.find(dir + "/missing: cannot read the fleet secret"), std::string::npos) << error;
  write_file(dir + "/short", "too short\n");
  EXPECT_FALSE(load_fleet_secret(dir + "/short", secret, error, warning));
  EXPECT_NE(error.find("is 9 bytes; at least 32"), std::string::npos) << error;
  write_file(dir + "/empty", "");
  EXPECT_FALSE(load_fleet_secret(dir + "/empty", secret, error, warning));
  write_file(dir + "/huge", std::string(5000, 'x'));
  EXPECT_FALSE(load_fleet_secret(dir + "/huge", secret, error, warning));
  EXPECT_NE(error.find("larger than 4096"), std::string::npos) << error;
  EXPECT_EQ(secret, "");  // nothing taken from refused files
  write_file(dir + "/open", kSecret);
  ::chmod((dir + "/open").c_str(), 0644);
  ASSERT_TRUE(load_fleet_secret(dir + "/open", secret, error, warning));
  EXPECT_NE(warning.find("readable by group or others"), std::string::npos);
}

TEST(Sealer, SealedValuesOpenWithTheSameSecretPurposeAndAssociatedData) {
  sealer a(kSecret, "tlsfront session v1"), a2(kSecret, "tlsfront session v1");
  const std::string session("\x30\x82\x01\x00session bytes\0\x01", 20);
  std::string sealed = a.seal(session, "session-id-1");
  ASSERT_EQ(sealed.size(), session.size() + sealer::kOverhead);
  EXPECT_EQ(sealed.find("session bytes"), std::string::npos);  // not in the clear
  EXPECT_NE(a.seal(session, "session-id-1"), sealed);          // a fresh nonce each time
  std::string out;
  EXPECT_EQ(a2.open(sealed, "session-id-1", out), r::ok);  // another instance, same secret
  EXPECT_EQ(out, session);
  EXPECT_EQ(a.open(a.seal("", "ad"), "ad", out), r::ok);
  EXPECT_EQ(out, "");
}

TEST(Sealer, EveryBadValueIsRefusedByKind) {
  sealer a(kSecret, "tlsfront session v1");
  sealer other_fleet(kSecret + "-but-another-fleet", "tlsfront session v1");
  sealer other_purpose(kSecret, "tlsfront ticket keys v1");
  std::string sealed = a.seal("the session", "id-1"), out = "untouched";
  EXPECT_EQ(a.open(sealed, "id-2", out), r::corrupt);  // moved to another session ID
  EXPECT_EQ(out, "");
  for (std::size_t i = 5; i < sealed.size(); ++i) {  // any flipped bit after the header
    std::string t = sealed;
    t[i] = static_cast<char>(t[i] ^ 0x20);
    EXPECT_EQ(a.open(t, "id-1", out), r::corrupt) << "byte " << i;
  }
  for (std::size_t len : {std::size_t{0}, std::size_t{1}, sealer::kOverhead - 1}) {
    EXPECT_EQ(a.open(sealed.substr(0, len), "id-1", out), r::malformed) << len;
  }
  EXPECT_EQ(a.open(sealed.substr(0, sealed.size() - 1), "id-1", out), r::corrupt);  // truncated
  std::string v2 = sealed;
  v2[0] = 0x02;
  EXPECT_EQ(a.open(v2, "id-1", out), r::malformed);
  EXPECT_EQ(a.open("garbage that is long enough to look sealed", "id-1", out), r::malformed);
  EXPECT_EQ(other_fleet.open(sealed, "id-1", out), r::foreign);
  EXPECT_EQ(other_purpose.open(sealed, "id-1", out), r::foreign);
  EXPECT_EQ(ERR_peek_error(), 0u);  // refusals leave nothing on BoringSSL's error queue
}

}  // namespace
}  // namespace tlsfront::cluster
