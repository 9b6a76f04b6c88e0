// daemon/handover.h — the binary upgrade's transport: a running tlsfront hands its listening
// sockets and its state to the process that replaces it, over a UNIX socket (SOCK_SEQPACKET,
// so every message arrives whole; descriptors ride as SCM_RIGHTS, as HAProxy's
// `expose-fd listeners` and nginx's binary upgrade pass theirs).
//
// THE EXCHANGE (new = the process starting, old = the one running):
//   new → old  'T'  take over (protocol version 1)
//   old → new  'F'  descriptors, at most 200 a message: one text line each, "L <listener key>" or
//                   "A" (the admin endpoint), in SCM_RIGHTS order
//              'S'  a chunk of the state (proxy/server_handover.cc), 'D' the state is whole
//   (new binds nothing of its own: it serves on those sockets beside the old process)
//   new → old  'R'  serving
//   old → new  'S'… 'Z'  the old process stopped accepting; the state again, with what it made
//                   meanwhile (sessions, revocations); then it drains and exits
// A new process that fails before 'R' exits non-zero and the old one serves on; it never
// stopped accepting. Only a peer of the same user (or root) is served (SO_PEERCRED).
//
// Thread-safety: none; each side runs the exchange on one thread with blocking calls, every
// wait bounded.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tlsfront::daemon {

// One message: `type` and `body`, with descriptors attached (closed by the receiver).
bool send_message(int fd, char type, std::string_view body, const std::vector<int>& fds = {});
// Waits up to `timeout_ms` for one message; false with `error` on a timeout, a closed peer or
// a malformed message. Descriptors received are appended to `fds` (the caller owns them).
bool recv_message(int fd, char& type, std::string& body, std::vector<int>& fds, int timeout_ms,
                  std::string& error);

// The old side's listening point at `path` (mode 0600; a stale socket file there is replaced).
class handover_point {
 public:
  static std::unique_ptr<handover_point> listen(const std::string& path, std::string& error);
  ~handover_point();
  handover_point(const handover_point&) = delete;
  handover_point& operator=(const handover_point&) = delete;
  // The next connection from a peer of this user or root (others are closed and logged);
  // -1 once shut_down().
  int accept_next();
  // Wakes accept_next() for good (any thread).
  void shut_down();

 private:
  explicit handover_point(int fd) : fd_(fd) {}
  int fd_;
};

// The peer's pid (SO_PEERCRED), 0 when unknown.
pid_t peer_pid(int fd);

// What the new side received before 'D'.
struct handed_over {
  std::map<std::string, std::vector<int>> listeners;  // by listener key
  int admin_fd = -1;
  std::string state;
};

enum class takeover { none, taken, failed };
// The new side: connects to `path`. `none` when nothing runs there (no file, or a stale one
// nobody listens on); `taken` with `conn` and `out` filled once the state is whole; `failed`
// with `error` (every descriptor received is closed).
takeover take_over(const std::string& path, int& conn, handed_over& out, std::string& error);
// After the new side served: sends 'R', then reads the final state up to 'Z'.
bool finish_takeover(int conn, std::string& state, std::string& error);
// The old side's half for one connection: `listeners` and `admin_fd` are sent (the caller keeps
// its own descriptors), `export_state` is called for each state. `stop_accepting` runs once the
// successor said 'R'; false (and nothing stopped) when the successor gave up first.
struct handover_source {
  std::vector<std::pair<std::string, int>> listeners;
  int admin_fd = -1;
};
bool serve_successor(int conn, const handover_source& src,
                     const std::function<std::string()>& export_state,
                     const std::function<void()>& stop_accepting, std::string& error);

}  // namespace tlsfront::daemon
