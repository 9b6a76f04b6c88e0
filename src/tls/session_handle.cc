#include "tls/session_handle.h"

#include <openssl/aes.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "core/hex.h"
#include "tls/stream.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::tls {
namespace {

using verdict = cache::revoked_handles::verdict;

void put_be64(std::uint64_t v, std::uint8_t* out) noexcept {
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<std::uint8_t>(v);
    v >>= 8;
  }
}

std::uint64_t get_be64(const std::uint8_t* in) noexcept {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | in[i];
  }
  return v;
}

constexpr std::uint8_t entry_tag = 0x01;

}  // namespace

resumption_guard::resumption_guard(cache::revoked_handles& set, const core::clock& clock,
                                   core::metrics_registry* metrics)
    : set_(set), clock_(clock) {
  if (metrics == nullptr) {
    return;
  }
  static constexpr const char* kRefusedHelp =
      "Resumptions refused by session handle: revoked, below the purge floor, older than "
      "handle_max_age, or not a handle this fleet could have minted (and session-ID entries "
      "made before a flush); kind = session ID, TLS 1.2 ticket, TLS 1.3 PSK";
  static constexpr const char* kinds[] = {"id", "ticket12", "psk13"};
  static constexpr const char* reasons[] = {"revoked", "floor", "expired", "invalid"};
  for (int k = 0; k < 3; ++k) {
    for (int r = 0; r < 4; ++r) {
      refused_[k][r] = &metrics->add_counter(
          "tlsfront_resumptions_refused_total", kRefusedHelp,
          std::string("kind=\"") + kinds[k] + "\",reason=\"" + reasons[r] + "\"");
    }
  }
  refused_flushed_ = &metrics->add_counter("tlsfront_resumptions_refused_total", kRefusedHelp,
                                           "kind=\"id\",reason=\"flushed\"");
}

void resumption_guard::set_flush_before(std::int64_t unix_s) noexcept {
  std::int64_t cur = flush_before_.load(std::memory_order_relaxed);
  while (cur < unix_s &&
         !flush_before_.compare_exchange_weak(cur, unix_s, std::memory_order_relaxed)) {
  }
}

bool resumption_guard::admit_made_at(std::int64_t session_time) const noexcept {
  if (session_time >= flush_before_.load(std::memory_order_relaxed)) {
    return true;
  }
  if (refused_flushed_ != nullptr) {
    refused_flushed_->inc();
  }
  return false;
}

std::uint32_t resumption_guard::now_generation() const noexcept {
  return set_.policy().generation_at(clock_.now_s());
}

bool resumption_guard::admit(std::uint64_t h, resumption_kind kind) const noexcept {
  const verdict v = set_.check(h, now_generation());
  if (v == verdict::ok) {
    return true;
  }
  if (core::counter* c = refused_[static_cast<int>(kind)][static_cast<int>(v) - 1]) {
    c->inc();
  }
  return false;
}

std::uint64_t resumption_guard::mint() const noexcept {
  const std::uint32_t gen = std::max(now_generation(), set_.floor());
  std::uint64_t random = 0;
  RAND_bytes(reinterpret_cast<std::uint8_t*>(&random), sizeof random);
  std::uint64_t h = cache::make_handle(gen, random);
  return h != 0 ? h : cache::make_handle(gen, 1);
}

cache::revoked_handles::insert_result resumption_guard::revoke(std::uint64_t h) noexcept {
  return set_.insert(h, now_generation());
}

std::int64_t resumption_guard::expires_at_s(std::uint64_t h) const noexcept {
  const cache::handle_policy& p = set_.policy();
  // Generation g covers [epoch + g*len, epoch + (g+1)*len); its sessions resume until
  // max_age_gens generations after its end.
  return cache::handle_epoch_unix +
         (static_cast<std::int64_t>(cache::handle_generation(h)) + 1 + p.max_age_gens) *
             p.gen_seconds;
}

std::int64_t resumption_guard::seconds_left(std::uint64_t h) const noexcept {
  return std::max<std::int64_t>(0, expires_at_s(h) - clock_.now_s());
}

std::uint64_t session_handle_of(const SSL* ssl, handshake_info& info) noexcept {
  if (info.handle == 0 && info.guard != nullptr) {
    info.handle = SSL_session_reused(ssl) && info.resumed_handle != 0 ? info.resumed_handle
                                                                      : info.guard->mint();
  }
  return info.handle;
}

void seal_handle_iv(const ticket_key& k, std::uint64_t h, std::uint8_t iv[16]) noexcept {
  std::uint8_t block[16];
  put_be64(h, block);
  RAND_bytes(block + 8, 8);
  AES_encrypt(block, iv, &k.handle_enc);
}

std::uint64_t open_handle_iv(const ticket_key& k, const std::uint8_t iv[16]) noexcept {
  std::uint8_t block[16];
  AES_decrypt(iv, block, &k.handle_dec);
  return get_be64(block);
}

std::size_t encode_entry(std::uint64_t h, std::string_view session, std::uint8_t* out,
                         std::size_t cap) noexcept {
  if (session.size() + entry_header_bytes > cap) {
    return 0;
  }
  out[0] = entry_tag;
  put_be64(h, out + 1);
  std::memcpy(out + entry_header_bytes, session.data(), session.size());
  return session.size() + entry_header_bytes;
}

std::string_view decode_entry(std::string_view entry, std::uint64_t& h) noexcept {
  if (entry.size() <= entry_header_bytes || static_cast<std::uint8_t>(entry[0]) != entry_tag) {
    return {};
  }
  h = get_be64(reinterpret_cast<const std::uint8_t*>(entry.data()) + 1);
  return entry.substr(entry_header_bytes);
}

void format_handle(std::uint64_t h, char out[16]) noexcept {
  static constexpr char digits[] = "0123456789abcdef";
  for (int i = 15; i >= 0; --i) {
    out[i] = digits[h & 0xf];
    h >>= 4;
  }
}

bool parse_handle(std::string_view text, std::uint64_t& h) noexcept {
  if (text.size() != 16) {
    return false;
  }
  std::uint64_t v = 0;
  for (char c : text) {
    const int d = core::hex_digit_value(c);
    if (d < 0) {
      return false;
    }
    v = (v << 4) | static_cast<std::uint64_t>(d);
  }
  h = v;
  return v != 0;
}

}  // namespace tlsfront::tls
