#include "daemon/daemon.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>

#include "admin/backend_routes.h"
#include "admin/certificate_routes.h"
#include "admin/reload_route.h"
#include "admin/session_routes.h"
#include "admin/ticket_routes.h"
#include "core/service_notify.h"
#include "daemon/ports_file.h"
#include "log/logging.h"

namespace tlsfront::daemon {

int check_config(const std::string& config_path) {
  config::load_result loaded = config::load_file(config_path);
  if (!loaded.value) {
    std::fprintf(stderr, "%s\n", loaded.error.to_string().c_str());
    return 1;
  }
  for (const std::string& w : loaded.value->warnings) {
    std::fprintf(stderr, "%s\n", w.c_str());
  }
  std::printf("tlsfront: configuration %s is valid\n", config_path.c_str());
  return 0;
}

process::process(daemon_options opts) : opts_(std::move(opts)) {}

process::~process() = default;

int process::run() {
  if (!set_up()) {
    return 1;
  }
  stop_signals_.emplace(main_ctx_, SIGTERM, SIGINT);
  hup_.emplace(main_ctx_, SIGHUP);
  usr1_.emplace(main_ctx_, SIGUSR1);
  srv_->start();
  if (admin_) {
    admin_->start();
  }
  announce();
  wait_hup();
  wait_usr1();
  wait_stop();
  main_ctx_.run();

  srv_->wait();
  if (admin_) {
    admin_->stop();
  }
  spdlog::info("stopped");
  log::shutdown();
  return 0;
}

bool process::set_up() {
  config::load_result loaded = config::load_file(opts_.config_path);
  if (!loaded.value) {
    std::fprintf(stderr, "%s\n", loaded.error.to_string().c_str());
    return false;
  }
  cfg_ = std::move(loaded.value);
  std::string error;
  if (!log::setup(cfg_->log, error)) {
    std::fprintf(stderr, "tlsfront: %s\n", error.c_str());
    return false;
  }
  for (const std::string& w : cfg_->warnings) {
    spdlog::warn("{}", w);
  }
  // A peer closing mid-write must not kill the process.
  ::signal(SIGPIPE, SIG_IGN);

  srv_ = proxy::server::create(cfg_->server, metrics_, error);
  if (!srv_) {
    spdlog::critical("{}", error);
    log::shutdown();
    std::fprintf(stderr, "tlsfront: %s\n", error.c_str());
    return false;
  }
  if (cfg_->admin.enabled) {
    admin_ = admin::admin_server::create(cfg_->admin, metrics_, error);
    if (!admin_) {
      log::shutdown();
      std::fprintf(stderr, "tlsfront: %s\n", error.c_str());
      return false;
    }
    cfg_->admin.token.clear();  // the admin server holds the one copy
  }
  register_admin_routes();
  limits_ = cfg_->server.limits;
  reloads_ok_ = &metrics_.add_counter("tlsfront_reloads_total", "Configuration reloads, by result",
                                      "result=\"ok\"");
  reloads_refused_ = &metrics_.add_counter(
      "tlsfront_reloads_total", "Configuration reloads, by result", "result=\"refused\"");
  if (admin_) {
    admin::register_reload_route(*admin_,
                                 [this](std::string& err) { return reload("admin", err); });
  }
  return true;
}

void process::register_admin_routes() {
  if (!admin_) {
    return;
  }
  admin::register_session_routes(*admin_, *srv_, srv_->sessions() != nullptr);
  admin::register_backend_routes(*admin_, *srv_);
  admin::register_ticket_routes(*admin_, srv_->tickets(), srv_->ticket_source());
  admin::register_certificate_routes(*admin_, *srv_, cfg_->admin.certificate_dir, metrics_);
}

void process::announce() {
  // Held for the loop: an admin call (a reload, a certificate replacement) may swap the
  // snapshot meanwhile, and the old one must not be freed under the loop.
  const std::shared_ptr<const proxy::snapshot> snap = srv_->current();
  for (const auto& l : snap->listeners) {
    spdlog::info("listener {} on {} ({} worker threads)", l.opts.name, endpoint_text(l.bound),
                 srv_->threads());
  }
  if (admin_) {
    spdlog::info("admin on {}", endpoint_text(admin_->endpoint()));
  }
  write_ports();
  if (!core::service_notify("READY=1")) {
    spdlog::warn("cannot notify systemd (NOTIFY_SOCKET={})", std::getenv("NOTIFY_SOCKET"));
  }
}

bool process::reload(const char* origin, std::string& err) {
  std::lock_guard lock(reload_mu_);
  core::service_notify("RELOADING=1");
  struct ready_again {
    ~ready_again() { core::service_notify("READY=1"); }  // refused or applied: serving
  } ready;
  config::load_result next = config::load_file(opts_.config_path);
  if (!next.value) {
    err = next.error.to_string();
  } else if (!srv_->reload(next.value->server, err)) {
    err = opts_.config_path + ": " + err;
  }
  if (!err.empty()) {
    spdlog::error("{}: reload refused, the running configuration stays: {}", origin, err);
    reloads_refused_->inc();
    return false;
  }
  for (const std::string& w : next.value->warnings) {
    spdlog::warn("{}: {}", origin, w);
  }
  for (const std::string& section : config::restart_only_changes(*cfg_, *next.value)) {
    spdlog::warn("{}: {} changed; it takes effect at the next restart", origin, section);
  }
  reload_ticket_keys(origin);
  if (admin_ && next.value->admin.token_file == cfg_->admin.token_file) {
    admin_->set_token(next.value->admin.token);  // the token file may have been rewritten
  }
  limits_ = next.value->server.limits;
  reloads_ok_->inc();
  write_ports();
  spdlog::info("{}: configuration reloaded ({} listeners, {} pools, {} routes)", origin,
               next.value->server.listeners.size(), next.value->server.pools.size(),
               next.value->server.routes.size());
  return true;
}

void process::reload_ticket_keys(const char* origin) {
  tls::key_source& keys = srv_->ticket_source();
  if (!keys.reloads_with_config()) {
    return;
  }
  std::string key_err;
  if (keys.reload(key_err)) {
    spdlog::info("{}: ticket key files reloaded", origin);
  } else {
    spdlog::error("{}: ticket key reload refused, running keys kept: {}", origin, key_err);
  }
}

void process::write_ports() {
  if (opts_.ports_file.empty()) {
    return;
  }
  std::vector<ports_entry> entries;
  const std::shared_ptr<const proxy::snapshot> snap = srv_->current();  // held, as in announce()
  for (const auto& l : snap->listeners) {
    entries.emplace_back(l.opts.name, l.bound);
  }
  if (admin_) {
    entries.emplace_back("admin", admin_->endpoint());
  }
  if (!write_ports_file(opts_.ports_file, entries)) {
    spdlog::error("cannot write ports file {}", opts_.ports_file);
  }
}

void process::wait_hup() {
  hup_->async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) {
      return;
    }
    std::string err;
    reload("SIGHUP", err);
    wait_hup();
  });
}

void process::wait_usr1() {
  usr1_->async_wait([this](const boost::system::error_code& ec, int) {
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
}

void process::wait_stop() {
  stop_signals_->async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) {
      return;
    }
    std::chrono::milliseconds drain_timeout;
    {
      std::lock_guard lock(reload_mu_);
      drain_timeout = limits_.drain_timeout;
    }
    spdlog::info("signal {}: draining (up to {} ms)", sig, drain_timeout.count());
    core::service_notify("STOPPING=1");
    hup_->cancel();
    usr1_->cancel();
    // Drain off the signal thread's handler so a second signal could still be seen.
    srv_->drain(drain_timeout);
    main_ctx_.stop();
  });
}

}  // namespace tlsfront::daemon
