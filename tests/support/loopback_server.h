// tests/support/loopback_server.h — a plain TCP server on 127.0.0.1 for tests that need a
// backend speaking something of their own (WebSocket, raw TCP with PROXY headers): one thread
// accepts connections one at a time and hands each to `serve` (blocking I/O), then closes it.
// Thread-safety: `serve` runs on the server's thread; share results under a lock.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <thread>

#include "support/test_env.h"

namespace tlsfront::test {

class loopback_server {
 public:
  explicit loopback_server(std::function<void(int fd)> serve) : serve_(std::move(serve)) {
    fd_ = listen_on_loopback(port_);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) {
          return;  // shut down
        }
        serve_(c);
        ::close(c);
      }
    });
  }
  ~loopback_server() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  loopback_server(const loopback_server&) = delete;
  loopback_server& operator=(const loopback_server&) = delete;
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::function<void(int)> serve_;
  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// Reads from `fd` until `out` holds `n` bytes; false if the peer closed first.
inline bool read_until_size(int fd, std::string& out, std::size_t n) {
  while (out.size() < n) {
    char buf[4096];
    const ssize_t r = ::read(fd, buf, std::min(sizeof buf, n - out.size()));
    if (r <= 0) {
      return false;
    }
    out.append(buf, static_cast<std::size_t>(r));
  }
  return true;
}

}  // namespace tlsfront::test
