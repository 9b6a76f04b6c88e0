#include "tls/early_data.h"

#include <openssl/bytestring.h>

#include <algorithm>
#include <cstring>

#include "tls/stream.h"
#include "tls/ticket_keys.h"

namespace tlsfront::tls {
namespace {

constexpr unsigned time_tag = CBS_ASN1_CONSTRUCTED | CBS_ASN1_CONTEXT_SPECIFIC | 1;
constexpr unsigned timeout_tag = CBS_ASN1_CONSTRUCTED | CBS_ASN1_CONTEXT_SPECIFIC | 2;
constexpr unsigned age_add_tag = CBS_ASN1_CONSTRUCTED | CBS_ASN1_CONTEXT_SPECIFIC | 21;
constexpr std::uint16_t tls13_wire = 0x0304;

void refuse(const SSL_CLIENT_HELLO* hello, handshake_info& info, early_reason why) {
  SSL_set_early_data_enabled(hello->ssl, 0);
  info.early_refused = why;
}

// The claim's answer, once the fleet store gave it or the wait timed out.
void take_claim(const SSL_CLIENT_HELLO* hello, handshake_info& info) {
  const std::shared_ptr<remote_claim> c = std::move(info.claim);
  if (!c || !c->done || c->timed_out || c->answer == claim_answer::unavailable) {
    refuse(hello, info, early_reason::unavailable);
  } else if (c->answer == claim_answer::replayed) {
    refuse(hello, info, early_reason::replayed);
  }
}

}  // namespace

const char* early_reason_name(early_reason r) noexcept {
  switch (r) {
    case early_reason::none:
      return "none";
    case early_reason::replayed:
      return "replayed";
    case early_reason::stale:
      return "stale";
    case early_reason::too_large:
      return "too_large";
    case early_reason::unavailable:
      return "unavailable";
    case early_reason::disabled:
      return "disabled";
    case early_reason::ineligible:
      return "ineligible";
  }
  return "none";
}

bool parse_first_psk(std::span<const std::uint8_t> extension, psk_offer& out) {
  CBS ext, identities, identity;
  CBS_init(&ext, extension.data(), extension.size());
  std::uint32_t age = 0;
  if (!CBS_get_u16_length_prefixed(&ext, &identities) ||
      !CBS_get_u16_length_prefixed(&identities, &identity) || CBS_len(&identity) == 0 ||
      !CBS_get_u32(&identities, &age)) {
    return false;
  }
  out.identity = {CBS_data(&identity), CBS_len(&identity)};
  out.obfuscated_age = age;
  return true;
}

bool read_ticket_facts(std::span<const std::uint8_t> session_der, ticket_facts& out) {
  CBS in, session;
  CBS_init(&in, session_der.data(), session_der.size());
  std::uint64_t version = 0, ssl_version = 0;
  if (!CBS_get_asn1(&in, &session, CBS_ASN1_SEQUENCE) || CBS_len(&in) != 0 ||
      !CBS_get_asn1_uint64(&session, &version) || !CBS_get_asn1_uint64(&session, &ssl_version)) {
    return false;
  }
  bool have_time = false, have_timeout = false, have_age_add = false;
  while (CBS_len(&session) > 0) {
    CBS element, body;
    unsigned tag = 0;
    std::size_t header = 0;
    if (!CBS_get_any_asn1_element(&session, &element, &tag, &header) ||
        !CBS_skip(&element, header)) {
      return false;
    }
    body = element;
    if (tag == time_tag || tag == timeout_tag) {
      std::uint64_t v = 0;
      if (!CBS_get_asn1_uint64(&body, &v) || CBS_len(&body) != 0) {
        return false;
      }
      (tag == time_tag ? out.issued_s : out.lifetime_s) = v;
      (tag == time_tag ? have_time : have_timeout) = true;
    } else if (tag == age_add_tag) {
      CBS octets;
      std::uint32_t v = 0;
      if (!CBS_get_asn1(&body, &octets, CBS_ASN1_OCTETSTRING) || !CBS_get_u32(&octets, &v) ||
          CBS_len(&octets) != 0) {
        return false;
      }
      out.age_add = v;
      have_age_add = true;
    }
  }
  // Times past 2^40 s (year 36812) are nobody's: refused, so no later arithmetic overflows.
  constexpr std::uint64_t sane = std::uint64_t{1} << 40;
  return have_time && have_timeout && out.issued_s < sane && out.lifetime_s < sane &&
         (have_age_add || ssl_version != tls13_wire);
}

std::int64_t ticket_age_skew_ms(const ticket_facts& t, std::uint32_t obfuscated_age,
                                std::int64_t now_ms) noexcept {
  // RFC 8446 §4.2.11.1: the client's age is the obfuscated one minus age_add, modulo 2^32.
  const std::int64_t client_ms = static_cast<std::uint32_t>(obfuscated_age - t.age_add);
  const std::int64_t issued_ms = static_cast<std::int64_t>(t.issued_s) * 1000;
  const std::int64_t server_max = now_ms - issued_ms;  // the issue time rounded down
  const std::int64_t server_min = server_max - 999;
  if (client_ms > server_max) {
    return client_ms - server_max;
  }
  if (client_ms < server_min) {
    return client_ms - server_min;
  }
  return 0;
}

// --- strike_register ---

std::size_t strike_register::hasher::operator()(const identity& id) const noexcept {
  std::size_t h = 0;
  std::memcpy(&h, id.data() + 16, sizeof h);  // the IV: random under a keyed permutation
  return h;
}

strike_register::strike_register(std::size_t capacity)
    : per_shard_(std::max<std::size_t>(1, capacity / shard_count)) {}

std::size_t strike_register::size() const {
  std::size_t n = 0;
  for (const shard& s : shards_) {
    std::lock_guard lock(s.mu);
    n += s.expires.size();
  }
  return n;
}

void strike_register::for_each(const std::function<void(const identity&, std::int64_t)>& f) const {
  for (const shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [id, expires] : s.expires) {
      f(id, expires);
    }
  }
}

std::int64_t strike_register::floor_ms() const {
  std::int64_t m = 0;
  for (const shard& s : shards_) {
    std::lock_guard lock(s.mu);
    m = std::max(m, s.floor_ms);
  }
  return m;
}

void strike_register::raise_floor(std::int64_t ms) {
  for (shard& s : shards_) {
    std::lock_guard lock(s.mu);
    s.floor_ms = std::max(s.floor_ms, ms);
  }
}

claim_answer strike_register::claim(const identity& id, std::int64_t now_ms,
                                    std::int64_t expires_ms) {
  shard& s = shards_[id[16] % shard_count];
  std::lock_guard lock(s.mu);
  const auto later = [](const auto& a, const auto& b) { return a.first > b.first; };
  // Expired entries first (their tickets no longer resume at all).
  while (!s.heap.empty() && s.heap.front().first <= now_ms) {
    std::pop_heap(s.heap.begin(), s.heap.end(), later);
    s.expires.erase(s.heap.back().second);
    s.heap.pop_back();
  }
  if (s.expires.count(id) != 0) {
    return claim_answer::replayed;
  }
  if (expires_ms <= s.floor_ms) {
    return claim_answer::unavailable;  // it may be one the register had to forget
  }
  if (s.expires.size() >= per_shard_) {
    if (expires_ms <= s.heap.front().first) {
      return claim_answer::unavailable;  // it would be the first to go: keep what is held
    }
    std::pop_heap(s.heap.begin(), s.heap.end(), later);
    s.floor_ms = std::max(s.floor_ms, s.heap.back().first);
    s.expires.erase(s.heap.back().second);
    s.heap.pop_back();
  }
  s.expires.emplace(id, expires_ms);
  s.heap.emplace_back(expires_ms, id);
  std::push_heap(s.heap.begin(), s.heap.end(), later);
  return claim_answer::first;
}

// --- screening ---

enum ssl_select_cert_result_t screen_early_data(const SSL_CLIENT_HELLO* hello,
                                                handshake_info& info) {
  if (info.early_screened) {
    if (info.claim) {
      take_claim(hello, info);
    }
    return ssl_select_cert_success;
  }
  info.early_screened = true;
  const std::uint8_t* data = nullptr;
  std::size_t len = 0;
  if (SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_early_data, &data, &len) != 1) {
    return ssl_select_cert_success;
  }
  info.early_offered = true;
  if (info.early == nullptr || !info.early->opts.enabled) {
    SSL_set_early_data_enabled(hello->ssl, 0);  // off here, whatever the context says
    return ssl_select_cert_success;             // BoringSSL says "disabled"
  }
  psk_offer offer;
  if (SSL_early_callback_ctx_extension_get(hello, TLSEXT_TYPE_pre_shared_key, &data, &len) != 1 ||
      !parse_first_psk({data, len}, offer)) {
    refuse(hello, info, early_reason::ineligible);  // no session offered
    return ssl_select_cert_success;
  }
  std::vector<std::uint8_t> der;
  ticket_facts facts;
  const std::int64_t now_ms = ticket_clock_ms(hello->ssl);
  if (offer.identity.size() < 32 || !open_offered_ticket(hello->ssl, offer.identity, der) ||
      !read_ticket_facts(der, facts)) {
    refuse(hello, info, early_reason::ineligible);  // not a ticket of ours: no resumption
    return ssl_select_cert_success;
  }
  const std::int64_t expires_ms =
      static_cast<std::int64_t>(facts.issued_s + facts.lifetime_s) * 1000;
  if (expires_ms <= now_ms) {
    refuse(hello, info, early_reason::ineligible);  // expired: no resumption either
    return ssl_select_cert_success;
  }
  const std::int64_t skew = ticket_age_skew_ms(facts, offer.obfuscated_age, now_ms);
  if (std::abs(skew) > info.early->opts.window.count()) {
    refuse(hello, info, early_reason::stale);
    return ssl_select_cert_success;
  }
  strike_register::identity id;
  std::memcpy(id.data(), offer.identity.data(), id.size());
  if (info.remote != nullptr) {
    auto c = std::make_shared<remote_claim>();
    info.claim = c;
    info.remote->claim_once(std::string_view(reinterpret_cast<const char*>(id.data()), id.size()),
                            std::chrono::milliseconds(expires_ms - now_ms), [c](claim_answer a) {
                              if (c->done) {
                                return;  // the handshake stopped waiting: it refused already
                              }
                              c->done = true;
                              c->answer = a;
                              if (c->wake) {
                                c->wake();
                              }
                            });
    return ssl_select_cert_retry;
  }
  const claim_answer a = info.early->strikes != nullptr
                             ? info.early->strikes->claim(id, now_ms, expires_ms)
                             : claim_answer::unavailable;
  if (a != claim_answer::first) {
    refuse(hello, info,
           a == claim_answer::replayed ? early_reason::replayed : early_reason::unavailable);
  }
  return ssl_select_cert_success;
}

void keep_early_data_refusal(SSL* ssl, const handshake_info& info) noexcept {
  if (info.early_refused != early_reason::none) {
    SSL_set_early_data_enabled(ssl, 0);
  }
}

void restore_early_data(SSL* ssl, const handshake_info& info) noexcept {
  if (info.early_refused != early_reason::none && info.early != nullptr &&
      info.early->opts.enabled) {
    SSL_set_early_data_enabled(ssl, 1);
  }
}

early_reason early_outcome(const SSL* ssl, const handshake_info& info) noexcept {
  if (!info.early_offered || SSL_early_data_accepted(ssl)) {
    return early_reason::none;
  }
  if (info.early_refused != early_reason::none) {
    return info.early_refused;
  }
  if (info.early == nullptr || !info.early->opts.enabled) {
    return early_reason::disabled;
  }
  return early_reason::ineligible;
}

}  // namespace tlsfront::tls
