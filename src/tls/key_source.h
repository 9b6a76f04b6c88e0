// tls/key_source.h — where session-ticket keys come from: the interface that drives a
// ticket_key_ring, so no caller asks which source the configuration chose.
//   memory  keys generated here and rotated on a schedule (tls/memory_key_source.h)
//   file    the operator's key files, re-read on reload (tls/file_key_source.h)
//   redis   the fleet's key list (cluster/fleet_key_source.h, on cluster::ticket_key_sync)
//
// Thread-safety: the control plane calls a source (start before serving, maintain from worker
// 0's sweep, rotate_now and reload from the admin or main thread); the source writes the ring
// under its mutex, so calls from different threads are safe; handshakes only read the ring.
// Ownership: a source refers to its ring, which must outlive it.
#pragma once

#include <memory>
#include <string>

#include "tls/ticket_key_ring.h"

namespace tlsfront::tls {

class key_source {
 public:
  virtual ~key_source() = default;

  // The configuration's name for this source ("memory", "file", "redis"): GET /tickets.
  virtual const char* name() const noexcept = 0;
  // Puts the first keys in the ring. False + `error` when there are none (file: unreadable, a
  // size that is neither 48 bytes nor a multiple of 80, no key at all).
  virtual bool start(std::string& error) = 0;
  // Every second or so: drops keys past their window, publishes the next key when due. Cheap.
  virtual void maintain() = 0;
  // An operator's rotation (POST /tickets/rotate): a new key now, current after publish_ahead.
  // `fleet` true: requested from the fleet list (asynchronous). False + `error` when this
  // source does not rotate on request (files, a shared fleet list unreachable).
  virtual bool rotate_now(std::string& error, bool& fleet) = 0;
  // Re-reads what the keys come from. False + `error` when there is nothing to re-read, or it
  // failed (the running keys stay).
  virtual bool reload(std::string& error) = 0;
  // A purge (POST /sessions/purge, or one heard from the fleet with `keys_version`, the fleet
  // list that replaced every key, 0 if none yet): every key held is dropped and wiped and new
  // keys seal from now. Returns what was done, for the admin answer. memory: new keys; file:
  // nothing (the operator's keys: the purge's floor refuses what they sealed); fleet: new
  // keys here at once, written as the fleet's whole list (own purge), or the purged list
  // installed (heard).
  virtual std::string purge(bool heard, std::uint64_t keys_version) = 0;
  // True when a configuration reload re-reads the keys too (reload()): key files.
  virtual bool reloads_with_config() const noexcept { return false; }
};

// The source of `ring`'s options when it is a local one (memory or file); nullptr for the
// fleet's (made by cluster::fleet_key_source).
std::unique_ptr<key_source> make_local_key_source(ticket_key_ring& ring);

}  // namespace tlsfront::tls
