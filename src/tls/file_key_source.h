// tls/file_key_source.h — ticket keys from the operator's key files (source = "file"), in file
// order: the first key of the first file encrypts, every other key only decrypts. The files are
// read at start and again on reload (SIGHUP, POST /reload, POST /tickets/reload); nothing is
// scheduled or dropped here (the operator manages the files), and tlsfront never writes them.
// Key material: tls/ticket_key_ring.h (KEY MATERIAL); the bytes read are wiped after parsing.
//
// Thread-safety and ownership: as tls/key_source.h.
// Failure: an unreadable file, a size that is neither 48 bytes nor a multiple of 80, or no
// file at all: start()/reload() return false with `error` naming the file; the running keys
// stay.
#pragma once

#include "tls/key_source.h"

namespace tlsfront::tls {

class file_key_source final : public key_source {
 public:
  explicit file_key_source(ticket_key_ring& ring) : ring_(ring) {}

  const char* name() const noexcept override { return "file"; }
  bool start(std::string& error) override { return reload(error); }
  void maintain() override {}
  bool rotate_now(std::string& error, bool& fleet) override;
  std::string purge(bool heard, std::uint64_t keys_version) override;
  bool reload(std::string& error) override;
  bool reloads_with_config() const noexcept override { return true; }

 private:
  bool load_files(std::vector<std::shared_ptr<const ticket_key>>& out, std::string& error) const;

  ticket_key_ring& ring_;
};

}  // namespace tlsfront::tls
