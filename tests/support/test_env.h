// tests/support/test_env.h — shared helpers for unit and integration tests: where the source
// tree and built binaries are, test certificates, temporary directories.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace tlsfront::test {

// Root of the source tree.
std::string source_dir();

// Directory holding the test certificates made by scripts/gen-test-certs, generated once per
// test process into a fresh temporary directory. Files (all PEM):
//   ca.crt                     root CA (ECDSA P-256) that signs the intermediate
//   int.crt                    intermediate CA, signs every leaf below
//   a.crt a.key                ECDSA P-256 leaf for a.example (+ www.a.example); .crt =
//   leaf+intermediate b.crt b.key                RSA-2048 leaf for b.example; .crt =
//   leaf+intermediate wild.crt wild.key          ECDSA P-256 leaf for *.wild.example; .crt =
//   leaf+intermediate default.crt default.key    ECDSA P-256 leaf for default.example; .crt =
//   leaf+intermediate other.key                  an ECDSA key that matches no certificate
//   garbage.pem                a file that is not PEM
const std::string& certs_dir();

// A fresh empty directory under $TMPDIR (or /tmp); removed by nobody (tests leave it for
// post-mortems).
std::string make_temp_dir();

// Polls `done` every 50 ms for up to `limit`; true once it held.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit);

// How many times `needle` occurs in `text` (log lines said once, say).
std::size_t occurrences(const std::string& text, const std::string& needle);

// Writes `content` to `path` (truncating); aborts the test on failure.
void write_file(const std::string& path, const std::string& content);

// Reads a whole file; returns "" if it cannot be read.
std::string read_file(const std::string& path);

// A TCP socket listening on 127.0.0.1 at a free port (no SO_REUSEPORT, so nobody else can bind
// that port); sets `port`. Returns the descriptor (the caller closes it), -1 on failure.
int listen_on_loopback(int& port, bool nonblocking = false);

}  // namespace tlsfront::test
