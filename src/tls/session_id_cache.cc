#include "tls/session_id_cache.h"

#include <openssl/err.h>
#include <openssl/mem.h>

#include <array>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "tls/session_handle.h"
#include "tls/stream.h"

namespace tlsfront::tls {
namespace {

struct attachment {
  cache::session_cache* cache;
  const core::clock* clock;
  std::uint32_t timeout;  // [session_cache] timeout: how long a session-ID session lives
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

// A cache entry's session (tls/session_handle.h: the handle header) if it may resume: an entry
// without the header, an undecodable one or one whose handle the guard refuses is null.
bssl::UniquePtr<SSL_SESSION> admitted_session(SSL* ssl, handshake_info* info,
                                              std::string_view entry) {
  std::uint64_t h = 0;
  std::string_view bytes = decode_entry(entry, h);
  if (bytes.empty()) {
    return nullptr;
  }
  if (info != nullptr && info->guard != nullptr) {
    if (!info->guard->admit(h, resumption_kind::id)) {
      return nullptr;
    }
  }
  bssl::UniquePtr<SSL_SESSION> session = session_from_cache_bytes(bytes, SSL_get_SSL_CTX(ssl));
  if (session && info != nullptr && info->guard != nullptr) {
    if (!info->guard->admit_made_at(
            static_cast<std::int64_t>(SSL_SESSION_get_time(session.get())))) {
      return nullptr;
    }
    info->resumed_handle = h;
  }
  return session;
}

// An L1 miss with a fleet store: the first call starts the lookup and suspends the handshake;
// the call after the stream's wait takes the answer (a hit also fills L1).
SSL_SESSION* from_remote(SSL* ssl, attachment& a, handshake_info& info, std::uint64_t ctx_id,
                         std::string_view sid) {
  if (!info.lookup) {
    info.lookup = std::make_shared<remote_lookup>();
    std::weak_ptr<remote_lookup> weak = info.lookup;
    info.remote->get(remote_session_key(ctx_id, sid), [weak](std::string bytes) {
      if (auto l = weak.lock(); l && !l->done) {
        l->done = true;
        l->bytes = std::move(bytes);
        if (l->wake) {
          l->wake();
        }
      }
    });
    return SSL_magic_pending_session_ptr();
  }
  if (!info.lookup->done || info.lookup->bytes.empty()) {
    return nullptr;  // a miss, a failure or the lookup timeout: full handshake
  }
  const std::string& b = info.lookup->bytes;
  bssl::UniquePtr<SSL_SESSION> session = admitted_session(ssl, &info, b);
  if (!session) {
    return nullptr;  // undecodable or refused: L1 is not filled
  }
  // BoringSSL still checks the session's ID context and time; L1 gets it for next time.
  std::int64_t expires = session_expires_at(session.get());
  if (expires > a.clock->now_s()) {
    a.cache->insert(ctx_id, sid, b, expires);
  }
  info.cache_hit = true;
  info.remote_hit = true;
  return session.release();
}

int on_new_session(SSL* ssl, SSL_SESSION* session) {
  attachment* a = attachment_of(SSL_get_SSL_CTX(ssl));
  unsigned id_len = 0;
  const uint8_t* id = SSL_SESSION_get_id(session, &id_len);
  if (a == nullptr || id_len == 0) {
    return 0;  // a ticket-only session (no ID): nothing to cache
  }
  // Each mechanism's lifetime is its own: with tickets on, the SSL_CTX timeout is the ticket
  // lifetime (BoringSSL gives a TLS 1.2 session one timeout for its ticket and its ID). The
  // ticket is already sealed when this runs, so the ID's session gets the cache's timeout here,
  // before it is cached; BoringSSL checks it when the ID is offered. The session is this
  // connection's own (the internal cache is off), so nothing else reads it meanwhile.
  SSL_SESSION_set_timeout(session, a->timeout);
  uint8_t* bytes = nullptr;
  size_t len = 0;
  if (SSL_SESSION_to_bytes(session, &bytes, &len) != 1) {
    ERR_clear_error();
    return 0;
  }
  // The entry: the session handle's header, then the session (one copy; no allocation).
  thread_local std::array<std::uint8_t, cache::session_cache::max_slot_bytes> entry;
  handshake_info* info = info_of(ssl);
  const std::uint64_t h = info != nullptr ? session_handle_of(ssl, *info) : 0;
  const std::size_t n = encode_entry(h, std::string_view(reinterpret_cast<const char*>(bytes), len),
                                     entry.data(), entry.size());
  OPENSSL_free(bytes);
  if (n == 0) {
    return 0;  // larger than any cache slot: not cached
  }
  std::int64_t expires = a->clock->now_s() + SSL_SESSION_get_timeout(session);
  const std::uint64_t ctx_id = session_context_id(ssl);
  const std::string_view sid(reinterpret_cast<const char*>(id), id_len);
  const std::string_view value(reinterpret_cast<const char*>(entry.data()), n);
  a->cache->insert(ctx_id, sid, value, expires);
  if (info != nullptr && info->remote != nullptr) {
    info->remote->put(remote_session_key(ctx_id, sid), value,
                      std::chrono::seconds(SSL_SESSION_get_timeout(session)));
  }
  return 0;  // we did not keep a reference to `session`
}

SSL_SESSION* on_get_session(SSL* ssl, const uint8_t* id, int id_len, int* out_copy) {
  *out_copy = 0;  // we return a new reference
  attachment* a = attachment_of(SSL_get_SSL_CTX(ssl));
  if (a == nullptr || id_len <= 0) {
    return nullptr;
  }
  thread_local std::array<std::uint8_t, cache::session_cache::max_slot_bytes> buf;
  const std::uint64_t ctx_id = session_context_id(ssl);
  const std::string_view sid(reinterpret_cast<const char*>(id), static_cast<size_t>(id_len));
  handshake_info* info = info_of(ssl);
  if (info != nullptr && info->lookup) {
    // BoringSSL calls again after the suspended L2 lookup: L1 already missed (and counted that
    // miss) on the first call, so only the L2 answer is taken.
    return from_remote(ssl, *a, *info, ctx_id, sid);
  }
  std::size_t n = a->cache->lookup(ctx_id, sid, buf.data(), buf.size());
  if (n == 0) {
    return info != nullptr && info->remote != nullptr ? from_remote(ssl, *a, *info, ctx_id, sid)
                                                      : nullptr;
  }
  bssl::UniquePtr<SSL_SESSION> session =
      admitted_session(ssl, info, std::string_view(reinterpret_cast<const char*>(buf.data()), n));
  if (!session) {
    a->cache->remove(ctx_id, sid);  // undecodable or refused: a miss, and gone for good
    return nullptr;
  }
  if (info != nullptr) {
    info->cache_hit = true;
  }
  return session.release();
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

std::string remote_session_key(std::uint64_t context_id, std::string_view session_id) {
  std::string key(sizeof context_id + session_id.size(), '\0');
  std::memcpy(key.data(), &context_id, sizeof context_id);
  std::memcpy(key.data() + sizeof context_id, session_id.data(), session_id.size());
  return key;
}

bssl::UniquePtr<SSL_SESSION> session_from_cache_bytes(std::string_view bytes, const SSL_CTX* ctx) {
  bssl::UniquePtr<SSL_SESSION> session(
      SSL_SESSION_from_bytes(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), ctx));
  if (!session) {
    ERR_clear_error();
  }
  return session;
}

std::int64_t session_expires_at(const SSL_SESSION* session) {
  return static_cast<std::int64_t>(SSL_SESSION_get_time(session)) +
         SSL_SESSION_get_timeout(session);
}

std::uint64_t session_context_id(const SSL* ssl) {
  size_t len = 0;
  const uint8_t* sid = SSL_get0_session_id_context(ssl, &len);
  return sid != nullptr ? context_id_of(sid, len) : 0;
}

void attach_session_id_cache(SSL_CTX* ctx, cache::session_cache& cache, const core::clock& clock,
                             std::chrono::seconds timeout) {
  const auto t = static_cast<std::uint32_t>(timeout.count());
  SSL_CTX_set_ex_data(ctx, ex_index(), new attachment{&cache, &clock, t});
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER | SSL_SESS_CACHE_NO_INTERNAL);
  SSL_CTX_set_timeout(ctx, t);  // attach_ticket_keys sets the ticket lifetime over it
  SSL_CTX_sess_set_new_cb(ctx, &on_new_session);
  SSL_CTX_sess_set_get_cb(ctx, &on_get_session);
  SSL_CTX_sess_set_remove_cb(ctx, &on_remove_session);
}

}  // namespace tlsfront::tls
