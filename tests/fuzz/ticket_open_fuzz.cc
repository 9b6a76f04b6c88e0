// Fuzz target: opening an attacker-supplied session ticket. A server SSL_CTX carries tlsfront's
// ticket key callback (tls::attach_ticket_keys) over a fleet ring holding three fixed keys (a
// previous, the current and a next one); an in-memory client offers the input as its ticket in
// a TLS 1.2 or 1.3 ClientHello and both sides run the handshake to its end (a resumption, a full
// handshake, or a refusal).
//
// Input: byte 0 picks the TLS version (bit 0) and the mode (bits 1-3): 0-3 the rest is the
// ticket as sent; 4-7 the rest is the ticket's plaintext (a serialized session), sealed here in
// the RFC 5077 format under key (mode - 4): previous, current, next, or an unknown name, so the
// fuzzer reaches BoringSSL's session parser behind the HMAC check.
// Seeds: TLSFRONT_FUZZ_WRITE_SEEDS=<dir> ticket_open_fuzz -runs=0 writes real tickets and
// their plaintexts captured from full handshakes into <dir>, and the server's serialized
// sessions (*-server-session, the seeds of session_decode_fuzz).
#include <openssl/aes.h>
#include <openssl/cipher.h>
#include <openssl/err.h>
#include <openssl/hmac.h>
#include <openssl/mem.h>
#include <openssl/ssl.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/clock.h"
#include "fuzz_support.h"
#include "self_signed.h"
#include "tls/ticket_key_ring.h"
#include "tls/ticket_keys.h"

namespace {

using tlsfront::fuzz::check;
namespace tls = tlsfront::tls;

constexpr std::int64_t kNow = 1'700'000'000;

tls::ticket_key fixed_key(std::uint8_t tag, std::int64_t not_before, std::int64_t not_after) {
  tls::ticket_key k;
  k.name.fill(tag);
  k.hmac_key.fill(static_cast<std::uint8_t>(tag + 1));
  k.aes_key.fill(static_cast<std::uint8_t>(tag + 2));
  k.not_before = not_before;
  k.not_after = not_after;
  return k;
}

struct world {
  tlsfront::core::manual_clock clock{kNow * 1000};
  tls::ticket_key_ring ring{[] {
                              tls::ticket_key_options o;
                              o.source = tls::ticket_key_options::source_kind::fleet;
                              return o;
                            }(),
                            clock};
  std::vector<tls::ticket_key> keys;
  bssl::UniquePtr<SSL_CTX> server{SSL_CTX_new(TLS_method())};
  bssl::UniquePtr<SSL_CTX> client{SSL_CTX_new(TLS_method())};
  bssl::UniquePtr<SSL_SESSION> templates[2];  // a real client session per version: 1.2, 1.3
  bool keep_server_session = false;  // seeds: the server's session as the L1 cache stores it
  std::string server_session;

  world() {
    keys = {fixed_key(0x10, kNow - 7200, kNow + 3600), fixed_key(0x20, kNow - 3600, kNow + 7200),
            fixed_key(0x30, kNow + 3600, kNow + 10800)};
    ring.install(keys);
    const tlsfront::fuzz::self_signed pair;
    check(SSL_CTX_use_certificate(server.get(), pair.cert.get()) == 1 &&
              SSL_CTX_use_PrivateKey(server.get(), pair.key.get()) == 1,
          "set-up: server certificate");
    tls::attach_ticket_keys(server.get(), ring, nullptr);
    SSL_CTX_set_session_cache_mode(client.get(), SSL_SESS_CACHE_CLIENT);
    SSL_CTX_sess_set_new_cb(client.get(), [](SSL*, SSL_SESSION* s) {
      last_session().reset(s);  // takes the reference
      return 1;
    });
    for (int v = 0; v < 2; ++v) {
      last_session().reset();
      check(handshake(v, nullptr), "set-up: a full handshake failed");
      check(last_session() != nullptr,
            v == 0 ? "set-up: no TLS 1.2 ticket" : "set-up: no TLS 1.3 ticket");
      templates[v] = std::move(last_session());
    }
  }

  static bssl::UniquePtr<SSL_SESSION>& last_session() {
    static bssl::UniquePtr<SSL_SESSION> s;
    return s;
  }

  // Runs one handshake to its end; `session` (may be null) is what the client offers. True if
  // it completed; in set-up (`report`), a failure prints BoringSSL's errors.
  bool handshake(int version, SSL_SESSION* session, bool report = true) {
    bssl::UniquePtr<SSL> c(SSL_new(client.get()));
    bssl::UniquePtr<SSL> s(SSL_new(server.get()));
    const std::uint16_t max = version == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    SSL_set_max_proto_version(c.get(), max);
    SSL_set_connect_state(c.get());
    SSL_set_accept_state(s.get());
    if (session != nullptr) {
      SSL_set_session(c.get(), session);
    }
    BIO* cb = nullptr;
    BIO* sb = nullptr;
    check(BIO_new_bio_pair(&cb, 0, &sb, 0) == 1, "set-up: BIO pair");
    SSL_set_bio(c.get(), cb, cb);
    SSL_set_bio(s.get(), sb, sb);
    bool c_done = false, s_done = false, failed = false;
    for (int round = 0; round < 8 && !failed && !(c_done && s_done); ++round) {
      for (SSL* ssl : {c.get(), s.get()}) {
        bool& done = ssl == c.get() ? c_done : s_done;
        if (done) {
          continue;
        }
        const int rc = SSL_do_handshake(ssl);
        if (rc == 1) {
          done = true;
        } else if (const int e = SSL_get_error(ssl, rc);
                   e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
          failed = true;
          break;
        }
      }
    }
    if (c_done && s_done) {
      // A TLS 1.3 server holds its NewSessionTickets until it writes: one byte sends them.
      std::uint8_t buf[64];
      (void)SSL_write(s.get(), "x", 1);
      (void)SSL_read(c.get(), buf, sizeof buf);  // takes the tickets and the byte
      if (keep_server_session) {
        std::uint8_t* bytes = nullptr;
        std::size_t len = 0;
        check(SSL_SESSION_to_bytes(SSL_get_session(s.get()), &bytes, &len) == 1, "seed: session");
        server_session.assign(reinterpret_cast<const char*>(bytes), len);
        OPENSSL_free(bytes);
      }
    }
    if (report && !(c_done && s_done)) {
      std::fprintf(stderr, "handshake: client %s, server %s\n", c_done ? "done" : "not done",
                   s_done ? "done" : "not done");
      ERR_print_errors_fp(stderr);
    }
    ERR_clear_error();
    return c_done && s_done;
  }
};

world& the_world() {
  static world w;
  return w;
}

// RFC 5077's format as BoringSSL reads it: name | IV | AES-CBC(plaintext) | HMAC-SHA256.
std::string seal_ticket(const tls::ticket_key& k, std::string_view plain) {
  std::string out(k.name.begin(), k.name.end());
  std::uint8_t iv[16];
  std::memset(iv, 0x5a, sizeof iv);
  out.append(reinterpret_cast<const char*>(iv), sizeof iv);
  bssl::ScopedEVP_CIPHER_CTX ctx;
  std::vector<std::uint8_t> ct(plain.size() + 16);
  int n1 = 0, n2 = 0;
  check(EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, k.aes_key.data(), iv) == 1 &&
            EVP_EncryptUpdate(ctx.get(), ct.data(), &n1,
                              reinterpret_cast<const std::uint8_t*>(plain.data()),
                              static_cast<int>(plain.size())) == 1 &&
            EVP_EncryptFinal_ex(ctx.get(), ct.data() + n1, &n2) == 1,
        "seal: AES-CBC");
  out.append(reinterpret_cast<const char*>(ct.data()), static_cast<std::size_t>(n1 + n2));
  std::uint8_t mac[32];
  unsigned mac_len = 0;
  check(
      HMAC(EVP_sha256(), k.hmac_key.data(), k.hmac_len,
           reinterpret_cast<const std::uint8_t*>(out.data()), out.size(), mac, &mac_len) != nullptr,
      "seal: HMAC");
  out.append(reinterpret_cast<const char*>(mac), mac_len);
  return out;
}

// The inverse, for writing seeds: the plaintext of a ticket sealed under `k`.
std::string open_ticket(const tls::ticket_key& k, std::string_view t) {
  check(t.size() > 16 + 16 + 32, "seed: ticket too short");
  const auto* p = reinterpret_cast<const std::uint8_t*>(t.data());
  bssl::ScopedEVP_CIPHER_CTX ctx;
  const std::size_t ct_len = t.size() - 16 - 16 - 32;
  std::vector<std::uint8_t> plain(ct_len + 16);
  int n1 = 0, n2 = 0;
  check(
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_cbc(), nullptr, k.aes_key.data(), p + 16) == 1 &&
          EVP_DecryptUpdate(ctx.get(), plain.data(), &n1, p + 32, static_cast<int>(ct_len)) == 1 &&
          EVP_DecryptFinal_ex(ctx.get(), plain.data() + n1, &n2) == 1,
      "seed: AES-CBC");
  return std::string(reinterpret_cast<const char*>(plain.data()),
                     static_cast<std::size_t>(n1 + n2));
}

void write_seeds() {
  world& w = the_world();
  for (int v = 0; v < 2; ++v) {
    const std::uint8_t* t = nullptr;
    std::size_t n = 0;
    SSL_SESSION_get0_ticket(w.templates[v].get(), &t, &n);
    const std::string ticket(reinterpret_cast<const char*>(t), n);
    const std::string plain = open_ticket(w.keys[1], ticket);
    const std::string tag = v == 0 ? "tls12" : "tls13";
    tlsfront::fuzz::write_seed(tag + "-ticket", static_cast<char>(v) + ticket);  // mode 0: as sent
    // For session_decode_fuzz: the server's session as the session-ID cache stores it.
    w.keep_server_session = true;
    check(w.handshake(v, nullptr), "seed: a full handshake failed");
    w.keep_server_session = false;
    tlsfront::fuzz::write_seed(tag + "-server-session", w.server_session);
    for (int key = 0; key < 3; ++key) {
      tlsfront::fuzz::write_seed(tag + "-plain-key" + std::to_string(key),
                                 static_cast<char>(v | ((4 + key) << 1)) + plain);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)the_world();
  if (tlsfront::fuzz::writing_seeds()) {
    write_seeds();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) {
    return 0;
  }
  world& w = the_world();
  const int version = data[0] & 1;
  const int mode = (data[0] >> 1) & 7;
  const std::string_view rest = tlsfront::fuzz::as_view(data + 1, size - 1);
  std::string ticket;
  if (mode < 4) {
    ticket.assign(rest);
  } else if (mode < 7) {
    ticket = seal_ticket(w.keys[static_cast<std::size_t>(mode - 4)], rest);
  } else {
    ticket = seal_ticket(fixed_key(0x40, kNow - 10, kNow + 10), rest);  // a key the ring lacks
  }
  // The template's copy, whose ticket is the input (the client sends whatever it holds).
  std::uint8_t* bytes = nullptr;
  std::size_t len = 0;
  check(SSL_SESSION_to_bytes(w.templates[version].get(), &bytes, &len) == 1, "session copy");
  bssl::UniquePtr<std::uint8_t> owned(bytes);
  bssl::UniquePtr<SSL_SESSION> offer(SSL_SESSION_from_bytes(bytes, len, w.client.get()));
  check(offer != nullptr, "session copy decode");
  if (!ticket.empty()) {
    check(SSL_SESSION_set_ticket(offer.get(), reinterpret_cast<const std::uint8_t*>(ticket.data()),
                                 ticket.size()) == 1,
          "set ticket");
  }
  (void)w.handshake(version, offer.get(), false);
  w.last_session().reset();
  return 0;
}
