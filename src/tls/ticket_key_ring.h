// tls/ticket_key_ring.h — session-ticket keys with roles derived from time, so that rotation
// never breaks a ticket still in use and keys are destroyed once no ticket can need them.
//
// ROLES (at time `now`)
//   next      not_before > now: published ahead (decrypt only), so every holder of the ring has
//             it before anyone encrypts with it
//   current   the key with the greatest not_before <= now: seals every new ticket
//   previous  any other key with now < opens_until(): opens tickets it sealed, seals none
//             ("decrypt-only"); such tickets are renewed (re-sealed under the current key)
//   dropped   now >= opens_until() (not_after, sooner for a demoted key: see below): removed
//             and wiped (OPENSSL_cleanse)
// Where the keys come from is a key source (tls/key_source.h), which drives the ring:
// a memory source schedules keys itself (schedule()): each key encrypts for `rotation`, is
// published at least `publish_ahead` before that (in practice a whole rotation ahead), and is
// kept until every ticket it sealed has expired (not_after = not_before + rotation + ticket
// lifetime). A file source replaces the ring with the operator's keys in file order: the first
// encrypts, the others decrypt.
// The fleet's source (cluster::fleet_key_source, cluster::ticket_key_sync) installs the key list
// the fleet shares through Redis, as read back from there; it schedules nothing itself while
// the fleet list arrives, and falls back to scheduling its own keys (as a memory source) when
// the sync says the list is unreachable. Keys the ring held that are not on the fleet list are
// demoted to `local` keys:
//   - a key that had not started sealing when demoted sealed nothing: it is dropped (wiped) at
//     once;
//   - a key that may have sealed until then opens tickets (role previous, "decrypt-only" in
//     GET /tickets) until the last one it sealed has expired: the demotion time + the ticket
//     lifetime + 1 s (never past its not_after), then it is dropped and wiped;
//   - a local key seals only as a last resort, when no other key is valid; each ticket it seals
//     so moves its end on (ticket_key::note_sealed), and once no ticket it sealed can still be
//     valid it seals no more either.
// ticket_key::opens_until() is that end for every key (not_after for all but local keys).
//
// KEY MATERIAL: the 80-byte layout of nginx and Envoy (16-byte name | 32-byte HMAC-SHA256 key |
// 32-byte AES-256-CBC key) or the 48-byte one (16 | 16 | 16, AES-128-CBC). Tickets use the
// RFC 5077 recommended format (name | IV | AES-CBC ciphertext | HMAC-SHA256), the format those
// servers use too.
//
// Thread-safety: readers (the handshake path) take an immutable snapshot without a lock: a
// thread-local copy of the snapshot pointer, refreshed only when the ring's version changed
// (a worker calls view() at least every second, so a dropped key's last reference goes and
// the key is wiped within about a second).
// Writers (seed, schedule, add_next_key, replace, install: control plane, called by the key
// source) build a new snapshot under a mutex
// and publish it by bumping the version (release; readers acquire).
#pragma once

#include <openssl/aes.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"

namespace tlsfront::tls {

struct ticket_key {
  std::array<std::uint8_t, 16> name{};
  std::array<std::uint8_t, 32> hmac_key{};
  std::array<std::uint8_t, 32> aes_key{};
  std::size_t hmac_len = 32;    // 32 (80-byte layout) or 16 (48-byte layout)
  std::size_t aes_len = 32;     // AES-256-CBC or AES-128-CBC
  std::int64_t not_before = 0;  // seconds; 0 for file keys
  std::int64_t not_after = INT64_MAX;
  bool local = false;  // fleet ring: not on the fleet list (seals only if no other key can)
  // Local keys only, set when the key is demoted: the last second at which it may have sealed a
  // ticket (moved on by note_sealed) and how long such a ticket stays valid (ticket lifetime).
  // Relaxed atomic: a handshake thread moves it on while the snapshot holding the key is shared;
  // it publishes nothing else (the key itself is published through the ring's version).
  mutable std::atomic<std::int64_t> sealed_until{INT64_MAX};
  std::int64_t ticket_lifetime = 0;
  ticket_key() = default;
  ticket_key(const ticket_key& o);
  ticket_key& operator=(const ticket_key& o);
  ~ticket_key();  // wipes the secrets

  // The second from which this key opens no ticket (and is dropped): not_after, or for a local
  // key one second after the last ticket it sealed expires, if that comes first.
  std::int64_t opens_until() const noexcept;
  // True if the key may seal at `now`: started, not past not_after, and for a local key only
  // while a ticket it sealed may still be valid (ticket_key_ring::current() also prefers every
  // non-local key).
  bool may_seal(std::int64_t now) const noexcept;
  // The handshake path: a local key sealed a ticket at `now` (moves sealed_until on).
  void note_sealed(std::int64_t now) const noexcept;

  // The cipher of the session handle in the ticket IV (tls/session_handle.h), derived from the
  // key material. Every copy derives it (the ring holds only copies: make_shared from a built
  // key), so a key built in place must call derive_handle_cipher() before it seals.
  void derive_handle_cipher() noexcept;
  AES_KEY handle_enc{};
  AES_KEY handle_dec{};
};

enum class key_role { next, current, previous, dropped };
const char* key_role_name(key_role r) noexcept;

struct ticket_key_options {
  // Which key source the configuration chose (tls/key_source.h makes memory and file ones,
  // cluster/fleet_key_source.h the fleet's).
  enum class source_kind { memory, file, fleet } source = source_kind::memory;
  std::vector<std::string> files;  // file source: in order; the first key encrypts
  std::chrono::seconds rotation{std::chrono::hours(1)};
  std::chrono::seconds publish_ahead{std::chrono::minutes(1)};
  std::chrono::seconds lifetime{std::chrono::hours(1)};  // ticket lifetime (hint and validity)
  unsigned tls13_tickets = 2;                            // tickets sent after a TLS 1.3 handshake
  // Fleet source: keys the fleet's list holds published ahead of the current one. Through a
  // Redis outage every instance goes on sealing under fleet keys for this many rotations
  // (cluster/ticket_key_sync.h) before each makes keys of its own.
  unsigned keys_ahead = 4;
  // Without [cluster]: tickets whose early data this process remembers having accepted
  // (tls/early_data.h strike_register); past it the oldest are forgotten and tickets expiring
  // no later than they do get no early data.
  std::size_t early_data_strikes = 100000;
};

class ticket_key_ring {
 public:
  struct snapshot {
    std::vector<std::shared_ptr<const ticket_key>> keys;  // sorted by not_before
    std::uint64_t version = 0;
  };
  struct listed_key {
    std::string name_hex;
    key_role role;
    std::int64_t not_before;
    std::int64_t not_after;  // opens_until(): when the key is dropped
    bool local;
  };

  ticket_key_ring(const ticket_key_options& opts, const core::clock& clock);

  // The key sources' writes (tls/key_source.h). seed(): the first two keys (one current from
  // now, the next a rotation later). schedule(made_are_local): drops keys past their window
  // and, with `make_keys`, adds a current key if none has started and a next key if none is
  // published (counted in local_keys_made() when `count_made`). add_next_key(): a new key that
  // starts sealing after publish_ahead. replace(): the ring becomes exactly `keys`. Never fail.
  void seed();
  void schedule(bool make_keys, bool count_made);
  void add_next_key();
  void replace(std::vector<std::shared_ptr<const ticket_key>> keys);

  // Fleet ring. install(): the fleet's key list as read back from the store becomes the ring;
  // keys held before and missing from it are demoted to `local` (see ROLES): dropped at once if
  // they never sealed, else kept until the tickets they sealed have expired.
  // set_fallback(true): the list is unreachable: the fleet source schedules (local) keys itself
  // whenever the ring lacks a current or a next key. local_keys_made(): keys it made so.
  // purge = true (a fleet purge): keys missing from the list are dropped (and wiped once no
  // handshake holds them) instead of demoted, local ones too.
  void install(const std::vector<ticket_key>& fleet_keys, bool purge = false);
  void set_fallback(bool on) { fallback_.store(on, std::memory_order_relaxed); }
  bool fallback() const { return fallback_.load(std::memory_order_relaxed); }
  std::uint64_t local_keys_made() const { return local_made_.load(std::memory_order_relaxed); }
  // A fresh random key valid from `not_before` for rotation + lifetime.
  ticket_key new_key(std::int64_t not_before) const;
  // When the next key starts: when the newest key's (`newest`; INT64_MIN for none) rotation
  // ends, never sooner than `ahead` seconds from `now`, so every holder gets it before use.
  std::int64_t next_start(std::int64_t newest, std::int64_t now, std::int64_t ahead) const;

  // The handshake path. `current()` is null only if the ring has no current key.
  std::shared_ptr<const snapshot> view() const;
  static std::shared_ptr<const ticket_key> current(const snapshot& s, std::int64_t now);
  static std::shared_ptr<const ticket_key> find(const snapshot& s, const std::uint8_t* name);
  static std::shared_ptr<const ticket_key> find_in(
      const std::vector<std::shared_ptr<const ticket_key>>& keys, const std::uint8_t* name);
  static key_role role_of(const snapshot& s, const ticket_key& k, std::int64_t now);

  // The control plane's read (admin, metrics): the snapshot in force, taken under the mutex and
  // not cached per thread, so such readers never keep a dropped key alive.
  std::shared_ptr<const snapshot> latest() const;
  std::vector<listed_key> list() const;
  const ticket_key_options& options() const { return opts_; }
  const core::clock& clock() const { return clock_; }
  std::uint64_t version() const { return version_.load(std::memory_order_acquire); }

  // Parses one key file's bytes (see KEY MATERIAL). False + `error` on a bad size.
  static bool parse_key_file(const std::string& bytes, std::vector<ticket_key>& out,
                             std::string& error);

 private:
  void publish(std::vector<std::shared_ptr<const ticket_key>> keys);  // mu_ held
  std::shared_ptr<const ticket_key> make_key(std::int64_t not_before) const;

  ticket_key_options opts_;
  const core::clock& clock_;
  mutable std::mutex mu_;  // writers and snapshot refresh; never held during a handshake step
  std::shared_ptr<const snapshot> snap_;
  std::atomic<std::uint64_t> version_{0};
  // Relaxed: flags and counts for the maintainer and display; they publish no data (keys are
  // published through version_).
  std::atomic<bool> fallback_{false};
  std::atomic<std::uint64_t> local_made_{0};
  const std::uint64_t id_;  // unique per ring, for the readers' thread-local snapshot cache
};

}  // namespace tlsfront::tls
