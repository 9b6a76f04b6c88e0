// Fuzz target: the Redis reply path. The input is what a Redis server sends, fed in
// input-derived splits through hiredis's reply reader (redisReader, limited as the client
// limits every connection's reader: cluster::limit_reply_arrays); every reply it yields is
// turned into a cluster::redis_reply (cluster::to_redis_reply, as each command's handler gets
// it), looked at as a pub/sub push (subscription_payload), and decoded as the answer to a
// session lookup (session_store::open_reply: the sealed session value, opened with the fleet
// sealer under its Redis key), whose bytes then go to tls::session_from_cache_bytes as a fleet
// hit would. Each reply is also read as a Redis Cluster slot map (parse_cluster_slots: an
// accepted map has every slot at most once, each range in order, addresses and ports valid)
// and, as an error reply, as a MOVED/ASK redirection (parse_redirect).
// Seeds: TLSFRONT_FUZZ_WRITE_SEEDS=<dir> redis_reply_fuzz -runs=0 writes a sealed-session reply.
#include <hiredis/hiredis.h>
#include <openssl/ssl.h>

#include <string>

#include "cluster/cluster_slots.h"
#include "cluster/fleet_secret.h"
#include "cluster/redis_client.h"
#include "cluster/session_store.h"
#include "fuzz_support.h"
#include "tls/session_id_cache.h"

namespace {

using tlsfront::fuzz::check;
namespace cluster = tlsfront::cluster;

const std::string kRedisKey = cluster::session_store::redis_key("tlsfront:", "0123456789abcdef");

const cluster::sealer& session_sealer() {
  static const cluster::sealer s(std::string(48, 's'), "tlsfront session v1");
  return s;
}

SSL_CTX* ctx() {
  static SSL_CTX* c = SSL_CTX_new(TLS_method());
  return c;
}

std::size_t depth(const cluster::redis_reply& r) {
  std::size_t d = 0;
  for (const auto& e : r.elements) {
    d = std::max(d, depth(e));
  }
  return d + 1;
}

void use_reply(const redisReply& raw) {
  const cluster::redis_reply r = cluster::to_redis_reply(raw);
  check(depth(r) <= 16, "a reply deeper than hiredis nests");
  (void)cluster::subscription_payload(raw);
  std::string why;
  const cluster::redis_endpoint asked{"127.0.0.1", 7000};
  if (auto map = cluster::parse_cluster_slots(r, asked, why)) {
    check(!map->empty(), "an empty slot map accepted");
    std::size_t slots = 0;
    for (const auto& range : *map) {
      check(range.first <= range.last && range.last < cluster::kClusterSlots,
            "a slot range out of order or out of 0..16383");
      check(!range.master.host.empty() && range.master.port != 0, "a master without an address");
      slots += range.last - range.first + 1u;
    }
    check(slots <= cluster::kClusterSlots, "a slot served twice");
  } else {
    check(!why.empty(), "a refused slot map without a reason");
  }
  if (r.is_error()) {
    if (auto rd = cluster::parse_redirect(r.str, "10.0.0.1")) {
      check(rd->slot < cluster::kClusterSlots && rd->to.port != 0 && !rd->to.host.empty(),
            "a redirection to no slot or no address");
    }
  }
  std::string session;
  const auto outcome =
      cluster::session_store::open_reply(session_sealer(), kRedisKey, {}, r, session);
  if (outcome == cluster::session_store::lookup_outcome::hit) {
    bssl::UniquePtr<SSL_SESSION> s = tlsfront::tls::session_from_cache_bytes(session, ctx());
    if (s) {
      (void)tlsfront::tls::session_expires_at(s.get());
    }
  } else {
    check(session.empty(), "a session from a reply that is no hit");
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (tlsfront::fuzz::writing_seeds()) {
    // A sealed value like the store writes (its plaintext is not a real session here: the
    // session_decode target has those).
    const std::string sealed = session_sealer().seal("not a session, but sealed", kRedisKey);
    tlsfront::fuzz::write_seed("sealed-bulk",
                               "$" + std::to_string(sealed.size()) + "\r\n" + sealed + "\r\n");
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tlsfront::fuzz::splitter split(tlsfront::fuzz::as_view(data, size));
  redisReader* reader = redisReaderCreate();
  check(reader != nullptr, "set-up: redisReaderCreate");
  cluster::limit_reply_arrays(*reader);  // as every connection's reader is
  bool failed = false;
  while (!split.done() && !failed) {
    const std::string_view piece = split.next();
    if (redisReaderFeed(reader, piece.data(), piece.size()) != REDIS_OK) {
      break;
    }
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(reader, &reply) != REDIS_OK) {
        failed = true;  // a protocol error: hiredis drops the connection
        break;
      }
      if (reply == nullptr) {
        break;  // needs more bytes
      }
      use_reply(*static_cast<const redisReply*>(reply));
      freeReplyObject(reply);
    }
  }
  redisReaderFree(reader);
  return 0;
}
