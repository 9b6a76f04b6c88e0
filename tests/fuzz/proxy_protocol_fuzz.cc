// Fuzz target: the PROXY protocol codec (v1 and v2 told apart by their signatures) and the
// trusted-network parser. Checks: a header parsed `done` is self-delimiting (the same verdict on
// exactly its bytes, need_more on its proper prefixes), and the addresses it carries build into a
// v1 and a v2 header that parse back to the same addresses.
#include <string>

#include "fuzz_support.h"
#include "proxy/proxy_protocol.h"

namespace {

using tlsfront::fuzz::check;
using tlsfront::proxy::proxy_parse;

void round_trip(const proxy_parse& r) {
  using tlsfront::proxy::parse_proxy_header;
  const std::string v2 = tlsfront::proxy::build_proxy_v2(
      r.source, r.destination, {"TLSv1.3", "TLS_AES_128_GCM_SHA256", "a.example", "h2"});
  const proxy_parse back2 = parse_proxy_header(v2);
  check(back2.result == proxy_parse::status::done && back2.length == v2.size(),
        "a built v2 header does not parse");
  const std::string v1 = tlsfront::proxy::build_proxy_v1(r.source, r.destination);
  const proxy_parse back1 = parse_proxy_header(v1);
  check(back1.result == proxy_parse::status::done && back1.length == v1.size(),
        "a built v1 header does not parse");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using tlsfront::proxy::parse_proxy_header;
  const std::string_view in = tlsfront::fuzz::as_view(data, size);
  const proxy_parse r = parse_proxy_header(in);
  if (r.result == proxy_parse::status::invalid) {
    check(!r.error.empty(), "an invalid header without a reason");
  }
  if (r.result == proxy_parse::status::done) {
    check(r.length > 0 && r.length <= in.size(), "a header longer than its input");
    const proxy_parse exact = parse_proxy_header(in.substr(0, r.length));
    check(exact.result == proxy_parse::status::done && exact.length == r.length,
          "a header parses differently without the bytes after it");
    for (std::size_t n : {std::size_t{0}, r.length / 2, r.length - 1}) {
      check(parse_proxy_header(in.substr(0, n)).result == proxy_parse::status::need_more,
            "a proper prefix of a header is not need_more");
    }
    if (r.has_source) {
      round_trip(r);
    }
  }
  tlsfront::proxy::network net;
  std::string error;
  const std::string_view text = in.substr(0, std::min<std::size_t>(in.size(), 64));
  if (tlsfront::proxy::parse_network(text, net, error)) {
    check(net.prefix >= 0 && net.prefix <= 128, "a network prefix out of range");
    if (r.has_source) {
      (void)tlsfront::proxy::in_network(r.source.address(), net);
    }
  }
  return 0;
}
