// cluster/redis_client.h — one Redis connection driven by a worker's io_context: hiredis's async
// API (0.14, as Debian ships it) with its read/write hooks mapped onto Asio reactor waits, so the
// connection lives and is used on one thread and nothing crosses threads.
//
// The client connects on start(), authenticates (AUTH with the configured password), selects the
// database and reports itself ready; until then, and whenever the connection is down, commands
// fail at once with `not_connected` (callers degrade, they never queue behind a dead Redis).
// A lost connection, a refused AUTH, a connect that takes longer than connect_timeout or a
// command that waits longer than command_timeout for its reply drops the connection (every
// pending command completes with an error) and reconnects with exponential backoff
// (reconnect_min doubling up to reconnect_max, each wait jittered down to half). Each failure is
// counted; log lines about it are rate-limited to one per state change.
//
// Sentinel mode (`sentinels` non-empty): before every connect the client asks the sentinels, in
// turn starting with the last one that answered, for `master_name`'s address
// (SENTINEL get-master-addr-by-name, on a short-lived client of its own), connects there and
// checks with ROLE that it is a master; a replica (a sentinel not yet told of a failover) is
// dropped and the sentinels asked again after the backoff. A READONLY reply (the master was
// demoted under us) drops the connection and rediscovers; master_moved() (the sentinels'
// +switch-master, heard by a sentinel_watch) moves the connection at once. Nothing is written to
// an instance that did not answer ROLE "master" on this connection.
//
// Thread-safety: none; every call on the io_context's thread, except connected() and
// master_changes() (relaxed atomics, for metrics). Ownership: the client owns the
// hiredis context; destroying the client completes pending commands with `shutting_down`
// (callbacks run inside the destructor) and closes the connection.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisAsyncContext;
struct redisReader;
struct redisReply;

namespace tlsfront::cluster {

class redis_asker;
class cluster_router;
class cluster_stats;

namespace asio = boost::asio;
using error_code = boost::system::error_code;

enum class redis_errc {
  not_connected = 1,  // no ready connection right now
  connection_lost,    // the connection dropped (or was dropped) before the reply came
  timed_out,          // no reply within command_timeout (the connection is then dropped)
  shutting_down,      // the client is being destroyed
  protocol,           // hiredis refused the command or could not parse a reply
};
const boost::system::error_category& redis_category() noexcept;
inline error_code make_error_code(redis_errc e) {
  return error_code(static_cast<int>(e), redis_category());
}

struct redis_endpoint {
  std::string host;  // an IP literal (hiredis would resolve a name with a blocking call)
  std::uint16_t port = 0;
  bool operator==(const redis_endpoint&) const = default;
  std::string str() const { return host + ":" + std::to_string(port); }
};

struct redis_options {
  std::string host = "127.0.0.1";  // plain mode: the Redis
  std::uint16_t port = 6379;
  // Plain mode with several addresses (a sentinel_watch's subscriber): each connect attempt
  // goes to the next of these; host and port are then unused.
  std::vector<redis_endpoint> rotate;
  // Sentinel mode: the sentinels to ask for master_name's address (host and port unused).
  std::vector<redis_endpoint> sentinels;
  std::string master_name;
  std::string sentinel_password;  // AUTH to the sentinels; empty: none
  // Cluster mode: seed nodes of a Redis Cluster (host, port and database unused); see
  // cluster_router.h. The slot map is read again every map_refresh; `node_stats`, when set,
  // gathers what the process's routers see of each node.
  std::vector<redis_endpoint> cluster_nodes;
  std::chrono::milliseconds map_refresh{5000};
  std::shared_ptr<cluster_stats> node_stats;
  bool quiet = false;    // no log lines (the sentinel probes: their owner logs)
  std::string password;  // empty: no AUTH
  int database = 0;
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{1000};
  std::chrono::milliseconds reconnect_min{100};
  std::chrono::milliseconds reconnect_max{1000};  // sharing returns within ~1 s of Redis
};

// A reply, copied out of hiredis. An error reply (`-ERR ...`) is a reply, not an error_code.
struct redis_reply {
  enum class kind { nil, status, error, integer, string, array };
  kind type = kind::nil;
  std::string str;  // status, error and string replies
  long long integer = 0;
  std::vector<redis_reply> elements;

  bool is_error() const { return type == kind::error; }
  bool is_ok() const { return type == kind::status && str == "OK"; }
};

// hiredis's parsed reply (any depth hiredis's reader produces) copied into a redis_reply; an
// unknown reply type becomes nil. Pure; what every command's handler receives.
redis_reply to_redis_reply(const redisReply& r);
// The payload of a pub/sub push ["message", channel, payload]; nullopt for any other reply
// (subscribe confirmations, malformed pushes), which a subscriber ignores.
std::optional<std::string> subscription_payload(const redisReply& r);
// True for Redis's confirmation of a SUBSCRIBE: ["subscribe", channel, count].
bool subscription_confirmed(const redisReply& r);

// hiredis 0.14 allocates an array reply's element table from the array's header alone, before
// any element arrives: "*666666662\r\n" asks for 5 GB, so a dozen bytes from the server (or from
// anything on the path to it) could exhaust memory. tlsfront's commands get arrays of at most
// three elements; a reader passed to limit_reply_arrays() refuses an array header of more than
// kMaxReplyElements elements (a reader error: the client drops the connection and reconnects,
// and last_error() says why). Every connection's reader is limited so.
constexpr int kMaxReplyElements = 65536;
void limit_reply_arrays(redisReader& reader);

struct redis_counters {
  std::uint64_t connects = 0;          // connections that became ready
  std::uint64_t connect_failures = 0;  // refused, timed out, AUTH/SELECT refused
  std::uint64_t disconnects = 0;       // ready connections lost
  std::uint64_t timeouts = 0;          // commands that hit command_timeout
  std::uint64_t commands = 0;          // commands sent
};

class redis_client {
 public:
  using handler = std::function<void(const error_code&, const redis_reply&)>;

  redis_client(asio::io_context& ioc, redis_options opts);
  ~redis_client();
  redis_client(const redis_client&) = delete;
  redis_client& operator=(const redis_client&) = delete;

  // Starts connecting (and reconnecting whenever the connection is lost). Idempotent.
  void start();
  bool ready() const noexcept { return state_ == state::ready; }
  // ready(), readable from any thread (for metrics): relaxed, a display value.
  bool connected() const noexcept { return connected_.load(std::memory_order_relaxed); }

  // Sends one command (argv, binary-safe). `h` runs exactly once, on the io_context's thread, never
  // inside this call: with the reply, or with a redis_errc. Cluster mode: to the master of the
  // command's slot (multi-key DEL/UNLINK/EXISTS/TOUCH split per slot, the integers summed).
  void command(std::vector<std::string> argv, handler h);
  // The masters (one, the one connected to, outside cluster mode; none before it is known), and
  // a command sent to one of them: a SCAN reads one node of a cluster.
  std::vector<redis_endpoint> masters() const;
  void command_at(const redis_endpoint& master, std::vector<std::string> argv, handler h);
  bool cluster_mode() const noexcept { return router_ != nullptr; }

  // Adds a hook called, in the order added, each time the connection becomes ready (after
  // AUTH/SELECT).
  void add_on_ready(std::function<void()> f) { on_ready_.push_back(std::move(f)); }
  // Sets a hook called with the reason each time a connect fails or the connection is lost (the
  // sentinel probes: the next sentinel is asked at once).
  void on_failure(std::function<void(const std::string&)> f) { on_failure_ = std::move(f); }

  // Turns this client into a subscriber (it then sends no other command; not in cluster mode:
  // see subscriber_options()): SUBSCRIBE `channel`
  // now if ready and again after every reconnect; `on_message` gets each message's payload.
  // Messages published while the connection was down are lost (pub/sub has no backlog), so
  // `on_subscribed` (optional) runs each time Redis confirms the subscription: from then on
  // every message published reaches on_message, and a read of what was missed made after it
  // loses nothing.
  void subscribe(std::string channel, std::function<void(const std::string&)> on_message,
                 std::function<void()> on_subscribed = {});

  const redis_counters& counters() const noexcept { return counters_; }
  // The last connection problem, for logs and tests ("" when none yet).
  const std::string& last_error() const noexcept { return last_error_; }

  // Sentinel mode: the sentinels announced `master_name` at `to`. Unless already connected
  // there, the connection is dropped (pending commands fail with connection_lost) and remade to
  // `to` at once, checked with ROLE like any other. No-op in plain mode.
  void master_moved(const redis_endpoint& to);
  // Sentinel mode: times the master this client connects to changed (relaxed, for metrics).
  std::uint64_t master_changes() const noexcept {
    return master_changes_.load(std::memory_order_relaxed);
  }
  // Where the client connects now ("" before the sentinels first answered).
  std::string target() const {
    return host_.empty() ? std::string() : host_ + ":" + std::to_string(port_);
  }

 private:
  enum class state { idle, discovering, connecting, handshaking, ready, backoff };
  struct watcher;
  struct pending;

  void connect();
  void connect_target();
  bool sentinel_mode() const noexcept { return !opts_.sentinels.empty(); }
  void discover();
  void set_target(const redis_endpoint& e);
  std::string where() const;
  void send_handshake();
  void drop(const std::string& why, redis_errc pending_error);
  void note_failure(const std::string& why);
  void schedule_reconnect();
  void arm_check();
  enum class step { command, handshake, role, last_handshake };
  void send(std::vector<std::string> argv, handler h, step kind);
  void send_subscriptions();
  void send_subscription(std::size_t index);
  static void on_connect(const redisAsyncContext* ac, int status);
  static void on_disconnect(const redisAsyncContext* ac, int status);
  static void on_reply(redisAsyncContext* ac, void* reply, void* privdata);
  void fail_later(handler h, redis_errc e);

  asio::io_context& ioc_;
  redis_options opts_;
  state state_ = state::idle;
  std::atomic<bool> connected_{false};
  redisAsyncContext* ac_ = nullptr;
  std::shared_ptr<watcher> watcher_;
  std::deque<std::chrono::steady_clock::time_point> sent_;  // send times of unanswered commands
  asio::steady_timer check_;                                // connect timeout and command timeouts
  asio::steady_timer backoff_;                              // reconnect delay
  std::chrono::milliseconds delay_;
  std::chrono::steady_clock::time_point connect_started_;
  std::uint64_t attempt_ = 0;  // connect() count: a check timer belongs to one attempt
  std::vector<std::function<void()>> on_ready_;
  std::function<void(const std::string&)> on_failure_;
  struct subscription {
    std::string channel;
    std::function<void(const std::string&)> on_message;
    std::function<void()> on_subscribed;
  };
  std::vector<subscription> subs_;
  redis_counters counters_;
  std::string last_error_;
  redis_errc null_reply_error_ = redis_errc::connection_lost;  // for commands a drop cuts off
  // The address connected to: opts_.host/port, a rotate entry or the sentinels' answer.
  std::string host_;
  std::uint16_t port_ = 0;
  std::size_t rotate_next_ = 0;
  // Sentinel discovery: asking the sentinels in turn, from the one that answered last.
  std::unique_ptr<redis_asker> asker_;
  std::size_t sentinel_next_ = 0;
  std::optional<redis_endpoint> found_;  // the accepted answer of the running round
  std::optional<redis_endpoint> hint_;   // master_moved's address, used by the next connect
  std::atomic<std::uint64_t> master_changes_{0};
  std::unique_ptr<cluster_router> router_;  // cluster mode
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// Logs `line` as a warning unless a fleet connection of this process already logged it since a
// connection last succeeded (every worker's connection fails alike when Redis goes, and their
// lines interleave with the subscriber's: one line says each thing); true when it was logged.
// warned_recovered() (a connection succeeded) lets the next failure be logged again.
bool warn_once(const std::string& line, std::chrono::milliseconds retry_max);
// A reconnect wait: uniform in [delay/2, delay] (a fleet that lost Redis together does not
// reconnect together). Pure apart from its per-thread random engine.
std::chrono::milliseconds jittered(std::chrono::milliseconds delay);
void warned_recovered();

// The options of a subscriber (subscribe()) for a fleet on `opts`: in cluster mode a plain
// connection rotating over the seeds (a Redis Cluster delivers every PUBLISH to every node, so
// any one will do); otherwise `opts` itself (on Sentinel it follows the master). Pure.
redis_options subscriber_options(const redis_options& opts);

// Options for a plain connection to the sentinels of sentinel-mode `opts`: their password and
// `opts`'s timeouts (the caller sets the address or the rotation). Pure.
redis_options sentinel_connection_options(const redis_options& opts);
// True when a ROLE reply says "master" (its first element). Pure; the sentinel mode's check.
bool is_master_role(const redis_reply& r);
// A SENTINEL get-master-addr-by-name reply as an address: two strings, an IP literal and a port
// in 1..65535; nullopt otherwise, with `why` set. Pure.
std::optional<redis_endpoint> sentinel_master_reply(const redis_reply& r, std::string& why);

}  // namespace tlsfront::cluster

template <>
struct boost::system::is_error_code_enum<tlsfront::cluster::redis_errc> : std::true_type {};
