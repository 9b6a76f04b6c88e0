// Fuzz target: what the fleet reads back from Redis. Byte 0 picks the path, the rest is the value:
//   0  the ticket key list's plaintext: cluster::ticket_key_sync::decode; a list that decodes is
//      then installed in a fleet ring, planned (expiry, rotation, next key) and maintained as
//      the sync does, and must encode back to exactly the bytes it came from
//   1  a sealed value (ticket key list or session) opened with the fleet sealer: sealer::open
//   2  the same value sealed first, then opened and decoded (the path past the AEAD check)
// Seeds: TLSFRONT_FUZZ_WRITE_SEEDS=<dir> fleet_keys_fuzz -runs=0 writes real lists into <dir>.
#include <string>

#include "cluster/fleet_key_source.h"
#include "cluster/fleet_secret.h"
#include "cluster/ticket_key_sync.h"
#include "core/clock.h"
#include "fuzz_support.h"
#include "tls/memory_key_source.h"
#include "tls/ticket_key_ring.h"

namespace {

using tlsfront::fuzz::check;
namespace cluster = tlsfront::cluster;
namespace tls = tlsfront::tls;

constexpr std::int64_t kNow = 1'700'000'000;
const std::string kRedisKey = cluster::ticket_key_sync::redis_key("tlsfront:");

const cluster::sealer& key_sealer() {
  static const cluster::sealer s(std::string(48, 's'), "tlsfront ticket keys v1");
  return s;
}

void use_list(std::string_view plain) {
  cluster::ticket_key_sync::key_list list;
  if (!cluster::ticket_key_sync::decode(plain, list)) {
    return;
  }
  check(cluster::ticket_key_sync::encode(list) == plain, "a decoded list encodes differently");
  tlsfront::core::manual_clock clock(kNow * 1000);
  tls::ticket_key_options o;
  o.source = tls::ticket_key_options::source_kind::fleet;
  tls::ticket_key_ring ring(o, clock);
  ring.install(list.keys);
  (void)ring.list();
  const auto snap = ring.view();
  (void)tls::ticket_key_ring::current(*snap, kNow);
  for (bool rotate : {false, true}) {
    cluster::ticket_key_sync::key_list next = list;
    (void)cluster::ticket_key_sync::plan(next, ring, kNow, rotate, 120);
    check(next.keys.size() <= cluster::ticket_key_sync::kMaxKeys, "a plan over kMaxKeys");
    cluster::ticket_key_sync::key_list back;
    check(cluster::ticket_key_sync::decode(cluster::ticket_key_sync::encode(next), back),
          "a planned list does not decode");
  }
  ring.set_fallback(true);
  cluster::fleet_key_source(ring).maintain();
}

void write_seeds() {
  tlsfront::core::manual_clock clock(kNow * 1000);
  tls::ticket_key_options o;
  tls::ticket_key_ring ring(o, clock);
  std::string error;
  check(tls::memory_key_source(ring).start(error), "seed: ring start");
  cluster::ticket_key_sync::key_list list;
  list.version = 1;
  for (int n = 1; n <= 3; ++n) {
    (void)cluster::ticket_key_sync::plan(list, ring, kNow + n * 3600, n == 2, 120);
    const std::string plain = cluster::ticket_key_sync::encode(list);
    const std::string tag = "list-v" + std::to_string(list.version);
    tlsfront::fuzz::write_seed(tag + "-plain", '\0' + plain);
    tlsfront::fuzz::write_seed(tag + "-sealed", '\1' + key_sealer().seal(plain, kRedisKey));
    tlsfront::fuzz::write_seed(tag + "-to-seal", '\2' + plain);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (tlsfront::fuzz::writing_seeds()) {
    write_seeds();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  const std::string_view value = tlsfront::fuzz::as_view(data + 1, size - 1);
  std::string plain;
  switch (data[0] % 3) {
    case 0:
      use_list(value);
      break;
    case 1:
      if (key_sealer().open(value, kRedisKey, plain) == cluster::sealer::open_result::ok) {
        use_list(plain);
      }
      break;
    default: {
      const std::string sealed = key_sealer().seal(value, kRedisKey);
      check(sealed.size() == value.size() + cluster::sealer::kOverhead, "sealed size");
      check(key_sealer().open(sealed, kRedisKey, plain) == cluster::sealer::open_result::ok &&
                plain == value,
            "a sealed value does not open to itself");
      check(
          key_sealer().open(sealed, "another key", plain) == cluster::sealer::open_result::corrupt,
          "a value opens under another key");
      use_list(plain);
      break;
    }
  }
  return 0;
}
