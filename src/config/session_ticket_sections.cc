#include <openssl/mem.h>

#include <string>
#include <vector>

#include "config/reader.h"
#include "tls/ticket_key_ring.h"

namespace tlsfront::config::detail {

// [session_cache]: the TLS 1.2 session-ID cache. `capacity` is a number of entries (integer)
// or a memory size (string such as "64m"), converted with the per-entry cost of slot_bytes.
void reader::read_session_cache(const toml::table& t, proxy::server_options& out) {
  check_keys(t, "session_cache", {"enabled", "capacity", "timeout", "shards", "slot_bytes"});
  optional_key(t, "enabled", out.session_cache_enabled,
               [](const toml::node& n) { return as_bool(n, "enabled"); });
  cache::session_cache_options& c = out.session_cache;
  optional_size(t, "slot_bytes", 64, cache::session_cache::max_slot_bytes, c.slot_bytes);
  optional_integer(t, "shards", 1, 4096, c.shards);
  if (const toml::node* n = t.get("capacity")) {
    if (n->is_integer()) {
      c.capacity = static_cast<std::size_t>(as_integer(*n, "capacity", 1, 1ll << 32));
    } else {
      std::uint64_t bytes = as_size(*n, "capacity", 1, std::uint64_t{1} << 40);
      c.capacity =
          static_cast<std::size_t>(bytes / cache::session_cache::bytes_per_entry(c.slot_bytes));
      if (c.capacity == 0) {
        fail(*n, "'capacity' is smaller than one entry (" +
                     std::to_string(cache::session_cache::bytes_per_entry(c.slot_bytes)) +
                     " bytes with this slot_bytes)");
      }
    }
  }
  if (const toml::node* n = t.get("timeout")) {
    milliseconds d = as_duration(*n, "timeout");
    if (d < std::chrono::seconds(1) || d > std::chrono::hours(24 * 7)) {
      fail(*n, "'timeout' must be between 1s and 7d");
    }
    session_timeout_ = std::chrono::duration_cast<std::chrono::seconds>(d);
  }
}

// [tickets]: session-ticket keys shared by every listener with session_tickets on.
void reader::read_tickets(const toml::table& t, tls::ticket_key_options& out) {
  check_keys(t, "tickets",
             {"source", "files", "rotation", "publish_ahead", "lifetime", "tls13_tickets"});
  const toml::node* source = t.get("source");
  if (source != nullptr) {
    std::string v = as_string(*source, "source");
    if (v == "memory") {
      out.source = tls::ticket_key_options::source_kind::memory;
    } else if (v == "file") {
      out.source = tls::ticket_key_options::source_kind::file;
    } else if (v == "redis") {
      out.source = tls::ticket_key_options::source_kind::fleet;
    } else {
      fail(*source, "'source' must be \"memory\", \"file\" or \"redis\"");
    }
    tickets_source_ = source;
  }
  const bool from_files = out.source == tls::ticket_key_options::source_kind::file;
  if (const toml::node* n = t.get("files")) {
    if (!from_files) {
      fail(*n, "'files' needs source = \"file\"");
    }
    for_each_string(*n, "files", [&](const toml::node& e, const std::string& f) {
      if (f.empty()) {
        fail(e, "a ticket key file name is empty");
      }
      out.files.push_back(resolve(f));
      std::vector<tls::ticket_key> keys;
      std::string bytes = read_whole_file(out.files.back(), e, "ticket key file");
      std::string error;
      bool ok = tls::ticket_key_ring::parse_key_file(bytes, keys, error);
      OPENSSL_cleanse(bytes.data(), bytes.size());  // key material: never left in memory
      if (!ok) {
        fail(e, out.files.back() + ": " + error);
      }
    });
  } else if (from_files) {
    fail(*source, "source = \"file\" needs 'files', a list of key files");
  }
  if (from_files && out.files.empty()) {
    fail(*t.get("files"), "'files' must name at least one key file");
  }
  auto seconds = [&](std::string_view key, std::chrono::seconds& field) {
    if (const toml::node* n = t.get(key)) {
      milliseconds d = as_duration(*n, key);
      if (d < std::chrono::seconds(1)) {
        fail(*n, single_quoted(key) + " must be at least 1s");
      }
      field = std::chrono::duration_cast<std::chrono::seconds>(d);
    }
  };
  seconds("rotation", out.rotation);
  seconds("publish_ahead", out.publish_ahead);
  seconds("lifetime", out.lifetime);
  if (const toml::node* n = t.get("lifetime")) {
    if (out.lifetime > std::chrono::hours(24 * 7)) {
      fail(*n, "'lifetime' must be at most 7d (RFC 8446 section 4.6.1)");
    }
    if (!from_files && out.lifetime > out.rotation) {
      fail(*n,
           "'lifetime' must not exceed 'rotation': a ticket may live at most half of its "
           "key's validity (rotation + lifetime), RFC 9325 section 3.4");
    }
  } else if (!from_files && out.lifetime > out.rotation) {
    out.lifetime = out.rotation;  // keep the default within the rule for short rotations
  }
  if (const toml::node* n = t.get("publish_ahead");
      n != nullptr && out.publish_ahead > out.rotation) {
    fail(*n, "'publish_ahead' must not exceed 'rotation'");
  }
  optional_integer(t, "tls13_tickets", 0, 8, out.tls13_tickets);
}

// With [cluster] the ticket keys are the fleet's unless [tickets] says otherwise; "redis"
// without [cluster] has no fleet to share with.
void reader::check_ticket_source(const toml::table& root, proxy::server_options& s) {
  using kind = tls::ticket_key_options::source_kind;
  if (tickets_source_ == nullptr && s.cluster) {
    s.tickets.source = kind::fleet;
  }
  if (s.tickets.source != kind::fleet) {
    return;
  }
  if (!s.cluster) {
    fail(*tickets_source_, "source = \"redis\" needs a [cluster] section");
  }
  const auto ahead = std::chrono::ceil<std::chrono::seconds>(2 * s.cluster->poll_interval);
  if (s.tickets.publish_ahead < ahead) {
    const toml::node* at = root.get("tickets") != nullptr
                               ? root.get("tickets")->as_table()->get("publish_ahead")
                               : nullptr;
    if (at != nullptr) {
      fail(*at, "'publish_ahead' must be at least two [cluster] poll intervals (" +
                    std::to_string(ahead.count()) +
                    "s): every instance must read a key before it seals");
    }
    s.tickets.publish_ahead = ahead;  // the default, raised to what the poll interval needs
  }
}

}  // namespace tlsfront::config::detail
