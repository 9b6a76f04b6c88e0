#include "cluster/ticket_key_sync.h"

#include <openssl/mem.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cstring>

namespace tlsfront::cluster {
namespace {

// Writes ARGV[2] only if the stored value is still ARGV[1] ("" for none). Redis runs a script
// atomically, and it needs no WATCH, whose state would cover every command on this connection
// (the worker's session lookups share it).
constexpr const char* kCompareAndSet =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur == false then cur = '' end\n"
    "if cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end\n"
    "return 0\n";

constexpr std::uint8_t kFormat = 1;

constexpr std::size_t kKeyBytes = 16 + 32 + 32 + 1 + 1 + 8 + 8;

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

std::uint64_t get_u64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) {
    v = (v << 8) | p[i];
  }
  return v;
}

}  // namespace

ticket_key_sync::ticket_key_sync(asio::io_context& ioc, redis_client& client, const sealer& seal,
                                 tls::ticket_key_ring& ring, std::string key_prefix,
                                 std::chrono::milliseconds poll_interval)
    : ioc_(ioc),
      client_(client),
      seal_(seal),
      ring_(ring),
      key_(redis_key(key_prefix)),
      poll_interval_(poll_interval),
      timer_(ioc) {
  // Every instance must have polled at least once between a key's publication and its first
  // use: two intervals (a poll may have just missed it) rounded up to seconds, plus the
  // second the clock may be into.
  const auto two_polls = std::chrono::ceil<std::chrono::seconds>(2 * poll_interval).count();
  ahead_s_ = std::max<std::int64_t>(ring.options().publish_ahead.count(), two_polls) + 1;
}

ticket_key_sync::~ticket_key_sync() {
  *alive_ = false;
}

std::string ticket_key_sync::redis_key(std::string_view prefix) {
  return std::string(prefix) + "ticket-keys";
}

std::string ticket_key_sync::encode(const key_list& list) {
  std::string out;
  out.reserve(1 + 8 + 2 + list.keys.size() * kKeyBytes);
  out.push_back(static_cast<char>(kFormat));
  put_u64(out, list.version);
  out.push_back(static_cast<char>(list.keys.size() >> 8));
  out.push_back(static_cast<char>(list.keys.size() & 0xff));
  for (const tls::ticket_key& k : list.keys) {
    out.append(reinterpret_cast<const char*>(k.name.data()), 16);
    out.append(reinterpret_cast<const char*>(k.hmac_key.data()), 32);
    out.append(reinterpret_cast<const char*>(k.aes_key.data()), 32);
    out.push_back(static_cast<char>(k.hmac_len));
    out.push_back(static_cast<char>(k.aes_len));
    put_u64(out, static_cast<std::uint64_t>(k.not_before));
    put_u64(out, static_cast<std::uint64_t>(k.not_after));
  }
  return out;
}

bool ticket_key_sync::decode(std::string_view bytes, key_list& out) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() < 11 || p[0] != kFormat) {
    return false;
  }
  const std::size_t count = (std::size_t{p[9]} << 8) | p[10];
  if (count == 0 || count > kMaxKeys || bytes.size() != 11 + count * kKeyBytes) {
    return false;
  }
  key_list list;
  list.version = get_u64(p + 1);
  p += 11;
  for (std::size_t i = 0; i < count; ++i, p += kKeyBytes) {
    tls::ticket_key k;
    std::memcpy(k.name.data(), p, 16);
    std::memcpy(k.hmac_key.data(), p + 16, 32);
    std::memcpy(k.aes_key.data(), p + 48, 32);
    k.hmac_len = p[80];
    k.aes_len = p[81];
    k.not_before = static_cast<std::int64_t>(get_u64(p + 82));
    k.not_after = static_cast<std::int64_t>(get_u64(p + 90));
    if ((k.hmac_len != 16 && k.hmac_len != 32) || (k.aes_len != 16 && k.aes_len != 32) ||
        k.not_before >= k.not_after) {
      return false;
    }
    for (const tls::ticket_key& seen : list.keys) {
      if (seen.name == k.name) {
        return false;  // a name must pick one key
      }
    }
    list.keys.push_back(k);
  }
  out = std::move(list);
  return true;
}

bool ticket_key_sync::plan(key_list& list, const tls::ticket_key_ring& ring, std::int64_t now,
                           bool rotate, std::int64_t ahead_s) {
  const std::size_t before = list.keys.size();
  std::erase_if(list.keys, [now](const tls::ticket_key& k) { return now >= k.not_after; });
  bool changed = list.keys.size() != before;
  if (rotate) {
    list.keys.push_back(ring.new_key(now + ahead_s));
    changed = true;
  }
  // keys_ahead keys published ahead, each a rotation after the one before (the first at least
  // `ahead_s` from now, as a memory ring schedules its next key): the fleet keeps sealing under
  // shared keys for that many rotations of a Redis outage.
  std::int64_t newest = INT64_MIN;
  std::size_t ahead = 0;
  for (const tls::ticket_key& k : list.keys) {
    newest = std::max(newest, k.not_before);
    ahead += k.not_before > now ? 1 : 0;
  }
  for (const std::size_t want = std::max(1u, ring.options().keys_ahead); ahead < want; ++ahead) {
    list.keys.push_back(ring.new_key(ring.next_start(newest, now, ahead_s)));
    newest = list.keys.back().not_before;
    changed = true;
  }
  // The list stays bounded however often operators rotate: past kMaxKeys the keys that
  // started first go (tickets under them get a full handshake).
  std::sort(list.keys.begin(), list.keys.end(),
            [](const auto& a, const auto& b) { return a.not_before < b.not_before; });
  if (list.keys.size() > kMaxKeys) {
    list.keys.erase(list.keys.begin(),
                    list.keys.begin() + static_cast<std::ptrdiff_t>(list.keys.size() - kMaxKeys));
    changed = true;
  }
  if (changed) {
    ++list.version;
  }
  return changed;
}

void ticket_key_sync::start() {
  // Read as soon as the connection is ready (at start and after every reconnect: the fleet
  // converges at once), and every poll_interval anyway (a failing read is what marks the list
  // unavailable while Redis is down).
  client_.add_on_ready([this, alive = alive_] {
    if (*alive) {
      poll_now();
    }
  });
  schedule_poll();
}

void ticket_key_sync::poll_now() {
  if (busy_) {
    again_ = true;
    return;
  }
  timer_.cancel();  // its handler sees operation_aborted and does nothing
  poll();
}

void ticket_key_sync::request_rotation() {
  asio::post(ioc_, [this, alive = alive_] {
    if (*alive) {
      rotate_ = true;
      poll_now();
    }
  });
}

void ticket_key_sync::request_purge() {
  asio::post(ioc_, [this, alive = alive_] {
    if (!*alive) {
      return;
    }
    // On this thread, so no poll in flight installs the old list over the new keys: it finds
    // purge_ set and proposes these instead.
    ring_.seed();
    purge_ = true;
    poll_now();
  });
}

void ticket_key_sync::purge_install(std::uint64_t version) {
  asio::post(ioc_, [this, alive = alive_, version] {
    if (!*alive) {
      return;
    }
    purge_install_ = std::max(purge_install_, std::max<std::uint64_t>(version, 1));
    poll_now();
  });
}

void ticket_key_sync::propose_purge(std::uint64_t read_version, std::string expected) {
  key_list mine;
  const std::int64_t held = counters_.version.load(std::memory_order_relaxed);
  mine.version =
      std::max<std::uint64_t>(read_version, held > 0 ? static_cast<std::uint64_t>(held) : 0) + 1;
  const std::int64_t now = ring_.clock().now_s();
  auto snap = ring_.view();
  for (const auto& k : snap->keys) {
    if (!k->local && now < k->not_after) {
      mine.keys.push_back(*k);
    }
  }
  plan(mine, ring_, now, false, ahead_s_);  // a next key if seed() made none (version + 1)
  propose(std::move(mine), std::move(expected), false, true);
}

void ticket_key_sync::schedule_poll() {
  timer_.expires_after(poll_interval_);
  timer_.async_wait([this, alive = alive_](const error_code& ec) {
    if (!*alive || ec || busy_) {
      return;  // cancelled, or a poll started meanwhile (its end schedules the next)
    }
    poll();
  });
}

void ticket_key_sync::poll() {
  busy_ = true;
  counters_.polls.fetch_add(1, std::memory_order_relaxed);
  client_.command({"GET", key_},
                  [this, alive = alive_](const error_code& ec, const redis_reply& r) {
                    if (*alive) {
                      on_read(ec, r);
                    }
                  });
}

void ticket_key_sync::done() {
  busy_ = false;
  if (again_) {
    again_ = false;
    poll();
    return;
  }
  schedule_poll();
}

void ticket_key_sync::on_read(const error_code& ec, const redis_reply& r) {
  if (ec || r.is_error() ||
      (r.type != redis_reply::kind::nil && r.type != redis_reply::kind::string)) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    degrade(ec ? ec.message() : r.is_error() ? r.str : "unexpected reply type");
    done();
    return;
  }
  const std::int64_t now = ring_.clock().now_s();
  if (purge_) {
    // The purge's keys replace the list read (never one that does not open: that falls
    // through to the refusal below, and the purge waits).
    std::uint64_t read_version = 0;
    bool readable = r.type == redis_reply::kind::nil;
    if (r.type == redis_reply::kind::string) {
      std::string plain;
      key_list list;
      if (seal_.open(r.str, key_, plain) == sealer::open_result::ok && decode(plain, list)) {
        read_version = list.version;
        readable = true;
      }
      OPENSSL_cleanse(plain.data(), plain.size());
    }
    if (readable) {
      propose_purge(read_version, r.type == redis_reply::kind::nil ? std::string() : r.str);
      return;
    }
  }
  if (r.type == redis_reply::kind::nil) {
    // No list yet (a new fleet, or it was deleted, or Redis restarted without persistence):
    // propose our own keys, the ones every ticket this instance issued so far is sealed under,
    // numbered after the list this instance installed last (so the version never goes back).
    key_list mine;
    const std::int64_t held = counters_.version.load(std::memory_order_relaxed);
    mine.version = held > 0 ? static_cast<std::uint64_t>(held) + 1 : 1;
    auto snap = ring_.view();
    for (const auto& k : snap->keys) {
      if (!k->local && now < k->not_after) {
        mine.keys.push_back(*k);
      }
    }
    plan(mine, ring_, now, rotate_, ahead_s_);
    propose(std::move(mine), "", rotate_);
    return;
  }
  std::string plain;
  key_list list;
  const sealer::open_result opened = seal_.open(r.str, key_, plain);
  const bool parsed = opened == sealer::open_result::ok && decode(plain, list);
  OPENSSL_cleanse(plain.data(), plain.size());
  if (!parsed) {
    counters_.rejected.fetch_add(1, std::memory_order_relaxed);
    degrade(opened == sealer::open_result::ok
                ? "the ticket key list in Redis does not parse"
                : "the ticket key list in Redis does not open with this fleet secret "
                  "(another fleet's, or altered); delete " +
                      key_ +
                      " to let the fleet write a "
                      "new one");
    done();
    return;
  }
  const bool purging = purge_install_ != 0 && list.version >= purge_install_;
  ring_.install(list.keys, purging);
  ring_.set_fallback(false);
  if (purging) {
    purge_install_ = 0;
    spdlog::warn("fleet: ticket keys purged (list version {}): every other key dropped",
                 list.version);
    if (purge_won_ != 0 && list.version >= purge_won_) {
      purge_won_ = 0;
      if (purged_) {
        purged_(list.version);
      }
    }
  }
  // A list numbered below the one installed before was recreated by an instance that had not
  // seen it (Redis lost the list, and another instance wrote it first): it is written again
  // under the next number, and the version shown stays where it was meanwhile.
  const std::int64_t held = counters_.version.load(std::memory_order_relaxed);
  const bool behind = static_cast<std::int64_t>(list.version) < held;
  counters_.version.store(std::max(held, static_cast<std::int64_t>(list.version)),
                          std::memory_order_relaxed);
  counters_.read_at.store(now, std::memory_order_relaxed);
  counters_.shared.store(true, std::memory_order_relaxed);
  if (logged_degraded_) {
    logged_degraded_ = false;
    spdlog::info("fleet: ticket keys shared again (list version {})", list.version);
  }
  key_list next = list;
  if (behind) {
    next.version = static_cast<std::uint64_t>(held);
  }
  const bool changed = plan(next, ring_, now, rotate_, ahead_s_);  // version + 1 if changed
  if (changed || behind) {
    if (!changed) {
      ++next.version;  // the same keys, numbered after the list installed before
    }
    propose(std::move(next), r.str, rotate_);
    return;
  }
  done();
}

void ticket_key_sync::propose(key_list list, std::string expected, bool rotating, bool purging) {
  const std::uint64_t version = list.version;
  std::string plain = encode(list);
  std::string sealed = seal_.seal(plain, key_);
  OPENSSL_cleanse(plain.data(), plain.size());
  client_.command({"EVAL", kCompareAndSet, "1", key_, std::move(expected), std::move(sealed)},
                  [this, alive = alive_, rotating, purging, version](const error_code& ec,
                                                                     const redis_reply& r) {
                    if (!*alive) {
                      return;
                    }
                    if (ec || r.type != redis_reply::kind::integer) {
                      counters_.errors.fetch_add(1, std::memory_order_relaxed);
                      degrade(ec ? ec.message() : r.is_error() ? r.str : "unexpected reply type");
                      done();
                      return;
                    }
                    (r.integer == 1 ? counters_.added : counters_.conflicts)
                        .fetch_add(1, std::memory_order_relaxed);
                    if (r.integer == 1 && rotating) {
                      rotate_ = false;  // a lost proposal keeps the request for the next one
                    }
                    if (r.integer == 1 && purging) {
                      purge_ = false;  // a lost one proposes again on the next read
                      purge_won_ = version;
                      purge_install_ = std::max(purge_install_, version);
                    }
                    // Won or lost, install only what the store holds now.
                    again_ = true;
                    done();
                  });
}

void ticket_key_sync::degrade(const std::string& why) {
  ring_.set_fallback(true);
  counters_.shared.store(false, std::memory_order_relaxed);
  if (!logged_degraded_) {
    logged_degraded_ = true;
    spdlog::warn(
        "fleet: ticket key list unavailable ({}); keeping the keys held and making local ones "
        "when they run out",
        why);
  }
}

}  // namespace tlsfront::cluster
