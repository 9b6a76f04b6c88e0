// tlsfront-echo-backend: a fast plain-HTTP/1.1 backend for the demo, the integration tests and
// the benchmarks. This file holds the command line, the listening sockets (one SO_REUSEPORT
// acceptor per worker thread, each worker with its own io_context), the port file and signal
// handling; connection.h serves the requests, route.h lists the endpoints.
//
// Usage: tlsfront-echo-backend [--listen HOST:PORT] [--threads N] [--port-file PATH]
//   --listen     address to listen on; port 0 picks a free port (default 127.0.0.1:8080)
//   --threads    worker threads, each with its own acceptor on the same port (default 1)
//   --port-file  after listening, write the bound port (decimal, newline) here, atomically
// Prints "listening on HOST:PORT" once listening. SIGTERM/SIGINT stop it with exit status 0;
// a bad option or a failure to listen prints one line to stderr and exits 1 (2 for usage).
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio.hpp>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "echo_backend/connection.h"
#include "echo_backend/stats.h"

namespace tlsfront::echo_backend {
namespace {

using asio::use_awaitable;
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8080;
  std::size_t threads = 1;
  std::string port_file;
};

constexpr std::string_view usage =
    "usage: tlsfront-echo-backend [--listen HOST:PORT] [--threads N] [--port-file PATH]\n";

bool parse_unsigned(std::string_view text, std::uint64_t max, std::uint64_t& value) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  return !text.empty() && ec == std::errc() && ptr == end && value <= max;
}

// "HOST:PORT", "[V6]:PORT" or ":PORT" (all addresses); false when malformed.
bool parse_listen(std::string_view text, options& opts) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    return false;
  }
  std::string_view host = text.substr(0, colon);
  std::uint64_t port = 0;
  if (!parse_unsigned(text.substr(colon + 1), 65535, port)) {
    return false;
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty() || host == "*") {
    host = "0.0.0.0";
  } else if (host == "localhost") {
    host = "127.0.0.1";
  }
  opts.host = std::string(host);
  opts.port = static_cast<std::uint16_t>(port);
  return true;
}

// Parses argv; on error prints why and returns nullopt.
std::optional<options> parse_options(int argc, char** argv) {
  options opts;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view value;
    const std::size_t eq = arg.find('=');
    if (arg.starts_with("--") && eq != std::string_view::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
    } else if (arg == "--help" || arg == "-h") {
      std::fputs(usage.data(), stdout);
      std::exit(0);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      std::fprintf(stderr, "tlsfront-echo-backend: %s needs a value\n%s", argv[i], usage.data());
      return std::nullopt;
    }
    std::uint64_t number = 0;
    if (arg == "--listen") {
      if (!parse_listen(value, opts)) {
        std::fprintf(stderr, "tlsfront-echo-backend: bad --listen '%.*s' (want HOST:PORT)\n",
                     static_cast<int>(value.size()), value.data());
        return std::nullopt;
      }
    } else if (arg == "--threads") {
      if (!parse_unsigned(value, 1024, number) || number == 0) {
        std::fprintf(stderr, "tlsfront-echo-backend: bad --threads '%.*s' (want 1..1024)\n",
                     static_cast<int>(value.size()), value.data());
        return std::nullopt;
      }
      opts.threads = static_cast<std::size_t>(number);
    } else if (arg == "--port-file") {
      opts.port_file = std::string(value);
    } else {
      std::fprintf(stderr, "tlsfront-echo-backend: unknown option '%.*s'\n%s",
                   static_cast<int>(arg.size()), arg.data(), usage.data());
      return std::nullopt;
    }
  }
  return opts;
}

// Opens, binds and listens `acceptor` with SO_REUSEPORT; on failure returns the error.
boost::system::error_code listen_on(tcp::acceptor& acceptor, const tcp::endpoint& endpoint) {
  boost::system::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) {
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  }
  if (!ec) {
    acceptor.set_option(reuse_port(true), ec);
  }
  if (!ec) {
    acceptor.bind(endpoint, ec);
  }
  if (!ec) {
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  return ec;
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor, worker_stats& own,
                                  const stats_registry& all) {
  const auto executor = co_await asio::this_coro::executor;
  asio::steady_timer backoff(executor);
  for (;;) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(use_awaitable));
    if (ec == asio::error::operation_aborted || ec == asio::error::bad_descriptor) {
      co_return;
    }
    if (ec) {
      // Out of descriptors or a transient error: wait a little instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(20));
      co_await backoff.async_wait(asio::as_tuple(use_awaitable));
      continue;
    }
    asio::co_spawn(executor, serve_connection(std::move(socket), own, all), asio::detached);
  }
}

// Writes "PORT\n" to `path` through a temporary file and rename, so a reader never sees a
// partial number. False (after printing why) on failure.
bool write_port_file(const std::string& path, std::uint16_t port) {
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream file(temporary, std::ios::trunc);
    file << port << '\n';
    file.close();
    if (!file) {
      std::fprintf(stderr, "tlsfront-echo-backend: cannot write %s\n", temporary.c_str());
      return false;
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::perror(("tlsfront-echo-backend: cannot rename to " + path).c_str());
    std::remove(temporary.c_str());
    return false;
  }
  return true;
}

int run(const options& opts) {
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(opts.host, ec);
  if (ec) {
    std::fprintf(stderr, "tlsfront-echo-backend: bad address '%s': %s\n", opts.host.c_str(),
                 ec.message().c_str());
    return 1;
  }

  // One io_context per worker (concurrency hint 1: only its own thread runs it).
  std::vector<std::unique_ptr<asio::io_context>> workers;
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  stats_registry stats(opts.threads);
  tcp::endpoint endpoint(address, opts.port);
  for (std::size_t i = 0; i < opts.threads; ++i) {
    workers.push_back(std::make_unique<asio::io_context>(1));
    acceptors.push_back(std::make_unique<tcp::acceptor>(*workers.back()));
    if (auto error = listen_on(*acceptors.back(), endpoint)) {
      std::fprintf(stderr, "tlsfront-echo-backend: cannot listen on %s:%u: %s\n", opts.host.c_str(),
                   static_cast<unsigned>(endpoint.port()), error.message().c_str());
      return 1;
    }
    if (i == 0) {
      // With port 0 the kernel chose one; the other workers join that port.
      endpoint.port(acceptors.back()->local_endpoint().port());
    }
  }

  if (!opts.port_file.empty() && !write_port_file(opts.port_file, endpoint.port())) {
    return 1;
  }
  const std::string shown_host = address.is_v6() ? "[" + opts.host + "]" : opts.host;
  std::printf("listening on %s:%u\n", shown_host.c_str(), static_cast<unsigned>(endpoint.port()));
  std::fflush(stdout);

  for (std::size_t i = 0; i < opts.threads; ++i) {
    asio::co_spawn(*workers[i], accept_loop(*acceptors[i], stats.worker(i), stats), asio::detached);
  }

  asio::io_context control(1);
  asio::signal_set signals(control, SIGINT, SIGTERM);
  signals.async_wait([&workers](const boost::system::error_code&, int) {
    for (auto& worker : workers) {
      worker->stop();
    }
  });

  std::vector<std::thread> threads;
  threads.reserve(opts.threads);
  for (auto& worker : workers) {
    threads.emplace_back([&io = *worker] { io.run(); });
  }
  control.run();
  for (auto& thread : threads) {
    thread.join();
  }
  // Acceptors close first, then each io_context destroys its pending connection coroutines.
  acceptors.clear();
  workers.clear();
  return 0;
}

}  // namespace
}  // namespace tlsfront::echo_backend

int main(int argc, char** argv) {
  const auto opts = tlsfront::echo_backend::parse_options(argc, argv);
  if (!opts) {
    return 2;
  }
  return tlsfront::echo_backend::run(*opts);
}
