#include "support/redis_server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "support/test_env.h"

namespace tlsfront::test {
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) {
    port = ntohs(a.sin_port);
  }
  ::close(fd);
  return port;
}

namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  }
  return out + "'";
}

}  // namespace

redis_server::redis_server(std::string password, std::vector<std::string> extra_args, int port)
    : password_(std::move(password)), extra_(std::move(extra_args)), dir_(make_temp_dir()) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = port != 0 ? port : free_port();
    if (spawn()) {
      return;
    }
    kill();
  }
  ADD_FAILURE() << "redis-server did not start (log in " << dir_ << "/redis.log)";
}

redis_server::redis_server(const sentinel_config& sentinel)
    : sentinel_(sentinel), dir_(make_temp_dir()) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    port_ = sentinel.port != 0 ? sentinel.port : free_port();
    if (spawn()) {
      return;
    }
    kill();
  }
  ADD_FAILURE() << "redis-sentinel did not start (log in " << dir_ << "/redis.log)";
}

redis_server::~redis_server() {
  kill();
}

bool redis_server::spawn() {
  std::vector<std::string> args = {
      "redis-server", "--port",    std::to_string(port_), "--bind",      "127.0.0.1",
      "--save",       "",          "--appendonly",        "no",          "--dir",
      dir_,           "--logfile", dir_ + "/redis.log",   "--daemonize", "no"};
  if (!password_.empty()) {
    args.insert(args.end(), {"--requirepass", password_});
  }
  if (sentinel_) {
    // Sentinel rewrites its file (what it learns of replicas and peers): written once, so a
    // restart keeps what it learnt.
    const std::string conf = dir_ + "/sentinel.conf";
    if (read_file(conf).empty()) {
      const std::string& name = sentinel_->master_name;
      write_file(conf, "port " + std::to_string(port_) + "\nbind 127.0.0.1\ndir " + dir_ +
                           "\nlogfile " + dir_ + "/redis.log\ndaemonize no\nsentinel monitor " +
                           name + " 127.0.0.1 " + std::to_string(sentinel_->master_port) + " " +
                           std::to_string(sentinel_->quorum) +
                           "\nsentinel down-after-milliseconds " + name +
                           " 1000\nsentinel failover-timeout " + name +
                           " 3000\nsentinel parallel-syncs " + name + " 1\n");
    }
    args = {"redis-server", conf, "--sentinel"};
  }
  args.insert(args.end(), extra_.begin(), extra_.end());
  pid_ = ::fork();
  if (pid_ == 0) {
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    ::execvp("redis-server", argv.data());
    ::_exit(127);
  }
  for (int i = 0; i < 200; ++i) {
    if (cli({"PING"}).find("PONG") != std::string::npos) {
      return true;
    }
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return false;
}

void redis_server::kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }
}

bool redis_server::restart() {
  kill();
  for (int i = 0; i < 40; ++i) {  // the port may linger briefly
    if (spawn()) {
      return true;
    }
    kill();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

std::string redis_server::cli(const std::vector<std::string>& args) const {
  std::string cmd = "redis-cli -h 127.0.0.1 -p " + std::to_string(port_);
  if (!password_.empty()) {
    cmd += " --no-auth-warning -a " + quote(password_);
  }
  for (const auto& a : args) {
    cmd += " " + quote(a);
  }
  cmd += " 2>/dev/null";
  std::string out;
  if (FILE* p = ::popen(cmd.c_str(), "r")) {
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
      out.append(buf, n);
    }
    ::pclose(p);
  }
  return out;
}

}  // namespace tlsfront::test
