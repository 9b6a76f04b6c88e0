#include "cluster/revocation.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <charconv>

#include "cache/revoked_handles.h"
#include "cluster/session_store.h"
#include "core/hex.h"
#include "tls/remote_session_store.h"

namespace tlsfront::cluster {
namespace {

// REVOKE(KEYS: zset, gone, floor; ARGV: handle hex, expiry ms, now ms, capacity, channel,
// marker ttl ms). Drops expired members, adds the handle (keeping the later expiry), evicts
// past the capacity (raising the floor past the evicted generations), keeps the keys alive as
// long as their last member, publishes "h:<hex>" (and "F:<gen>" when the floor moved).
constexpr const char* kRevokeScript = R"lua(
local z, g, f = KEYS[1], KEYS[2], KEYS[3]
local gone = redis.call('ZREMRANGEBYSCORE', z, '-inf', '(' .. ARGV[3])
local old = redis.call('ZSCORE', z, ARGV[1])
if (not old) or tonumber(old) < tonumber(ARGV[2]) then
  redis.call('ZADD', z, ARGV[2], ARGV[1])
  if old then gone = gone + 1 end  -- moved later: a paging reader steps back for it
end
local n = redis.call('ZCARD', z)
local cap = tonumber(ARGV[4])
local floor = 0
if n > cap then
  local popped = redis.call('ZPOPMIN', z, n - cap)
  for i = 1, #popped, 2 do
    local gen = tonumber(string.sub(popped[i], 1, 6), 16) + 1
    if gen > floor then floor = gen end
  end
  gone = gone + (n - cap)
end
if gone > 0 then redis.call('INCRBY', g, gone) end
local top = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
if top[2] then
  redis.call('PEXPIREAT', z, top[2])
  redis.call('PEXPIREAT', g, top[2])
end
redis.call('PUBLISH', ARGV[5], 'h:' .. ARGV[1])
if floor > 0 then
  local cur = tonumber(redis.call('GET', f) or '0') or 0
  if floor > cur then redis.call('SET', f, floor, 'PX', ARGV[6]) end
  redis.call('PUBLISH', ARGV[5], 'F:' .. floor)
end
return 1
)lua";

// MARK(KEYS: k1..kn; ARGV: ttl ms, channel, message, v1..vn): raises each key to its value
// (never lowers it), then publishes the message.
constexpr const char* kMarkScript = R"lua(
for i = 1, #KEYS do
  local v = tonumber(ARGV[3 + i])
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
  if v > cur then redis.call('SET', KEYS[i], ARGV[3 + i], 'PX', ARGV[1]) end
end
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
)lua";

// RESYNC(KEYS: zset, gone, floor, flush, purge generation, purge key list; ARGV: from ms,
// offset, count): {gone, floor, flush, purge generation, purge key list, members...} — one
// page of the handles still live at `from`, with the markers.
constexpr const char* kResyncScript = R"lua(
local out = {}
for i = 2, 6 do
  out[#out + 1] = tonumber(redis.call('GET', KEYS[i]) or '0') or 0
end
local m = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf', 'LIMIT', ARGV[2], ARGV[3])
for i = 1, #m do out[#out + 1] = m[i] end
return out
)lua";

constexpr std::size_t kHeader = 5;     // RESYNC's values before the members
constexpr std::int64_t kPage = 20000;  // members per read-back page (< kMaxReplyElements)
constexpr auto kRetry = std::chrono::seconds(1);

template <typename T>
bool parse_number(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

// A Redis glob pattern matching `literal` exactly.
std::string glob_escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') {
      out.push_back('\\');
    }
    out.push_back(c);
  }
  return out;
}

std::string handle_hex(std::uint64_t h) {
  char hex[16];
  tls::format_handle(h, hex);
  return std::string(hex, sizeof hex);
}

}  // namespace

std::vector<std::vector<std::string>> revocation_commands(
    std::string_view key_prefix, const std::vector<std::uint64_t>& context_ids,
    std::string_view session_id) {
  std::vector<std::string> del = {"DEL"};
  for (std::uint64_t ctx : context_ids) {
    del.push_back(session_store::redis_key(key_prefix, tls::remote_session_key(ctx, session_id)));
  }
  std::vector<std::string> pub = {"PUBLISH", session_store::revoke_channel(key_prefix),
                                  core::to_hex(session_id)};
  return {std::move(del), std::move(pub)};
}

std::optional<fleet_message> parse_fleet_message(std::string_view p) {
  fleet_message m;
  if (p.size() >= 2 && p[1] == ':') {
    const std::string_view v = p.substr(2);
    switch (p[0]) {
      case 'h':
        m.type = fleet_message::kind::handle;
        if (!tls::parse_handle(v, m.handle)) {
          return std::nullopt;
        }
        return m;
      case 'F':
        m.type = fleet_message::kind::floor;
        if (!parse_number(v, m.floor) || m.floor == 0) {
          return std::nullopt;
        }
        return m;
      case 'f':
        m.type = fleet_message::kind::flush;
        if (!parse_number(v, m.flush_s) || m.flush_s <= 0) {
          return std::nullopt;
        }
        return m;
      case 'p': {
        m.type = fleet_message::kind::purge;
        const std::size_t a = v.find(':');
        const std::size_t b = a == std::string_view::npos ? a : v.find(':', a + 1);
        if (b == std::string_view::npos || !parse_number(v.substr(0, a), m.floor) ||
            !parse_number(v.substr(a + 1, b - a - 1), m.flush_s) ||
            !parse_number(v.substr(b + 1), m.keys_version) || m.floor == 0 || m.flush_s <= 0) {
          return std::nullopt;
        }
        return m;
      }
      default:
        return std::nullopt;
    }
  }
  auto id = core::from_hex(p);
  if (!id || id->empty()) {
    return std::nullopt;
  }
  m.type = fleet_message::kind::session_id;
  m.session_id = std::move(*id);
  return m;
}

std::string format_fleet_message(const fleet_message& m) {
  switch (m.type) {
    case fleet_message::kind::handle:
      return "h:" + handle_hex(m.handle);
    case fleet_message::kind::floor:
      return "F:" + std::to_string(m.floor);
    case fleet_message::kind::flush:
      return "f:" + std::to_string(m.flush_s);
    case fleet_message::kind::purge:
      return "p:" + std::to_string(m.floor) + ":" + std::to_string(m.flush_s) + ":" +
             std::to_string(m.keys_version);
    case fleet_message::kind::session_id:
      break;
  }
  return core::to_hex(m.session_id);
}

const char* to_string(fleet_ack a) noexcept {
  switch (a) {
    case fleet_ack::accepted:
      return "accepted";
    case fleet_ack::queued:
      return "queued";
    case fleet_ack::unavailable:
      break;
  }
  return "unavailable";
}

revocation_sync::revocation_sync(asio::io_context& ioc, redis_client& client,
                                 redis_client& subscriber, tls::resumption_guard& guard,
                                 std::string key_prefix, std::size_t capacity,
                                 std::chrono::seconds marker_ttl, revocation_hooks hooks)
    : ioc_(ioc),
      client_(client),
      subscriber_(subscriber),
      guard_(guard),
      prefix_(std::move(key_prefix)),
      channel_(session_store::revoke_channel(prefix_)),
      capacity_(std::max<std::size_t>(capacity, 1)),
      marker_ttl_(marker_ttl),
      hooks_(std::move(hooks)),
      retry_(ioc) {}

revocation_sync::~revocation_sync() {
  *alive_ = false;
}

void revocation_sync::start() {
  subscriber_.subscribe(
      channel_,
      [this, alive = alive_](const std::string& payload) {
        if (!*alive) {
          return;
        }
        if (auto m = parse_fleet_message(payload)) {
          apply(*m, true);
        }
      },
      [this, alive = alive_] {
        if (*alive) {
          resync();
        }
      });
  client_.add_on_ready([this, alive = alive_] {
    if (*alive) {
      pump();
    }
  });
}

std::int64_t revocation_sync::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void revocation_sync::revoke_handle(std::uint64_t h, ack done) {
  entry e;
  e.msg.type = fleet_message::kind::handle;
  e.msg.handle = h;
  // A function of the handle alone: a revocation written again never moves its member (a
  // read-back paging through the set would skip one).
  e.expiry_ms = guard_.expires_at_s(h) * 1000;
  e.done = std::move(done);
  post_entry(std::move(e));
}

void revocation_sync::raise_floor(std::uint32_t gen, ack done) {
  entry e;
  e.msg.type = fleet_message::kind::floor;
  e.msg.floor = gen;
  e.done = std::move(done);
  post_entry(std::move(e));
}

void revocation_sync::flush(std::int64_t unix_s, ack done) {
  entry e;
  e.msg.type = fleet_message::kind::flush;
  e.msg.flush_s = unix_s;
  e.done = std::move(done);
  post_entry(std::move(e));
}

void revocation_sync::purge(std::uint32_t gen, std::int64_t unix_s, std::uint64_t keys_version,
                            ack done) {
  entry e;
  e.msg.type = fleet_message::kind::purge;
  e.msg.floor = gen;
  e.msg.flush_s = unix_s;
  e.msg.keys_version = keys_version;
  e.done = std::move(done);
  post_entry(std::move(e));
}

void revocation_sync::post_entry(entry e) {
  asio::post(ioc_, [this, alive = alive_, e = std::move(e)]() mutable {
    if (!*alive) {
      return;
    }
    if (e.msg.type == fleet_message::kind::flush) {
      last_flush_s_ = std::max(last_flush_s_, e.msg.flush_s);  // applied here by the caller
    }
    enqueue(std::move(e));
  });
}

void revocation_sync::enqueue(entry e) {
  if (client_.ready() && queue_.empty() && folded_floor_ == 0) {
    send(std::move(e));
    return;
  }
  if (e.done) {
    e.done(fleet_ack::queued, 0);
    e.done = nullptr;
  }
  // Bounded: past the capacity the oldest handle (or floor) entries become one floor raise
  // (fail closed: every session of their generation or older is refused fleet-wide once it is
  // written). Flush and purge entries are an operator's few calls: they stay.
  while (queue_.size() >= capacity_) {
    auto it = std::find_if(queue_.begin(), queue_.end(), [](const entry& q) {
      return q.msg.type == fleet_message::kind::handle || q.msg.type == fleet_message::kind::floor;
    });
    if (it == queue_.end()) {
      break;
    }
    const std::uint32_t gen = it->msg.type == fleet_message::kind::handle
                                  ? cache::handle_generation(it->msg.handle) + 1
                                  : it->msg.floor;
    folded_floor_ = std::max(folded_floor_, gen);
    queue_.erase(it);
  }
  queue_.push_back(std::move(e));
  queued_.store(queue_.size(), std::memory_order_relaxed);
}

void revocation_sync::pump() {
  if (!client_.ready()) {
    return;
  }
  if (folded_floor_ != 0) {
    entry f;
    f.msg.type = fleet_message::kind::floor;
    f.msg.floor = folded_floor_;
    folded_floor_ = 0;
    send(std::move(f));
  }
  std::deque<entry> batch;
  batch.swap(queue_);
  queued_.store(0, std::memory_order_relaxed);
  if (!batch.empty()) {
    spdlog::info("fleet: writing {} queued revocation(s)", batch.size());
  }
  for (entry& e : batch) {
    send(std::move(e));  // pipelined on the one connection
  }
  if (resync_wanted_) {
    resync();
  }
}

void revocation_sync::send(entry e) {
  const std::string ttl = std::to_string(marker_ttl_.count() * 1000);
  const std::string message = format_fleet_message(e.msg);
  std::vector<std::string> argv;
  switch (e.msg.type) {
    case fleet_message::kind::handle:
      argv = {"EVAL",
              kRevokeScript,
              "3",
              zset_key(),
              prefix_ + "{rv}:gone",
              floor_key(),
              handle_hex(e.msg.handle),
              std::to_string(e.expiry_ms),
              std::to_string(now_ms()),
              std::to_string(capacity_),
              channel_,
              ttl};
      break;
    case fleet_message::kind::floor:
      argv = {"EVAL", kMarkScript, "1",     floor_key(),
              ttl,    channel_,    message, std::to_string(e.msg.floor)};
      break;
    case fleet_message::kind::flush:
      argv = {"EVAL", kMarkScript, "1",     flush_key(),
              ttl,    channel_,    message, std::to_string(e.msg.flush_s)};
      break;
    case fleet_message::kind::purge:
      // The purge's markers too: an instance that misses the message completes the purge
      // (cache, ticket keys) from its read-back.
      argv = {"EVAL",
              kMarkScript,
              "3",
              floor_key(),
              prefix_ + "{rv}:purge",
              prefix_ + "{rv}:purge_keys",
              ttl,
              channel_,
              message,
              std::to_string(e.msg.floor),
              std::to_string(e.msg.floor),
              std::to_string(e.msg.keys_version)};
      break;
    case fleet_message::kind::session_id:
      return;  // revoke_id()
  }
  client_.command(std::move(argv), [this, alive = alive_, e = std::move(e)](
                                       const error_code& ec, const redis_reply& r) mutable {
    if (!*alive) {
      return;
    }
    if (ec || r.type != redis_reply::kind::integer) {
      failed(std::move(e), ec ? ec.message() : r.is_error() ? r.str : "unexpected reply type");
      return;
    }
    if (e.done) {
      e.done(fleet_ack::accepted, 0);
    }
  });
}

void revocation_sync::failed(entry e, const std::string& why) {
  if (errors_.fetch_add(1, std::memory_order_relaxed) == 0 || queue_.empty()) {
    spdlog::warn("fleet: revocation not written ({}); queued, retried when Redis answers", why);
  }
  if (e.done) {
    e.done(fleet_ack::queued, 0);
    e.done = nullptr;
  }
  queue_.push_back(std::move(e));
  queued_.store(queue_.size(), std::memory_order_relaxed);
  arm_retry();
}

void revocation_sync::arm_retry() {
  if (retry_armed_) {
    return;
  }
  retry_armed_ = true;
  retry_.expires_after(kRetry);
  retry_.async_wait([this, alive = alive_](const error_code& ec) {
    if (!*alive) {
      return;
    }
    retry_armed_ = false;
    if (!ec) {
      pump();
      if (!queue_.empty() || resync_wanted_) {
        arm_retry();
      }
    }
  });
}

void revocation_sync::apply(const fleet_message& m, bool from_channel) {
  switch (m.type) {
    case fleet_message::kind::handle:
      guard_.revoke(m.handle);
      break;
    case fleet_message::kind::floor:
      guard_.set().raise_floor(m.floor);
      break;
    case fleet_message::kind::flush:
      if (m.flush_s > last_flush_s_) {
        last_flush_s_ = m.flush_s;
        if (hooks_.flushed) {
          hooks_.flushed(m.flush_s);
        }
      }
      break;
    case fleet_message::kind::purge:
      // The floor refuses every session-ID entry too (they carry their handle): no flush.
      guard_.set().raise_floor(m.floor);
      if (hooks_.purged) {
        hooks_.purged(m.floor, m.keys_version);
      }
      break;
    case fleet_message::kind::session_id:
      if (hooks_.drop_id) {
        const std::size_t local = hooks_.drop_id(m.session_id);
        spdlog::info("fleet: session {} revoked ({} local entries)", core::to_hex(m.session_id),
                     local);
      }
      break;
  }
  if (from_channel) {
    received_.fetch_add(1, std::memory_order_relaxed);
  }
}

void revocation_sync::resync() {
  if (!client_.ready()) {
    resync_wanted_ = true;  // the command connection's ready runs it
    return;
  }
  if (resyncing_) {
    resync_wanted_ = true;  // again once the one in flight ends (a later snapshot)
    return;
  }
  resync_wanted_ = false;
  resyncing_ = true;
  resyncs_.fetch_add(1, std::memory_order_relaxed);
  // One lower bound for every page: members below it were removed (and counted in :gone) or
  // were never in range, so offsets only shift by removals.
  read_page(page{0, -1, now_ms(), true});
}

void revocation_sync::read_page(page at) {
  if (!client_.ready()) {
    resyncing_ = false;
    resync_wanted_ = true;  // from the start once the connection is ready again
    return;
  }
  client_.command({"EVAL", kResyncScript, "6", zset_key(), prefix_ + "{rv}:gone", floor_key(),
                   flush_key(), prefix_ + "{rv}:purge", prefix_ + "{rv}:purge_keys",
                   std::to_string(at.from_ms), std::to_string(at.offset), std::to_string(kPage)},
                  [this, alive = alive_, at](const error_code& ec, const redis_reply& r) {
                    if (!*alive) {
                      return;
                    }
                    if (ec || r.type != redis_reply::kind::array || r.elements.size() < kHeader) {
                      errors_.fetch_add(1, std::memory_order_relaxed);
                      spdlog::warn("fleet: revocation read-back failed ({}); retrying",
                                   ec             ? ec.message()
                                   : r.is_error() ? r.str
                                                  : "bad reply");
                      resyncing_ = false;
                      resync_wanted_ = true;
                      arm_retry();
                      return;
                    }
                    on_page(r, at);
                  });
}

void revocation_sync::on_page(const redis_reply& r, page at) {
  const long long gone = r.elements[0].integer;
  if (at.first) {
    fleet_message f;
    f.type = fleet_message::kind::floor;
    f.floor = static_cast<std::uint32_t>(std::max<long long>(r.elements[1].integer, 0));
    if (f.floor != 0) {
      apply(f, false);
    }
    fleet_message fl;
    fl.type = fleet_message::kind::flush;
    fl.flush_s = r.elements[2].integer;
    if (fl.flush_s > 0) {
      apply(fl, false);
    }
    fleet_message pu;
    pu.type = fleet_message::kind::purge;
    pu.floor = static_cast<std::uint32_t>(std::max<long long>(r.elements[3].integer, 0));
    pu.keys_version = static_cast<std::uint64_t>(std::max<long long>(r.elements[4].integer, 0));
    if (pu.floor != 0) {
      apply(pu, false);  // the hook applies a purge (and its key list) once
    }
  }
  std::int64_t got = 0;
  for (std::size_t i = kHeader; i < r.elements.size(); ++i) {
    std::uint64_t h = 0;
    if (r.elements[i].type == redis_reply::kind::string &&
        tls::parse_handle(r.elements[i].str, h)) {
      guard_.revoke(h);
      ++got;
    }
  }
  resynced_.fetch_add(static_cast<std::uint64_t>(got), std::memory_order_relaxed);
  const std::int64_t members = static_cast<std::int64_t>(r.elements.size() - kHeader);
  if (members < kPage) {
    resyncing_ = false;
    if (resync_wanted_) {
      resync();
    }
    return;
  }
  // Members removed meanwhile (expired, evicted or moved: always before what this read has
  // reached, or counted as if) shift the rest down: step back by as many. Removals among the
  // unread ones make it re-read a few, which is harmless.
  const long long removed = at.first ? 0 : std::max<long long>(gone - at.gone_before, 0);
  read_page(
      page{std::max<std::int64_t>(at.offset + members - removed, 0), gone, at.from_ms, false});
}

void revocation_sync::revoke_id(std::vector<std::vector<std::string>> commands, ack done) {
  asio::post(ioc_, [this, alive = alive_, commands = std::move(commands),
                    done = std::move(done)]() mutable {
    if (!*alive) {
      return;
    }
    if (!client_.ready() || commands.size() != 2) {
      if (done) {
        done(fleet_ack::unavailable, 0);
      }
      return;
    }
    // The copies are gone before any instance hears of it: the PUBLISH goes out once the DEL
    // is answered (on a Redis Cluster they go to different nodes, so the order of one
    // connection is not enough).
    auto pub = std::make_shared<std::vector<std::string>>(std::move(commands[1]));
    client_.command(std::move(commands[0]), [this, alive = alive_, pub, done = std::move(done)](
                                                const error_code& ec, const redis_reply& r) {
      if (!*alive) {
        return;
      }
      const bool deleted_ok = !ec && r.type == redis_reply::kind::integer;
      if (!deleted_ok) {
        errors_.fetch_add(1, std::memory_order_relaxed);
        spdlog::warn("fleet revocation: DEL failed: {}", ec ? ec.message() : r.str);
      }
      const long long deleted = deleted_ok ? r.integer : -1;
      client_.command(std::move(*pub), [this, alive, deleted, done = std::move(done)](
                                           const error_code& ec2, const redis_reply& r2) {
        if (!*alive) {
          return;
        }
        const bool published = !ec2 && r2.type == redis_reply::kind::integer;
        if (!published) {
          errors_.fetch_add(1, std::memory_order_relaxed);
          spdlog::warn("fleet revocation: PUBLISH failed: {}", ec2 ? ec2.message() : r2.str);
        }
        const bool ok = published && deleted >= 0;
        if (done) {
          done(ok ? fleet_ack::accepted : fleet_ack::unavailable, std::max<long long>(deleted, 0));
        }
      });
    });
  });
}

void revocation_sync::unlink_sessions() {
  asio::post(ioc_, [this, alive = alive_] {
    if (*alive) {
      unlink_batch(client_.masters(), 0, "0", 0);
    }
  });
}

void revocation_sync::unlink_batch(std::vector<redis_endpoint> masters, std::size_t at,
                                   std::string cursor, std::uint64_t deleted) {
  if (!client_.ready() || masters.empty()) {
    spdlog::warn(
        "fleet: Redis unreachable: {} session entries deleted, the rest stay until "
        "their TTL (refused anyway)",
        deleted);
    return;
  }
  const redis_endpoint node = masters[at];
  client_.command_at(
      node, {"SCAN", cursor, "MATCH", glob_escape(prefix_) + "s:*", "COUNT", "1000"},
      [this, alive = alive_, masters = std::move(masters), at, deleted, node](
          const error_code& ec, const redis_reply& r) mutable {
        if (!*alive) {
          return;
        }
        if (ec || r.type != redis_reply::kind::array || r.elements.size() != 2 ||
            r.elements[1].type != redis_reply::kind::array) {
          spdlog::warn(
              "fleet: deleting session entries on {} stopped ({}); the rest there stay until "
              "their TTL (refused anyway)",
              node.str(),
              ec             ? ec.message()
              : r.is_error() ? r.str
                             : "bad SCAN reply");
          if (at + 1 < masters.size()) {
            unlink_batch(std::move(masters), at + 1, "0", deleted);  // the other masters still
          }
          return;
        }
        std::string next = r.elements[0].str;
        // Several slots on a cluster's node: the client splits the UNLINK per slot.
        std::vector<std::string> unlink = {"UNLINK"};
        for (const redis_reply& k : r.elements[1].elements) {
          unlink.push_back(k.str);
        }
        const std::uint64_t batch = unlink.size() - 1;
        auto go_on = [this, alive, next, deleted, batch, masters = std::move(masters),
                      at]() mutable {
          if (!*alive) {
            return;
          }
          if (next == "0") {
            if (at + 1 < masters.size()) {
              unlink_batch(std::move(masters), at + 1, "0", deleted + batch);
              return;
            }
            spdlog::info("fleet: {} session entries deleted from Redis", deleted + batch);
            return;
          }
          unlink_batch(std::move(masters), at, next, deleted + batch);
        };
        if (batch == 0) {
          go_on();
          return;
        }
        client_.command(
            std::move(unlink),
            [go_on = std::move(go_on)](const error_code&, const redis_reply&) mutable { go_on(); });
      });
}

void revocation_sync::register_metrics(core::metrics_registry& metrics) const {
  metrics.add_counter_fn("tlsfront_fleet_revocations_received_total",
                         "Revocations (session IDs, handles, floors, flushes, purges) received "
                         "from the fleet channel",
                         "", [this] { return static_cast<double>(received()); });
  metrics.add_gauge_fn("tlsfront_fleet_revocations_queued",
                       "Revocations waiting for Redis (enforced here already; written when it "
                       "answers)",
                       "", [this] { return static_cast<double>(queued()); });
  metrics.add_counter_fn("tlsfront_fleet_revocation_errors_total",
                         "Revocation writes or read-backs Redis did not accept (retried)", "",
                         [this] { return static_cast<double>(errors()); });
  metrics.add_counter_fn("tlsfront_fleet_revocation_resyncs_total",
                         "Read-backs of the fleet's revocations (at start and whenever the "
                         "subscription came back)",
                         "", [this] { return static_cast<double>(resyncs()); });
  metrics.add_counter_fn("tlsfront_fleet_revoked_handles_read_total",
                         "Revoked handles read back from Redis", "",
                         [this] { return static_cast<double>(resynced()); });
}

}  // namespace tlsfront::cluster
