// tests/integration/harness.h — runs the real binaries for integration tests: the echo backend
// and tlsfront on port 0, plus clients: a BoringSSL TLS client written here (full control over
// SNI, sessions and raw bytes) and shell commands (curl, openssl s_client).
// Thread-safety: none; one test thread drives everything. Processes are killed on destruction.
#pragma once

#include <openssl/ssl.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace tlsfront::test {

// A child process with stdout+stderr captured to a file.
class process {
 public:
  process(std::vector<std::string> argv, const std::string& log_path);
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits for exit; returns the exit status (128+signal if killed) or nullopt on timeout.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// Waits until `path` exists and is non-empty; returns its content ("" on timeout).
std::string wait_for_file(const std::string& path, std::chrono::milliseconds timeout);
// The content of `path` once it contains `needle`, polled for up to 5 s (tlsfront logs
// asynchronously: a line logged before an answer may reach the file after it); the last content
// read otherwise.
std::string file_containing(const std::string& path, const std::string& needle);

class echo_backend {
 public:
  explicit echo_backend(const std::string& dir, int threads = 1);
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  // Requests the backend has received so far (excluding /__stats itself).
  long requests();
  process& proc() { return *proc_; }

 private:
  std::unique_ptr<process> proc_;
  int port_ = 0;
};

// tlsfront started on a config. In `config_text`, the placeholder {certs} is replaced by the
// test certificate directory and {dir} by the instance's directory.
class proxy_instance {
 public:
  proxy_instance(const std::string& config_text, const std::string& dir = "");
  int port(const std::string& listener = "https") const { return ports_.at(listener); }
  int admin_port() const { return ports_.at("admin"); }
  process& proc() { return *proc_; }
  const std::string& dir() const { return dir_; }
  // Writes a new config file (placeholders as above) for a reload; the process is not told.
  void write_config(const std::string& config_text) const;
  // Re-reads the ports file (after a reload added or removed listeners).
  void read_ports();
  std::string log() const;
  // The log once it contains `needle` (file_containing()).
  std::string log_containing(const std::string& needle) const;
  // GET on the admin endpoint: the body, or "" on failure.
  std::string admin_get(const std::string& path) const;
  // Any method on the admin endpoint: the whole response, or "" on failure.
  std::string admin_request(const std::string& method, const std::string& path) const;
  // Value of one metric series (exact text before the value, e.g.
  // `tlsfront_requests_total{pool="demo",class="2xx"}`); -1 if absent.
  double metric(const std::string& series) const;
  // The same, polled for up to 5 s until it reaches `at_least`: for counters the proxy bumps
  // after the client already has its response (requests_total). Returns the last value read.
  double metric_reaching(const std::string& series, double at_least) const;

 private:
  std::string dir_;
  std::unique_ptr<process> proc_;
  std::map<std::string, int> ports_;
};

// Runs a shell command; returns its exit status and captures stdout (stderr merged if asked).
struct command_result {
  int status = -1;
  std::string out;
};
command_result run_command(const std::string& cmd, const std::string& stdin_data = "");

// A blocking TCP connection to 127.0.0.1:port (for raw plaintext or TLS tests). -1 on failure.
int connect_tcp(int port);
// Sends `request` over plain TCP and returns everything read until the peer closes.
std::string plain_exchange(int port, const std::string& request);

// A BoringSSL TLS client over a blocking socket.
class tls_client {
 public:
  struct options {
    std::string sni;  // empty: no SNI
    std::uint16_t max_version = TLS1_3_VERSION;
    std::uint16_t min_version = TLS1_2_VERSION;
    SSL_SESSION* session = nullptr;  // offered for resumption
    bool tickets = true;
    std::vector<std::string> alpn = {"http/1.1"};
    int timeout_ms = 10000;
    std::string preamble;  // bytes sent on the TCP connection before the TLS handshake (PROXY)
    std::string ciphers;   // TLS 1.2 suites offered, in order (OpenSSL syntax); empty: default
    // TLS 1.3 0-RTT: sent as early data when `session` allows it. If the server rejects it,
    // the client sends it again once the handshake completed, as browsers do.
    std::string early_data;
    // With early_data: the constructor returns right after writing it, before the client's
    // Finished (finish_handshake() sends it), so a test can see what the server did with the
    // early bytes alone.
    bool hold_finished = false;
    // The client's clock runs this many seconds ahead (its ticket age grows by as much).
    int clock_offset_s = 0;
    // Mutual TLS: the certificate chain (PEM, leaf first) and key offered when asked.
    std::string cert_file, key_file;
  };
  // TLS 1.2 only, no ticket extension: the server must resume (if at all) by session ID.
  static options session_id_only(const std::string& sni, SSL_SESSION* session = nullptr);

  explicit tls_client(int port);
  tls_client(int port, const options& opts);
  ~tls_client();
  tls_client(const tls_client&) = delete;
  tls_client& operator=(const tls_client&) = delete;

  bool connected() const { return ok_; }
  // What failed last: the handshake, or a read (a TLS 1.3 server's alert about the client's
  // certificate arrives after the client's handshake completed).
  const std::string& error() const { return error_; }
  bool resumed() const;
  std::string peer_common_name() const;  // CN of the leaf the server sent
  std::string alpn() const;
  // The session to resume later: the newest one the server sent a ticket (or ID) for. For
  // TLS 1.3, read a response first so the post-handshake tickets have arrived.
  bssl::UniquePtr<SSL_SESSION> session() const;
  // How many new sessions (tickets) the server delivered on this connection.
  int sessions_received() const { return sessions_received_; }

  bool send(const std::string& data);
  // Reads one HTTP/1.1 response (head + body by Content-Length or chunked, or until close).
  // Returns "" on error or timeout.
  std::string read_response(bool head_request = false);
  // Reads until the server closes; returns what arrived.
  std::string read_all();
  // Reads exactly `n` bytes (fewer if the server closes first).
  std::string read_exact(std::size_t n);
  // True if the server closed the connection (read returns EOF) within the timeout.
  bool wait_closed(int timeout_ms);
  // Half-close: close_notify, then the TCP write side; reading goes on.
  void shutdown_write();
  // The local TCP port of the connection.
  int local_port() const;
  // 0-RTT: completes a handshake held by options::hold_finished (sending early_data again if
  // it was rejected). True once complete.
  bool finish_handshake();
  // The server accepted the early data (valid once the handshake completed).
  bool early_accepted() const { return early_accepted_; }
  // Every byte the client wrote to the TCP connection so far (to replay a flight verbatim).
  const std::string& sent_bytes() const { return sent_; }
  SSL* ssl() { return ssl_.get(); }

 private:
  int read_some(char* buf, int n);
  int fd_ = -1;
  bssl::UniquePtr<SSL_CTX> ctx_;
  bssl::UniquePtr<SSL> ssl_;
  bool ok_ = false;
  std::string error_;
  std::string pending_;
  bssl::UniquePtr<SSL_SESSION> latest_;
  int sessions_received_ = 0;
  std::string early_;
  bool early_accepted_ = false;
  int clock_offset_s_ = 0;
  std::string sent_;
  static int on_new_session(SSL* ssl, SSL_SESSION* session);
};

// One connection for the session-handle tests: a GET of `path` (Host a.example), whether it
// resumed, the response, the TLS-Session value the echo backend saw (GET /headers, on a route
// that sends it), and the session to resume later.
struct session_visit {
  bool resumed = false;
  std::string response;
  std::string handle;
  bssl::UniquePtr<SSL_SESSION> session;
};
session_visit visit_with(int port, const tls_client::options& o, const std::string& path);

// One request on a fresh connection; the whole response.
std::string https_request(int port, const std::string& raw, const std::string& sni = "");

// Parsed pieces of a response.
int response_status(const std::string& response);
std::string response_body(const std::string& response);
std::string response_header(const std::string& response, const std::string& name);
// The value of request header `name` as the echo backend's GET /headers echoed it in `body`
// (a line "Name: value", exact case), or "".
std::string echoed_header(const std::string& body, const std::string& name);

// Writes a fleet secret (`[cluster] secret_file`) to DIR/fleet.secret, mode 600; its path.
std::string write_fleet_secret(
    const std::string& dir, const std::string& secret = "fleet-secret-for-tests-0123456789abcdef");

// The default proxy config used by most tests: one listener "https" on 127.0.0.1:0 with the
// test certificates (a.example ECDSA, b.example RSA, *.wild.example, default.example as
// default), a pool "echo" with `backend`, one catch-all route, admin on 127.0.0.1:0, access log
// to {dir}/access.log, `extra` appended (e.g. [limits] overrides).
std::string default_config(const std::string& backend, const std::string& limits = "",
                           const std::string& pool_extra = "", int threads = 2);

// Session tickets, as the ticket and fleet tests use them.
tls_client::options client(const std::string& sni, std::uint16_t version,
                           SSL_SESSION* session = nullptr);
// A session whose ticket arrived (after one request, so TLS 1.3 tickets are in); `offer` is
// offered for resumption and `resumed` says whether it resumed.
bssl::UniquePtr<SSL_SESSION> ticket_session(int port, const std::string& sni, std::uint16_t version,
                                            SSL_SESSION* offer = nullptr, bool* resumed = nullptr);
// Hex of the ticket's key name (its first 16 bytes); "" without a ticket.
std::string ticket_key_name(SSL_SESSION* s);
// True if a handshake offering `s` resumed.
bool resumes(int port, const std::string& sni, std::uint16_t version, SSL_SESSION* s);
// The name of the key `p` seals tickets under now (GET /tickets).
std::string current_key_name(proxy_instance& p);
// Fleet sharing from `from` to `to` (failures name `when`): a TLS 1.2 session-ID session made
// on `from` resumes on `to` once `from` wrote it to the fleet store, and so does a TLS 1.3
// ticket.
void expect_fleet_sharing(proxy_instance& from, proxy_instance& to, const std::string& when);
// Waits (up to 10 s) until `a` and `b` seal tickets under the same key from the fleet's list.
void expect_shared_ticket_keys(proxy_instance& a, proxy_instance& b);

// New sessions on A resumed on B (through the fleet store), one after another on a thread of
// its own, until stop(). A failed handshake or request is counted; a full handshake in place of
// a resumption is not a failure (the store may be failing over), it is counted apart.
struct fleet_client_loop {
  std::atomic<bool> run{true};
  std::atomic<int> done{0}, failed{0}, resumed{0};
  std::thread thread;
  fleet_client_loop(int port_a, int port_b);
  void stop();
  // After stop(): which step of the first failed round failed and why ("" if none).
  std::string first_failure() const { return first_failure_; }

 private:
  std::string first_failure_;  // written by the loop's thread only, read after the join
};

// A copy of session `s` under another session ID (one the server never issued, unless `id`
// is one of its own); a random 32-byte ID if `id` is empty.
bssl::UniquePtr<SSL_SESSION> session_with_id(SSL_SESSION* s, std::vector<std::uint8_t> id = {});

}  // namespace tlsfront::test
