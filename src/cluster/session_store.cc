#include "cluster/session_store.h"

#include "core/hex.h"

namespace tlsfront::cluster {

session_store::session_store(redis_client& client, const sealer& seal, std::string key_prefix,
                             std::size_t max_pending_writes, std::size_t queue_capacity)
    : client_(client),
      seal_(seal),
      prefix_(std::move(key_prefix)),
      max_pending_(max_pending_writes),
      queue_capacity_(queue_capacity) {
  client_.add_on_ready([this, alive = alive_] {
    if (*alive) {
      flush();
    }
  });
}

session_store::~session_store() {
  *alive_ = false;
}

std::string session_store::redis_key(std::string_view prefix, std::string_view key) {
  return std::string(prefix) + "s:" + core::to_hex(key);
}

std::string session_store::revoke_channel(std::string_view prefix) {
  return std::string(prefix) + "revoke";
}

void session_store::put(std::string_view key, std::string_view session, std::chrono::seconds ttl) {
  if (ttl.count() <= 0) {
    counters_.dropped_writes.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::string k = redis_key(prefix_, key);
  std::string sealed = seal_.seal(session, k);
  if (sealed.empty()) {
    counters_.errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (client_.ready() && queue_.empty() && pending_writes_ < max_pending_) {
    send(std::move(k), std::move(sealed), ttl);
    return;
  }
  enqueue({std::move(k), std::move(sealed), std::chrono::steady_clock::now() + ttl});
}

void session_store::enqueue(queued_write w) {
  if (queue_capacity_ == 0) {
    counters_.dropped_writes.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  while (queue_.size() >= queue_capacity_) {
    queue_.pop_front();  // the oldest first: it has the least life left to share
    counters_.dropped_writes.fetch_add(1, std::memory_order_relaxed);
  }
  queue_.push_back(std::move(w));
  counters_.queued.store(queue_.size(), std::memory_order_relaxed);
}

void session_store::flush() {
  const auto now = std::chrono::steady_clock::now();
  while (!queue_.empty() && client_.ready() && pending_writes_ < max_pending_) {
    queued_write w = std::move(queue_.front());
    queue_.pop_front();
    // Whole milliseconds left, at least one: Redis refuses PX 0.
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(w.expires - now);
    if (left.count() <= 0) {
      counters_.expired_writes.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    send(std::move(w.key), std::move(w.sealed), left);
  }
  counters_.queued.store(queue_.size(), std::memory_order_relaxed);
}

void session_store::send(std::string key, std::string sealed, std::chrono::milliseconds ttl) {
  ++pending_writes_;
  counters_.writes.fetch_add(1, std::memory_order_relaxed);
  client_.command({"SET", std::move(key), std::move(sealed), "PX", std::to_string(ttl.count())},
                  [this, alive = alive_](const error_code& ec, const redis_reply& r) {
                    if (!*alive) {
                      return;
                    }
                    --pending_writes_;
                    if (ec || !r.is_ok()) {
                      counters_.errors.fetch_add(1, std::memory_order_relaxed);
                    }
                    if (!queue_.empty()) {
                      flush();  // room in flight again (a no-op while not ready)
                    }
                  });
}

void session_store::get(std::string_view key, std::function<void(std::string)> done) {
  counters_.lookups.fetch_add(1, std::memory_order_relaxed);
  std::string k = redis_key(prefix_, key);
  client_.command({"GET", k}, [this, alive = alive_, k, done = std::move(done)](
                                  const error_code& ec, const redis_reply& r) {
    if (!*alive) {
      done({});
      return;
    }
    std::string plain;
    switch (open_reply(seal_, k, ec, r, plain)) {
      case lookup_outcome::error:
        counters_.errors.fetch_add(1, std::memory_order_relaxed);
        break;
      case lookup_outcome::miss:
        counters_.misses.fetch_add(1, std::memory_order_relaxed);
        break;
      case lookup_outcome::rejected:
        counters_.rejected.fetch_add(1, std::memory_order_relaxed);  // tampered or foreign
        break;
      case lookup_outcome::hit:
        counters_.hits.fetch_add(1, std::memory_order_relaxed);
        done(std::move(plain));
        return;
    }
    done({});
  });
}

std::string session_store::early_key(std::string_view prefix, std::string_view id) {
  return std::string(prefix) + "e:" + core::to_hex(id);
}

void session_store::claim_once(std::string_view id, std::chrono::milliseconds ttl,
                               std::function<void(tls::claim_answer)> done) {
  counters_.claims.fetch_add(1, std::memory_order_relaxed);
  // Not ready: the command fails at once (later, never inside this call), which is fail closed.
  client_.command(
      {"SET", early_key(prefix_, id), "1", "NX", "PX",
       std::to_string(std::max<std::int64_t>(1, ttl.count()))},
      [this, alive = alive_, done = std::move(done)](const error_code& ec, const redis_reply& r) {
        const tls::claim_answer a = claim_reply(ec, r);
        if (*alive && a == tls::claim_answer::unavailable) {
          counters_.errors.fetch_add(1, std::memory_order_relaxed);
        }
        done(a);
      });
}

tls::claim_answer session_store::claim_reply(const error_code& ec, const redis_reply& r) {
  if (ec) {
    return tls::claim_answer::unavailable;
  }
  if (r.is_ok()) {
    return tls::claim_answer::first;
  }
  // SET NX answers nil when the key exists; anything else (an error, a proxy's odd reply) is
  // no proof either way.
  return r.type == redis_reply::kind::nil ? tls::claim_answer::replayed
                                          : tls::claim_answer::unavailable;
}

session_store::lookup_outcome session_store::open_reply(const sealer& seal,
                                                        std::string_view redis_key,
                                                        const error_code& ec, const redis_reply& r,
                                                        std::string& session) {
  if (ec || r.type == redis_reply::kind::error) {
    return lookup_outcome::error;
  }
  if (r.type == redis_reply::kind::nil) {
    return lookup_outcome::miss;
  }
  if (r.type != redis_reply::kind::string ||
      seal.open(r.str, redis_key, session) != sealer::open_result::ok) {
    session.clear();
    return lookup_outcome::rejected;
  }
  return lookup_outcome::hit;
}

}  // namespace tlsfront::cluster
