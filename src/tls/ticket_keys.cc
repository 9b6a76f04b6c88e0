#include "tls/ticket_keys.h"

#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

#include "tls/session_handle.h"

namespace tlsfront::tls {
namespace {

struct attachment {
  ticket_key_ring* ring;
  const ticket_metrics* metrics;
};

int ex_index() {
  static const int index = SSL_CTX_get_ex_new_index(
      0, nullptr, nullptr, nullptr, [](void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) {
        delete static_cast<attachment*>(ptr);
      });
  return index;
}

attachment* attachment_of(const SSL* ssl) {
  return static_cast<attachment*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ex_index()));
}

void bump(core::counter* c) {
  if (c != nullptr) {
    c->inc();
  }
}

bool init_ciphers(const ticket_key& k, const uint8_t* iv, EVP_CIPHER_CTX* ctx, HMAC_CTX* hmac,
                  bool encrypt) {
  const EVP_CIPHER* cipher = k.aes_len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
  int ok = encrypt ? EVP_EncryptInit_ex(ctx, cipher, nullptr, k.aes_key.data(), iv)
                   : EVP_DecryptInit_ex(ctx, cipher, nullptr, k.aes_key.data(), iv);
  return ok == 1 && HMAC_Init_ex(hmac, k.hmac_key.data(), k.hmac_len, EVP_sha256(), nullptr) == 1;
}

int on_ticket_key(SSL* ssl, uint8_t* key_name, uint8_t* iv, EVP_CIPHER_CTX* ctx, HMAC_CTX* hmac,
                  int encrypt) {
  attachment* a = attachment_of(ssl);
  if (a == nullptr) {
    return encrypt ? -1 : 0;
  }
  auto snap = a->ring->view();
  const std::int64_t now = a->ring->clock().now_s();
  if (encrypt) {
    auto k = ticket_key_ring::current(*snap, now);
    if (!k) {
      return -1;
    }
    handshake_info* info = info_of(ssl);
    seal_handle_iv(*k, info != nullptr ? session_handle_of(ssl, *info) : 0, iv);
    if (!init_ciphers(*k, iv, ctx, hmac, true)) {
      ERR_clear_error();
      return -1;  // only a negative value is an error in encrypt mode
    }
    std::memcpy(key_name, k->name.data(), 16);
    if (k->local) {
      k->note_sealed(now);  // a last resort: its tickets keep the key for their lifetime
    }
    bump(a->metrics ? a->metrics->issued : nullptr);
    return 1;
  }
  handshake_info* info = info_of(ssl);
  if (info != nullptr) {
    info->ticket_looked_up = true;
  }
  auto k = ticket_key_ring::find(*snap, key_name);
  key_role role = k ? ticket_key_ring::role_of(*snap, *k, now) : key_role::dropped;
  if (!k || role == key_role::dropped) {
    bump(a->metrics ? a->metrics->unknown_key : nullptr);
    return 0;  // unknown or dropped key: full handshake
  }
  if (info != nullptr && info->guard != nullptr) {
    // Refused before BoringSSL checks the HMAC: a forged IV would fail it anyway. The handle
    // is adopted only if the handshake ends resumed (session_handle_of).
    const std::uint64_t h = open_handle_iv(*k, iv);
    const auto kind =
        SSL_version(ssl) >= TLS1_3_VERSION ? resumption_kind::psk13 : resumption_kind::ticket12;
    if (!info->guard->admit(h, kind)) {
      return 0;  // revoked: full handshake (counted by the guard, not as a rejected ticket)
    }
    info->resumed_handle = h;
  }
  if (!init_ciphers(*k, iv, ctx, hmac, false)) {
    ERR_clear_error();
    return 0;
  }
  if (info != nullptr) {
    info->ticket_role = static_cast<int>(role);
  }
  // A ticket under an older key is re-sealed under the current one; a ticket under the
  // pre-published next key (an instance that already switched) is not.
  return role == key_role::previous ? 2 : 1;
}

}  // namespace

void attach_ticket_keys(SSL_CTX* ctx, ticket_key_ring& ring, const ticket_metrics* metrics) {
  SSL_CTX_set_ex_data(ctx, ex_index(), new attachment{&ring, metrics});
  const ticket_key_options& o = ring.options();
  SSL_CTX_set_tlsext_ticket_key_cb(ctx, &on_ticket_key);
  SSL_CTX_set_num_tickets(ctx, o.tls13_tickets);
  // RFC 8446 §4.6.1: a ticket lifetime is at most 7 days (config enforces it too).
  const uint32_t lifetime =
      static_cast<uint32_t>(std::min<std::int64_t>(o.lifetime.count(), 7 * 24 * 3600));
  SSL_CTX_set_timeout(ctx, lifetime);
  SSL_CTX_set_session_psk_dhe_timeout(ctx, lifetime);
}

bool open_offered_ticket(const SSL* ssl, std::span<const std::uint8_t> ticket,
                         std::vector<std::uint8_t>& session) {
  constexpr std::size_t name_len = 16, iv_len = 16, mac_len = SHA256_DIGEST_LENGTH;
  attachment* a = attachment_of(ssl);
  if (a == nullptr || ticket.size() < name_len + iv_len + 16 + mac_len) {
    return false;
  }
  auto snap = a->ring->view();
  auto k = ticket_key_ring::find(*snap, ticket.data());
  if (!k || ticket_key_ring::role_of(*snap, *k, a->ring->clock().now_s()) == key_role::dropped) {
    return false;
  }
  const std::size_t body_len = ticket.size() - mac_len;
  std::uint8_t mac[EVP_MAX_MD_SIZE];
  unsigned mac_got = 0;
  if (HMAC(EVP_sha256(), k->hmac_key.data(), k->hmac_len, ticket.data(), body_len, mac, &mac_got) ==
          nullptr ||
      mac_got != mac_len || CRYPTO_memcmp(mac, ticket.data() + body_len, mac_len) != 0) {
    ERR_clear_error();
    return false;
  }
  bssl::ScopedEVP_CIPHER_CTX ctx;
  const EVP_CIPHER* cipher = k->aes_len == 32 ? EVP_aes_256_cbc() : EVP_aes_128_cbc();
  const std::uint8_t* in = ticket.data() + name_len + iv_len;
  const std::size_t in_len = body_len - name_len - iv_len;
  session.resize(in_len + EVP_MAX_BLOCK_LENGTH);
  int n = 0, last = 0;
  const bool ok =
      EVP_DecryptInit_ex(ctx.get(), cipher, nullptr, k->aes_key.data(), ticket.data() + name_len) ==
          1 &&
      EVP_DecryptUpdate(ctx.get(), session.data(), &n, in, static_cast<int>(in_len)) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), session.data() + n, &last) == 1;
  ERR_clear_error();
  if (!ok) {
    return false;
  }
  session.resize(static_cast<std::size_t>(n + last));
  return true;
}

std::int64_t ticket_clock_ms(const SSL* ssl) {
  attachment* a = attachment_of(ssl);
  return a != nullptr ? a->ring->clock().now_ms() : core::real_clock::instance().now_ms();
}

void account_ticket_use(SSL* ssl, const handshake_info& info) {
  attachment* a = attachment_of(ssl);
  if (a == nullptr || a->metrics == nullptr) {
    return;
  }
  if (info.ticket_role < 0) {
    // Offered, but too short or malformed for BoringSSL to even look its key up.
    if (info.offered_ticket && !info.ticket_looked_up && info.resumed == resumption::none) {
      bump(a->metrics->malformed);
    }
    return;
  }
  if (info.resumed == resumption::ticket) {
    bump(a->metrics->opened[info.ticket_role]);
    if (info.ticket_role == static_cast<int>(key_role::previous)) {
      // TLS 1.2: the callback asked BoringSSL to re-seal the ticket. TLS 1.3: the tickets sent
      // after this handshake are sealed under the current key (if any are sent at all).
      if (SSL_version(ssl) < TLS1_3_VERSION) {
        bump(a->metrics->renewed[0]);
      } else if (a->ring->options().tls13_tickets > 0) {
        bump(a->metrics->renewed[1]);
      }
    }
  } else {
    bump(a->metrics->rejected);
  }
}

}  // namespace tlsfront::tls
