// Request parsing cost: tlsfront's strict parser (head + validation + views) against a baseline
// of bare llhttp with no callbacks over the same bytes, in the same binary.
#include <benchmark/benchmark.h>
#include <llhttp.h>

#include <string>

#include "http/header_rewrite.h"
#include "http/message_parser.h"

namespace {

const std::string request =
    "GET /api/v1/items?id=42 HTTP/1.1\r\nHost: a.example.com\r\nUser-Agent: wrk/4.2\r\n"
    "Accept: */*\r\nAccept-Encoding: gzip\r\nCookie: session=abcdef0123456789\r\n"
    "X-Request-Id: 7f1c2a\r\n\r\n";

void BM_Llhttp_Baseline(benchmark::State& state) {
  llhttp_settings_t settings;
  llhttp_settings_init(&settings);
  llhttp_t parser;
  llhttp_init(&parser, HTTP_REQUEST, &settings);
  for (auto _ : state) {
    llhttp_reset(&parser);
    benchmark::DoNotOptimize(llhttp_execute(&parser, request.data(), request.size()));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Llhttp_Baseline);

void BM_MessageParser_Request(benchmark::State& state) {
  using namespace tlsfront::http;
  message_parser p(message_parser::kind::request, {16 * 1024, 100});
  for (auto _ : state) {
    p.reset_for_next();
    std::size_t consumed = 0;
    benchmark::DoNotOptimize(p.feed(request, consumed));
    benchmark::DoNotOptimize(p.feed(std::string_view(request).substr(consumed), consumed));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MessageParser_Request);

void BM_MessageParser_RequestAndRewrite(benchmark::State& state) {
  using namespace tlsfront::http;
  message_parser p(message_parser::kind::request, {16 * 1024, 100});
  std::string out;
  for (auto _ : state) {
    p.reset_for_next();
    std::size_t consumed = 0;
    p.feed(request, consumed);
    out.clear();
    build_backend_request(p.head(), forwarded_info{"192.0.2.1", "https", "", ""},
                          body_framing::none, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MessageParser_RequestAndRewrite);

}  // namespace
