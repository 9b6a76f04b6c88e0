// Fuzz target: http::message_parser as a response parser (what a backend answers), with the
// request's HEAD / upgrade expectations varied per input.
#include "http_message_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  tlsfront::fuzz::drive_http_parser(tlsfront::http::message_parser::kind::response,
                                    tlsfront::fuzz::as_view(data, size));
  return 0;
}
