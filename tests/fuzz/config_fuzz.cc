// Fuzz target: the config loader (config::load_string) on arbitrary TOML text, plus the
// duration and size parsers. Loads only, starts nothing. The files a config may name exist in a
// temp dir made at start-up, under the names the seeds use: certs/tlsfront.crt and
// certs/tlsfront.key (a fresh self-signed pair), fleet.secret, redis.password and
// tickets/current.key, so the sections after [[listener]] (pools, routes) are reached too.
// Checks: an error names the file and a position, and never an "internal error" (an exception
// the loader did not expect, i.e. a check it lacks).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"
#include "fuzz_support.h"
#include "self_signed.h"

namespace {

using tlsfront::fuzz::check;

void write(const std::filesystem::path& p, const std::string& bytes) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << bytes;
  check(static_cast<bool>(out), "set-up: cannot write a temp file");
}

// The temp dir, removed when the fuzzer exits (a crash leaves it, next to the reproducer).
std::filesystem::path& temp_dir() {
  static std::filesystem::path dir;
  return dir;
}

const std::string& config_path() {
  static const std::string path = [] {
    char tmpl[] = "/tmp/tlsfront-config-fuzz-XXXXXX";
    check(mkdtemp(tmpl) != nullptr, "set-up: mkdtemp");
    const std::filesystem::path dir(tmpl);
    temp_dir() = dir;
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(temp_dir(), ignored);
    });
    const tlsfront::fuzz::self_signed pair;
    write(dir / "certs/tlsfront.crt", pair.cert_pem());
    write(dir / "certs/tlsfront.key", pair.key_pem());
    write(dir / "fleet.secret", std::string(64, 'f') + "\n");
    write(dir / "redis.password", "fuzz-password\n");
    write(dir / "tickets/current.key", std::string(80, 'k'));
    std::filesystem::permissions(dir / "fleet.secret", std::filesystem::perms::owner_read |
                                                           std::filesystem::perms::owner_write);
    return (dir / "tlsfront.toml").string();
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = tlsfront::fuzz::as_view(data, size);
  const std::string& path = config_path();
  const tlsfront::config::load_result r = tlsfront::config::load_string(text, path);
  if (!r.value) {
    check(r.error.file == path && r.error.line >= 1 && r.error.column >= 1,
          "an error without its file:line:column");
    check(!r.error.message.empty(), "an error without a message");
    check(!r.error.message.starts_with("internal error: "),
          "the loader hit an exception it did not expect");
  } else {
    (void)tlsfront::config::restart_only_changes(*r.value, *r.value);
  }
  const std::string_view word = text.substr(0, std::min<std::size_t>(text.size(), 32));
  (void)tlsfront::config::parse_duration(word);
  (void)tlsfront::config::parse_size(word);
  return 0;
}
