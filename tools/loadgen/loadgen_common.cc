// The parts tlsfront-loadgen and tlsfront-loadgen-openssl share (see loadgen_common.h): option
// parsing, usage, request and response check, per-thread counters, the thread harness and the
// summary. No TLS library here.
#include "loadgen/loadgen_common.h"

#include <sys/resource.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <thread>

namespace tlsfront::loadgen {

namespace {

// User plus system CPU time of the whole process, in seconds.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

// All threads' counters together, latencies sorted.
thread_stats sum(const std::vector<thread_stats>& stats) {
  thread_stats total;
  for (const auto& s : stats) {
    total.handshakes += s.handshakes;
    total.resumed += s.resumed;
    total.errors += s.errors;
    total.bad_responses += s.bad_responses;
    total.early_accepted += s.early_accepted;
    total.latency_us.insert(total.latency_us.end(), s.latency_us.begin(), s.latency_us.end());
    total.ttfb_us.insert(total.ttfb_us.end(), s.ttfb_us.begin(), s.ttfb_us.end());
  }
  std::sort(total.latency_us.begin(), total.latency_us.end());
  std::sort(total.ttfb_us.begin(), total.ttfb_us.end());
  return total;
}

// The p-quantile (0..1) of sorted latencies, nearest rank below; 0 if there are none.
std::uint32_t percentile(const std::vector<std::uint32_t>& sorted, double p) {
  if (sorted.empty()) {
    return 0;
  }
  std::size_t i = static_cast<std::size_t>(p * static_cast<double>(sorted.size() - 1));
  return sorted[i];
}

// Sums the threads' counters, prints the text line and writes the JSON file (with --json).
// Returns the exit status: 0 if any handshake completed, else 1.
int report(const options& o, const std::vector<thread_stats>& stats, double elapsed, double cpu) {
  const std::string tls_name = uses_tls12(o) ? "1.2" : "1.3";
  const thread_stats total = sum(stats);
  const std::uint32_t p50 = percentile(total.latency_us, 0.5);
  const std::uint32_t p99 = percentile(total.latency_us, 0.99);
  const std::uint32_t p999 = percentile(total.latency_us, 0.999);
  const double rate = static_cast<double>(total.handshakes) / elapsed;
  const double share = total.handshakes == 0 ? 0.0
                                             : static_cast<double>(total.resumed) /
                                                   static_cast<double>(total.handshakes);
  std::printf(
      "mode=%s tls=%s connections=%d duration=%.2fs handshakes=%llu (%.0f/s) resumed=%.1f%% "
      "errors=%llu early_accepted=%llu latency p50=%uus p99=%uus p99.9=%uus client_cpu=%.2fs "
      "(%.0f%% of one core)\n",
      o.mode_name.c_str(), tls_name.c_str(), o.connections, elapsed,
      static_cast<unsigned long long>(total.handshakes), rate, share * 100,
      static_cast<unsigned long long>(total.errors),
      static_cast<unsigned long long>(total.early_accepted), p50, p99, p999, cpu,
      cpu / elapsed * 100);
  if (!o.json.empty()) {
    std::ofstream out(o.json);
    out << "{\"mode\":\"" << o.mode_name << "\",\"tls\":\"" << tls_name
        << "\",\"connections\":" << o.connections << ",\"duration_s\":" << elapsed
        << ",\"handshakes\":" << total.handshakes << ",\"handshakes_per_s\":" << rate
        << ",\"resumed\":" << total.resumed << ",\"resumed_share\":" << share
        << ",\"errors\":" << total.errors << ",\"bad_responses\":" << total.bad_responses
        << ",\"early_accepted\":" << total.early_accepted << ",\"latency_us\":{\"p50\":" << p50
        << ",\"p99\":" << p99 << ",\"p999\":" << p999
        << "},\"ttfb_us\":{\"p50\":" << percentile(total.ttfb_us, 0.5)
        << ",\"p99\":" << percentile(total.ttfb_us, 0.99) << "},\"client_cpu_s\":" << cpu << "}\n";
  }
  return total.handshakes > 0 ? 0 : 1;
}

}  // namespace

std::optional<options> parse_args(int argc, char** argv) {
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
          return std::nullopt;
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
      } else if (o.mode_name == "early13") {
        o.m = mode::early13;
      } else {
        return std::nullopt;
      }
    } else if (a == "--tls") {
      std::string v = value();
      if (v != "1.2" && v != "1.3") {
        return std::nullopt;
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
      return std::nullopt;
    }
  }
  if (o.ports.empty()) {
    return std::nullopt;
  }
  return o;
}

int usage(const char* program) {
  std::fprintf(
      stderr,
      "usage: %s --port N[,N...] [--host 127.0.0.1] [--sni NAME]\n"
      "       [--mode full|id|ticket12|ticket13|early13] [--tls 1.2|1.3] [--connections 32]\n"
      "       [--threads 1] [--duration 10] [--path /] [--expect TEXT] [--json FILE]\n"
      "       [--fresh-sessions]\n"
      "  several ports: each connection cycles through them (a fleet behind a balancer)\n"
      "  --fresh-sessions: drop a session once it resumed (full, resumed, full, ...)\n",
      program);
  return 2;
}

bool uses_tls12(const options& o) {
  return o.m == mode::id || o.m == mode::ticket12 || (o.m == mode::full && o.tls == 12);
}

bool disables_tickets(const options& o) {
  return o.m == mode::id || o.m == mode::full;
}

std::string make_request(const options& o) {
  return "GET " + o.path + " HTTP/1.1\r\nHost: " + o.sni + "\r\nConnection: close\r\n\r\n";
}

bool response_ok(const options& o, const std::string& response) {
  return response.rfind("HTTP/1.1 200", 0) == 0 && response.find(o.expect) != std::string::npos;
}

void thread_stats::add_first_byte(clock_type::time_point start) {
  ttfb_us.push_back(static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - start).count()));
}

void thread_stats::add_round(bool was_resumed, clock_type::time_point start) {
  ++handshakes;
  resumed += was_resumed ? 1 : 0;
  latency_us.push_back(static_cast<std::uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - start).count()));
}

int run_and_report(const options& o, const thread_body& body) {
  std::vector<thread_stats> stats(static_cast<std::size_t>(o.threads));
  std::vector<std::thread> threads;
  const double cpu_before = cpu_seconds();
  const auto start = clock_type::now();
  const auto end = start + std::chrono::microseconds(static_cast<long>(o.duration * 1e6));
  for (int t = 0; t < o.threads; ++t) {
    threads.emplace_back([&, t] {
      int mine = o.connections / o.threads + (t < o.connections % o.threads ? 1 : 0);
      body(t, mine, end, stats[static_cast<std::size_t>(t)]);
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  const double elapsed = std::chrono::duration<double>(clock_type::now() - start).count();
  const double cpu = cpu_seconds() - cpu_before;
  return report(o, stats, elapsed, cpu);
}

}  // namespace tlsfront::loadgen
