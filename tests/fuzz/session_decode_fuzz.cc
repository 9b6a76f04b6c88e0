// Fuzz target: cached session bytes back into an SSL_SESSION, as the session-ID cache does for
// an L1 or fleet hit (tls::session_from_cache_bytes, then tls::session_expires_at). A session
// that decodes must serialize again, and decode from those bytes to the same bytes.
// Seeds: TLSFRONT_FUZZ_WRITE_SEEDS=<dir> ticket_open_fuzz -runs=0 writes real sessions (the
// ticket plaintexts are the same serialization) that tests/fuzz/corpus/session_decode_fuzz holds.
#include <openssl/mem.h>
#include <openssl/ssl.h>

#include <string>

#include "fuzz_support.h"
#include "tls/session_id_cache.h"

namespace {

using tlsfront::fuzz::check;

std::string to_bytes(const SSL_SESSION* s) {
  std::uint8_t* bytes = nullptr;
  std::size_t len = 0;
  check(SSL_SESSION_to_bytes(s, &bytes, &len) == 1, "a decoded session does not serialize");
  bssl::UniquePtr<std::uint8_t> owned(bytes);
  return std::string(reinterpret_cast<const char*>(bytes), len);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  bssl::UniquePtr<SSL_SESSION> s =
      tlsfront::tls::session_from_cache_bytes(tlsfront::fuzz::as_view(data, size), ctx);
  if (!s) {
    return 0;
  }
  (void)tlsfront::tls::session_expires_at(s.get());
  const std::string once = to_bytes(s.get());
  bssl::UniquePtr<SSL_SESSION> again = tlsfront::tls::session_from_cache_bytes(once, ctx);
  check(again != nullptr, "a re-serialized session does not decode");
  check(to_bytes(again.get()) == once, "a session's serialization is not stable");
  return 0;
}
