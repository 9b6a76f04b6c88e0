// tls/memory_key_source.h — ticket keys generated in memory (source = "memory"): two keys at
// start (current and next), then a new key a whole rotation ahead of its use, each kept until
// every ticket it sealed has expired (tls/ticket_key_ring.h, ROLES). Keys never leave the
// process, so every instance has its own.
//
// Thread-safety and ownership: as tls/key_source.h. Never fails (reload: nothing to re-read).
#pragma once

#include "tls/key_source.h"

namespace tlsfront::tls {

class memory_key_source final : public key_source {
 public:
  explicit memory_key_source(ticket_key_ring& ring) : ring_(ring) {}

  const char* name() const noexcept override { return "memory"; }
  bool start(std::string& error) override;
  void maintain() override;
  bool rotate_now(std::string& error, bool& fleet) override;
  std::string purge(bool heard, std::uint64_t keys_version) override;
  bool reload(std::string& error) override;

  // The refusal of reload() by a source without files (memory, fleet).
  static const char* no_files_error() noexcept;

 private:
  ticket_key_ring& ring_;
};

}  // namespace tlsfront::tls
