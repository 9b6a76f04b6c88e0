// proxy/read_buffer.h — a fixed-size receive buffer with its unread window [begin, end): bytes a
// connection read from a peer (client or backend) and has not yet parsed or relayed. Allocated
// once per connection and reused for every request, so the steady state allocates nothing.
//
// Thread-safety: none; used on its connection's thread. Failure: make_room() leaves no room only
// when the whole buffer is unread (free_size() == 0); callers treat that as a broken peer.
#pragma once

#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace tlsfront::proxy {

// Storage that is not zeroed when allocated (an HTTP/2 stream allocates one per request; a
// vector's zero fill showed in its profile). Only bytes a read wrote are ever read.
class raw_bytes {
 public:
  explicit raw_bytes(std::size_t size) : data_(new char[size]), size_(size) {}
  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  std::size_t size() const { return size_; }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t size_;
};

struct read_buffer {
  explicit read_buffer(std::size_t size) : bytes(size) {}

  raw_bytes bytes;
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
