// tls/remote_session_store.h — the second-level (fleet) session store as the TLS layer sees it.
// src/cluster implements it on Redis; the session-ID glue (tls/session_id_cache) writes every new
// TLS 1.2 session through to it and, on an L1 miss, suspends the handshake
// (SSL_magic_pending_session_ptr) until get() answers or the lookup timeout passes.
//
// Thread-safety: one store per worker thread; every call and every callback on that thread.
// Failure is never an error to the handshake: a store that cannot answer answers "" (a miss).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace tlsfront::tls {

enum class claim_answer { first, replayed, unavailable };

class remote_session_store {
 public:
  virtual ~remote_session_store() = default;
  // Stores the session bytes under `key` for `ttl`; never blocks (a full queue drops the write).
  virtual void put(std::string_view key, std::string_view session, std::chrono::seconds ttl) = 0;
  // Calls `done` exactly once, later (never inside get), with the bytes or "" on a miss or any
  // failure. The handshake may have given up by then; `done` is safe to call regardless.
  virtual void get(std::string_view key, std::function<void(std::string)> done) = 0;
  // The handshake stopped waiting for a get() after the lookup timeout (for the store's counters).
  virtual void lookup_timed_out() = 0;
  // Records `id` once in the fleet for `ttl` (0-RTT single use, tls/early_data.h). Calls `done`
  // exactly once, later: `first` if nobody had, `replayed` if someone had, `unavailable` on any
  // failure (fail closed).
  virtual void claim_once(std::string_view id, std::chrono::milliseconds ttl,
                          std::function<void(claim_answer)> done) = 0;
};

// The L2 key of a session: the context id (8 bytes, as session_context_id gives it) then the
// session ID, so the fleet keeps the same isolation between certificates as L1.
std::string remote_session_key(std::uint64_t context_id, std::string_view session_id);

// One handshake's L2 lookup, shared by the glue (which starts it), the store's callback (which
// fills it) and the stream (which waits for it).
struct remote_lookup {
  bool done = false;
  bool timed_out = false;
  std::string bytes;           // "" = miss
  std::function<void()> wake;  // set by the waiting stream while it waits
};

// One handshake's 0-RTT claim (claim_once), shared the same way.
struct remote_claim {
  bool done = false;
  bool timed_out = false;
  claim_answer answer = claim_answer::unavailable;
  std::function<void()> wake;
};

}  // namespace tlsfront::tls
