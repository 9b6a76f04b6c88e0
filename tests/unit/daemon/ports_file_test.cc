// daemon/ports_file: the lines scripts and tests read to learn the bound ports (IPv4, IPv6 in
// brackets, the admin line), replaced whole on each write, and a write that cannot happen
// refused with the previous file left as it was.
#include "daemon/ports_file.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "support/test_env.h"

namespace tlsfront::daemon {
namespace {

namespace ip = boost::asio::ip;

TEST(PortsFile, EndpointTextBracketsIpv6) {
  EXPECT_EQ(endpoint_text({ip::make_address("127.0.0.1"), 8443}), "127.0.0.1:8443");
  EXPECT_EQ(endpoint_text({ip::make_address("::1"), 443}), "[::1]:443");
  EXPECT_EQ(endpoint_text({ip::make_address("0.0.0.0"), 0}), "0.0.0.0:0");
}

TEST(PortsFile, WritesOneLinePerEntryAndReplacesTheFileWhole) {
  const std::string dir = test::make_temp_dir();
  const std::string path = dir + "/ports";
  ASSERT_TRUE(write_ports_file(path, {{"https", {ip::make_address("127.0.0.1"), 40001}},
                                      {"v6", {ip::make_address("::1"), 40002}},
                                      {"admin", {ip::make_address("127.0.0.1"), 40003}}}));
  EXPECT_EQ(test::read_file(path),
            "https 127.0.0.1:40001\nv6 [::1]:40002\nadmin 127.0.0.1:40003\n");
  // A reload that removed listeners: the file holds only what is bound now.
  ASSERT_TRUE(write_ports_file(path, {{"https", {ip::make_address("127.0.0.1"), 40001}}}));
  EXPECT_EQ(test::read_file(path), "https 127.0.0.1:40001\n");
  struct stat st {};
  EXPECT_NE(::stat((path + ".tmp").c_str(), &st), 0) << "the temporary file must be renamed away";
  // Nothing bound (no listener, no admin): an empty file, still written.
  ASSERT_TRUE(write_ports_file(path, {}));
  EXPECT_EQ(test::read_file(path), "");
}

TEST(PortsFile, AnUnwritablePlaceIsRefusedAndTheOldFileStays) {
  const std::string dir = test::make_temp_dir();
  const std::string path = dir + "/ports";
  ASSERT_TRUE(write_ports_file(path, {{"https", {ip::make_address("127.0.0.1"), 40001}}}));
  // A directory that does not exist: nothing can be written.
  EXPECT_FALSE(write_ports_file(dir + "/missing/ports",
                                {{"https", {ip::make_address("127.0.0.1"), 40001}}}));
  // The path is a directory: the temporary file is written but cannot replace it.
  ASSERT_EQ(::mkdir((dir + "/isdir").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir((dir + "/isdir/sub").c_str(), 0755), 0);
  EXPECT_FALSE(write_ports_file(dir + "/isdir", {{"https", {ip::make_address("::1"), 1}}}));
  EXPECT_EQ(test::read_file(path), "https 127.0.0.1:40001\n");
}

}  // namespace
}  // namespace tlsfront::daemon
