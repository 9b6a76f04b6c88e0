#include "tls/session_id_cache.h"

#include <openssl/err.h>
#include <openssl/mem.h>

#include <array>
#include <cstring>
#include <string_view>

#include "tls/stream.h"

namespace tlsfront::tls {
namespace {

struct attachment {
  cache::session_cache* cache;
  const core::clock* clock;
};

int ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr,
      [](void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*index*/, long /*argl*/,
         void* /*argp*/) { delete static_cast<attachment*>(ptr); });
  return index;
}

attachment* attachment_of(SSL_CTX* ctx) {
  return static_cast<attachment*>(SSL_CTX_get_ex_data(ctx, ex_index()));
}

std::uint64_t context_id_of(const uint8_t* sid_ctx, size_t len) {
  std::uint64_t id = 0;
  std::memcpy(&id, sid_ctx, std::min<size_t>(len, sizeof id));
  return id;
}

int on_new_session(SSL* ssl, SSL_SESSION* session) {
  attachment* a = attachment_of(SSL_get_SSL_CTX(ssl));
  unsigned id_len = 0;
  const uint8_t* id = SSL_SESSION_get_id(session, &id_len);
  if (a == nullptr || id_len == 0) {
    return 0;  // a ticket-only session (no ID): nothing to cache
  }
  uint8_t* bytes = nullptr;
  size_t len = 0;
  if (SSL_SESSION_to_bytes(session, &bytes, &len) != 1) {
    ERR_clear_error();
    return 0;
  }
  std::int64_t expires = a->clock->now_s() + SSL_SESSION_get_timeout(session);
  a->cache->insert(session_context_id(ssl),
                   std::string_view(reinterpret_cast<const char*>(id), id_len),
                   std::string_view(reinterpret_cast<const char*>(bytes), len), expires);
  OPENSSL_free(bytes);
  return 0;  // we did not keep a reference to `session`
}

SSL_SESSION* on_get_session(SSL* ssl, const uint8_t* id, int id_len, int* out_copy) {
  *out_copy = 0;  // we return a new reference
  attachment* a = attachment_of(SSL_get_SSL_CTX(ssl));
  if (a == nullptr || id_len <= 0) {
    return nullptr;
  }
  thread_local std::array<std::uint8_t, cache::session_cache::max_slot_bytes> buf;
  std::size_t n = a->cache->lookup(session_context_id(ssl),
                                   std::string_view(reinterpret_cast<const char*>(id),
                                                    static_cast<size_t>(id_len)),
                                   buf.data(), buf.size());
  if (n == 0) {
    return nullptr;
  }
  SSL_SESSION* session = SSL_SESSION_from_bytes(buf.data(), n, SSL_get_SSL_CTX(ssl));
  if (session == nullptr) {
    ERR_clear_error();  // undecodable: a miss (full handshake)
    return nullptr;
  }
  if (handshake_info* info = info_of(ssl)) {
    info->cache_hit = true;
  }
  return session;
}

void on_remove_session(SSL_CTX* ctx, SSL_SESSION* session) {
  attachment* a = attachment_of(ctx);
  unsigned id_len = 0;
  const uint8_t* id = SSL_SESSION_get_id(session, &id_len);
  unsigned sid_len = 0;
  const uint8_t* sid = SSL_SESSION_get0_id_context(session, &sid_len);
  if (a != nullptr && id_len > 0 && sid != nullptr) {
    a->cache->remove(context_id_of(sid, sid_len),
                     std::string_view(reinterpret_cast<const char*>(id), id_len));
  }
}

}  // namespace

std::uint64_t session_context_id(const SSL* ssl) {
  size_t len = 0;
  const uint8_t* sid = SSL_get0_session_id_context(ssl, &len);
  return sid != nullptr ? context_id_of(sid, len) : 0;
}

void attach_session_id_cache(SSL_CTX* ctx, cache::session_cache& cache, const core::clock& clock,
                             std::chrono::seconds timeout) {
  SSL_CTX_set_ex_data(ctx, ex_index(), new attachment{&cache, &clock});
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_set_timeout(ctx, static_cast<uint32_t>(timeout.count()));
  SSL_CTX_sess_set_new_cb(ctx, &on_new_session);
  SSL_CTX_sess_set_get_cb(ctx, &on_get_session);
  SSL_CTX_sess_set_remove_cb(ctx, &on_remove_session);
}

}  // namespace tlsfront::tls
