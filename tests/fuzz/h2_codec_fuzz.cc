// Fuzz target: http::h2_codec as a client's peer sees it. The input is the client's bytes after
// its connection preface (the target prepends the preface, so mutations reach frame parsing),
// fed in input-derived splits; an owner answers every request (head, a little body, sometimes
// trailers or a reset), consumes request bodies at once or never, and the output is pulled
// between pieces. Checks the codec's contract: events only for delivered streams, one close
// each, and buffered input and output within their bounds.
#include <nghttp2/nghttp2.h>

#include <map>
#include <string>

#include "core/clock.h"
#include "fuzz_support.h"
#include "http/h2_codec.h"

namespace {

using tlsfront::fuzz::check;
namespace http = tlsfront::http;

struct owner : http::h2_events {
  http::h2_codec* codec = nullptr;
  tlsfront::fuzz::splitter* split = nullptr;
  std::map<std::int32_t, bool> open;  // delivered streams → still open
  bool consume = true;

  bool known(std::int32_t id) const { return open.count(id) && open.at(id); }
  void on_request_head(std::int32_t id, http::h2_request_head head) override {
    check(!open.count(id), "a stream's head delivered twice");
    check(!head.method.empty(), "a head without :method");
    open[id] = true;
  }
  void on_request_body(std::int32_t id, std::span<const std::uint8_t> b) override {
    check(known(id), "body for a stream never delivered");
    if (consume) {
      check(codec->consume(id, b.size()) == http::h2_result::ok, "consume refused");
    }
  }
  void on_request_end(std::int32_t id, std::vector<http::h2_field>) override {
    check(known(id), "end for a stream never delivered");
    std::uint64_t r = split->step();
    if (r % 7 == 0) {
      codec->reset_stream(id, http::h2_cancel);
      return;
    }
    codec->submit_response(id, 200, std::vector<http::h2_field>{{"x-a", "b"}}, r % 5 == 0);
    std::string body(std::size_t(r % 70000), 'b');
    codec->write_body(id, {reinterpret_cast<const std::uint8_t*>(body.data()), body.size()});
    std::vector<http::h2_field> trailers;
    if (r % 3 == 0) {
      trailers.push_back({"x-t", "1"});
    }
    codec->end_response(id, trailers);
  }
  void on_stream_closed(std::int32_t id, std::uint32_t) override {
    check(known(id), "close for a stream never delivered or closed twice");
    open[id] = false;
  }
  void on_output_room(std::int32_t id) override { check(known(id), "room for an unknown stream"); }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string input(NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN);
  input.append(reinterpret_cast<const char*>(data), size);
  tlsfront::fuzz::splitter split(input);
  http::h2_options options;
  options.initial_stream_window = 65535;
  options.connection_window = 128 * 1024;
  options.stream_output_buffer = 16 * 1024;
  options.connection_output_buffer = 32 * 1024;
  options.max_header_list_size = 4096;
  tlsfront::core::manual_clock clock;
  owner o;
  o.split = &split;
  o.consume = split.step() % 4 != 0;
  http::h2_codec codec(options, o, clock);
  o.codec = &codec;
  std::string out;
  while (!split.done()) {
    std::string_view piece = split.next();
    http::h2_feed_status st =
        codec.feed({reinterpret_cast<const std::uint8_t*>(piece.data()), piece.size()});
    check(codec.input_unconsumed() <= options.connection_window, "input over the window");
    check(codec.output_buffered() <= options.connection_output_buffer, "output over the bound");
    out.clear();
    codec.pull_output(out);
    clock.advance(std::chrono::milliseconds(split.step() % 50));
    if (st == http::h2_feed_status::closing) {
      break;
    }
  }
  while (!codec.finished() && codec.pull_output(out) > 0) {
    out.clear();
  }
  return 0;
}
