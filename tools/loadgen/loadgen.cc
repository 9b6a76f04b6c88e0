// tlsfront-loadgen: a resumption-aware TLS load generator. N concurrent connections for a fixed
// time, each looping connect → handshake → one HTTP/1.1 request with "Connection: close" → read
// the whole response → close. It chooses what each handshake offers (wrk re-offers its session
// on every reconnect and cannot be told not to):
//   full      never offers a session (TLS 1.2 or 1.3 per --tls)
//   id        TLS 1.2 without the ticket extension: resumes by session ID
//   ticket12  TLS 1.2 session tickets
//   ticket13  TLS 1.3 PSK-DHE resumption with the tickets the server sent
//   early13   the same, with the request sent as 0-RTT early data (each ticket once: every
//             round resumes with the newest ticket of the round before); counted in
//             early_accepted, and a round whose early data was rejected is an error
// It verifies every response, counts the handshakes that really resumed, and reports
// handshakes/s, resumed share, p50/p99/p99.9 latency, errors and its own CPU time (text and,
// with --json, a JSON file). Uses tlsfront's own async TLS stream over BoringSSL. The command
// line, the text line and the JSON file come from loadgen_common.h, shared with
// tlsfront-loadgen-openssl.
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "loadgen/loadgen_common.h"
#include "tls/stream.h"

namespace {

namespace asio = boost::asio;
using tlsfront::loadgen::clock_type;
using tlsfront::loadgen::mode;
using tlsfront::loadgen::options;
using tlsfront::loadgen::thread_stats;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

struct slot {
  bssl::UniquePtr<SSL_SESSION> session;  // the newest resumable session for this connection
};

int slot_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* s = static_cast<slot*>(SSL_get_ex_data(ssl, slot_index()));
  if (s == nullptr) {
    return 0;
  }
  s->session.reset(session);  // takes the reference
  return 1;
}

bssl::UniquePtr<SSL_CTX> make_ctx(const options& o) {
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  const std::uint16_t version = tlsfront::loadgen::uses_tls12(o) ? TLS1_2_VERSION : TLS1_3_VERSION;
  SSL_CTX_set_min_proto_version(ctx.get(), version);
  SSL_CTX_set_max_proto_version(ctx.get(), version);
  if (tlsfront::loadgen::disables_tickets(o)) {
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  }
  SSL_CTX_set_session_cache_mode(ctx.get(),
                                 o.m == mode::full ? SSL_SESS_CACHE_OFF : SSL_SESS_CACHE_CLIENT);
  SSL_CTX_sess_set_new_cb(ctx.get(), &on_new_session);
  if (o.m == mode::early13) {
    SSL_CTX_set_early_data_enabled(ctx.get(), 1);
  }
  static const std::uint8_t alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  SSL_CTX_set_alpn_protos(ctx.get(), alpn, sizeof alpn);
  return ctx;
}

asio::awaitable<void> connection_loop(const options& o, SSL_CTX* ctx,
                                      std::vector<asio::ip::tcp::endpoint> eps,
                                      clock_type::time_point end, thread_stats& st) {
  std::size_t turn = 0;
  auto ex = co_await asio::this_coro::executor;
  slot s;
  const std::string request = tlsfront::loadgen::make_request(o);
  std::vector<char> buf(16384);
  std::string response;
  while (clock_type::now() < end) {
    auto start = clock_type::now();
    asio::ip::tcp::socket sock(ex);
    const asio::ip::tcp::endpoint& ep = eps[turn++ % eps.size()];
    auto [cec] = co_await sock.async_connect(ep, use_tuple);
    if (cec) {
      ++st.errors;
      asio::steady_timer t(ex, std::chrono::milliseconds(10));
      co_await t.async_wait(use_tuple);
      continue;
    }
    boost::system::error_code ignored;
    sock.set_option(asio::ip::tcp::no_delay(true), ignored);
    bssl::UniquePtr<SSL> ssl(SSL_new(ctx));
    SSL_set_connect_state(ssl.get());
    SSL_set_tlsext_host_name(ssl.get(), o.sni.c_str());
    SSL_set_ex_data(ssl.get(), slot_index(), &s);
    if (o.m != mode::full && s.session) {
      SSL_set_session(ssl.get(), s.session.get());
    }
    tlsfront::tls::stream tls(std::move(sock), std::move(ssl));
    if (auto ec = co_await tls.handshake()) {
      ++st.errors;
      ERR_clear_error();
      continue;
    }
    const bool early = SSL_in_early_data(tls.native()) != 0;  // early13: request goes 0-RTT
    const bool resumed = SSL_session_reused(tls.native()) != 0;
    if (resumed && o.fresh_sessions) {
      s.session.reset();  // the next handshake is a full one that makes a new session
    }
    if (auto ec = co_await tls.write_all(request.data(), request.size())) {
      ++st.errors;
      continue;
    }
    response.clear();
    for (;;) {
      auto [ec, n] = co_await tls.read_some(buf.data(), buf.size());
      if (ec) {
        break;  // the server closes after the response
      }
      if (response.empty() && n > 0) {
        st.add_first_byte(start);
      }
      response.append(buf.data(), n);
    }
    if (!tlsfront::loadgen::response_ok(o, response)) {
      ++st.bad_responses;
      ++st.errors;
      continue;
    }
    tls.shutdown();
    if (early && SSL_early_data_accepted(tls.native())) {
      ++st.early_accepted;
    }
    st.add_round(early || SSL_session_reused(tls.native()) != 0, start);
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<options> parsed = tlsfront::loadgen::parse_args(argc, argv);
  if (!parsed) {
    return tlsfront::loadgen::usage("tlsfront-loadgen");
  }
  const options& o = *parsed;
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(o.host, ec);
  if (ec) {
    std::fprintf(stderr, "tlsfront-loadgen: bad --host %s\n", o.host.c_str());
    return 2;
  }
  std::vector<asio::ip::tcp::endpoint> eps;
  for (unsigned short p : o.ports) {
    eps.emplace_back(addr, p);
  }
  return tlsfront::loadgen::run_and_report(
      o, [&](int /*thread*/, int connections, clock_type::time_point end, thread_stats& st) {
        asio::io_context ioc(1);
        auto ctx = make_ctx(o);
        for (int c = 0; c < connections; ++c) {
          asio::co_spawn(ioc, connection_loop(o, ctx.get(), eps, end, st), asio::detached);
        }
        ioc.run();
      });
}
