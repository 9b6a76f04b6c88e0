// tests/fuzz/fuzz_support.h — what the libFuzzer targets share: input splits derived from the
// input itself (so a seed is a plain message, and a crash replays from the file alone) and a
// check that reports a broken invariant as a crash the fuzzer records.
// Thread-safety: none needed (libFuzzer calls a target on one thread).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

namespace tlsfront::fuzz {

// A broken invariant is a bug like a sanitizer report: print it and abort, so libFuzzer keeps
// the input as a crash artifact.
inline void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
    std::abort();
  }
}

// Cuts an input into pieces of 1..64 bytes (sometimes all of it at once), chosen by a
// generator seeded from the input's bytes: deterministic per input.
class splitter {
 public:
  explicit splitter(std::string_view all) : rest_(all) {
    std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
    for (unsigned char c : all) {
      h = (h ^ c) * 0x100000001b3ULL;
    }
    state_ = h | 1;
  }
  bool done() const { return rest_.empty(); }
  std::string_view next() {
    std::size_t n = rest_.size();
    if (const std::uint64_t r = step(); r % 8 != 0) {  // 1 in 8: the whole rest at once
      n = std::min<std::size_t>(n, 1 + (r >> 8) % 64);
    }
    std::string_view piece = rest_.substr(0, n);
    rest_.remove_prefix(n);
    return piece;
  }
  // A pseudo-random choice for other decisions (framing, flags), from the same generator.
  std::uint64_t step() {
    state_ ^= state_ << 13;  // xorshift64
    state_ ^= state_ >> 7;
    state_ ^= state_ << 17;
    return state_;
  }

 private:
  std::string_view rest_;
  std::uint64_t state_;
};

// Seeds a target can make itself (real tickets, key lists, replies) go to the directory named
// by $TLSFRONT_FUZZ_WRITE_SEEDS when its LLVMFuzzerInitialize runs; unset in a normal run.
inline bool writing_seeds() {
  return std::getenv("TLSFRONT_FUZZ_WRITE_SEEDS") != nullptr;
}
inline void write_seed(const std::string& name, std::string_view bytes) {
  std::ofstream out(std::string(std::getenv("TLSFRONT_FUZZ_WRITE_SEEDS")) + "/" + name,
                    std::ios::binary | std::ios::trunc);
  out << bytes;
  check(static_cast<bool>(out), "cannot write a seed");
}

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace tlsfront::fuzz
