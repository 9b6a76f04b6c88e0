#include "log/logging.h"

#include <spdlog/async.h>
#include <spdlog/details/file_helper.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <atomic>
#include <mutex>
#include <vector>

namespace tlsfront::log {
namespace {

// A file sink that can reopen its file by name, for log rotation (spdlog's basic_file_sink
// cannot). Writes and reopen take the sink's mutex.
class reopenable_file_sink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit reopenable_file_sink(const std::string& path) { file_.open(path, false); }
  bool reopen(std::string& error) {
    std::lock_guard lock(mutex_);
    try {
      file_.reopen(false);
      return true;
    } catch (const spdlog::spdlog_ex& e) {
      error = "cannot reopen log file " + file_.filename() + ": " + e.what();
      return false;
    }
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    file_.write(formatted);
  }
  void flush_() override { file_.flush(); }

 private:
  spdlog::details::file_helper file_;
};

std::shared_ptr<spdlog::logger> access_holder;
std::atomic<spdlog::logger*> access_ptr{nullptr};
std::mutex files_mu;
std::vector<std::shared_ptr<reopenable_file_sink>> files;  // the sinks that write to files

spdlog::sink_ptr make_sink(const std::string& target, std::string& error) {
  try {
    if (target == "stderr") {
      return std::make_shared<spdlog::sinks::stderr_sink_mt>();
    }
    if (target == "stdout") {
      return std::make_shared<spdlog::sinks::stdout_sink_mt>();
    }
    auto sink = std::make_shared<reopenable_file_sink>(target);
    std::lock_guard lock(files_mu);
    files.push_back(sink);
    return sink;
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

bool reopen(std::string& error) {
  std::lock_guard lock(files_mu);
  bool ok = true;
  for (auto& f : files) {
    ok = f->reopen(error) && ok;
  }
  return ok;
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
