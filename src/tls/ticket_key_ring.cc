#include "tls/ticket_key_ring.h"

#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/hkdf.h>
#include <openssl/mem.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstring>

#include "core/hex.h"

namespace tlsfront::tls {

ticket_key::ticket_key(const ticket_key& o)
    : name(o.name),
      hmac_key(o.hmac_key),
      aes_key(o.aes_key),
      hmac_len(o.hmac_len),
      aes_len(o.aes_len),
      not_before(o.not_before),
      not_after(o.not_after),
      local(o.local),
      sealed_until(o.sealed_until.load(std::memory_order_relaxed)),
      ticket_lifetime(o.ticket_lifetime) {
  derive_handle_cipher();
}

ticket_key& ticket_key::operator=(const ticket_key& o) {
  name = o.name;
  hmac_key = o.hmac_key;
  aes_key = o.aes_key;
  hmac_len = o.hmac_len;
  aes_len = o.aes_len;
  not_before = o.not_before;
  not_after = o.not_after;
  local = o.local;
  sealed_until.store(o.sealed_until.load(std::memory_order_relaxed), std::memory_order_relaxed);
  ticket_lifetime = o.ticket_lifetime;
  derive_handle_cipher();
  return *this;
}

ticket_key::~ticket_key() {
  OPENSSL_cleanse(hmac_key.data(), hmac_key.size());
  OPENSSL_cleanse(aes_key.data(), aes_key.size());
  OPENSSL_cleanse(&handle_enc, sizeof handle_enc);
  OPENSSL_cleanse(&handle_dec, sizeof handle_dec);
}

void ticket_key::derive_handle_cipher() noexcept {
  static constexpr char info[] = "tlsfront ticket handle v1";
  std::uint8_t secret[64];
  std::memcpy(secret, hmac_key.data(), hmac_len);
  std::memcpy(secret + hmac_len, aes_key.data(), aes_len);
  std::uint8_t kh[16];
  if (HKDF(kh, sizeof kh, EVP_sha256(), secret, hmac_len + aes_len, nullptr, 0,
           reinterpret_cast<const std::uint8_t*>(info), sizeof info - 1) != 1) {
    ERR_clear_error();
    std::memset(kh, 0, sizeof kh);  // cannot happen with SHA-256 and 16 bytes out
  }
  AES_set_encrypt_key(kh, 128, &handle_enc);
  AES_set_decrypt_key(kh, 128, &handle_dec);
  OPENSSL_cleanse(secret, sizeof secret);
  OPENSSL_cleanse(kh, sizeof kh);
}

std::int64_t ticket_key::opens_until() const noexcept {
  if (!local) {
    return not_after;
  }
  // A ticket sealed in second `sealed_until` is valid for ticket_lifetime; one more second
  // covers a seal late in that second.
  const std::int64_t last = sealed_until.load(std::memory_order_relaxed);
  return last >= not_after - ticket_lifetime - 1 ? not_after : last + ticket_lifetime + 1;
}

bool ticket_key::may_seal(std::int64_t now) const noexcept {
  if (not_before > now || now >= not_after) {
    return false;
  }
  // A local key that has not sealed for a ticket lifetime opens nothing any more; it stays
  // unused until it is dropped one second later (see opens_until).
  return !local || now - ticket_lifetime < sealed_until.load(std::memory_order_relaxed);
}

void ticket_key::note_sealed(std::int64_t now) const noexcept {
  // A running maximum: threads sealing in different seconds never move it back.
  std::int64_t seen = sealed_until.load(std::memory_order_relaxed);
  while (seen < now && !sealed_until.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

const char* key_role_name(key_role r) noexcept {
  switch (r) {
    case key_role::next:
      return "next";
    case key_role::current:
      return "current";
    case key_role::previous:
      return "previous";
    case key_role::dropped:
      return "dropped";
  }
  return "dropped";
}

ticket_key_ring::ticket_key_ring(const ticket_key_options& opts, const core::clock& clock)
    : opts_(opts), clock_(clock), snap_(std::make_shared<snapshot>()), id_([] {
        static std::atomic<std::uint64_t> next_id{1};
        return next_id.fetch_add(1, std::memory_order_relaxed);  // unique only: relaxed
      }()) {}

ticket_key ticket_key_ring::new_key(std::int64_t not_before) const {
  ticket_key k;
  RAND_bytes(k.name.data(), k.name.size());
  RAND_bytes(k.hmac_key.data(), k.hmac_key.size());
  RAND_bytes(k.aes_key.data(), k.aes_key.size());
  k.not_before = not_before;
  k.not_after = not_before + opts_.rotation.count() + opts_.lifetime.count();
  return k;
}

std::int64_t ticket_key_ring::next_start(std::int64_t newest, std::int64_t now,
                                         std::int64_t ahead) const {
  return newest == INT64_MIN ? now + ahead : std::max(newest + opts_.rotation.count(), now + ahead);
}

std::shared_ptr<const ticket_key> ticket_key_ring::make_key(std::int64_t not_before) const {
  return std::make_shared<ticket_key>(new_key(not_before));
}

void ticket_key_ring::publish(std::vector<std::shared_ptr<const ticket_key>> keys) {
  std::sort(keys.begin(), keys.end(),
            [](const auto& a, const auto& b) { return a->not_before < b->not_before; });
  auto s = std::make_shared<snapshot>();
  s->keys = std::move(keys);
  s->version = version_.load(std::memory_order_relaxed) + 1;
  snap_ = s;
  // Release pairs with the acquire load in view(): a reader that sees the new version and then
  // takes mu_ finds the new snapshot.
  version_.store(s->version, std::memory_order_release);
}

void ticket_key_ring::seed() {
  std::lock_guard lock(mu_);
  const std::int64_t now = clock_.now_s();
  publish({make_key(now), make_key(now + opts_.rotation.count())});
}

void ticket_key_ring::schedule(bool make_keys, bool count_made) {
  std::lock_guard lock(mu_);
  const std::int64_t now = clock_.now_s();
  std::vector<std::shared_ptr<const ticket_key>> keys;
  for (const auto& k : snap_->keys) {
    if (now < k->opens_until()) {
      keys.push_back(k);  // a dropped key is wiped when its last reference goes
    }
  }
  bool changed = keys.size() != snap_->keys.size();
  if (make_keys) {
    auto made = [&](std::int64_t not_before) {
      if (count_made) {
        local_made_.fetch_add(1, std::memory_order_relaxed);
      }
      changed = true;
      return make_key(not_before);
    };
    bool has_current = false, has_next = false;
    std::int64_t last_start = INT64_MIN;
    for (const auto& k : keys) {
      has_current = has_current || k->not_before <= now;
      has_next = has_next || k->not_before > now;
      last_start = std::max(last_start, k->not_before);
    }
    if (!has_current) {
      keys.push_back(made(now));  // e.g. the clock jumped past every key
      last_start = std::max(last_start, now);
    }
    if (!has_next) {
      keys.push_back(made(next_start(last_start, now, opts_.publish_ahead.count())));
    }
  }
  if (changed) {
    publish(std::move(keys));
  }
}

void ticket_key_ring::add_next_key() {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<const ticket_key>> keys = snap_->keys;
  const std::int64_t now = clock_.now_s();
  keys.push_back(make_key(now + opts_.publish_ahead.count()));
  publish(std::move(keys));
}

void ticket_key_ring::replace(std::vector<std::shared_ptr<const ticket_key>> keys) {
  std::lock_guard lock(mu_);
  publish(std::move(keys));
}

void ticket_key_ring::install(const std::vector<ticket_key>& fleet_keys, bool purge) {
  std::lock_guard lock(mu_);
  const std::int64_t now = clock_.now_s();
  std::vector<std::shared_ptr<const ticket_key>> keys;
  bool same = true;  // the very keys held already (a poll that found no change)
  for (const ticket_key& f : fleet_keys) {
    if (now >= f.not_after) {
      continue;
    }
    auto held = find(*snap_, f.name.data());
    if (held && !held->local && held->not_before == f.not_before &&
        held->not_after == f.not_after) {
      keys.push_back(held);
      continue;
    }
    same = false;
    auto k = std::make_shared<ticket_key>(f);
    k->local = false;
    keys.push_back(std::move(k));
  }
  for (const auto& k : snap_->keys) {
    if (now >= k->opens_until() || find_in(keys, k->name.data())) {
      continue;
    }
    if (purge) {
      same = false;  // dropped: nothing it sealed may resume (the purge's floor refuses it too)
    } else if (k->local) {
      keys.push_back(k);
    } else if (k->not_before > now) {
      same = false;  // ours, published but never sealing: nothing needs it (wiped once unused)
    } else {
      same = false;
      // Ours but not the fleet's (made before the list was read, or the list was replaced):
      // it opens the tickets it sealed (until now) until they expire, and seals no more but
      // as a last resort.
      auto demoted = std::make_shared<ticket_key>(*k);
      demoted->local = true;
      demoted->sealed_until.store(now, std::memory_order_relaxed);
      demoted->ticket_lifetime = opts_.lifetime.count();
      keys.push_back(std::move(demoted));
    }
  }
  if (!same || keys.size() != snap_->keys.size()) {
    publish(std::move(keys));
  }
}

bool ticket_key_ring::parse_key_file(const std::string& bytes, std::vector<ticket_key>& out,
                                     std::string& error) {
  auto take = [&](std::size_t off, std::size_t secret_len) {
    ticket_key k;
    std::memcpy(k.name.data(), bytes.data() + off, 16);
    std::memcpy(k.hmac_key.data(), bytes.data() + off + 16, secret_len);
    std::memcpy(k.aes_key.data(), bytes.data() + off + 16 + secret_len, secret_len);
    k.hmac_len = k.aes_len = secret_len;
    out.push_back(k);
  };
  if (bytes.size() == 48) {
    take(0, 16);
    return true;
  }
  if (bytes.empty() || bytes.size() % 80 != 0) {
    error = "a ticket key file holds one 48-byte key or one or more 80-byte keys, not " +
            std::to_string(bytes.size()) + " bytes";
    return false;
  }
  for (std::size_t off = 0; off < bytes.size(); off += 80) {
    take(off, 32);
  }
  return true;
}

std::shared_ptr<const ticket_key_ring::snapshot> ticket_key_ring::view() const {
  struct cached {
    std::uint64_t ring = 0;
    std::uint64_t version = 0;
    std::shared_ptr<const snapshot> snap;
  };
  thread_local cached c;
  // Acquire pairs with the release store in publish().
  const std::uint64_t v = version_.load(std::memory_order_acquire);
  if (c.ring != id_ || c.version != v || !c.snap) {
    std::lock_guard lock(mu_);  // only after a change: once per thread per rotation
    c.ring = id_;
    c.snap = snap_;
    c.version = snap_->version;
  }
  return c.snap;
}

std::shared_ptr<const ticket_key> ticket_key_ring::current(const snapshot& s, std::int64_t now) {
  // The latest started key; any other key beats a `local` one (local keys seal only while no
  // other key is valid).
  std::shared_ptr<const ticket_key> best;
  for (const auto& k : s.keys) {
    if (!k->may_seal(now)) {
      continue;
    }
    if (!best || (best->local && !k->local) ||
        (best->local == k->local && k->not_before >= best->not_before)) {
      best = k;
    }
  }
  return best;
}

std::shared_ptr<const ticket_key> ticket_key_ring::find_in(
    const std::vector<std::shared_ptr<const ticket_key>>& keys, const std::uint8_t* name) {
  for (const auto& k : keys) {
    if (std::memcmp(k->name.data(), name, 16) == 0) {
      return k;
    }
  }
  return nullptr;
}

std::shared_ptr<const ticket_key> ticket_key_ring::find(const snapshot& s,
                                                        const std::uint8_t* name) {
  return find_in(s.keys, name);
}

key_role ticket_key_ring::role_of(const snapshot& s, const ticket_key& k, std::int64_t now) {
  if (now >= k.opens_until()) {
    return key_role::dropped;
  }
  if (k.not_before > now) {
    return key_role::next;
  }
  auto cur = current(s, now);
  return cur.get() == &k ? key_role::current : key_role::previous;
}

std::shared_ptr<const ticket_key_ring::snapshot> ticket_key_ring::latest() const {
  std::lock_guard lock(mu_);
  return snap_;
}

std::vector<ticket_key_ring::listed_key> ticket_key_ring::list() const {
  auto s = latest();
  const std::int64_t now = clock_.now_s();
  std::vector<listed_key> out;
  for (const auto& k : s->keys) {
    const key_role role = role_of(*s, *k, now);
    if (role == key_role::dropped) {
      continue;  // past its window; maintain() removes it within a second
    }
    out.push_back(listed_key{
        core::to_hex(std::string_view(reinterpret_cast<const char*>(k->name.data()), 16)), role,
        k->not_before, k->opens_until(), k->local});
  }
  return out;
}

}  // namespace tlsfront::tls
