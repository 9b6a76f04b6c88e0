// daemon/daemon.h — the tlsfront process: reads the configuration, sets up logging, builds the
// server and the admin endpoint, then runs the main thread until a stop signal:
//   SIGHUP and POST /reload   reload the configuration (one at a time; a bad one keeps the
//                             running one), re-read ticket key files, rewrite the ports file
//   SIGUSR1                   reopen the log files
//   SIGTERM / SIGINT          graceful drain (up to the latest good drain_timeout), then exit
//   SIGUSR2                   binary upgrade: start the binary at the path this one was started
//                             from, with the same arguments; it takes the listening sockets and
//                             the state over through [server] upgrade_socket (daemon/handover.h),
//                             then this process drains and exits
// A process started while another serves on the same upgrade_socket takes over from it (with or
// without SIGUSR2: `tlsfront -c FILE` again is an upgrade).
// and tells systemd where it stands (READY=1, RELOADING=1, STOPPING=1; core/service_notify.h).
//
// Thread-safety: run() on the main thread, once. Reloads come from the main thread (SIGHUP) and
// the admin thread (POST /reload) and are serialized by a mutex inside.
// Failure: run() returns the process exit code: 1 after printing one line to stderr when the
// configuration, logging, a listener or the admin endpoint cannot be set up; 0 after a drain.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "admin/admin_server.h"
#include "config/config.h"
#include "core/metrics.h"
#include "daemon/handover.h"
#include "proxy/server.h"

namespace tlsfront::daemon {

struct daemon_options {
  std::string config_path;  // -c
  std::string ports_file;   // --ports-file; empty: none
  // How this process was started (SIGUSR2 starts the successor the same way): the binary's
  // path as given (resolved against the directory it was started in) and the arguments.
  std::string exe;
  std::vector<std::string> args;
};

// `tlsfront -t`: loads the configuration, prints its warnings and whether it is valid.
// Returns 0 (valid) or 1 (the error printed as "file:line:column: message").
int check_config(const std::string& config_path);

class process {
 public:
  explicit process(daemon_options opts);
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  // The whole life of the daemon; returns the exit code (see above).
  int run();

 private:
  // Loads the configuration and sets up logging, the server and the admin endpoint; false
  // after printing why (the exit code is then 1).
  bool set_up();
  void register_admin_routes();
  void announce();
  // One reload (SIGHUP or POST /reload); false + `error` when refused.
  bool reload(const char* origin, std::string& error);
  void reload_ticket_keys(const char* origin);
  void write_ports();
  void wait_hup();
  void wait_usr1();
  void wait_stop();
  void wait_usr2();
  void wait_chld();
  // The drain and exit (a stop signal, or a successor took over: `notify` false, since this
  // process is no longer the one systemd watches).
  void stop_now(const char* why, bool notify);
  // New side: the state and the end of the exchange; old side: the listening point's thread.
  void finish_takeover();
  void open_handover_point();
  void serve_handovers();
  void spawn_successor();

  daemon_options opts_;
  // What the process started with (the restart-only sections stay as they were).
  std::optional<config::config> cfg_;
  core::metrics_registry metrics_;
  std::unique_ptr<proxy::server> srv_;
  std::unique_ptr<admin::admin_server> admin_;
  std::mutex reload_mu_;          // one reload at a time; guards limits_
  proxy::limits_options limits_;  // follows reloads (the latest good drain timeout)
  core::counter* reloads_ok_ = nullptr;
  core::counter* reloads_refused_ = nullptr;
  boost::asio::io_context main_ctx_{1};
  // Set once the server is built, so a signal before that still has its default effect.
  std::optional<boost::asio::signal_set> stop_signals_, hup_, usr1_, usr2_, chld_;
  int takeover_conn_ = -1;  // the predecessor, from set_up() to finish_takeover()
  std::unique_ptr<handover_point> handover_;
  std::thread handover_thread_;
  pid_t spawned_ = 0;  // the last SIGUSR2 successor, until it exits or takes over
};

}  // namespace tlsfront::daemon
