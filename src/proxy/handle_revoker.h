// proxy/handle_revoker.h — what the data plane calls to revoke a session handle (issue 14):
// a backend's logout header (exchange) or an admin call. The server implements it over the
// process's revoked-handle set (enforced at once, lock-free) and, with [cluster], the fleet.
//
// Thread-safety: revoke() may be called from any worker or the admin thread at once; it never
// blocks and never throws. Failure: none visible to the caller (fleet errors are counted).
#pragma once

#include <cstdint>

namespace tlsfront::proxy {

enum class revocation_source { backend, admin, purge };

class handle_revoker {
 public:
  virtual ~handle_revoker() = default;
  // `handle` != 0: from now on no session carrying it resumes on this instance.
  virtual void revoke(std::uint64_t handle, revocation_source source) noexcept = 0;
};

}  // namespace tlsfront::proxy
