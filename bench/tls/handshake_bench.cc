// TLS 1.2 handshakes over in-memory BIO pairs (no sockets), client and server in one thread:
// full handshakes against session-ID resumptions through tlsfront's real cache glue, and the
// glue's own work in a resumed handshake (cache lookup + SSL_SESSION_from_bytes), so the cache's
// share of a resumed handshake can be read off. Client and server CPU are both counted.
#include <benchmark/benchmark.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdlib.h>

#include <array>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cache/session_cache.h"
#include "tls/server_context.h"
#include "tls/session_id_cache.h"

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

struct world {
  cache::session_cache sessions{{65536, 16, 192}, core::real_clock::instance()};
  std::shared_ptr<tls::server_context> server;
  bssl::UniquePtr<SSL_CTX> client_ctx{SSL_CTX_new(TLS_method())};
  world(const std::string& cert) {
    tls::listener_tls_options o;
    o.certificates.push_back({{}, certs_dir() + "/" + cert + ".crt",
                              certs_dir() + "/" + cert + ".key", true});
    o.session_tickets = false;
    o.max_version = tls::tls1_2;
    std::string error;
    server = tls::server_context::create(o, error, &sessions);
    if (!server) {
      throw std::runtime_error(error);
    }
    SSL_CTX_set_max_proto_version(client_ctx.get(), TLS1_2_VERSION);
    SSL_CTX_set_options(client_ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(client_ctx.get(), SSL_SESS_CACHE_CLIENT);
    static const uint8_t alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(client_ctx.get(), alpn, sizeof alpn);  // as browsers send
  }
};

world& ecdsa_world() {
  static world w("a");
  return w;
}

// Runs one handshake; returns the client's session. Aborts the benchmark on failure.
bssl::UniquePtr<SSL_SESSION> handshake(world& w, SSL_SESSION* offer, bool* resumed,
                                       std::size_t* server_session_bytes = nullptr) {
  bssl::UniquePtr<SSL> server = w.server->new_ssl();
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
  if (server_session_bytes != nullptr) {
    uint8_t* bytes = nullptr;
    size_t len = 0;
    SSL_SESSION_to_bytes(SSL_get_session(server.get()), &bytes, &len);
    OPENSSL_free(bytes);
    *server_session_bytes = len;
  }
  return bssl::UniquePtr<SSL_SESSION>(SSL_get1_session(client.get()));
}

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
  world& w = ecdsa_world();
  bool resumed = false;
  auto session = handshake(w, nullptr, &resumed);
  for (auto _ : state) {
    auto s = handshake(w, session.get(), &resumed);
    if (!resumed) {
      state.SkipWithError("session-ID resumption failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Handshake_TLS12_Resumed_SessionId);

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
