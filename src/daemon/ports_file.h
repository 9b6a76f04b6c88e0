// daemon/ports_file.h — the ports file (--ports-file): after binding, one line per listener,
// "<name> <address>:<port>" (IPv6 in brackets), and "admin <address>:<port>", so scripts and
// tests that bind port 0 learn the ports the kernel chose. Rewritten after each reload.
//
// Thread-safety: free functions, no shared state; the daemon writes under its reload lock.
// Failure: write_ports_file() returns false (the caller logs it) and never leaves a half-written
// file: it writes `<path>.tmp` and renames it over `path`, so a reader sees the old file or the
// new one.
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <string>
#include <utility>
#include <vector>

namespace tlsfront::daemon {

// "127.0.0.1:8443", "[::1]:8443".
std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep);

using ports_entry = std::pair<std::string, boost::asio::ip::tcp::endpoint>;  // name, bound

// Writes `entries` in order, one "<name> <endpoint_text>" line each. False when the file could
// not be written or renamed (the previous file, if any, stays).
bool write_ports_file(const std::string& path, const std::vector<ports_entry>& entries);

}  // namespace tlsfront::daemon
