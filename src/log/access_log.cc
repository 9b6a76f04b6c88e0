#include "log/access_log.h"

#include <string>

#include "log/logging.h"

namespace tlsfront::log {
namespace {
// Appends `v` quoted; quotes, backslashes and bytes outside printable ASCII are escaped.
void append_quoted(std::string& out, std::string_view v) {
  static constexpr char hex[] = "0123456789abcdef";
  out.push_back('"');
  for (unsigned char c : v) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(static_cast<char>(c));
    } else if (c < 0x20 || c >= 0x7f) {
      out.append("\\x");
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xf]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out.push_back('"');
}
}  // namespace

void write_access(const access_record& r) {
  spdlog::logger* logger = access_logger();
  if (logger == nullptr) {
    return;
  }
  std::string line;
  line.reserve(256);
  line += "client=";
  line += r.client;
  line += " sni=";
  append_quoted(line, r.sni.empty() ? std::string_view("-") : r.sni);
  line += " tls=";
  line += r.tls_version.empty() ? std::string_view("-") : r.tls_version;
  line += " cipher=";
  line += r.cipher.empty() ? std::string_view("-") : r.cipher;
  line += " resumed=";
  line += r.resumed;
  line += " handshake_us=" + std::to_string(r.handshake_us);
  line += r.early ? " early=1" : " early=0";
  line += " proto=";
  line += r.protocol;
  line += " method=";
  append_quoted(line, r.method);
  line += " path=";
  append_quoted(line, r.path);
  line += " status=" + std::to_string(r.status);
  line += " bytes_sent=" + std::to_string(r.bytes_sent);
  line += " bytes_received=" + std::to_string(r.bytes_received);
  line += " upstream=";
  line += r.upstream.empty() ? std::string_view("-") : r.upstream;
  line += " duration_us=" + std::to_string(r.duration_us);
  if (!r.client_cert.empty()) {
    line += " client_cert=";
    line += r.client_cert;
  }
  if (!r.client_subject.empty()) {
    line += " client_subject=";
    append_quoted(line, r.client_subject);
  }
  if (r.aborted) {
    line += " aborted=1";
  }
  logger->info("{}", line);
}

}  // namespace tlsfront::log
