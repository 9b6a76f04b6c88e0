// tlsfront — a TLS-terminating HTTP/1.1 reverse proxy. This file only reads the command line
// and hands over to the daemon (src/daemon/daemon.h).
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "daemon/daemon.h"

namespace {

constexpr const char* usage =
    "usage: tlsfront -c FILE [-t] [--ports-file FILE]\n"
    "  -c, --config FILE    configuration file (TOML)\n"
    "  -t, --test           check the configuration and exit (0 good, 1 bad)\n"
    "  --ports-file FILE    after binding, write \"<listener> <address>:<port>\" lines\n"
    "                       (and \"admin <address>:<port>\") to FILE\n"
    "  -v, --version        print the version and exit\n";

}  // namespace

int main(int argc, char** argv) {
  tlsfront::daemon::daemon_options opts;
  // SIGUSR2 starts the successor as this process was started: the binary at the same path (a
  // new one installed there is the upgrade), resolved now against the starting directory.
  opts.exe = argv[0];
  if (opts.exe.find('/') != std::string::npos) {
    if (char* real = ::realpath(argv[0], nullptr)) {
      opts.exe = real;
      std::free(real);
    }
  }
  for (int i = 1; i < argc; ++i) {
    opts.args.emplace_back(argv[i]);
  }
  bool test_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      opts.config_path = argv[++i];
    } else if (a == "-t" || a == "--test") {
      test_only = true;
    } else if (a == "--ports-file" && i + 1 < argc) {
      opts.ports_file = argv[++i];
    } else if (a == "-v" || a == "--version") {
      std::printf("tlsfront 0.1.0\n");
      return 0;
    } else if (a == "-h" || a == "--help") {
      std::fputs(usage, stdout);
      return 0;
    } else {
      std::fprintf(stderr, "tlsfront: unknown argument %s\n%s", a.c_str(), usage);
      return 1;
    }
  }
  if (opts.config_path.empty()) {
    std::fprintf(stderr, "tlsfront: no config file given (-c FILE)\n%s", usage);
    return 1;
  }
  if (test_only) {
    return tlsfront::daemon::check_config(opts.config_path);
  }
  return tlsfront::daemon::process(std::move(opts)).run();
}
