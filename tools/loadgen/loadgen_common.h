// What tlsfront-loadgen (BoringSSL, tools/loadgen/loadgen.cc) and tlsfront-loadgen-openssl
// (OpenSSL 3, tools/loadgen_openssl/loadgen_openssl.cc) share, so that both keep the same command
// line, the same text line and the same JSON keys: the options and their parser, the usage text,
// the request each round sends and the check of its response, the per-thread counters, the
// threads that run the rounds, and the summary (percentiles, text line, JSON file).
//
// Plain C++, the standard library and getrusage only: it includes no TLS header and links no
// tlsfront:: library, so the OpenSSL tool never sees BoringSSL and tlsfront-loadgen never sees
// OpenSSL. Both executables compile loadgen_common.cc themselves (tools/CMakeLists.txt).
//
// Thread-safety: each thread_stats has one writer, the thread it belongs to; run_and_report reads
// them only after joining every thread. Everything else is plain data or a pure function.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tlsfront::loadgen {

using clock_type = std::chrono::steady_clock;

// What each handshake offers (see the tools' header comments).
enum class mode { full, id, ticket12, ticket13, early13 };

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

// The options, or nothing if the command line is not understood (an unknown flag, a bad --port,
// --mode or --tls, or no --port at all).
std::optional<options> parse_args(int argc, char** argv);

// Prints the usage text for `program` (the tool's name) to stderr; returns 2, the exit status.
int usage(const char* program);

// True if the handshakes are TLS 1.2 (modes id and ticket12, and full with --tls 1.2).
bool uses_tls12(const options& o);

// True if the client must not offer the ticket extension (modes full and id).
bool disables_tickets(const options& o);

// The request every round sends: GET --path with Host: --sni and "Connection: close".
std::string make_request(const options& o);

// True if the whole response is a 200 that contains --expect.
bool response_ok(const options& o, const std::string& response);

// One thread's counters.
struct thread_stats {
  std::uint64_t handshakes = 0, resumed = 0, errors = 0, bad_responses = 0;
  std::uint64_t early_accepted = 0;  // early13: rounds whose request the server took as 0-RTT
  std::vector<std::uint32_t> latency_us;
  std::vector<std::uint32_t> ttfb_us;  // connect to the first response byte, per round

  // The first response byte of the round that started at `start` arrived now.
  void add_first_byte(clock_type::time_point start);

  // Counts a finished round that started at `start` (connect to close).
  void add_round(bool was_resumed, clock_type::time_point start);
};

// The body of one thread: `thread` in [0, --threads), `connections` its share of --connections,
// `end` the moment no new round starts, `st` its counters (written by this thread only).
using thread_body =
    std::function<void(int thread, int connections, clock_type::time_point end, thread_stats& st)>;

// Runs `body` on --threads threads for --duration, then prints the text line to stdout and, with
// --json, writes the JSON file (an unwritable file is silently skipped, as before). Returns the
// exit status: 0 if any handshake completed, else 1.
int run_and_report(const options& o, const thread_body& body);

}  // namespace tlsfront::loadgen
