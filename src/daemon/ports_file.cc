#include "daemon/ports_file.h"

#include <cstdio>
#include <fstream>

namespace tlsfront::daemon {

std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep) {
  std::string a = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(ep.port());
}

bool write_ports_file(const std::string& path, const std::vector<ports_entry>& entries) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& [name, ep] : entries) {
      out << name << " " << endpoint_text(ep) << "\n";
    }
    out.flush();
    if (!out) {
      return false;
    }
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace tlsfront::daemon
