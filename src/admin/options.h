// admin/options.h — the admin HTTP endpoint (plain HTTP; bind it to loopback).
#pragma once

#include <cstdint>
#include <string>

namespace tlsfront::admin {

struct admin_options {
  bool enabled = true;
  std::string address = "127.0.0.1";
  std::uint16_t port = 9901;  // 0: any free port (tests)
};

}  // namespace tlsfront::admin
