// TLS 1.2 handshakes over in-memory BIO pairs (no sockets), client and server in one thread:
// full handshakes against session-ID resumptions through tlsfront's real cache glue, and the
// glue's own work in a resumed handshake (cache lookup + SSL_SESSION_from_bytes), so the cache's
// share of a resumed handshake can be read off. Client and server CPU are both counted.
// The server's SSL carries a handshake_info as tlsfront's connections do; the *_Guarded
// variants add the session-handle guard (issue 14: handle checks on every resumption path,
// handles minted and resolved), so its cost is the difference with the plain variant of the
// same run (run them interleaved: --benchmark_enable_random_interleaving=true).
#include <benchmark/benchmark.h>
#include <openssl/cipher.h>
#include <openssl/digest.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include <array>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cache/revoked_handles.h"
#include "cache/session_cache.h"
#include "tls/memory_key_source.h"
#include "tls/server_context.h"
#include "tls/session_handle.h"
#include "tls/session_id_cache.h"
#include "tls/stream.h"
#include "tls/ticket_key_ring.h"

namespace {

using namespace tlsfront;

std::string certs_dir() {
  static const std::string dir = [] {
    char tmpl[] = "/tmp/tlsfront-bench-XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      throw std::runtime_error("mkdtemp failed");
    }
    std::string cmd = std::string("bash '") + TLSFRONT_SOURCE_DIR + "/scripts/gen-test-certs' '" +
                      tmpl + "' >/dev/null 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error("gen-test-certs failed");
    }
    return std::string(tmpl);
  }();
  return dir;
}

// A server (one ECDSA P-256 certificate) and a client context. `tickets` off: TLS 1.2 session
// IDs through the session cache; on: tickets under a memory key ring.
struct world {
  cache::session_cache sessions{{65536, 16, 192}, core::real_clock::instance()};
  tls::ticket_key_ring ring{tls::ticket_key_options{}, core::real_clock::instance()};
  std::shared_ptr<tls::server_context> server;
  bssl::UniquePtr<SSL_CTX> client_ctx{SSL_CTX_new(TLS_method())};
  bssl::UniquePtr<SSL_SESSION> latest;  // the newest session the client received
  // The default [revocation] set (262,144 handles), a tenth of it revoked: the guard's lookups
  // touch a realistic table.
  cache::revoked_handles revoked{262144, cache::handle_policy{}, 7};
  tls::resumption_guard guard{revoked, core::real_clock::instance(), nullptr};
  bool guarded;
  world(const std::string& cert, std::uint16_t version, bool tickets, bool with_guard = false)
      : guarded(with_guard) {
    for (int i = 0; i < 26214; ++i) {
      guard.revoke(guard.mint());
    }
    tls::listener_tls_options o;
    tls::certificate_options co;
    co.cert_file = certs_dir() + "/" + cert + ".crt";
    co.key_file = certs_dir() + "/" + cert + ".key";
    co.is_default = true;
    o.certificates.push_back(std::move(co));
    o.session_tickets = tickets;
    o.max_version = version;
    std::string error;
    if (!tls::memory_key_source(ring).start(error)) {
      throw std::runtime_error(error);
    }
    server = tls::server_context::create(o, error, &sessions, core::real_clock::instance(), &ring,
                                         nullptr);
    if (!server) {
      throw std::runtime_error(error);
    }
    SSL_CTX_set_max_proto_version(client_ctx.get(), version);
    SSL_CTX_set_min_proto_version(client_ctx.get(), version);
    if (!tickets) {
      SSL_CTX_set_options(client_ctx.get(), SSL_OP_NO_TICKET);
    }
    SSL_CTX_set_session_cache_mode(client_ctx.get(), SSL_SESS_CACHE_CLIENT);
    SSL_CTX_set_app_data(client_ctx.get(), this);
    SSL_CTX_sess_set_new_cb(client_ctx.get(), [](SSL* ssl, SSL_SESSION* s) {
      static_cast<world*>(SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl)))->latest.reset(s);
      return 1;
    });
    static const uint8_t alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(client_ctx.get(), alpn, sizeof alpn);  // as browsers send
  }
};

world& ecdsa_world() {
  static world w("a", TLS1_2_VERSION, false);
  return w;
}
world& tls12_ticket_world() {
  static world w("a", TLS1_2_VERSION, true);
  return w;
}
world& tls13_world() {
  static world w("a", TLS1_3_VERSION, true);
  return w;
}
world& guarded_id_world() {
  static world w("a", TLS1_2_VERSION, false, true);
  return w;
}
world& guarded_tls12_ticket_world() {
  static world w("a", TLS1_2_VERSION, true, true);
  return w;
}
world& guarded_tls13_world() {
  static world w("a", TLS1_3_VERSION, true, true);
  return w;
}

// Runs one handshake; returns the client's session. Aborts the benchmark on failure.
bssl::UniquePtr<SSL_SESSION> handshake(world& w, SSL_SESSION* offer, bool* resumed,
                                       std::size_t* server_session_bytes = nullptr) {
  tls::handshake_info info;  // as tls::stream attaches it (and outlives the SSL)
  info.guard = w.guarded ? &w.guard : nullptr;
  bssl::UniquePtr<SSL> server = w.server->new_ssl();
  SSL_set_app_data(server.get(), &info);
  bssl::UniquePtr<SSL> client(SSL_new(w.client_ctx.get()));
  BIO* a = nullptr;
  BIO* b = nullptr;
  BIO_new_bio_pair(&a, 0, &b, 0);
  SSL_set_bio(server.get(), a, a);
  SSL_set_bio(client.get(), b, b);
  SSL_set_connect_state(client.get());
  SSL_set_tlsext_host_name(client.get(), "a.example");
  if (offer != nullptr) {
    SSL_set_session(client.get(), offer);
  }
  bool client_done = false, server_done = false;
  for (int round = 0; round < 10 && !(client_done && server_done); ++round) {
    if (!client_done) {
      int r = SSL_do_handshake(client.get());
      client_done = r == 1;
      if (r != 1 && SSL_get_error(client.get(), r) != SSL_ERROR_WANT_READ) {
        throw std::runtime_error("client handshake failed");
      }
    }
    if (!server_done) {
      int r = SSL_do_handshake(server.get());
      server_done = r == 1;
      if (r != 1 && SSL_get_error(server.get(), r) != SSL_ERROR_WANT_READ) {
        throw std::runtime_error("server handshake failed");
      }
    }
  }
  if (!(client_done && server_done)) {
    throw std::runtime_error("handshake did not finish");
  }
  *resumed = SSL_session_reused(client.get());
  if (SSL_version(client.get()) >= TLS1_3_VERSION) {
    // TLS 1.3 tickets are post-handshake messages: the server flushes them with its next write,
    // the client takes them in on a read.
    SSL_write(server.get(), "x", 1);
    uint8_t byte;
    SSL_read(client.get(), &byte, 1);
  }
  if (server_session_bytes != nullptr) {
    uint8_t* bytes = nullptr;
    size_t len = 0;
    SSL_SESSION_to_bytes(SSL_get_session(server.get()), &bytes, &len);
    OPENSSL_free(bytes);
    *server_session_bytes = len;
  }
  if (w.latest) {
    SSL_SESSION* s = w.latest.release();
    return bssl::UniquePtr<SSL_SESSION>(s);
  }
  return bssl::UniquePtr<SSL_SESSION>(SSL_get1_session(client.get()));
}

void resumed_bench(benchmark::State& state, world& w, const char* what) {
  bool resumed = false;
  auto session = handshake(w, nullptr, &resumed);
  for (auto _ : state) {
    auto s = handshake(w, session.get(), &resumed);
    if (!resumed) {
      state.SkipWithError(what);
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Handshake_TLS12_Resumed_Ticket(benchmark::State& state) {
  resumed_bench(state, tls12_ticket_world(), "TLS 1.2 ticket resumption failed");
}
BENCHMARK(BM_Handshake_TLS12_Resumed_Ticket);
void BM_Handshake_TLS12_Resumed_Ticket_Guarded(benchmark::State& state) {
  resumed_bench(state, guarded_tls12_ticket_world(), "guarded TLS 1.2 ticket resumption failed");
}
BENCHMARK(BM_Handshake_TLS12_Resumed_Ticket_Guarded);

void BM_Handshake_TLS13_Full(benchmark::State& state) {
  world& w = tls13_world();
  for (auto _ : state) {
    bool resumed = false;
    auto s = handshake(w, nullptr, &resumed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Handshake_TLS13_Full);

void BM_Handshake_TLS13_Resumed_PskDhe(benchmark::State& state) {
  resumed_bench(state, tls13_world(), "TLS 1.3 resumption failed");
}
BENCHMARK(BM_Handshake_TLS13_Resumed_PskDhe);
void BM_Handshake_TLS13_Resumed_PskDhe_Guarded(benchmark::State& state) {
  resumed_bench(state, guarded_tls13_world(), "guarded TLS 1.3 resumption failed");
}
BENCHMARK(BM_Handshake_TLS13_Resumed_PskDhe_Guarded);

// What sealing and opening one ticket costs (the key ring lookup plus the cipher work BoringSSL
// does with the keys the callback hands it), on a 200-byte session.
constexpr std::size_t ticket_plain = 200;

void BM_TicketKeyRing_Seal(benchmark::State& state) {
  world& w = tls13_world();
  std::array<uint8_t, ticket_plain> plain{};
  std::array<uint8_t, ticket_plain + 64> out;
  bssl::ScopedEVP_CIPHER_CTX ctx;
  bssl::ScopedHMAC_CTX hmac;
  for (auto _ : state) {
    auto snap = w.ring.view();
    auto k = tls::ticket_key_ring::current(*snap, core::real_clock::instance().now_s());
    uint8_t iv[16];
    RAND_bytes(iv, sizeof iv);
    EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, k->aes_key.data(), iv);
    HMAC_Init_ex(hmac.get(), k->hmac_key.data(), k->hmac_len, EVP_sha256(), nullptr);
    int len1 = 0, len2 = 0;
    EVP_EncryptUpdate(ctx.get(), out.data(), &len1, plain.data(), plain.size());
    EVP_EncryptFinal_ex(ctx.get(), out.data() + len1, &len2);
    HMAC_Update(hmac.get(), out.data(), static_cast<size_t>(len1 + len2));
    unsigned mac_len = 0;
    uint8_t mac[32];
    HMAC_Final(hmac.get(), mac, &mac_len);
    benchmark::DoNotOptimize(mac[0]);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TicketKeyRing_Seal);

void BM_TicketKeyRing_Open(benchmark::State& state) {
  world& w = tls13_world();
  auto snap0 = w.ring.view();
  auto k0 = tls::ticket_key_ring::current(*snap0, core::real_clock::instance().now_s());
  std::array<uint8_t, ticket_plain + 16> sealed{};
  std::array<uint8_t, ticket_plain + 32> out;
  bssl::ScopedEVP_CIPHER_CTX ctx;
  bssl::ScopedHMAC_CTX hmac;
  uint8_t iv[16] = {};
  for (auto _ : state) {
    auto snap = w.ring.view();
    auto k = tls::ticket_key_ring::find(*snap, k0->name.data());
    auto role = tls::ticket_key_ring::role_of(*snap, *k, core::real_clock::instance().now_s());
    benchmark::DoNotOptimize(role);
    HMAC_Init_ex(hmac.get(), k->hmac_key.data(), k->hmac_len, EVP_sha256(), nullptr);
    HMAC_Update(hmac.get(), sealed.data(), sealed.size());
    unsigned mac_len = 0;
    uint8_t mac[32];
    HMAC_Final(hmac.get(), mac, &mac_len);
    EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, k->aes_key.data(), iv);
    EVP_CIPHER_CTX_set_padding(ctx.get(), 0);
    int len1 = 0;
    EVP_DecryptUpdate(ctx.get(), out.data(), &len1, sealed.data(), sealed.size());
    benchmark::DoNotOptimize(out[0]);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TicketKeyRing_Open);

void BM_Handshake_TLS12_Full(benchmark::State& state) {
  world& w = ecdsa_world();
  std::size_t session_bytes = 0;
  for (auto _ : state) {
    bool resumed = false;
    auto s = handshake(w, nullptr, &resumed, &session_bytes);
    if (resumed) {
      state.SkipWithError("a full handshake resumed");
      break;
    }
  }
  state.counters["server_session_bytes"] = static_cast<double>(session_bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Handshake_TLS12_Full);

void BM_Handshake_TLS12_Resumed_SessionId(benchmark::State& state) {
  resumed_bench(state, ecdsa_world(), "session-ID resumption failed");
}
BENCHMARK(BM_Handshake_TLS12_Resumed_SessionId);
void BM_Handshake_TLS12_Resumed_SessionId_Guarded(benchmark::State& state) {
  resumed_bench(state, guarded_id_world(), "guarded session-ID resumption failed");
}
BENCHMARK(BM_Handshake_TLS12_Resumed_SessionId_Guarded);

// What the cache glue does inside one resumed handshake: the lookup and the decode.
void BM_SessionCache_Glue_LookupDecode(benchmark::State& state) {
  world& w = ecdsa_world();
  bool resumed = false;
  auto session = handshake(w, nullptr, &resumed);
  unsigned id_len = 0;
  const uint8_t* id = SSL_SESSION_get_id(session.get(), &id_len);
  std::string_view key(reinterpret_cast<const char*>(id), id_len);
  bssl::UniquePtr<SSL> probe = w.server->new_ssl();
  std::uint64_t ctx_id = tls::session_context_id(probe.get());
  std::array<std::uint8_t, 4096> buf;
  for (auto _ : state) {
    std::size_t n = w.sessions.lookup(ctx_id, key, buf.data(), buf.size());
    if (n == 0) {
      state.SkipWithError("cache miss");
      break;
    }
    bssl::UniquePtr<SSL_SESSION> s(SSL_SESSION_from_bytes(buf.data(), n, w.client_ctx.get()));
    benchmark::DoNotOptimize(s.get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SessionCache_Glue_LookupDecode);

}  // namespace
