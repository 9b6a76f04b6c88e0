// log/logging.h — spdlog set-up: an error log (spdlog's default logger) and an access log, both
// asynchronous (one background thread writes; workers only enqueue).
// Thread-safety: setup()/shutdown() from the main thread only, before workers start / after they
// stop; the loggers themselves are thread-safe.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

#include "log/options.h"

namespace tlsfront::log {

// Installs the loggers. Returns false and sets `error` if a log file cannot be opened or the
// level is unknown; the previous loggers then stay.
bool setup(const log_options& opts, std::string& error);
// Flushes and stops the background writer.
void shutdown();
// Reopens the log files by name (after logrotate moved them; SIGUSR1). False + `error` if one
// cannot be reopened (that log then keeps writing to the file it had open, if any).
bool reopen(std::string& error);

// The access logger; nullptr when the access log is "off".
spdlog::logger* access_logger() noexcept;

}  // namespace tlsfront::log
