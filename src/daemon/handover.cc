#include "daemon/handover.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tlsfront::daemon {
namespace {

constexpr std::size_t kMaxFdsPerMessage = 200;  // under the kernel's SCM_MAX_FD (253)
constexpr std::size_t kChunk = 60 * 1024;       // a state chunk: one message, under SO_SNDBUF
constexpr std::size_t kMaxMessage = 64 * 1024;
constexpr int kTakeTimeoutMs = 5000;      // the new process's first word
constexpr int kReadyTimeoutMs = 120000;   // it builds its contexts (must-staple may wait)
constexpr int kMessageTimeoutMs = 30000;  // any other message of the exchange

std::string errno_text(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

bool fill_address(const std::string& path, sockaddr_un& a, std::string& error) {
  std::memset(&a, 0, sizeof a);
  a.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof a.sun_path) {
    error = "upgrade socket path too long: " + path;
    return false;
  }
  std::memcpy(a.sun_path, path.data(), path.size());
  return true;
}

void close_all(std::vector<int>& fds) {
  for (int fd : fds) {
    ::close(fd);
  }
  fds.clear();
}

bool send_state(int conn, const std::string& state, std::string& error) {
  for (std::size_t at = 0; at < state.size(); at += kChunk) {
    if (!send_message(conn, 'S', std::string_view(state).substr(at, kChunk))) {
      error = errno_text("sending the state");
      return false;
    }
  }
  return true;
}

// Reads 'S' chunks into `state` until a message of type `end`.
bool read_state(int conn, char end, std::string& state, std::string& error) {
  for (;;) {
    char type = 0;
    std::string body;
    std::vector<int> fds;
    if (!recv_message(conn, type, body, fds, kMessageTimeoutMs, error)) {
      return false;
    }
    close_all(fds);  // none belongs here
    if (type == end) {
      return true;
    }
    if (type != 'S') {
      error = std::string("unexpected message '") + type + "' in the state";
      return false;
    }
    state += body;
  }
}

}  // namespace

bool send_message(int fd, char type, std::string_view body, const std::vector<int>& fds) {
  std::string msg(1, type);
  msg.append(body);
  iovec iov{msg.data(), msg.size()};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  std::vector<char> control;
  if (!fds.empty()) {
    control.resize(CMSG_SPACE(sizeof(int) * fds.size()));
    mh.msg_control = control.data();
    mh.msg_controllen = control.size();
    cmsghdr* c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    const ssize_t n = ::sendmsg(fd, &mh, MSG_NOSIGNAL);
    if (n >= 0) {
      return static_cast<std::size_t>(n) == msg.size();
    }
    if (errno != EINTR) {
      return false;
    }
  }
}

bool recv_message(int fd, char& type, std::string& body, std::vector<int>& fds, int timeout_ms,
                  std::string& error) {
  pollfd p{fd, POLLIN, 0};
  int r = 0;
  do {
    r = ::poll(&p, 1, timeout_ms);
  } while (r < 0 && errno == EINTR);
  if (r == 0) {
    error = "no answer within " + std::to_string(timeout_ms / 1000) + " s";
    return false;
  }
  if (r < 0) {
    error = errno_text("poll");
    return false;
  }
  std::string buf(kMaxMessage + 1, '\0');
  iovec iov{buf.data(), buf.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = control;
  mh.msg_controllen = sizeof control;
  ssize_t n = 0;
  do {
    n = ::recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  for (cmsghdr* c = CMSG_FIRSTHDR(&mh); c != nullptr; c = CMSG_NXTHDR(&mh, c)) {
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int got = -1;
        std::memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
        fds.push_back(got);
      }
    }
  }
  if (n < 0) {
    error = errno_text("recvmsg");
    return false;
  }
  if (n == 0) {
    error = "the other process closed the connection";
    return false;
  }
  if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0 || static_cast<std::size_t>(n) > kMaxMessage) {
    error = "a message too large";
    return false;
  }
  type = buf[0];
  body.assign(buf.data() + 1, static_cast<std::size_t>(n) - 1);
  return true;
}

std::unique_ptr<handover_point> handover_point::listen(const std::string& path,
                                                       std::string& error) {
  sockaddr_un a;
  if (!fill_address(path, a, error)) {
    return nullptr;
  }
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = errno_text("socket");
    return nullptr;
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      ::close(fd);
      error = path + " exists and is not a socket";
      return nullptr;
    }
    ::unlink(path.c_str());  // a predecessor's (it handed over) or a stale one
  }
  const mode_t old = ::umask(0177);
  const int b = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::umask(old);
  if (b != 0 || ::listen(fd, 4) != 0) {
    error = errno_text(("cannot listen on " + path).c_str());
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<handover_point>(new handover_point(fd));
}

handover_point::~handover_point() {
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

void handover_point::shut_down() {
  ::shutdown(fd_, SHUT_RDWR);
}

int handover_point::accept_next() {
  for (;;) {
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) {
        continue;
      }
      return -1;  // shut down (EINVAL) or broken
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != ::geteuid() && cred.uid != 0)) {
      spdlog::warn(
          "upgrade: a connection from uid {} (pid {}) refused: only this user or root "
          "may take over",
          cred.uid, cred.pid);
      ::close(c);
      continue;
    }
    return c;
  }
}

pid_t peer_pid(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  return ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 ? cred.pid : 0;
}

takeover take_over(const std::string& path, int& conn, handed_over& out, std::string& error) {
  conn = -1;
  sockaddr_un a;
  if (!fill_address(path, a, error)) {
    return takeover::failed;
  }
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = errno_text("socket");
    return takeover::failed;
  }
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    const int e = errno;
    ::close(fd);
    if (e == ENOENT || e == ECONNREFUSED) {
      return takeover::none;  // nothing runs there: a plain start
    }
    errno = e;
    error = errno_text(("cannot connect to " + path).c_str());
    return takeover::failed;
  }
  auto fail = [&](const std::string& why) {
    error = "taking over from the running process: " + why;
    for (auto& [key, fds] : out.listeners) {
      close_all(fds);
    }
    out.listeners.clear();
    if (out.admin_fd >= 0) {
      ::close(out.admin_fd);
      out.admin_fd = -1;
    }
    ::close(fd);
    return takeover::failed;
  };
  if (!send_message(fd, 'T', "1")) {
    return fail(errno_text("send"));
  }
  for (;;) {
    char type = 0;
    std::string body, why;
    std::vector<int> fds;
    if (!recv_message(fd, type, body, fds, kMessageTimeoutMs, why)) {
      close_all(fds);
      return fail(why);
    }
    if (type == 'S') {
      close_all(fds);
      out.state += body;
      continue;
    }
    if (type == 'D') {
      close_all(fds);
      break;
    }
    if (type != 'F') {
      close_all(fds);
      return fail(std::string("unexpected message '") + type + "'");
    }
    // One line per descriptor, in order.
    std::size_t i = 0, pos = 0;
    bool ok = true;
    while (pos < body.size()) {
      std::size_t nl = body.find('\n', pos);
      if (nl == std::string::npos) {
        nl = body.size();
      }
      const std::string line = body.substr(pos, nl - pos);
      pos = nl + 1;
      if (i >= fds.size()) {
        ok = false;
        break;
      }
      if (line == "A" && out.admin_fd < 0) {
        out.admin_fd = fds[i];
      } else if (line.size() > 2 && line.compare(0, 2, "L ") == 0) {
        out.listeners[line.substr(2)].push_back(fds[i]);
      } else {
        ok = false;
        break;
      }
      fds[i++] = -1;
    }
    const bool all_named = ok && i == fds.size();
    for (int f : fds) {
      if (f >= 0) {
        ::close(f);
      }
    }
    if (!all_named) {
      return fail("descriptors and their names do not match");
    }
  }
  conn = fd;
  return takeover::taken;
}

bool finish_takeover(int conn, std::string& state, std::string& error) {
  if (!send_message(conn, 'R', "")) {
    error = errno_text("send");
    return false;
  }
  return read_state(conn, 'Z', state, error);
}

bool serve_successor(int conn, const handover_source& src,
                     const std::function<std::string()>& export_state,
                     const std::function<void()>& stop_accepting, std::string& error) {
  char type = 0;
  std::string body;
  std::vector<int> fds;
  if (!recv_message(conn, type, body, fds, kTakeTimeoutMs, error)) {
    close_all(fds);
    return false;
  }
  close_all(fds);
  if (type != 'T' || body != "1") {
    error = "not a takeover request (protocol 1)";
    return false;
  }
  std::vector<std::pair<std::string, int>> all = src.listeners;
  if (src.admin_fd >= 0) {
    all.emplace_back("", src.admin_fd);
  }
  for (std::size_t at = 0; at < all.size(); at += kMaxFdsPerMessage) {
    std::string names;
    std::vector<int> batch;
    for (std::size_t i = at; i < all.size() && i < at + kMaxFdsPerMessage; ++i) {
      names += all[i].first.empty() ? "A\n" : "L " + all[i].first + "\n";
      batch.push_back(all[i].second);
    }
    if (!send_message(conn, 'F', names, batch)) {
      error = errno_text("sending the listening sockets");
      return false;
    }
  }
  std::string state = export_state();
  if (!send_state(conn, state, error) || !send_message(conn, 'D', "")) {
    if (error.empty()) {
      error = errno_text("send");
    }
    return false;
  }
  if (!recv_message(conn, type, body, fds, kReadyTimeoutMs, error)) {
    close_all(fds);
    error = "the new process did not start serving: " + error;
    return false;
  }
  close_all(fds);
  if (type != 'R') {
    error = std::string("unexpected message '") + type + "' instead of ready";
    return false;
  }
  // From here on the new process serves: this one stops accepting, then sends what it made
  // since the first state (the new process inserts it again; every record is idempotent).
  stop_accepting();
  state = export_state();
  if (!send_state(conn, state, error) || !send_message(conn, 'Z', "")) {
    if (error.empty()) {
      error = errno_text("send");
    }
    spdlog::warn("upgrade: the final state did not reach the new process: {}", error);
  }
  return true;
}

}  // namespace tlsfront::daemon
