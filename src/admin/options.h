// admin/options.h — the admin HTTP endpoint (plain HTTP; bind it to loopback, or give it a token).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tlsfront::admin {

struct admin_options {
  bool enabled = true;
  std::string address = "127.0.0.1";
  std::uint16_t port = 9901;  // 0: any free port (tests)
  // Bearer token every state-changing request (POST, PUT, DELETE) must carry as
  // `Authorization: Bearer <token>`; read by config from `token_file` (empty: no token, allowed
  // only on a loopback address).
  std::string token_file;
  std::string token;
  // Host header values accepted besides the listen address (and `localhost` on loopback), e.g.
  // the name Prometheus scrapes by. Matched case-insensitively, with or without the port.
  std::vector<std::string> allowed_hosts;
  // Connections open at once; one more is answered 503 and closed.
  std::size_t max_connections = 32;
  // A whole request (head and body) must arrive within this, counted from the moment the
  // connection is ready for it (accepted, or the previous response sent).
  std::chrono::milliseconds request_timeout{10'000};
  // POST /tickets/rotate: at most `rotate_burst` at once, then one per `rotate_interval`.
  std::size_t rotate_burst = 10;
  std::chrono::milliseconds rotate_interval{60'000};
  // Where PUT /certificates/<name> keeps what it installs (<dir>/<name>.pem, mode 0600), and
  // where config loading looks first for each certificate's replacement. Empty: replacements
  // live in memory only (kept across reloads, gone at restart).
  std::string certificate_dir;
};

}  // namespace tlsfront::admin
