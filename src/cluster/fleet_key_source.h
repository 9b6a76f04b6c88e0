// cluster/fleet_key_source.h — ticket keys from the fleet's key list in Redis (source =
// "redis"): the ring starts with two keys of its own (it serves before the list arrives, and
// they seed the list if the fleet has none), then holds what cluster::ticket_key_sync installs.
// While the list is readable nothing is scheduled here; while it is not (the sync set the
// ring's fallback) keys are scheduled as a memory source does, counted as local keys.
// A rotation on request goes through the fleet list when it is shared (asynchronous: the next
// poll proposes the key), through the ring only in fallback, else it is refused.
//
// Thread-safety and ownership: as tls/key_source.h; attach() once, before the workers run;
// the sync (on worker 0) must outlive this source's last rotate_now().
#pragma once

#include "cluster/ticket_key_sync.h"
#include "tls/key_source.h"

namespace tlsfront::cluster {

class fleet_key_source final : public tls::key_source {
 public:
  explicit fleet_key_source(tls::ticket_key_ring& ring) : ring_(ring) {}

  // The sync that installs the fleet's list in the ring (rotations are requested from it).
  void attach(ticket_key_sync& sync) { sync_ = &sync; }

  const char* name() const noexcept override { return "redis"; }
  bool start(std::string& error) override;
  void maintain() override;
  bool rotate_now(std::string& error, bool& fleet) override;
  std::string purge(bool heard, std::uint64_t keys_version) override;
  bool reload(std::string& error) override;

 private:
  tls::ticket_key_ring& ring_;
  ticket_key_sync* sync_ = nullptr;
};

}  // namespace tlsfront::cluster
