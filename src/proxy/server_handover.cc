// proxy/server_handover.cc — what a binary upgrade hands from the running process to the one
// replacing it (daemon/handover.h carries the bytes): server::export_state and import_state.
//
// FORMAT: "TFST1", then records, each one type byte, a 4-byte big-endian length and that many
// bytes (integers big-endian):
//   'c' a session-ID cache entry: context id (8) | expiry, unix s (8) | id length (1) | id |
//       the entry (tls/session_id_cache.h: handle header + serialized session)
//   'k' the ticket keys (memory source), as cluster::ticket_key_sync::encode writes a list
//   'h' a revoked session handle (8)          'f' the handles' generation floor (4)
//   'e' a 0-RTT strike: identity (32) | expiry, unix ms (8)   'E' the strikes' floor, ms (8)
// A reader skips a record type it does not know (a newer writer), so the format can grow.
// Expiries are wall-clock times, so an entry lives exactly as long in the new process.
#include <openssl/mem.h>
#include <spdlog/spdlog.h>

#include <cstring>

#include "proxy/server.h"

namespace tlsfront::proxy {
namespace {

constexpr std::string_view kMagic = "TFST1";

void put_be(std::string& out, std::uint64_t v, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
}

std::uint64_t get_be(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  }
  return v;
}

void record(std::string& out, char type, std::string_view body) {
  out.push_back(type);
  put_be(out, body.size(), 4);
  out.append(body);
}

}  // namespace

std::string server::export_state() const {
  std::string out(kMagic);
  std::string body;
  if (sessions_) {
    sessions_->for_each(
        [&](std::uint64_t ctx, std::string_view id, std::string_view value, std::int64_t expires) {
          body.clear();
          put_be(body, ctx, 8);
          put_be(body, static_cast<std::uint64_t>(expires), 8);
          body.push_back(static_cast<char>(id.size()));
          body.append(id);
          body.append(value);
          record(out, 'c', body);
        });
  }
  if (tickets_->options().source == tls::ticket_key_options::source_kind::memory) {
    // Memory keys exist only in this process: without them every ticket out there would get a
    // full handshake. (File keys are read again from their files; the fleet's from Redis.)
    cluster::ticket_key_sync::key_list list;
    for (const auto& k : tickets_->view()->keys) {
      list.keys.push_back(*k);
    }
    if (!list.keys.empty() && list.keys.size() <= cluster::ticket_key_sync::kMaxKeys) {
      std::string keys = cluster::ticket_key_sync::encode(list);
      record(out, 'k', keys);
      OPENSSL_cleanse(keys.data(), keys.size());
    }
  }
  cache::revoked_handles& set = revocation_->set();
  const std::uint32_t now_gen = revocation_->guard().now_generation();
  set.for_each_live(now_gen, [&](std::uint64_t h) {
    body.clear();
    put_be(body, h, 8);
    record(out, 'h', body);
  });
  body.clear();
  put_be(body, set.floor(), 4);
  record(out, 'f', body);
  strikes_->for_each([&](const tls::strike_register::identity& id, std::int64_t expires_ms) {
    body.assign(reinterpret_cast<const char*>(id.data()), id.size());
    put_be(body, static_cast<std::uint64_t>(expires_ms), 8);
    record(out, 'e', body);
  });
  body.clear();
  put_be(body, static_cast<std::uint64_t>(strikes_->floor_ms()), 8);
  record(out, 'E', body);
  OPENSSL_cleanse(body.data(), body.size());
  return out;
}

bool server::import_state(std::string_view in, imported& n, std::string& error) {
  if (in.substr(0, kMagic.size()) != kMagic) {
    error = "the handed-over state does not start with " + std::string(kMagic);
    return false;
  }
  in.remove_prefix(kMagic.size());
  const std::int64_t now_ms = core::real_clock::instance().now_ms();
  const std::uint32_t now_gen = revocation_->guard().now_generation();
  while (!in.empty()) {
    if (in.size() < 5) {
      error = "the handed-over state ends inside a record header";
      return false;
    }
    const char type = in[0];
    const std::size_t len = get_be(in.data() + 1, 4);
    if (in.size() - 5 < len) {
      error = "the handed-over state ends inside a record";
      return false;
    }
    const std::string_view body = in.substr(5, len);
    in.remove_prefix(5 + len);
    const char* p = body.data();
    switch (type) {
      case 'c': {
        if (len < 17 || static_cast<unsigned char>(p[16]) == 0 ||
            len < 17u + static_cast<unsigned char>(p[16]) + 1) {
          error = "a damaged session record";
          return false;
        }
        const std::size_t id_len = static_cast<unsigned char>(p[16]);
        if (sessions_ &&
            sessions_->insert(get_be(p, 8), body.substr(17, id_len), body.substr(17 + id_len),
                              static_cast<std::int64_t>(get_be(p + 8, 8))) <=
                cache::session_cache::insert_result::replaced) {
          ++n.sessions;
        }
        break;
      }
      case 'k': {
        cluster::ticket_key_sync::key_list list;
        if (!cluster::ticket_key_sync::decode(body, list)) {
          error = "a damaged ticket key record";
          return false;
        }
        if (tickets_->options().source == tls::ticket_key_options::source_kind::memory) {
          std::vector<std::shared_ptr<const tls::ticket_key>> keys;
          const std::int64_t now = tickets_->clock().now_s();
          for (const tls::ticket_key& k : list.keys) {
            if (now < k.not_after) {
              keys.push_back(std::make_shared<tls::ticket_key>(k));
            }
          }
          n.ticket_keys = keys.size();
          if (!keys.empty()) {
            tickets_->replace(std::move(keys));  // the memory source schedules on from them
          }
        }
        break;
      }
      case 'h':
        if (len != 8) {
          error = "a damaged revoked-handle record";
          return false;
        }
        revocation_->set().insert(get_be(p, 8), now_gen);
        ++n.revoked;
        break;
      case 'f':
        if (len != 4) {
          error = "a damaged floor record";
          return false;
        }
        revocation_->set().raise_floor(static_cast<std::uint32_t>(get_be(p, 4)));
        break;
      case 'e': {
        if (len != 40) {
          error = "a damaged 0-RTT strike record";
          return false;
        }
        tls::strike_register::identity id;
        std::memcpy(id.data(), p, id.size());
        strikes_->claim(id, now_ms, static_cast<std::int64_t>(get_be(p + 32, 8)));
        ++n.strikes;
        break;
      }
      case 'E':
        if (len != 8) {
          error = "a damaged strike floor record";
          return false;
        }
        strikes_->raise_floor(static_cast<std::int64_t>(get_be(p, 8)));
        break;
      default:
        ++n.skipped;  // written by a newer version: not ours to read
        break;
    }
  }
  return true;
}

}  // namespace tlsfront::proxy
