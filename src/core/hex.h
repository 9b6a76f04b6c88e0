// core/hex.h — lowercase hex encoding and strict decoding of byte strings.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace tlsfront::core {

std::string to_hex(std::string_view bytes);
// The value of one hex digit (either case), or -1 if `c` is not one.
int hex_digit_value(char c);
// Decodes an even-length string of hex digits (either case); nullopt on anything else.
std::optional<std::string> from_hex(std::string_view hex);

}  // namespace tlsfront::core
