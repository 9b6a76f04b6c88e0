#include "integration/harness.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/hex.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

// A blocking TLS call that a signal to the test process interrupted (EINTR; SO_RCVTIMEO waits
// are never restarted) is made again: nothing was read or written, so the state is unchanged.
// Seen in CI's ThreadSanitizer stage, in the failover tests that stop processes, as an empty
// response and "Interrupted system call"; which signal it was is not known.
template <class Call>
int retry_interrupted(SSL* ssl, Call call) {
  for (;;) {
    errno = 0;
    const int r = call();
    if (r > 0 || errno != EINTR) {
      return r;
    }
    const int e = SSL_get_error(ssl, r);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_SYSCALL) {
      return r;
    }
    ERR_clear_error();
  }
}

}  // namespace

process::process(std::vector<std::string> argv, const std::string& log_path) : log_path_(log_path) {
  pid_ = ::fork();
  if (pid_ == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) {
      ::dup2(devnull, 0);
    }
    // Under AddressSanitizer, freed memory sits in a 256 MiB quarantine; keep it small so
    // memory bounds measured on the child (peak RSS) describe tlsfront, not the sanitizer.
    // Uninstrumented builds ignore the variable.
    std::string asan = std::getenv("ASAN_OPTIONS") ? std::getenv("ASAN_OPTIONS") : "";
    asan += (asan.empty() ? "" : ":") + std::string("quarantine_size_mb=8");
    ::setenv("ASAN_OPTIONS", asan.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) {
      args.push_back(a.data());
    }
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::_Exit(127);
  }
}

process::~process() {
  if (running()) {
    signal(SIGKILL);
    wait(std::chrono::seconds(5));
  }
}

bool process::running() {
  if (status_ || pid_ <= 0) {
    return false;
  }
  int st = 0;
  pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return false;
  }
  return true;
}

void process::signal(int sig) {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, sig);
  }
}

std::optional<int> process::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      return std::nullopt;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

std::string wait_for_file(const std::string& path, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::string s = read_file(path);
    if (!s.empty()) {
      return s;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return "";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

echo_backend::echo_backend(const std::string& dir, int threads) {
  std::string port_file = dir + "/backend.port." + std::to_string(::getpid()) + "." +
                          std::to_string(reinterpret_cast<uintptr_t>(this));
  proc_ = std::make_unique<process>(
      std::vector<std::string>{TLSFRONT_ECHO_BACKEND, "--listen", "127.0.0.1:0", "--threads",
                               std::to_string(threads), "--port-file", port_file},
      dir + "/backend.log");
  std::string s = wait_for_file(port_file, std::chrono::seconds(20));
  port_ = std::atoi(s.c_str());
  if (port_ == 0) {
    ADD_FAILURE() << "echo backend did not start: " << read_file(dir + "/backend.log");
  }
}

std::string plain_exchange(int port, const std::string& request) {
  int fd = connect_tcp(port);
  if (fd < 0) {
    return "";
  }
  (void)!::write(fd, request.data(), request.size());
  std::string all;
  char buf[8192];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    all.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return all;
}

long echo_backend::requests() {
  std::string all =
      plain_exchange(port_, "GET /__stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  size_t p = all.find("requests ");
  return p == std::string::npos ? -1 : std::atol(all.c_str() + p + 9);
}

proxy_instance::proxy_instance(const std::string& config_text, const std::string& dir)
    : dir_(dir.empty() ? make_temp_dir() : dir) {
  write_config(config_text);
  std::string ports = dir_ + "/ports";
  ::unlink(ports.c_str());
  proc_ = std::make_unique<process>(
      std::vector<std::string>{TLSFRONT_BINARY, "-c", dir_ + "/tlsfront.toml", "--ports-file",
                               ports},
      dir_ + "/tlsfront.log");
  wait_for_file(ports, std::chrono::seconds(20));
  read_ports();
  if (ports_.empty()) {
    ADD_FAILURE() << "tlsfront did not start: " << log();
  }
}

void proxy_instance::write_config(const std::string& config_text) const {
  std::string text = replace_all(config_text, "{certs}", certs_dir());
  text = replace_all(text, "{dir}", dir_);
  write_file(dir_ + "/tlsfront.toml", text);
}

void proxy_instance::read_ports() {
  ports_.clear();
  std::istringstream in(read_file(dir_ + "/ports"));
  std::string name, addr;
  while (in >> name >> addr) {
    ports_[name] = std::atoi(addr.substr(addr.rfind(':') + 1).c_str());
  }
}

std::string proxy_instance::log() const {
  return read_file(dir_ + "/tlsfront.log");
}

std::string proxy_instance::log_containing(const std::string& needle) const {
  return file_containing(dir_ + "/tlsfront.log", needle);
}

std::string file_containing(const std::string& path, const std::string& needle) {
  std::string text = read_file(path);
  for (int i = 0; i < 100 && text.find(needle) == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    text = read_file(path);
  }
  return text;
}

std::string proxy_instance::admin_get(const std::string& path) const {
  return response_body(admin_request("GET", path));
}

std::string proxy_instance::admin_request(const std::string& method,
                                          const std::string& path) const {
  return plain_exchange(admin_port(), method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                                          std::to_string(admin_port()) +
                                          "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}

double proxy_instance::metric(const std::string& series) const {
  std::string body = admin_get("/metrics");
  std::istringstream in(body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(series + " ", 0) == 0) {
      return std::atof(line.c_str() + series.size() + 1);
    }
  }
  return -1;
}

double proxy_instance::metric_reaching(const std::string& series, double at_least) const {
  double v = metric(series);
  for (int i = 0; i < 100 && v < at_least; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    v = metric(series);
  }
  return v;
}

command_result run_command(const std::string& cmd, const std::string& stdin_data) {
  command_result r;
  std::string full = cmd;
  std::string in_file;
  if (!stdin_data.empty()) {
    in_file = make_temp_dir() + "/stdin";
    write_file(in_file, stdin_data);
    full = "(" + cmd + ") < '" + in_file + "'";
  } else {
    full = "(" + cmd + ") < /dev/null";
  }
  FILE* p = ::popen(full.c_str(), "r");
  if (p == nullptr) {
    return r;
  }
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
    r.out.append(buf, n);
  }
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

int connect_tcp(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

tls_client::options tls_client::session_id_only(const std::string& sni, SSL_SESSION* session) {
  options o;
  o.sni = sni;
  o.max_version = TLS1_2_VERSION;
  o.tickets = false;
  o.session = session;
  return o;
}

tls_client::tls_client(int port) : tls_client(port, options{}) {}

tls_client::tls_client(int port, const options& opts) {
  fd_ = connect_tcp(port);
  if (fd_ < 0) {
    error_ = "connect failed";
    return;
  }
  timeval tv{opts.timeout_ms / 1000, (opts.timeout_ms % 1000) * 1000};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!opts.preamble.empty() &&
      ::send(fd_, opts.preamble.data(), opts.preamble.size(), MSG_NOSIGNAL) !=
          static_cast<ssize_t>(opts.preamble.size())) {
    error_ = "cannot send the preamble";
    return;
  }
  ctx_.reset(SSL_CTX_new(TLS_method()));
  SSL_CTX_set_min_proto_version(ctx_.get(), opts.min_version);
  SSL_CTX_set_max_proto_version(ctx_.get(), opts.max_version);
  SSL_CTX_set_session_cache_mode(ctx_.get(), SSL_SESS_CACHE_CLIENT);
  if (!opts.tickets) {
    SSL_CTX_set_options(ctx_.get(), SSL_OP_NO_TICKET);
  }
  SSL_CTX_sess_set_new_cb(ctx_.get(), &tls_client::on_new_session);
  if (!opts.ciphers.empty() &&
      SSL_CTX_set_strict_cipher_list(ctx_.get(), opts.ciphers.c_str()) != 1) {
    error_ = "the client refused its cipher list " + opts.ciphers;
    return;
  }
  if (!opts.cert_file.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx_.get(), opts.cert_file.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx_.get(), opts.key_file.c_str(), SSL_FILETYPE_PEM) != 1)) {
    error_ = "the client cannot load " + opts.cert_file;
    return;
  }
  ssl_.reset(SSL_new(ctx_.get()));
  SSL_set_app_data(ssl_.get(), this);
  if (!opts.sni.empty()) {
    SSL_set_tlsext_host_name(ssl_.get(), opts.sni.c_str());
  }
  if (!opts.alpn.empty()) {
    std::string wire;
    for (const auto& a : opts.alpn) {
      wire.push_back(static_cast<char>(a.size()));
      wire += a;
    }
    SSL_set_alpn_protos(ssl_.get(), reinterpret_cast<const uint8_t*>(wire.data()), wire.size());
  }
  if (opts.session != nullptr) {
    SSL_set_session(ssl_.get(), opts.session);
  }
  clock_offset_s_ = opts.clock_offset_s;
  if (clock_offset_s_ != 0) {
    // BoringSSL may ask without an SSL (ssl == nullptr): the offset is the last client's, and
    // one test thread makes one client at a time.
    static int offset_s = 0;
    offset_s = clock_offset_s_;
    SSL_CTX_set_current_time_cb(ctx_.get(), [](const SSL*, timeval* out) {
      gettimeofday(out, nullptr);
      out->tv_sec += offset_s;
    });
  }
  // Reads from the socket; writes through a BIO that also keeps a copy (sent_bytes()).
  static BIO_METHOD* recording = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_TYPE_SOURCE_SINK, "recording socket");
    BIO_meth_set_write(m, [](BIO* b, const char* data, int len) -> int {
      auto* self = static_cast<tls_client*>(BIO_get_data(b));
      ssize_t n;
      do {  // a signal to the test process is no failure (retry_interrupted)
        n = ::send(self->fd_, data, static_cast<size_t>(len), MSG_NOSIGNAL);
      } while (n < 0 && errno == EINTR);
      if (n > 0) {
        self->sent_.append(data, static_cast<size_t>(n));
      }
      return static_cast<int>(n);
    });
    BIO_meth_set_ctrl(
        m, [](BIO*, int cmd, long, void*) -> long { return cmd == BIO_CTRL_FLUSH ? 1 : 0; });
    return m;
  }();
  BIO* rbio = BIO_new_socket(fd_, BIO_NOCLOSE);
  BIO* wbio = BIO_new(recording);
  BIO_set_data(wbio, this);
  BIO_set_init(wbio, 1);
  SSL_set_bio(ssl_.get(), rbio, wbio);
  early_ = opts.early_data;
  if (!early_.empty()) {
    SSL_set_early_data_enabled(ssl_.get(), 1);
  }
  if (retry_interrupted(ssl_.get(), [&] { return SSL_connect(ssl_.get()); }) != 1) {
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    error_ = std::string("handshake failed: ") + buf;
    ERR_clear_error();
    return;
  }
  if (!early_.empty() && SSL_in_early_data(ssl_.get())) {
    if (SSL_write(ssl_.get(), early_.data(), static_cast<int>(early_.size())) !=
        static_cast<int>(early_.size())) {
      error_ = "early data not written";
      ERR_clear_error();
      return;
    }
    if (opts.hold_finished) {
      return;  // finish_handshake() completes it
    }
  }
  ok_ = finish_handshake();
}

bool tls_client::finish_handshake() {
  const bool offered = !early_.empty() && SSL_in_early_data(ssl_.get());
  while (SSL_in_init(ssl_.get())) {
    const int r = retry_interrupted(ssl_.get(), [&] { return SSL_do_handshake(ssl_.get()); });
    if (r == 1) {
      break;
    }
    if (SSL_get_error(ssl_.get(), r) == SSL_ERROR_EARLY_DATA_REJECTED) {
      SSL_reset_early_data_reject(ssl_.get());
      continue;
    }
    char buf[256];
    ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
    error_ = std::string("handshake failed: ") + buf;
    ERR_clear_error();
    return false;
  }
  early_accepted_ = offered && SSL_early_data_accepted(ssl_.get());
  ok_ = true;
  if (offered && !early_accepted_ && !send(early_)) {
    error_ = "could not resend the rejected early data";
    return ok_ = false;
  }
  return true;
}

tls_client::~tls_client() {
  ssl_.reset();
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

bool tls_client::resumed() const {
  return ok_ && SSL_session_reused(ssl_.get());
}

std::string tls_client::peer_common_name() const {
  if (!ok_) {
    return "";
  }
  bssl::UniquePtr<X509> cert(SSL_get_peer_certificate(ssl_.get()));
  if (!cert) {
    return "";
  }
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, buf, sizeof buf);
  return buf;
}

std::string tls_client::alpn() const {
  const uint8_t* p = nullptr;
  unsigned len = 0;
  SSL_get0_alpn_selected(ssl_.get(), &p, &len);
  return std::string(reinterpret_cast<const char*>(p), len);
}

int tls_client::on_new_session(SSL* ssl, SSL_SESSION* session) {
  auto* self = static_cast<tls_client*>(SSL_get_app_data(ssl));
  self->latest_.reset(session);  // we take the reference
  ++self->sessions_received_;
  return 1;
}

bssl::UniquePtr<SSL_SESSION> tls_client::session() const {
  if (latest_) {
    SSL_SESSION_up_ref(latest_.get());
    return bssl::UniquePtr<SSL_SESSION>(latest_.get());
  }
  return bssl::UniquePtr<SSL_SESSION>(SSL_get1_session(ssl_.get()));
}

bool tls_client::send(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    int n = SSL_write(ssl_.get(), data.data() + off, static_cast<int>(data.size() - off));
    if (n <= 0) {
      ERR_clear_error();
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

int tls_client::read_some(char* buf, int n) {
  int r = retry_interrupted(ssl_.get(), [&] { return SSL_read(ssl_.get(), buf, n); });
  if (r <= 0) {
    const int saved_errno = errno;
    const int kind = SSL_get_error(ssl_.get(), r);
    if (const uint32_t e = ERR_get_error(); e != 0) {
      char text[256];
      ERR_error_string_n(e, text, sizeof text);
      error_ = std::string("read failed: ") + text;
    } else if (kind == SSL_ERROR_ZERO_RETURN) {
      error_ = "the server closed the connection (close_notify)";
    } else if (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK) {
      error_ = "read timed out";
    } else {
      error_ = saved_errno != 0 ? std::string("read failed: ") + std::strerror(saved_errno)
                                : "the server closed the connection (no close_notify)";
    }
    ERR_clear_error();
  }
  return r;
}

void tls_client::shutdown_write() {
  if (ok_) {
    SSL_shutdown(ssl_.get());  // sends close_notify; BoringSSL can still read after it
    ::shutdown(fd_, SHUT_WR);
  }
}

int tls_client::local_port() const {
  sockaddr_storage a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return -1;
  }
  return a.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&a)->sin6_port)
                                 : ntohs(reinterpret_cast<sockaddr_in*>(&a)->sin_port);
}

std::string tls_client::read_exact(std::size_t n) {
  std::string out = pending_.substr(0, n);
  pending_.erase(0, out.size());
  char buf[16384];
  while (ok_ && out.size() < n) {
    int got = read_some(buf, static_cast<int>(std::min(sizeof buf, n - out.size())));
    if (got <= 0) {
      break;
    }
    out.append(buf, static_cast<std::size_t>(got));
  }
  return out;
}

std::string tls_client::read_response(bool head_request) {
  if (!ok_) {
    return "";
  }
  std::string& in = pending_;
  char buf[16384];
  size_t head_end;
  while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
    int n = read_some(buf, sizeof buf);
    if (n <= 0) {
      return "";
    }
    in.append(buf, static_cast<size_t>(n));
  }
  std::string head = in.substr(0, head_end + 4);
  std::string rest = in.substr(head_end + 4);
  in.clear();
  int status = response_status(head);
  std::string te = lower(response_header(head, "Transfer-Encoding"));
  std::string cl = response_header(head, "Content-Length");
  if (head_request || status == 204 || status == 304 || status / 100 == 1) {
    in = rest;
    return head;
  }
  if (te == "chunked") {
    std::string raw = rest;
    size_t pos = 0;  // start of the next chunk-size line
    for (;;) {
      size_t line_end = raw.find("\r\n", pos);
      if (line_end != std::string::npos) {
        size_t size = std::strtoul(raw.c_str() + pos, nullptr, 16);
        if (size == 0) {
          size_t term = raw.find("\r\n\r\n", line_end);  // after optional trailers
          if (term != std::string::npos) {
            in = raw.substr(term + 4);
            raw.resize(term + 4);
            return head + raw;
          }
        } else if (raw.size() >= line_end + 2 + size + 2) {
          pos = line_end + 2 + size + 2;
          continue;
        }
      }
      int n = read_some(buf, sizeof buf);
      if (n <= 0) {
        return "";
      }
      raw.append(buf, static_cast<size_t>(n));
    }
  }
  if (!cl.empty()) {
    size_t want = std::strtoull(cl.c_str(), nullptr, 10);
    while (rest.size() < want) {
      int n = read_some(buf, sizeof buf);
      if (n <= 0) {
        return "";
      }
      rest.append(buf, static_cast<size_t>(n));
    }
    in = rest.substr(want);
    rest.resize(want);
    return head + rest;
  }
  for (;;) {
    int n = read_some(buf, sizeof buf);
    if (n <= 0) {
      return head + rest;
    }
    rest.append(buf, static_cast<size_t>(n));
  }
}

std::string tls_client::read_all() {
  std::string all = pending_;
  pending_.clear();
  char buf[16384];
  int n;
  while ((n = read_some(buf, sizeof buf)) > 0) {
    all.append(buf, static_cast<size_t>(n));
  }
  return all;
}

bool tls_client::wait_closed(int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[4096];
  for (;;) {
    int r = SSL_read(ssl_.get(), buf, sizeof buf);
    if (r > 0) {
      continue;
    }
    int e = SSL_get_error(ssl_.get(), r);
    ERR_clear_error();
    if (e == SSL_ERROR_ZERO_RETURN) {
      return true;
    }
    if (e == SSL_ERROR_SYSCALL) {
      return errno != EAGAIN && errno != EWOULDBLOCK;
    }
    return true;
  }
}

std::string https_request(int port, const std::string& raw, const std::string& sni) {
  tls_client::options o;
  o.sni = sni;
  tls_client c(port, o);
  if (!c.connected() || !c.send(raw)) {
    return "";
  }
  return c.read_response(raw.rfind("HEAD ", 0) == 0);
}

int response_status(const std::string& response) {
  if (response.size() < 12 || response.rfind("HTTP/1.", 0) != 0) {
    return -1;
  }
  return std::atoi(response.c_str() + 9);
}

std::string response_body(const std::string& response) {
  size_t p = response.find("\r\n\r\n");
  return p == std::string::npos ? "" : response.substr(p + 4);
}

session_visit visit_with(int port, const tls_client::options& o, const std::string& path) {
  session_visit v;
  tls_client c(port, o);
  EXPECT_TRUE(c.connected()) << c.error();
  v.resumed = c.resumed();
  c.send("GET " + path + " HTTP/1.1\r\nHost: a.example\r\n\r\n");
  v.response = c.read_response();
  v.handle = echoed_header(response_body(v.response), "TLS-Session");
  v.session = c.session();
  return v;
}

std::string echoed_header(const std::string& body, const std::string& name) {
  const std::string key = "\r\n" + name + ": ";
  std::size_t at = body.find(key);
  if (at == std::string::npos) {
    return "";
  }
  at += key.size();
  return body.substr(at, body.find("\r\n", at) - at);
}

std::string response_header(const std::string& response, const std::string& name) {
  std::string head = response.substr(0, response.find("\r\n\r\n"));
  std::istringstream in(head);
  std::string line;
  std::string want = lower(name) + ":";
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (lower(line.substr(0, want.size())) == want) {
      std::string v = line.substr(want.size());
      while (!v.empty() && v.front() == ' ') {
        v.erase(0, 1);
      }
      return v;
    }
  }
  return "";
}

std::string default_config(const std::string& backend, const std::string& limits,
                           const std::string& pool_extra, int threads) {
  return "[server]\nthreads = " + std::to_string(threads) +
         "\n[admin]\nlisten = \"127.0.0.1:0\"\n"
         "[log]\nlevel = \"info\"\nerror_log = \"stderr\"\naccess_log = \"{dir}/access.log\"\n"
         "[limits]\n" +
         limits +
         "\n[[listener]]\nname = \"https\"\nlisten = \"127.0.0.1:0\"\nhandshake_timeout = \"1s\"\n"
         "  [[listener.certificate]]\n  cert = \"{certs}/a.crt\"\n  key = \"{certs}/a.key\"\n"
         "  [[listener.certificate]]\n  cert = \"{certs}/b.crt\"\n  key = \"{certs}/b.key\"\n"
         "  [[listener.certificate]]\n  cert = \"{certs}/wild.crt\"\n  key = \"{certs}/wild.key\"\n"
         "  [[listener.certificate]]\n  cert = \"{certs}/default.crt\"\n"
         "  key = \"{certs}/default.key\"\n  default = true\n"
         "[[pool]]\nname = \"echo\"\nservers = [\"" +
         backend + "\"]\n" + pool_extra + "\n[[route]]\npool = \"echo\"\n";
}

tls_client::options client(const std::string& sni, std::uint16_t version, SSL_SESSION* session) {
  tls_client::options o;
  o.sni = sni;
  o.max_version = version;
  o.min_version = version;
  o.session = session;
  return o;
}

// A session whose ticket arrived (after one request, so TLS 1.3 tickets are in).
bssl::UniquePtr<SSL_SESSION> ticket_session(int port, const std::string& sni, std::uint16_t version,
                                            SSL_SESSION* offer, bool* resumed) {
  tls_client c(port, client(sni, version, offer));
  EXPECT_TRUE(c.connected()) << c.error();
  if (resumed != nullptr) {
    *resumed = c.resumed();
  }
  c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(c.read_response()), 200);
  auto s = c.session();
  const uint8_t* ticket = nullptr;
  size_t len = 0;
  SSL_SESSION_get0_ticket(s.get(), &ticket, &len);
  EXPECT_GT(len, 16u) << "no ticket was issued";
  return s;
}

std::string ticket_key_name(SSL_SESSION* s) {
  const uint8_t* ticket = nullptr;
  size_t len = 0;
  SSL_SESSION_get0_ticket(s, &ticket, &len);
  return len < 16 ? "" : core::to_hex(std::string_view(reinterpret_cast<const char*>(ticket), 16));
}

bool resumes(int port, const std::string& sni, std::uint16_t version, SSL_SESSION* s) {
  tls_client c(port, client(sni, version, s));
  return c.connected() && c.resumed();
}

std::string current_key_name(proxy_instance& p) {
  std::string body = p.admin_get("/tickets");
  size_t role = body.find("\"role\":\"current\"");
  size_t name = body.rfind("\"name\":\"", role);
  return role == std::string::npos ? "" : body.substr(name + 8, 32);
}

void expect_fleet_sharing(proxy_instance& from, proxy_instance& to, const std::string& when) {
  const double written = from.metric("tlsfront_fleet_session_writes_total");
  tls_client c(from.port(), tls_client::session_id_only("a.example"));
  ASSERT_TRUE(c.connected()) << c.error();
  c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(response_status(c.read_response()), 200);
  EXPECT_GE(from.metric_reaching("tlsfront_fleet_session_writes_total", written + 1), written + 1);
  auto s = c.session();
  // The write is sent, not yet answered: resume until it has landed (bounded).
  const bool resumed = eventually(
      [&] {
        tls_client r(to.port(), tls_client::session_id_only("a.example", s.get()));
        return r.connected() && r.resumed();
      },
      std::chrono::seconds(5));
  EXPECT_TRUE(resumed) << when << ": a session ID from one instance did not resume on the other";
  auto t13 = ticket_session(from.port(), "a.example", TLS1_3_VERSION);
  EXPECT_TRUE(resumes(to.port(), "a.example", TLS1_3_VERSION, t13.get()))
      << when << ": a TLS 1.3 ticket from one instance did not resume on the other";
}

void expect_shared_ticket_keys(proxy_instance& a, proxy_instance& b) {
  const bool shared = eventually(
      [&] {
        return a.metric("tlsfront_fleet_ticket_keys_shared") == 1 &&
               b.metric("tlsfront_fleet_ticket_keys_shared") == 1 && !current_key_name(a).empty() &&
               current_key_name(a) == current_key_name(b);
      },
      std::chrono::seconds(10));
  EXPECT_TRUE(shared) << a.admin_get("/tickets") << b.admin_get("/tickets") << a.log();
}

fleet_client_loop::fleet_client_loop(int port_a, int port_b) {
  thread = std::thread([this, port_a, port_b] {
    // One connection and request; on failure, which step failed and why.
    auto exchange = [](tls_client& c, const char* which, std::string& why) {
      if (!c.connected()) {
        why = std::string(which) + ": handshake: " + c.error();
        return false;
      }
      if (!c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")) {
        why = std::string(which) + ": send: " + c.error();
        return false;
      }
      const std::string response = c.read_response();
      if (response_status(response) != 200) {
        why = std::string(which) + ": response \"" + response.substr(0, 80) + "\" " + c.error();
        return false;
      }
      return true;
    };
    while (run.load()) {
      std::string why;
      tls_client c(port_a, tls_client::session_id_only("a.example"));
      bool ok = exchange(c, "A", why);
      if (ok) {
        auto s = c.session();
        tls_client r(port_b, tls_client::session_id_only("a.example", s.get()));
        ok = exchange(r, "B", why);
        resumed.fetch_add(ok && r.resumed() ? 1 : 0);
      }
      if (!ok && first_failure_.empty()) {
        first_failure_ = why;
      }
      (ok ? done : failed).fetch_add(1);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
}

void fleet_client_loop::stop() {
  run = false;
  thread.join();
}

bssl::UniquePtr<SSL_SESSION> session_with_id(SSL_SESSION* s, std::vector<std::uint8_t> id) {
  if (id.empty()) {
    id.resize(32);
    RAND_bytes(id.data(), id.size());
  }
  uint8_t* bytes = nullptr;
  size_t len = 0;
  if (SSL_SESSION_to_bytes(s, &bytes, &len) != 1) {
    ADD_FAILURE() << "SSL_SESSION_to_bytes failed";
    return nullptr;
  }
  bssl::UniquePtr<uint8_t> owned(bytes);
  bssl::UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_method()));
  bssl::UniquePtr<SSL_SESSION> copy(SSL_SESSION_from_bytes(bytes, len, ctx.get()));
  if (!copy || SSL_SESSION_set1_id(copy.get(), id.data(), id.size()) != 1) {
    ADD_FAILURE() << "cannot copy the session under another ID";
    return nullptr;
  }
  return copy;
}

std::string write_fleet_secret(const std::string& dir, const std::string& secret) {
  const std::string path = dir + "/fleet.secret";
  write_file(path, secret + "\n");
  ::chmod(path.c_str(), 0600);
  return path;
}

}  // namespace tlsfront::test
