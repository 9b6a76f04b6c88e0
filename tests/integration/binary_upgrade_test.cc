// Binary upgrades (issue 18): a second tlsfront process started on the same [server]
// upgrade_socket — by hand, or by SIGUSR2 to the running one — takes the listening sockets and
// the state over (daemon/handover.h), and the old process drains and exits. Real processes, the
// same build as old and new, under a client loop of new and resumed connections: nothing is
// refused or reset, and sessions made before (session IDs, TLS 1.2 and TLS 1.3 tickets) resume
// after; a revoked handle stays revoked. A successor that fails leaves the old one serving.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "integration/harness.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

// New connections (every third one resuming `id_session` by ID), each with one request,
// until stopped; counts what failed and keeps the first reason.
class client_loop {
 public:
  client_loop(int port, SSL_SESSION* id_session) {
    thread_ = std::thread([this, port, id_session] {
      for (int i = 0; run_.load(); ++i) {
        const bool resume = i % 3 == 2;
        tls_client::options fresh;
        fresh.sni = "a.example";
        tls_client c(port, resume ? tls_client::session_id_only("a.example", id_session) : fresh);
        std::string why;
        if (!c.connected()) {
          why = "handshake: " + c.error();
        } else if (!c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")) {
          why = "send: " + c.error();
        } else if (const std::string r = c.read_response(); response_status(r) != 200) {
          why = std::string(resume ? "resumed " : "new ") + (c.resumed() ? "(resumed)" : "") +
                " connection " + std::to_string(i) + ": response \"" + r.substr(0, 60) + "\" " +
                c.error();
        }
        if (why.empty()) {
          ok_.fetch_add(1);
          resumed_.fetch_add(resume && c.resumed() ? 1 : 0);
        } else {
          failed_.fetch_add(1);
          std::lock_guard lock(mu_);
          if (first_.empty()) {
            first_ = why;
          }
        }
      }
    });
  }
  ~client_loop() { stop(); }
  void stop() {
    run_ = false;
    if (thread_.joinable()) {
      thread_.join();
    }
  }
  int ok() const { return ok_.load(); }
  int failed() const { return failed_.load(); }
  int resumed() const { return resumed_.load(); }
  std::string first_failure() {
    std::lock_guard lock(mu_);
    return first_;
  }

 private:
  std::atomic<bool> run_{true};
  std::atomic<int> ok_{0}, failed_{0}, resumed_{0};
  std::mutex mu_;
  std::string first_;
  std::thread thread_;
};

class BinaryUpgradeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    socket_ = dir_ + "/upgrade.sock";
    backend_ = std::make_unique<echo_backend>(dir_);
  }
  std::string config() const {
    std::string c = default_config(backend_->address()) + "send_session_handle = true\n";
    c.insert(c.find("[admin]"), "upgrade_socket = \"" + socket_ + "\"\n");
    return c;
  }
  // tlsfront run in the foreground on `cfg` (placeholders filled) until it exits.
  command_result run_with(std::string cfg) const {
    for (const char* k : {"{certs}", "{dir}"}) {
      for (std::size_t pos; (pos = cfg.find(k)) != std::string::npos;) {
        cfg.replace(pos, std::strlen(k), k[1] == 'c' ? certs_dir() : dir_);
      }
    }
    write_file(dir_ + "/run.toml", cfg);
    return run_command(std::string(TLSFRONT_BINARY) + " -c " + dir_ + "/run.toml 2>&1");
  }
  // Sessions made on `p` before the upgrade: [0] by ID, [1] a TLS 1.2 ticket, [2] a TLS 1.3
  // ticket.
  static std::vector<bssl::UniquePtr<SSL_SESSION>> sessions_on(int port) {
    std::vector<bssl::UniquePtr<SSL_SESSION>> s;
    s.push_back(visit_with(port, tls_client::session_id_only("a.example"), "/").session);
    s.push_back(ticket_session(port, "a.example", TLS1_2_VERSION));
    s.push_back(ticket_session(port, "a.example", TLS1_3_VERSION));
    return s;
  }
  static void expect_resume(int port, std::vector<bssl::UniquePtr<SSL_SESSION>>& s) {
    EXPECT_TRUE(visit_with(port, tls_client::session_id_only("a.example", s[0].get()), "/").resumed)
        << "a session-ID session did not survive the upgrade";
    EXPECT_TRUE(resumes(port, "a.example", TLS1_2_VERSION, s[1].get()))
        << "a TLS 1.2 ticket did not survive the upgrade";
    EXPECT_TRUE(resumes(port, "a.example", TLS1_3_VERSION, s[2].get()))
        << "a TLS 1.3 ticket did not survive the upgrade";
  }
  std::string dir_, socket_;
  std::unique_ptr<echo_backend> backend_;
};

TEST_F(BinaryUpgradeTest, ANewProcessTakesOverRefusingNothingAndEverySessionResumes) {
  auto old = std::make_unique<proxy_instance>(config(), make_temp_dir());
  const int port = old->port(), admin = old->admin_port();
  auto before = sessions_on(port);
  // A session logged out before the upgrade stays logged out after it.
  session_visit revoked = visit_with(port, client("a.example", TLS1_3_VERSION), "/headers");
  ASSERT_EQ(revoked.handle.size(), 16u) << revoked.response;
  ASSERT_EQ(response_status(old->admin_request("DELETE", "/sessions/handle/" + revoked.handle)),
            200);
  EXPECT_FALSE(resumes(port, "a.example", TLS1_3_VERSION, revoked.session.get()));

  client_loop loop(port, before[0].get());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int ok_before = loop.ok();
  proxy_instance fresh(config(), make_temp_dir());
  EXPECT_EQ(fresh.port(), port) << "the new process did not take the listening socket";
  EXPECT_EQ(fresh.admin_port(), admin);
  const auto status = old->proc().wait(std::chrono::seconds(15));
  ASSERT_TRUE(status.has_value()) << "the old process did not exit";
  EXPECT_EQ(*status, 0) << old->log();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  loop.stop();
  EXPECT_EQ(loop.failed(), 0) << "first: " << loop.first_failure();
  EXPECT_GT(loop.ok(), ok_before) << "the loop made no connection across the upgrade";
  EXPECT_GT(loop.resumed(), 0);
  std::printf("upgrade under a client loop: %d connections served, %d failed, %d resumed by ID\n",
              loop.ok(), loop.failed(), loop.resumed());
  EXPECT_NE(old->log().find("upgrade: process " + std::to_string(fresh.proc().pid()) + " serves"),
            std::string::npos)
      << old->log();
  expect_resume(port, before);
  EXPECT_FALSE(resumes(port, "a.example", TLS1_3_VERSION, revoked.session.get()))
      << "a revoked handle resumed after the upgrade";
  EXPECT_NE(fresh.log().find("upgrade: took "), std::string::npos) << fresh.log();
  // The new process hands over in turn: upgrades chain.
  auto third = std::make_unique<proxy_instance>(config(), make_temp_dir());
  EXPECT_EQ(fresh.proc().wait(std::chrono::seconds(15)), 0) << fresh.log();
  expect_resume(third->port(), before);
}

// SIGUSR2: the running process starts its own binary with its own arguments; that one takes
// over, and the old one exits.
TEST_F(BinaryUpgradeTest, SigUsr2StartsTheSuccessorAndHandsOver) {
  proxy_instance old(config(), make_temp_dir());
  const int port = old.port();
  auto before = sessions_on(port);
  old.proc().signal(SIGUSR2);
  const auto status = old.proc().wait(std::chrono::seconds(15));
  ASSERT_TRUE(status.has_value()) << old.log();
  EXPECT_EQ(*status, 0);
  const std::string log = old.log();
  const std::size_t at = log.find(" as process ");
  ASSERT_NE(at, std::string::npos) << log;
  const pid_t successor = static_cast<pid_t>(std::atoi(log.c_str() + at + 12));
  ASSERT_GT(successor, 0);
  expect_resume(port, before);
  ::kill(successor, SIGTERM);
  for (int i = 0; i < 200 && connect_tcp(port) >= 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

// A successor that cannot start (a listener it cannot bind) exits non-zero before it
// said it serves: the running process never stopped accepting and serves on; so does a peer
// that sends garbage on the upgrade socket. A later good successor still takes over.
TEST_F(BinaryUpgradeTest, AFailedSuccessorOrAGarbagePeerLeavesTheRunningProcessServing) {
  proxy_instance old(config(), make_temp_dir());
  const int port = old.port();
  client_loop loop(port, nullptr);
  // It takes the sockets over, then cannot bind a listener of its own (an address this host
  // does not have): it exits before it serves.
  std::string bad = config() +
                    "[[listener]]\nname = \"gone\"\nlisten = \"192.0.2.1:8443\"\n"
                    "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n"
                    "  key = \"{certs}/a.key\"\n";
  const command_result r = run_with(bad);
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("192.0.2.1:8443"), std::string::npos) << r.out;
  EXPECT_NE(old.log_containing("did not take over").find("did not take over"), std::string::npos)
      << old.log();

  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, socket_.c_str(), sizeof a.sun_path - 1);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << std::strerror(errno);
  ASSERT_EQ(::send(fd, "GET / HTTP/1.0\r\n\r\n", 18, 0), 18);
  char buf[16];
  EXPECT_LE(::recv(fd, buf, sizeof buf, 0), 0) << "a garbage peer got an answer";
  ::close(fd);
  EXPECT_NE(old.log_containing("not a takeover request").find("not a takeover request"),
            std::string::npos)
      << old.log();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  loop.stop();
  EXPECT_EQ(loop.failed(), 0) << "first: " << loop.first_failure();
  EXPECT_GT(loop.ok(), 0);
  EXPECT_TRUE(old.proc().running());
  proxy_instance next(config(), make_temp_dir());
  EXPECT_EQ(next.port(), port);
  EXPECT_EQ(old.proc().wait(std::chrono::seconds(15)), 0) << old.log();
}

// A predecessor played by the test: listens on `path` and answers one takeover with `script`
// (the peer's descriptor), every wait bounded so a wrong turn fails the test, not hangs it.
class fake_predecessor {
 public:
  fake_predecessor(const std::string& path, std::function<void(int)> script) {
    ::unlink(path.c_str());
    fd_ = ::socket(AF_UNIX, SOCK_SEQPACKET, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
    bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 4) == 0;
    thread_ = std::thread([this, script = std::move(script)] {
      pollfd p{fd_, POLLIN, 0};
      if (!bound_ || ::poll(&p, 1, 30000) != 1) {
        return;
      }
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) {
        return;
      }
      timeval tv{10, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      accepted_ = true;
      script(c);
      ::close(c);
    });
  }
  ~fake_predecessor() {
    if (thread_.joinable()) {
      thread_.join();
    }
    ::close(fd_);
  }
  bool bound() const { return bound_; }
  bool accepted() {
    thread_.join();
    return accepted_;
  }

 private:
  int fd_ = -1;
  bool bound_ = false;
  bool accepted_ = false;
  std::thread thread_;
};

std::string recv_text(int fd) {
  char buf[256];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

// A predecessor whose state is cut inside a record: the new process keeps what came before the
// damage, says what was damaged, binds its own listeners and serves.
TEST_F(BinaryUpgradeTest, ADamagedStateIsSkippedWithAClearWarningAndTheNewProcessServes) {
  std::string seen;
  fake_predecessor fake(socket_, [&seen](int c) {
    seen = recv_text(c);  // "T1": a takeover, protocol 1
    const std::string state = std::string("STFST1c") + std::string("\0\0\xff\xff", 4) + "x";
    ::send(c, state.data(), state.size(), 0);
    ::send(c, "D", 1, 0);
    seen += recv_text(c);  // 'R'
    ::send(c, "Z", 1, 0);
  });
  ASSERT_TRUE(fake.bound()) << std::strerror(errno);
  proxy_instance p(config(), make_temp_dir());
  EXPECT_TRUE(fake.accepted());
  EXPECT_EQ(seen, "T1R") << "the exchange did not run to its end";
  const std::string warning = p.log_containing("state is damaged");
  EXPECT_NE(warning.find("ends inside a record"), std::string::npos) << p.log();
  EXPECT_EQ(
      response_status(https_request(p.port(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "a.example")),
      200);
  p.proc().signal(SIGTERM);
  EXPECT_EQ(p.proc().wait(std::chrono::seconds(15)), 0) << p.log();
}

// A predecessor whose descriptor lines name a socket it does not attach: the new process
// refuses the takeover, exits non-zero with the reason, and serves nothing.
TEST_F(BinaryUpgradeTest, DescriptorsThatDoNotMatchTheirNamesAreRefused) {
  fake_predecessor fake(socket_, [](int c) {
    (void)recv_text(c);  // 'T'
    const std::string f = "FL 127.0.0.1|0|https\n";
    ::send(c, f.data(), f.size(), 0);
    (void)recv_text(c);  // the new process hangs up
  });
  ASSERT_TRUE(fake.bound()) << std::strerror(errno);
  const command_result r = run_with(config());
  EXPECT_TRUE(fake.accepted());
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("descriptors and their names do not match"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace tlsfront::test
