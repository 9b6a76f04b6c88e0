#include "support/test_env.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace tlsfront::test {

std::string source_dir() {
  if (const char* env = std::getenv("TLSFRONT_SOURCE_DIR")) {
    return env;
  }
  return TLSFRONT_SOURCE_DIR;
}

std::string make_temp_dir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/tlsfront-test-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    std::abort();
  }
  return tmpl;
}

const std::string& certs_dir() {
  static const std::string dir = [] {
    std::string d = make_temp_dir();
    std::string cmd = "bash '" + source_dir() + "/scripts/gen-test-certs' '" + d + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      ADD_FAILURE() << "scripts/gen-test-certs failed: " << cmd;
      std::abort();
    }
    return d;
  }();
  return dir;
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) {
    ADD_FAILURE() << "cannot write " << path;
    std::abort();
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace tlsfront::test
