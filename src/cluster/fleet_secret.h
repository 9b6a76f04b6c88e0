// cluster/fleet_secret.h — the secret every instance of a fleet shares (read from a file), and
// the authenticated encryption that protects what the fleet keeps in Redis: sessions and ticket
// keys are sealed with AES-256-GCM under keys derived from the secret by HKDF-SHA256, one key
// per purpose, with caller-chosen associated data (e.g. the session ID), so a value moved to
// another key, altered, truncated or sealed under another fleet's secret never opens.
//
// Sealed format: 0x01 (version) | key id (4 bytes: identifies the derived key, not secret) |
// nonce (12 random bytes) | ciphertext | tag (16 bytes).
//
// Thread-safety: a sealer is immutable after construction; seal() and open() may run on any
// number of threads at once. Ownership: the derived key is wiped when the sealer is destroyed.
#pragma once

#include <openssl/aead.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tlsfront::cluster {

// Reads the fleet secret: the file's bytes, a trailing newline dropped (so `openssl rand -hex 32 >
// file` works). False + `error` ("PATH: why") if unreadable, shorter than 32 bytes or longer
// than 4096 bytes; a file others can read is accepted but reported in `warning`.
bool load_fleet_secret(const std::string& path, std::string& secret, std::string& error,
                       std::string& warning);

class sealer {
 public:
  enum class open_result { ok, malformed, foreign, corrupt };
  static constexpr std::size_t kOverhead = 1 + 4 + 12 + 16;

  // `purpose` separates keys ("tlsfront session v1", "tlsfront ticket keys v1").
  sealer(std::string_view secret, std::string_view purpose);
  ~sealer();
  sealer(const sealer&) = delete;
  sealer& operator=(const sealer&) = delete;

  // Empty string only if BoringSSL fails (out of memory).
  std::string seal(std::string_view plaintext, std::string_view ad) const;
  // malformed: not this format (too short, wrong version); foreign: sealed under another key
  // (another secret or purpose); corrupt: right key, but altered or different associated data.
  open_result open(std::string_view sealed, std::string_view ad, std::string& plaintext) const;

  std::uint32_t key_id() const noexcept { return key_id_; }

 private:
  EVP_AEAD_CTX ctx_;
  bool ok_ = false;
  std::uint32_t key_id_ = 0;
};

}  // namespace tlsfront::cluster
