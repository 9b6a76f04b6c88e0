// tests/support/redis_server.h — a real redis-server for tests, on a free 127.0.0.1 port, no
// persistence, optionally with a password. Stop, kill and restart (same port) let tests show
// what happens while Redis is gone. Thread-safety: none. The server is killed on destruction.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

namespace tlsfront::test {

// A 127.0.0.1 TCP port nothing listens on now (bound, read, closed).
int free_port();

// A redis-sentinel monitoring `master_name` at 127.0.0.1:master_port, with short timings (down
// after 1 s, failover timeout 3 s) so a test sees a failover in a few seconds.
struct sentinel_config {
  int master_port = 0;
  std::string master_name = "edge";
  int quorum = 2;
  int port = 0;  // 0: a free port
};

class redis_server {
 public:
  // Starts and waits until it answers PING; aborts the test (ADD_FAILURE + no server) if not.
  // `port` 0: a free one.
  explicit redis_server(std::string password = "", std::vector<std::string> extra_args = {},
                        int port = 0);
  // A sentinel (redis-server --sentinel) with that configuration.
  explicit redis_server(const sentinel_config& sentinel);
  ~redis_server();
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  bool running() const { return pid_ > 0; }
  void kill();     // SIGKILL and reap: connections break without a goodbye
  bool restart();  // on the same port; true once it answers PING
  // Runs redis-cli with these arguments against this server; returns its stdout.
  std::string cli(const std::vector<std::string>& args) const;

 private:
  bool spawn();
  std::string password_;
  std::vector<std::string> extra_;
  std::optional<sentinel_config> sentinel_;
  std::string dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace tlsfront::test
