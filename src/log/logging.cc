#include "log/logging.h"

#include <spdlog/async.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>

namespace tlsfront::log {
namespace {
std::shared_ptr<spdlog::logger> access_holder;
std::atomic<spdlog::logger*> access_ptr{nullptr};

spdlog::sink_ptr make_sink(const std::string& target, std::string& error) {
  try {
    if (target == "stderr") {
      return std::make_shared<spdlog::sinks::stderr_sink_mt>();
    }
    if (target == "stdout") {
      return std::make_shared<spdlog::sinks::stdout_sink_mt>();
    }
    return std::make_shared<spdlog::sinks::basic_file_sink_mt>(target, false);
  } catch (const spdlog::spdlog_ex& e) {
    error = "cannot open log file " + target + ": " + e.what();
    return nullptr;
  }
}
}  // namespace

bool setup(const log_options& opts, std::string& error) {
  spdlog::level::level_enum level = spdlog::level::from_str(opts.level);
  if (level == spdlog::level::off && opts.level != "off") {
    error = "unknown log level " + opts.level;
    return false;
  }
  spdlog::sink_ptr err_sink = make_sink(opts.error_log, error);
  if (!err_sink) {
    return false;
  }
  spdlog::sink_ptr acc_sink;
  if (opts.access_log != "off") {
    acc_sink = make_sink(opts.access_log, error);
    if (!acc_sink) {
      return false;
    }
  }
  if (!spdlog::thread_pool()) {
    spdlog::init_thread_pool(16384, 1);
  }
  auto err_logger = std::make_shared<spdlog::async_logger>(
      "tlsfront", err_sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
  err_logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z [%l] %v");
  err_logger->set_level(level);
  err_logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(err_logger);
  if (acc_sink) {
    auto acc = std::make_shared<spdlog::async_logger>(
        "access", acc_sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
    acc->set_pattern("%v");
    acc->set_level(spdlog::level::info);
    spdlog::drop("access");
    spdlog::register_logger(acc);  // so flush_every() below flushes it too
    access_holder = acc;
  } else {
    access_holder.reset();
  }
  // Release: a worker that sees the pointer sees a fully built logger.
  access_ptr.store(access_holder.get(), std::memory_order_release);
  spdlog::flush_every(std::chrono::seconds(1));
  return true;
}

void shutdown() {
  access_ptr.store(nullptr, std::memory_order_release);
  spdlog::shutdown();
}

spdlog::logger* access_logger() noexcept {
  // Acquire pairs with the release store in setup().
  return access_ptr.load(std::memory_order_acquire);
}

}  // namespace tlsfront::log
