#include "tls/file_key_source.h"

#include <openssl/mem.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace tlsfront::tls {

bool file_key_source::rotate_now(std::string& error, bool& fleet) {
  fleet = false;
  error = "ticket keys come from files: rotate them by changing the files and reloading";
  return false;
}

bool file_key_source::reload(std::string& error) {
  std::vector<std::shared_ptr<const ticket_key>> keys;
  if (!load_files(keys, error)) {
    return false;  // the running keys stay
  }
  ring_.replace(std::move(keys));
  return true;
}

bool file_key_source::load_files(std::vector<std::shared_ptr<const ticket_key>>& out,
                                 std::string& error) const {
  std::vector<ticket_key> parsed;
  for (const std::string& path : ring_.options().files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      error = "cannot read ticket key file " + path + ": " + std::strerror(errno);
      return false;
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string bytes = ss.str();
    std::string why;
    bool ok = ticket_key_ring::parse_key_file(bytes, parsed, why);
    OPENSSL_cleanse(bytes.data(), bytes.size());
    if (!ok) {
      error = path + ": " + why;
      return false;
    }
  }
  if (parsed.empty()) {
    error = "no ticket key files";
    return false;
  }
  // File order is role order: the first key encrypts (it gets the latest not_before, the load
  // time), the others only decrypt.
  const std::int64_t now = ring_.clock().now_s();
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    auto k = std::make_shared<ticket_key>(parsed[i]);
    k->not_before = i == 0 ? now : now - 1;
    k->not_after = INT64_MAX;
    out.push_back(std::move(k));
  }
  for (auto& k : parsed) {
    OPENSSL_cleanse(k.hmac_key.data(), k.hmac_key.size());
  }
  return true;
}

std::string file_key_source::purge(bool, std::uint64_t) {
  return "not replaced: the keys come from files (replace them and reload); what they sealed "
         "before the purge is refused";
}

}  // namespace tlsfront::tls
