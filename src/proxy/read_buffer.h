// proxy/read_buffer.h — a fixed-size receive buffer with its unread window [begin, end): bytes a
// connection read from a peer (client or backend) and has not yet parsed or relayed. Allocated
// once per connection and reused for every request, so the steady state allocates nothing.
//
// Thread-safety: none; used on its connection's thread. Failure: make_room() leaves no room only
// when the whole buffer is unread (free_size() == 0); callers treat that as a broken peer.
#pragma once

#include <cstddef>
#include <cstring>
#include <string_view>
#include <vector>

namespace tlsfront::proxy {

struct read_buffer {
  explicit read_buffer(std::size_t size) : bytes(size) {}

  std::vector<char> bytes;
  std::size_t begin = 0, end = 0;

  bool empty() const { return begin == end; }
  void clear() { begin = end = 0; }
  std::string_view unread() const { return {bytes.data() + begin, end - begin}; }
  char* free_space() { return bytes.data() + end; }
  std::size_t free_size() const { return bytes.size() - end; }
  // Before a read: rewinds an empty buffer, or moves the unread bytes to the front when the
  // buffer is full up to its end.
  void make_room() {
    if (begin == end) {
      begin = end = 0;
    } else if (end == bytes.size()) {
      std::memmove(bytes.data(), bytes.data() + begin, end - begin);
      end -= begin;
      begin = 0;
    }
  }
};

}  // namespace tlsfront::proxy
