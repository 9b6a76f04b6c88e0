#include "cluster/fleet_secret.h"

#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/hkdf.h>
#include <openssl/mem.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

namespace tlsfront::cluster {

bool load_fleet_secret(const std::string& path, std::string& secret, std::string& error,
                       std::string& warning) {
  std::error_code fs_error;
  if (std::filesystem::exists(path, fs_error) &&
      !std::filesystem::is_regular_file(path, fs_error)) {
    // A directory (an empty path names the config's own) would make the stream throw.
    error = path + ": cannot read the fleet secret: not a regular file";
    return false;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = path + ": cannot read the fleet secret: " + std::strerror(errno);
    return false;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    error = path + ": cannot read the fleet secret";
    return false;
  }
  if (!bytes.empty() && bytes.back() == '\n') {
    bytes.pop_back();
    if (!bytes.empty() && bytes.back() == '\r') {
      bytes.pop_back();
    }
  }
  if (bytes.size() < 32) {
    error = path + ": the fleet secret is " + std::to_string(bytes.size()) +
            " bytes; at least 32 are needed (e.g. `openssl rand -hex 32 > " + path + "`)";
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return false;
  }
  if (bytes.size() > 4096) {
    error = path + ": the fleet secret is larger than 4096 bytes; is this the right file?";
    OPENSSL_cleanse(bytes.data(), bytes.size());
    return false;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && (st.st_mode & (S_IRGRP | S_IROTH)) != 0) {
    warning = path + ": the fleet secret is readable by group or others (chmod 600 it)";
  }
  secret = std::move(bytes);
  return true;
}

sealer::sealer(std::string_view secret, std::string_view purpose) {
  std::array<std::uint8_t, 32 + 4> okm{};
  EVP_AEAD_CTX_zero(&ctx_);
  if (HKDF(okm.data(), okm.size(), EVP_sha256(),
           reinterpret_cast<const std::uint8_t*>(secret.data()), secret.size(),
           reinterpret_cast<const std::uint8_t*>("tlsfront fleet"), 14,
           reinterpret_cast<const std::uint8_t*>(purpose.data()), purpose.size()) == 1 &&
      EVP_AEAD_CTX_init(&ctx_, EVP_aead_aes_256_gcm(), okm.data(), 32, EVP_AEAD_DEFAULT_TAG_LENGTH,
                        nullptr) == 1) {
    ok_ = true;
    std::memcpy(&key_id_, okm.data() + 32, 4);  // derived alongside the key, reveals nothing of it
  } else {
    ERR_clear_error();
  }
  OPENSSL_cleanse(okm.data(), okm.size());
}

sealer::~sealer() {
  EVP_AEAD_CTX_cleanup(&ctx_);
}  // cleanup wipes the key schedule

std::string sealer::seal(std::string_view plaintext, std::string_view ad) const {
  if (!ok_) {
    return {};
  }
  std::string out(kOverhead + plaintext.size(), '\0');
  auto* p = reinterpret_cast<std::uint8_t*>(out.data());
  p[0] = 0x01;
  std::memcpy(p + 1, &key_id_, 4);
  std::uint8_t* nonce = p + 5;
  RAND_bytes(nonce, 12);
  std::size_t n = 0;
  if (EVP_AEAD_CTX_seal(&ctx_, p + 17, &n, out.size() - 17, nonce, 12,
                        reinterpret_cast<const std::uint8_t*>(plaintext.data()), plaintext.size(),
                        reinterpret_cast<const std::uint8_t*>(ad.data()), ad.size()) != 1) {
    ERR_clear_error();
    return {};
  }
  out.resize(17 + n);
  return out;
}

sealer::open_result sealer::open(std::string_view sealed, std::string_view ad,
                                 std::string& plaintext) const {
  if (sealed.size() < kOverhead || static_cast<std::uint8_t>(sealed[0]) != 0x01) {
    return open_result::malformed;
  }
  std::uint32_t id = 0;
  std::memcpy(&id, sealed.data() + 1, 4);
  if (!ok_ || id != key_id_) {
    return open_result::foreign;
  }
  const auto* p = reinterpret_cast<const std::uint8_t*>(sealed.data());
  plaintext.resize(sealed.size() - 17);
  std::size_t n = 0;
  if (EVP_AEAD_CTX_open(&ctx_, reinterpret_cast<std::uint8_t*>(plaintext.data()), &n,
                        plaintext.size(), p + 5, 12, p + 17, sealed.size() - 17,
                        reinterpret_cast<const std::uint8_t*>(ad.data()), ad.size()) != 1) {
    ERR_clear_error();  // an untrusted value failing to open is not an error worth keeping
    plaintext.clear();
    return open_result::corrupt;
  }
  plaintext.resize(n);
  return open_result::ok;
}

}  // namespace tlsfront::cluster
