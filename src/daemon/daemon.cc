#include "daemon/daemon.h"

#include <openssl/mem.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>

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
  usr2_.emplace(main_ctx_, SIGUSR2);
  chld_.emplace(main_ctx_, SIGCHLD);
  srv_->start();
  if (admin_) {
    admin_->start();
  }
  announce();
  finish_takeover();
  open_handover_point();
  wait_hup();
  wait_usr1();
  wait_usr2();
  wait_chld();
  wait_stop();
  main_ctx_.run();

  if (handover_) {
    handover_->shut_down();
  }
  if (handover_thread_.joinable()) {
    handover_thread_.join();
  }
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

  // A process already serving on the upgrade socket hands its listening sockets and its state
  // over (daemon/handover.h); nothing there: a plain start.
  handed_over inherited;
  if (!cfg_->server.upgrade_socket.empty()) {
    std::string why;
    const takeover t = take_over(cfg_->server.upgrade_socket, takeover_conn_, inherited, why);
    if (t == takeover::failed) {
      spdlog::critical("upgrade: {}", why);
      log::shutdown();
      std::fprintf(stderr, "tlsfront: upgrade: %s\n", why.c_str());
      return false;
    }
    if (t == takeover::taken) {
      std::size_t n = 0;
      for (const auto& [key, fds] : inherited.listeners) {
        n += fds.size();
      }
      spdlog::info("upgrade: taking over from process {} ({} listening sockets, {} bytes of state)",
                   peer_pid(takeover_conn_), n, inherited.state.size());
    }
  }
  proxy::server::inherited_sockets inherit = std::move(inherited.listeners);
  srv_ = proxy::server::create(cfg_->server, metrics_, error,
                               takeover_conn_ >= 0 ? &inherit : nullptr);
  for (auto& [key, fds] : inherit) {
    // The predecessor's listeners this configuration no longer has: not ours to serve.
    for (int fd : fds) {
      ::close(fd);
    }
  }
  if (!srv_) {
    if (inherited.admin_fd >= 0) {
      ::close(inherited.admin_fd);
    }
    spdlog::critical("{}", error);
    log::shutdown();
    std::fprintf(stderr, "tlsfront: %s\n", error.c_str());
    return false;
  }
  if (takeover_conn_ >= 0) {
    proxy::server::imported got;
    std::string why;
    if (!srv_->import_state(inherited.state, got, why)) {
      spdlog::warn("upgrade: the handed-over state is damaged ({}); kept what came before", why);
    }
    spdlog::info("upgrade: took {} sessions, {} ticket keys, {} revoked handles, {} 0-RTT strikes",
                 got.sessions, got.ticket_keys, got.revoked, got.strikes);
    OPENSSL_cleanse(inherited.state.data(), inherited.state.size());
  }
  if (!cfg_->admin.enabled && inherited.admin_fd >= 0) {
    ::close(inherited.admin_fd);
    inherited.admin_fd = -1;
  }
  if (cfg_->admin.enabled) {
    admin_ = admin::admin_server::create(cfg_->admin, metrics_, error, inherited.admin_fd);
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
    stop_now(("signal " + std::to_string(sig)).c_str(), true);
  });
}

void process::stop_now(const char* why, bool notify) {
  std::chrono::milliseconds drain_timeout;
  {
    std::lock_guard lock(reload_mu_);
    drain_timeout = limits_.drain_timeout;
  }
  spdlog::info("{}: draining (up to {} ms)", why, drain_timeout.count());
  if (notify) {
    core::service_notify("STOPPING=1");
  }
  hup_->cancel();
  usr1_->cancel();
  usr2_->cancel();
  if (handover_) {
    handover_->shut_down();  // no successor once draining
  }
  srv_->drain(drain_timeout);
  main_ctx_.stop();
}

void process::finish_takeover() {
  if (takeover_conn_ < 0) {
    return;
  }
  // Serving now, beside the predecessor: it stops accepting, sends what it made meanwhile,
  // then drains.
  std::string state, why;
  if (daemon::finish_takeover(takeover_conn_, state, why)) {
    proxy::server::imported got;
    if (!srv_->import_state(state, got, why)) {
      spdlog::warn("upgrade: the final state is damaged ({})", why);
    }
    spdlog::info("upgrade: took over ({} sessions in the final state); the old process drains",
                 got.sessions);
  } else {
    spdlog::warn("upgrade: the final state did not arrive ({}); serving with the first one", why);
  }
  OPENSSL_cleanse(state.data(), state.size());
  ::close(takeover_conn_);
  takeover_conn_ = -1;
}

void process::open_handover_point() {
  if (cfg_->server.upgrade_socket.empty()) {
    return;
  }
  std::string why;
  handover_ = handover_point::listen(cfg_->server.upgrade_socket, why);
  if (!handover_) {
    spdlog::error("upgrade: {}: binary upgrades are off for this process", why);
    return;
  }
  handover_thread_ = std::thread([this] { serve_handovers(); });
}

void process::serve_handovers() {
  for (int c; (c = handover_->accept_next()) >= 0;) {
    const pid_t pid = peer_pid(c);
    spdlog::info("upgrade: process {} asks to take over", pid);
    handover_source src{srv_->listening_sockets(), admin_ ? admin_->listener_fd() : -1};
    std::string why;
    const bool ok = serve_successor(
        c, src, [this] { return srv_->export_state(); },
        [this] {
          srv_->stop_accepting();
          if (admin_) {
            admin_->stop_accepting();
          }
        },
        why);
    ::close(c);
    if (!ok) {
      spdlog::error("upgrade: process {} did not take over ({}); serving on", pid, why);
      continue;
    }
    spdlog::info("upgrade: process {} serves; this one drains and exits", pid);
    core::service_notify("MAINPID=" + std::to_string(pid));
    boost::asio::post(main_ctx_, [this] { stop_now("upgrade", false); });
    return;
  }
}

void process::wait_usr2() {
  usr2_->async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) {
      return;
    }
    spawn_successor();
    wait_usr2();
  });
}

void process::spawn_successor() {
  if (!handover_) {
    spdlog::error("SIGUSR2: no upgrade socket ([server] upgrade_socket): binary upgrades are off");
    return;
  }
  std::vector<char*> argv;
  std::vector<std::string> args = opts_.args;
  args.insert(args.begin(), opts_.exe);
  for (std::string& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int e = ::posix_spawnp(&pid, opts_.exe.c_str(), nullptr, nullptr, argv.data(), environ);
  if (e != 0) {
    spdlog::error("SIGUSR2: cannot start {}: {}", opts_.exe, std::strerror(e));
    return;
  }
  spawned_ = pid;
  spdlog::info("SIGUSR2: started {} as process {}; it takes over once it serves", opts_.exe, pid);
}

void process::wait_chld() {
  chld_->async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) {
      return;
    }
    int status = 0;
    for (pid_t p; (p = ::waitpid(-1, &status, WNOHANG)) > 0;) {
      if (p == spawned_) {
        spawned_ = 0;
        spdlog::error("upgrade: process {} exited ({} {}) before taking over; serving on", p,
                      WIFEXITED(status) ? "status" : "signal",
                      WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
      }
    }
    wait_chld();
  });
}

}  // namespace tlsfront::daemon
