#include <openssl/mem.h>

#include <algorithm>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "config/reader.h"
#include "http/message_parser.h"
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
             {"source", "files", "rotation", "publish_ahead", "keys_ahead", "lifetime",
              "tls13_tickets", "early_data_strikes"});
  if (const toml::node* n = t.get("early_data_strikes")) {
    out.early_data_strikes =
        static_cast<std::size_t>(as_integer(*n, "early_data_strikes", 16, 100'000'000));
  }
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
  optional_integer(t, "keys_ahead", 1, 16, out.keys_ahead);
}

// With [cluster] the ticket keys are the fleet's unless [tickets] says otherwise; "redis"
// without [cluster] has no fleet to share with.
void reader::check_ticket_source(const toml::table& root, proxy::server_options& s) {
  using kind = tls::ticket_key_options::source_kind;
  if (tickets_source_ == nullptr && s.cluster) {
    s.tickets.source = kind::fleet;
  }
  const toml::node* tickets = root.get("tickets");
  if (s.tickets.source != kind::fleet) {
    if (const toml::node* n =
            tickets != nullptr ? tickets->as_table()->get("keys_ahead") : nullptr) {
      fail(*n, "'keys_ahead' applies only to the fleet's keys (source = \"redis\")");
    }
    return;
  }
  if (!s.cluster) {
    fail(*tickets_source_, "source = \"redis\" needs a [cluster] section");
  }
  const auto ahead = std::chrono::ceil<std::chrono::seconds>(2 * s.cluster->poll_interval);
  if (s.tickets.publish_ahead < ahead) {
    const toml::node* at = tickets != nullptr ? tickets->as_table()->get("publish_ahead") : nullptr;
    if (at != nullptr) {
      fail(*at, "'publish_ahead' must be at least two [cluster] poll intervals (" +
                    std::to_string(ahead.count()) +
                    "s): every instance must read a key before it seals");
    }
    s.tickets.publish_ahead = ahead;  // the default, raised to what the poll interval needs
  }
}

}  // namespace tlsfront::config::detail

namespace tlsfront::config::detail {

// [revocation]: session handles (proxy/session_revocation.h). `handle_max_age` bounds how long any
// session or ticket chain resumes; unset, it is 24h or the longest session or ticket lifetime if
// that is longer, so the default never shortens a configured lifetime.
void reader::read_revocation(const toml::table& t, proxy::server_options& out) {
  check_keys(t, "revocation", {"capacity", "handle_max_age"});
  proxy::revocation_options& r = out.revocation;
  optional_integer(t, "capacity", 64, std::int64_t{1} << 26, r.capacity);
  const std::chrono::seconds longest = std::max(
      session_timeout_, std::chrono::duration_cast<std::chrono::seconds>(out.tickets.lifetime));
  const toml::node* n = t.get("handle_max_age");
  if (n == nullptr) {
    r.handle_max_age = std::max(r.handle_max_age, longest);
    return;
  }
  milliseconds d = as_duration(*n, "handle_max_age");
  if (d < std::chrono::minutes(1) || d > std::chrono::hours(24 * 7)) {
    fail(*n, "'handle_max_age' must be between 1m and 7d");
  }
  r.handle_max_age = std::chrono::duration_cast<std::chrono::seconds>(d);
  if (r.handle_max_age < longest) {
    fail(*n, "'handle_max_age' (" + std::to_string(r.handle_max_age.count()) +
                 "s) must be at least the longest session lifetime ([session_cache] timeout, "
                 "[tickets] lifetime: " +
                 std::to_string(longest.count()) + "s)");
  }
}

}  // namespace tlsfront::config::detail

namespace tlsfront::config::detail {

// [http]: the names of the session-handle fields. Header-name tokens, distinct, and none of the
// fields tlsfront frames, routes or forwards by itself (a backend must not be able to turn
// them into a logout, nor the handle into a Host).
void reader::read_http(const toml::table& t, proxy::session_header_options& out) {
  check_keys(t, "http",
             {"session_header", "logout_header", "client_cert_header", "client_verify_header"});
  static constexpr std::string_view reserved[] = {"host",
                                                  "content-length",
                                                  "transfer-encoding",
                                                  "connection",
                                                  "upgrade",
                                                  "te",
                                                  "trailer",
                                                  "keep-alive",
                                                  "proxy-connection",
                                                  "x-forwarded-for",
                                                  "x-forwarded-proto",
                                                  "x-forwarded-host",
                                                  "cookie",
                                                  "set-cookie",
                                                  "location",
                                                  "content-type"};
  const auto read_name = [&](std::string_view key, std::string& value) {
    const toml::node* n = t.get(key);
    if (n == nullptr) {
      return;
    }
    std::string v = as_nonempty_string(*n, key);
    const bool token = std::all_of(v.begin(), v.end(), is_token_char);
    if (!token) {
      fail(*n, single_quoted(key) + " must be a header name (a token), not " + double_quoted(v));
    }
    for (std::string_view r : reserved) {
      if (http::iequals(v, r)) {
        fail(*n, single_quoted(key) + " cannot be " + double_quoted(v) +
                     ": tlsfront or the backend already gives that field its meaning");
      }
    }
    value = std::move(v);
  };
  const std::pair<std::string_view, std::string*> names[] = {
      {"session_header", &out.session_header},
      {"logout_header", &out.logout_header},
      {"client_cert_header", &out.client_cert_header},
      {"client_verify_header", &out.client_verify_header}};
  for (const auto& [key, value] : names) {
    read_name(key, *value);
  }
  for (std::size_t i = 0; i < std::size(names); ++i) {
    for (std::size_t j = i + 1; j < std::size(names); ++j) {
      if (http::iequals(*names[i].second, *names[j].second)) {
        const toml::node* at = t.get(names[j].first);
        fail(at != nullptr ? *at : *t.get(names[i].first), single_quoted(names[i].first) + " and " +
                                                               single_quoted(names[j].first) +
                                                               " must be different fields");
      }
    }
  }
}

// The session-handle and client-certificate fields are tlsfront's: never forwarded from a
// client, on any listener (a listener without client certificates must not let a client claim
// one either).
void reader::drop_session_fields(proxy::server_options& s) {
  for (proxy::listener_options& l : s.listeners) {
    for (const std::string* name :
         {&s.session_headers.session_header, &s.session_headers.logout_header,
          &s.session_headers.client_cert_header, &s.session_headers.client_verify_header}) {
      const bool listed =
          std::any_of(l.drop_client_headers.begin(), l.drop_client_headers.end(),
                      [&](const std::string& d) { return http::iequals(d, *name); });
      if (!listed) {
        l.drop_client_headers.push_back(*name);
      }
    }
  }
}

}  // namespace tlsfront::config::detail
