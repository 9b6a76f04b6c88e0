// log/options.h — where the error log and the access log go.
#pragma once

#include <string>

namespace tlsfront::log {

struct log_options {
  std::string level = "info";        // trace, debug, info, warn, error, critical, off
  std::string error_log = "stderr";  // "stderr" or a file path
  std::string access_log = "stdout";  // "stdout", "off" or a file path
};

}  // namespace tlsfront::log
