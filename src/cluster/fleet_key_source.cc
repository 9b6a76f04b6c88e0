#include "cluster/fleet_key_source.h"

#include "tls/memory_key_source.h"

namespace tlsfront::cluster {

bool fleet_key_source::start(std::string&) {
  ring_.seed();
  return true;
}

void fleet_key_source::maintain() {
  // Nothing is scheduled while the fleet's list arrives; in fallback as a memory source does
  // (install() demotes those keys to `local` once the list is back).
  ring_.schedule(ring_.fallback(), true);
}

bool fleet_key_source::rotate_now(std::string& error, bool& fleet) {
  fleet = sync_ != nullptr && sync_->shared();
  if (fleet) {
    sync_->request_rotation();
    return true;
  }
  if (!ring_.fallback()) {
    error = "ticket keys come from the fleet list: rotate them through the fleet";
    return false;
  }
  ring_.add_next_key();
  return true;
}

bool fleet_key_source::reload(std::string& error) {
  error = tls::memory_key_source::no_files_error();
  return false;
}

std::string fleet_key_source::purge(bool heard, std::uint64_t keys_version) {
  if (sync_ == nullptr) {
    ring_.seed();
    return "replaced";
  }
  if (heard) {
    if (keys_version != 0) {
      sync_->purge_install(keys_version);
    }
    return "fleet list";
  }
  sync_->request_purge();
  return "replaced here; written as the fleet's list";
}

}  // namespace tlsfront::cluster
