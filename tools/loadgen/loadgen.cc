// tlsfront-loadgen: a resumption-aware TLS load generator. N concurrent connections for a fixed
// time, each looping connect → handshake → one HTTP/1.1 request with "Connection: close" → read
// the whole response → close. It chooses what each handshake offers (wrk re-offers its session
// on every reconnect and cannot be told not to):
//   full      never offers a session (TLS 1.2 or 1.3 per --tls)
//   id        TLS 1.2 without the ticket extension: resumes by session ID
//   ticket12  TLS 1.2 session tickets
//   ticket13  TLS 1.3 PSK-DHE resumption with the tickets the server sent
// It verifies every response, counts the handshakes that really resumed, and reports
// handshakes/s, resumed share, p50/p99/p99.9 latency, errors and its own CPU time (text and,
// with --json, a JSON file). Uses tlsfront's own async TLS stream over BoringSSL.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tls/stream.h"

namespace {

namespace asio = boost::asio;
using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

enum class mode { full, id, ticket12, ticket13 };

struct options {
  std::string host = "127.0.0.1";
  std::vector<unsigned short> ports;  // each connection cycles through them, one per handshake
  bool fresh_sessions = false;        // forget a session once it resumed: full, resumed, full...
  std::string sni = "localhost";
  mode m = mode::full;
  std::string mode_name = "full";
  int tls = 13;  // 12 or 13, for full mode
  int connections = 32;
  int threads = 1;
  double duration = 10;
  std::string path = "/";
  std::string expect = "hello from tlsfront-echo-backend";
  std::string json;
};

struct slot {
  bssl::UniquePtr<SSL_SESSION> session;  // the newest resumable session for this connection
};

struct thread_stats {
  std::uint64_t handshakes = 0, resumed = 0, errors = 0, bad_responses = 0;
  std::vector<std::uint32_t> latency_us;
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
  std::uint16_t version = TLS1_3_VERSION;
  if (o.m == mode::id || o.m == mode::ticket12 || (o.m == mode::full && o.tls == 12)) {
    version = TLS1_2_VERSION;
  }
  SSL_CTX_set_min_proto_version(ctx.get(), version);
  SSL_CTX_set_max_proto_version(ctx.get(), version);
  if (o.m == mode::id || o.m == mode::full) {
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
  }
  SSL_CTX_set_session_cache_mode(ctx.get(), o.m == mode::full ? SSL_SESS_CACHE_OFF
                                                               : SSL_SESS_CACHE_CLIENT);
  SSL_CTX_sess_set_new_cb(ctx.get(), &on_new_session);
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
  const std::string request = "GET " + o.path + " HTTP/1.1\r\nHost: " + o.sni +
                              "\r\nConnection: close\r\n\r\n";
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
      response.append(buf.data(), n);
    }
    if (response.rfind("HTTP/1.1 200", 0) != 0 ||
        response.find(o.expect) == std::string::npos) {
      ++st.bad_responses;
      ++st.errors;
      continue;
    }
    tls.shutdown();
    ++st.handshakes;
    st.resumed += resumed ? 1 : 0;
    st.latency_us.push_back(static_cast<std::uint32_t>(
        std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - start)
            .count()));
  }
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int usage() {
  std::fputs(
      "usage: tlsfront-loadgen --port N[,N...] [--host 127.0.0.1] [--sni NAME]\n"
      "       [--mode full|id|ticket12|ticket13] [--tls 1.2|1.3] [--connections 32]\n"
      "       [--threads 1] [--duration 10] [--path /] [--expect TEXT] [--json FILE]\n"
      "       [--fresh-sessions]\n"
      "  several ports: each connection cycles through them (a fleet behind a balancer)\n"
      "  --fresh-sessions: drop a session once it resumed (full, resumed, full, ...)\n",
      stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--host") {
      o.host = value();
    } else if (a == "--port") {
      std::string v = value();
      for (std::size_t p = 0; p <= v.size();) {
        std::size_t e = v.find(',', p);
        if (e == std::string::npos) {
          e = v.size();
        }
        int port = std::atoi(v.substr(p, e - p).c_str());
        if (port <= 0 || port > 65535) {
          return usage();
        }
        o.ports.push_back(static_cast<unsigned short>(port));
        p = e + 1;
      }
    } else if (a == "--fresh-sessions") {
      o.fresh_sessions = true;
    } else if (a == "--sni") {
      o.sni = value();
    } else if (a == "--mode") {
      o.mode_name = value();
      if (o.mode_name == "full") {
        o.m = mode::full;
      } else if (o.mode_name == "id") {
        o.m = mode::id;
      } else if (o.mode_name == "ticket12") {
        o.m = mode::ticket12;
      } else if (o.mode_name == "ticket13") {
        o.m = mode::ticket13;
      } else {
        return usage();
      }
    } else if (a == "--tls") {
      std::string v = value();
      if (v != "1.2" && v != "1.3") {
        return usage();
      }
      o.tls = v == "1.2" ? 12 : 13;
    } else if (a == "--connections") {
      o.connections = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--threads") {
      o.threads = std::max(1, std::atoi(value().c_str()));
    } else if (a == "--duration") {
      o.duration = std::max(0.1, std::atof(value().c_str()));
    } else if (a == "--path") {
      o.path = value();
    } else if (a == "--expect") {
      o.expect = value();
    } else if (a == "--json") {
      o.json = value();
    } else {
      return usage();
    }
  }
  if (o.ports.empty()) {
    return usage();
  }
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
  const std::string tls_name = o.m == mode::id || o.m == mode::ticket12 ? "1.2"
                               : o.m == mode::ticket13                  ? "1.3"
                               : o.tls == 12                            ? "1.2"
                                                                        : "1.3";

  std::vector<thread_stats> stats(static_cast<std::size_t>(o.threads));
  std::vector<std::thread> threads;
  const double cpu_before = cpu_seconds();
  const auto start = clock_type::now();
  const auto end = start + std::chrono::microseconds(static_cast<long>(o.duration * 1e6));
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      asio::io_context ioc(1);
      auto ctx = make_ctx(o);
      int mine = o.connections / o.threads + (t < o.connections % o.threads ? 1 : 0);
      for (int c = 0; c < mine; ++c) {
        asio::co_spawn(ioc, connection_loop(o, ctx.get(), eps, end, stats[t]), asio::detached);
      }
      ioc.run();
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  const double elapsed =
      std::chrono::duration<double>(clock_type::now() - start).count();
  const double cpu = cpu_seconds() - cpu_before;

  thread_stats total;
  for (auto& s : stats) {
    total.handshakes += s.handshakes;
    total.resumed += s.resumed;
    total.errors += s.errors;
    total.bad_responses += s.bad_responses;
    total.latency_us.insert(total.latency_us.end(), s.latency_us.begin(), s.latency_us.end());
  }
  std::sort(total.latency_us.begin(), total.latency_us.end());
  auto pct = [&](double p) -> std::uint32_t {
    if (total.latency_us.empty()) {
      return 0;
    }
    std::size_t i = static_cast<std::size_t>(p * static_cast<double>(total.latency_us.size() - 1));
    return total.latency_us[i];
  };
  const double rate = static_cast<double>(total.handshakes) / elapsed;
  const double share = total.handshakes == 0
                           ? 0.0
                           : static_cast<double>(total.resumed) /
                                 static_cast<double>(total.handshakes);
  std::printf(
      "mode=%s tls=%s connections=%d duration=%.2fs handshakes=%llu (%.0f/s) resumed=%.1f%% "
      "errors=%llu latency p50=%uus p99=%uus p99.9=%uus client_cpu=%.2fs (%.0f%% of one "
      "core)\n",
      o.mode_name.c_str(), tls_name.c_str(), o.connections, elapsed,
      static_cast<unsigned long long>(total.handshakes), rate, share * 100,
      static_cast<unsigned long long>(total.errors), pct(0.5), pct(0.99), pct(0.999), cpu,
      cpu / elapsed * 100);
  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << "{\"mode\":\"" << o.mode_name << "\",\"tls\":\"" << tls_name
        << "\",\"connections\":" << o.connections << ",\"duration_s\":" << elapsed
        << ",\"handshakes\":" << total.handshakes << ",\"handshakes_per_s\":" << rate
        << ",\"resumed\":" << total.resumed << ",\"resumed_share\":" << share
        << ",\"errors\":" << total.errors << ",\"bad_responses\":" << total.bad_responses
        << ",\"latency_us\":{\"p50\":" << pct(0.5) << ",\"p99\":" << pct(0.99)
        << ",\"p999\":" << pct(0.999) << "},\"client_cpu_s\":" << cpu << "}\n";
  }
  return total.handshakes > 0 ? 0 : 1;
}
