// tests/fuzz/http_message_fuzz.h — the driver the request and response fuzz targets share: feeds
// one input through http::message_parser in input-derived splits, the body streamed to an output
// re-framed as the proxy would (content-length or chunked), pipelined messages one after the
// other, then the peer's close (finish). Checks the parser's contract on the way.
#pragma once

#include <string>
#include <string_view>

#include "fuzz_support.h"
#include "http/message_parser.h"

namespace tlsfront::fuzz {

inline void drive_http_parser(http::message_parser::kind kind, std::string_view input) {
  using st = http::message_parser::status;
  splitter split(input);
  http::message_parser::limits limits;
  if (split.step() % 4 == 0) {
    limits.max_header_bytes = 512;  // the limits' own paths, reachable with small inputs
    limits.max_header_count = 8;
  }
  http::message_parser p(kind, limits);
  std::string body;
  auto prepare = [&] {
    if (kind == http::message_parser::kind::response) {
      const std::uint64_t r = split.step();
      p.set_no_body_expected(r % 8 == 0);
      p.set_upgrade_expected(r % 5 == 0);
    }
  };
  prepare();
  bool over = false;  // an error, or an upgrade: what follows is not HTTP
  while (!split.done() && !over) {
    std::string_view piece = split.next();
    while (!over) {
      std::size_t used = 0;
      const st s = p.feed(piece, used);
      check(used <= piece.size(), "feed consumed more than it was given");
      piece.remove_prefix(used);
      if (s == st::need_more) {
        check(piece.empty(), "need_more left input unconsumed");
        break;
      }
      if (s == st::error) {
        check(p.error() != http::parse_error::none && !p.error_reason().empty(),
              "an error without a reason");
        over = true;
        break;
      }
      if (s == st::head_done) {
        const http::message_head& h = p.head();
        std::size_t total = h.method.size() + h.target.size() + h.host.size() + h.reason.size();
        for (const auto& f : h.headers) {
          total += f.name.size() + f.value.size();  // ASan checks every view is still valid
        }
        (void)h.find("host");
        (void)total;
        const bool chunked_out = h.chunked || split.step() % 3 == 0;
        p.set_body_output(
            &body, chunked_out ? http::body_framing::chunked : http::body_framing::content_length);
        continue;
      }
      // message_done
      check(p.head_complete(), "a message completed without its head");
      if (p.head().upgrade || p.head().status == 101 || p.head().method == "CONNECT") {
        over = true;
        break;
      }
      p.reset_for_next();
      body.clear();
      prepare();
    }
  }
  if (!over) {
    (void)p.finish();
  }
}

}  // namespace tlsfront::fuzz
