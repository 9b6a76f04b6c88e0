#include "tls/ssl_error.h"

#include <openssl/err.h>

namespace tlsfront::tls {

std::string take_ssl_error() {
  std::string out;
  char buf[256];
  while (uint32_t e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    if (!out.empty()) {
      out += "; ";
    }
    out += buf;
  }
  return out.empty() ? std::string("unknown error") : out;
}

}  // namespace tlsfront::tls
