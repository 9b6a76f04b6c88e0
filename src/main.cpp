// tlsfront — a TLS-terminating HTTP/1.1 reverse proxy. This file only reads the command line and
// the config, builds the server and the admin endpoint, and handles signals.
#include <signal.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

#include "admin/admin_server.h"
#include "admin/backend_routes.h"
#include "admin/reload_route.h"
#include "admin/session_routes.h"
#include "admin/ticket_routes.h"
#include "config/config.h"
#include "core/metrics.h"
#include "core/service_notify.h"
#include "log/logging.h"
#include "proxy/server.h"

namespace {

constexpr const char* usage =
    "usage: tlsfront -c FILE [-t] [--ports-file FILE]\n"
    "  -c, --config FILE    configuration file (TOML)\n"
    "  -t, --test           check the configuration and exit (0 good, 1 bad)\n"
    "  --ports-file FILE    after binding, write \"<listener> <address>:<port>\" lines\n"
    "                       (and \"admin <address>:<port>\") to FILE\n"
    "  -v, --version        print the version and exit\n";

std::string endpoint_text(const boost::asio::ip::tcp::endpoint& ep) {
  std::string a = ep.address().to_string();
  return (ep.address().is_v6() ? "[" + a + "]" : a) + ":" + std::to_string(ep.port());
}

bool write_ports_file(const std::string& path, const tlsfront::proxy::server& srv,
                      const tlsfront::admin::admin_server* admin) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& l : srv.current()->listeners) {
      out << l.opts.name << " " << endpoint_text(l.bound) << "\n";
    }
    if (admin != nullptr) {
      out << "admin " << endpoint_text(admin->endpoint()) << "\n";
    }
    if (!out) {
      return false;
    }
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace tlsfront;
  std::string config_path;
  std::string ports_file;
  bool test_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "-c" || a == "--config") && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a == "-t" || a == "--test") {
      test_only = true;
    } else if (a == "--ports-file" && i + 1 < argc) {
      ports_file = argv[++i];
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
  if (config_path.empty()) {
    std::fprintf(stderr, "tlsfront: no config file given (-c FILE)\n%s", usage);
    return 1;
  }

  config::load_result loaded = config::load_file(config_path);
  if (!loaded.value) {
    std::fprintf(stderr, "%s\n", loaded.error.to_string().c_str());
    return 1;
  }
  // `cfg` is what the process started with (the restart-only sections stay as they were);
  // `limits` follows reloads (the drain timeout of the latest good configuration).
  const config::config& cfg = *loaded.value;
  if (test_only) {
    for (const std::string& w : cfg.warnings) {
      std::fprintf(stderr, "%s\n", w.c_str());
    }
    std::printf("tlsfront: configuration %s is valid\n", config_path.c_str());
    return 0;
  }

  std::string error;
  if (!log::setup(cfg.log, error)) {
    std::fprintf(stderr, "tlsfront: %s\n", error.c_str());
    return 1;
  }
  for (const std::string& w : cfg.warnings) {
    spdlog::warn("{}", w);
  }
  // A peer closing mid-write must not kill the process.
  ::signal(SIGPIPE, SIG_IGN);

  core::metrics_registry metrics;
  auto srv = proxy::server::create(cfg.server, metrics, error);
  if (!srv) {
    spdlog::critical("{}", error);
    log::shutdown();
    std::fprintf(stderr, "tlsfront: %s\n", error.c_str());
    return 1;
  }
  std::unique_ptr<admin::admin_server> admin;
  if (cfg.admin.enabled) {
    admin = admin::admin_server::create(cfg.admin, metrics, error);
    if (!admin) {
      log::shutdown();
      std::fprintf(stderr, "tlsfront: %s\n", error.c_str());
      return 1;
    }
    loaded.value->admin.token.clear();  // the admin server holds the one copy
    if (srv->sessions() != nullptr) {
      admin::register_session_routes(
          *admin, *srv->sessions(),
          [s = srv.get()](const std::string& id) { return s->revoke_in_fleet(id); });
    }
    admin::register_backend_routes(*admin, *srv);
    admin::register_ticket_routes(*admin, srv->tickets(), srv->ticket_source());
  }

  // Reloads come from SIGHUP (main thread) and POST /reload (admin thread), one at a time.
  std::mutex reload_mu;
  proxy::limits_options limits = cfg.server.limits;
  core::counter& reloads_ok = metrics.add_counter(
      "tlsfront_reloads_total", "Configuration reloads, by result", "result=\"ok\"");
  core::counter& reloads_refused = metrics.add_counter(
      "tlsfront_reloads_total", "Configuration reloads, by result", "result=\"refused\"");
  auto reload = [&](const char* origin, std::string& err) {
    std::lock_guard lock(reload_mu);
    core::service_notify("RELOADING=1");
    struct ready_again {
      ~ready_again() { core::service_notify("READY=1"); }  // refused or applied: serving
    } ready;
    config::load_result next = config::load_file(config_path);
    if (!next.value) {
      err = next.error.to_string();
    } else if (!srv->reload(next.value->server, err)) {
      err = config_path + ": " + err;
    }
    if (!err.empty()) {
      spdlog::error("{}: reload refused, the running configuration stays: {}", origin, err);
      reloads_refused.inc();
      return false;
    }
    for (const std::string& w : next.value->warnings) {
      spdlog::warn("{}: {}", origin, w);
    }
    for (const std::string& section : config::restart_only_changes(cfg, *next.value)) {
      spdlog::warn("{}: {} changed; it takes effect at the next restart", origin, section);
    }
    if (srv->ticket_source().reloads_with_config()) {
      std::string key_err;
      if (srv->ticket_source().reload(key_err)) {
        spdlog::info("{}: ticket key files reloaded", origin);
      } else {
        spdlog::error("{}: ticket key reload refused, running keys kept: {}", origin, key_err);
      }
    }
    if (admin && next.value->admin.token_file == cfg.admin.token_file) {
      admin->set_token(next.value->admin.token);  // the token file may have been rewritten
    }
    limits = next.value->server.limits;
    reloads_ok.inc();
    if (!ports_file.empty() && !write_ports_file(ports_file, *srv, admin.get())) {
      spdlog::error("cannot write ports file {}", ports_file);
    }
    spdlog::info("{}: configuration reloaded ({} listeners, {} pools, {} routes)", origin,
                 next.value->server.listeners.size(), next.value->server.pools.size(),
                 next.value->server.routes.size());
    return true;
  };
  if (admin) {
    admin::register_reload_route(*admin,
                                 [&reload](std::string& err) { return reload("admin", err); });
  }

  boost::asio::io_context main_ctx(1);
  boost::asio::signal_set stop_signals(main_ctx, SIGTERM, SIGINT);
  boost::asio::signal_set hup(main_ctx, SIGHUP);
  boost::asio::signal_set usr1(main_ctx, SIGUSR1);

  srv->start();
  if (admin) {
    admin->start();
  }
  for (const auto& l : srv->current()->listeners) {
    spdlog::info("listener {} on {} ({} worker threads)", l.opts.name, endpoint_text(l.bound),
                 srv->threads());
  }
  if (admin) {
    spdlog::info("admin on {}", endpoint_text(admin->endpoint()));
  }
  if (!ports_file.empty() && !write_ports_file(ports_file, *srv, admin.get())) {
    spdlog::error("cannot write ports file {}", ports_file);
  }
  if (!core::service_notify("READY=1")) {
    spdlog::warn("cannot notify systemd (NOTIFY_SOCKET={})", std::getenv("NOTIFY_SOCKET"));
  }

  std::function<void()> wait_hup = [&] {
    hup.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) {
        return;
      }
      std::string err;
      reload("SIGHUP", err);
      wait_hup();
    });
  };
  wait_hup();
  std::function<void()> wait_usr1 = [&] {
    usr1.async_wait([&](const boost::system::error_code& ec, int) {
      if (ec) {
        return;
      }
      std::string err;
      if (log::reopen(err)) {
        spdlog::info("SIGUSR1: log files reopened");
      } else {
        spdlog::error("SIGUSR1: {}", err);
      }
      wait_usr1();
    });
  };
  wait_usr1();
  int exit_code = 0;
  stop_signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) {
      return;
    }
    std::chrono::milliseconds drain_timeout;
    {
      std::lock_guard lock(reload_mu);
      drain_timeout = limits.drain_timeout;
    }
    spdlog::info("signal {}: draining (up to {} ms)", sig, drain_timeout.count());
    core::service_notify("STOPPING=1");
    hup.cancel();
    usr1.cancel();
    // Drain off the signal thread's handler so a second signal could still be seen.
    srv->drain(drain_timeout);
    main_ctx.stop();
  });
  main_ctx.run();

  srv->wait();
  if (admin) {
    admin->stop();
  }
  spdlog::info("stopped");
  log::shutdown();
  return exit_code;
}
