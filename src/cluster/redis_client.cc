#include "cluster/redis_client.h"

#include <arpa/inet.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <cstdint>
#include <deque>
#include <mutex>
#include <random>
#include <string_view>
#include <utility>

#include "cluster/cluster_router.h"
#include "cluster/redis_asker.h"

namespace tlsfront::cluster {
namespace {

class redis_category_impl final : public boost::system::error_category {
 public:
  const char* name() const noexcept override { return "redis"; }
  std::string message(int ev) const override {
    switch (static_cast<redis_errc>(ev)) {
      case redis_errc::not_connected:
        return "not connected to Redis";
      case redis_errc::connection_lost:
        return "Redis connection lost";
      case redis_errc::timed_out:
        return "Redis command timed out";
      case redis_errc::shutting_down:
        return "Redis client shutting down";
      case redis_errc::protocol:
        return "Redis protocol error";
    }
    return "unknown Redis error";
  }
};

// The reply functions of a plain hiredis reader (hiredis does not export them), read once.
const redisReplyObjectFunctions& hiredis_functions() {
  static const redisReplyObjectFunctions f = [] {
    redisReader* r = redisReaderCreate();
    const redisReplyObjectFunctions copy = *r->fn;
    redisReaderFree(r);
    return copy;
  }();
  return f;
}

// The array header refused last on this thread (0: none), for the disconnect's reason: hiredis
// reports a refused array as "Out of memory". A connection's callbacks run on its one thread.
thread_local int refused_array_elements = 0;

// The failure line a connection of this process logged last (every worker's connection fails
// the same way when Redis goes: one line says it).
std::mutex logged_mu;
std::deque<std::string> logged_lines;  // distinct lines logged since a connection last succeeded
constexpr std::size_t kLoggedLinesKept = 32;

void* create_bounded_array(const redisReadTask* task, int elements) {
  if (elements > kMaxReplyElements) {
    refused_array_elements = elements;
    return nullptr;  // the reader fails with an error; hiredis then drops the connection
  }
  return hiredis_functions().createArray(task, elements);
}

}  // namespace

void limit_reply_arrays(redisReader& reader) {
  static redisReplyObjectFunctions bounded = [] {
    redisReplyObjectFunctions f = hiredis_functions();
    f.createArray = &create_bounded_array;
    return f;
  }();
  reader.fn = &bounded;
}

redis_reply to_redis_reply(const redisReply& r) {
  redis_reply out;
  switch (r.type) {
    case REDIS_REPLY_STRING:
      out.type = redis_reply::kind::string;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = redis_reply::kind::status;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = redis_reply::kind::error;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.type = redis_reply::kind::integer;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_ARRAY:
      out.type = redis_reply::kind::array;
      out.elements.reserve(r.elements);
      for (std::size_t i = 0; i < r.elements; ++i) {
        out.elements.push_back(to_redis_reply(*r.element[i]));
      }
      break;
    default:
      out.type = redis_reply::kind::nil;
      break;
  }
  return out;
}

std::optional<std::string> subscription_payload(const redisReply& r) {
  if (r.type == REDIS_REPLY_ARRAY && r.elements == 3 && r.element[0]->type == REDIS_REPLY_STRING &&
      std::string_view(r.element[0]->str, r.element[0]->len) == "message" &&
      r.element[2]->type == REDIS_REPLY_STRING) {
    return std::string(r.element[2]->str, r.element[2]->len);
  }
  return std::nullopt;
}

bool subscription_confirmed(const redisReply& r) {
  return r.type == REDIS_REPLY_ARRAY && r.elements == 3 &&
         r.element[0]->type == REDIS_REPLY_STRING &&
         std::string_view(r.element[0]->str, r.element[0]->len) == "subscribe";
}

redis_options subscriber_options(const redis_options& opts) {
  redis_options o = opts;
  if (!o.cluster_nodes.empty()) {
    o.rotate = std::move(o.cluster_nodes);
    o.cluster_nodes.clear();
    o.database = 0;
  }
  return o;
}

redis_options sentinel_connection_options(const redis_options& opts) {
  redis_options o;
  o.password = opts.sentinel_password;
  o.connect_timeout = opts.connect_timeout;
  o.command_timeout = opts.command_timeout;
  o.reconnect_min = opts.reconnect_min;
  o.reconnect_max = opts.reconnect_max;
  return o;
}

bool is_master_role(const redis_reply& r) {
  return r.type == redis_reply::kind::array && !r.elements.empty() &&
         r.elements[0].type == redis_reply::kind::string && r.elements[0].str == "master";
}

std::optional<redis_endpoint> sentinel_master_reply(const redis_reply& r, std::string& why) {
  if (r.type == redis_reply::kind::nil) {
    why = "does not know that master";
    return std::nullopt;
  }
  if (r.is_error()) {
    why = "answered " + r.str;
    return std::nullopt;
  }
  if (r.type != redis_reply::kind::array || r.elements.size() != 2 ||
      r.elements[0].type != redis_reply::kind::string ||
      r.elements[1].type != redis_reply::kind::string) {
    why = "gave a reply that is not [address, port]";
    return std::nullopt;
  }
  const std::string& host = r.elements[0].str;
  in_addr a4{};
  in6_addr a6{};
  if (host.size() > 64 ||
      (inet_pton(AF_INET, host.c_str(), &a4) != 1 && inet_pton(AF_INET6, host.c_str(), &a6) != 1)) {
    why =
        "gave an address that is not an IP literal (tlsfront needs sentinel "
        "announce-hostnames off)";
    return std::nullopt;
  }
  const std::string& port = r.elements[1].str;
  unsigned long n = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (n = std::stoul(port)) == 0 || n > 65535) {
    why = "gave a port that is not in 1..65535";
    return std::nullopt;
  }
  return redis_endpoint{host, static_cast<std::uint16_t>(n)};
}

const boost::system::error_category& redis_category() noexcept {
  static const redis_category_impl c;
  return c;
}

// The hiredis event hooks on an Asio descriptor. hiredis owns (and closes) the fd: cleanup
// releases it from Asio without closing. Waits hold a shared_ptr, so a wait that completes after
// cleanup finds `ac` null and does nothing.
struct redis_client::watcher : std::enable_shared_from_this<watcher> {
  asio::posix::stream_descriptor sd;
  redisAsyncContext* ac;
  bool want_read = false, want_write = false, reading = false, writing = false;
  watcher(asio::io_context& ioc, int fd, redisAsyncContext* c) : sd(ioc, fd), ac(c) {}

  void start_read() {
    if (reading || !want_read || !ac) {
      return;
    }
    reading = true;
    sd.async_wait(asio::posix::descriptor_base::wait_read,
                  [w = shared_from_this()](const error_code& ec) {
                    w->reading = false;
                    if (ec || !w->ac || !w->want_read) {
                      return;
                    }
                    // One read of at most 16 KiB; if more is waiting, the next async_wait sees
                    // it: Asio re-arms the descriptor (EPOLL_CTL_MOD) for every wait, which
                    // reports a descriptor that is still readable.
                    redisAsyncHandleRead(w->ac);
                    w->start_read();
                  });
  }
  void start_write() {
    if (writing || !want_write || !ac) {
      return;
    }
    writing = true;
    sd.async_wait(asio::posix::descriptor_base::wait_write,
                  [w = shared_from_this()](const error_code& ec) {
                    w->writing = false;
                    if (ec || !w->ac || !w->want_write) {
                      return;
                    }
                    redisAsyncHandleWrite(w->ac);  // partial write: want_write stays, wait again
                    w->start_write();
                  });
  }

  static void add_read(void* p) {
    auto* w = static_cast<watcher*>(p);
    w->want_read = true;
    w->start_read();
  }
  static void del_read(void* p) { static_cast<watcher*>(p)->want_read = false; }
  static void add_write(void* p) {
    auto* w = static_cast<watcher*>(p);
    w->want_write = true;
    w->start_write();
  }
  static void del_write(void* p) { static_cast<watcher*>(p)->want_write = false; }
  static void cleanup(void* p) {
    auto* w = static_cast<watcher*>(p);
    w->ac = nullptr;
    w->want_read = w->want_write = false;
    (void)w->sd.release();  // waits finish with operation_aborted; hiredis closes the fd
  }
};

struct redis_client::pending {
  handler h;
  step kind = step::command;
  std::size_t subscription = SIZE_MAX;  // index in subs_: a callback hiredis keeps calling
};

redis_client::redis_client(asio::io_context& ioc, redis_options opts)
    : ioc_(ioc),
      opts_(std::move(opts)),
      check_(ioc),
      backoff_(ioc),
      delay_(opts_.reconnect_min),
      host_(opts_.sentinels.empty() && opts_.rotate.empty() ? opts_.host : std::string()),
      port_(opts_.sentinels.empty() && opts_.rotate.empty() ? opts_.port : 0) {
  if (!opts_.cluster_nodes.empty()) {
    host_.clear();
    port_ = 0;
    router_ = std::make_unique<cluster_router>(
        ioc_, opts_,
        [this] {
          state_ = state::ready;
          connected_.store(true, std::memory_order_relaxed);
          ++counters_.connects;
          for (const auto& f : on_ready_) {
            f();
          }
        },
        opts_.node_stats);
  }
}

redis_client::~redis_client() {
  *alive_ = false;
  router_.reset();  // its nodes' pending commands complete now, with shutting_down
  check_.cancel();
  backoff_.cancel();
  asker_.reset();
  if (redisAsyncContext* ac = ac_) {
    ac_ = nullptr;
    null_reply_error_ = redis_errc::shutting_down;
    redisAsyncFree(ac);  // pending commands complete now, with shutting_down
  }
}

void redis_client::start() {
  if (router_) {
    if (state_ == state::idle) {
      state_ = state::connecting;
      router_->start();
    }
    return;
  }
  if (state_ == state::idle) {
    connect();
  }
}

std::vector<redis_endpoint> redis_client::masters() const {
  if (router_) {
    return router_->masters();
  }
  if (host_.empty()) {
    return {};
  }
  return {redis_endpoint{host_, port_}};
}

void redis_client::command_at(const redis_endpoint& master, std::vector<std::string> argv,
                              handler h) {
  if (router_) {
    router_->command_at(master, std::move(argv), std::move(h));
    return;
  }
  if (master.host != host_ || master.port != port_) {
    fail_later(std::move(h), redis_errc::not_connected);  // the master moved meanwhile
    return;
  }
  command(std::move(argv), std::move(h));
}

void redis_client::connect() {
  connected_.store(false, std::memory_order_relaxed);
  if (!opts_.rotate.empty()) {
    const redis_endpoint& e = opts_.rotate[rotate_next_++ % opts_.rotate.size()];
    host_ = e.host;
    port_ = e.port;
  } else if (sentinel_mode()) {
    if (hint_) {
      set_target(*hint_);
      hint_.reset();
    } else {
      discover();
      return;
    }
  }
  connect_target();
}

std::string redis_client::where() const {
  if (router_) {
    return "redis cluster";
  }
  if (sentinel_mode()) {
    return "redis master '" + opts_.master_name + "'" + (host_.empty() ? "" : " at " + target());
  }
  return "redis " + target();
}

void redis_client::set_target(const redis_endpoint& e) {
  if (!host_.empty() && (e.host != host_ || e.port != port_)) {
    master_changes_.fetch_add(1, std::memory_order_relaxed);
    if (!opts_.quiet) {
      spdlog::info("redis master '{}': now at {} (was {})", opts_.master_name, e.str(), target());
    }
  }
  host_ = e.host;
  port_ = e.port;
}

void redis_client::discover() {
  // Ask the sentinels first: after any loss the master may be elsewhere.
  state_ = state::discovering;
  if (!asker_) {
    asker_ = std::make_unique<redis_asker>(ioc_, sentinel_connection_options(opts_));
  }
  asker_->ask(
      opts_.sentinels, sentinel_next_, {"SENTINEL", "get-master-addr-by-name", opts_.master_name},
      [this](const redis_reply& r, const redis_endpoint&, std::string& why) {
        found_ = sentinel_master_reply(r, why);
        return found_.has_value();
      },
      [this, alive = alive_](std::optional<std::size_t> which, const std::string& errors) {
        if (!*alive) {
          return;
        }
        if (!which) {
          ++counters_.connect_failures;
          note_failure("no sentinel gave the address of master '" + opts_.master_name +
                       "': " + errors);
          schedule_reconnect();
          return;
        }
        sentinel_next_ = *which;  // the next round starts with the one that answered
        set_target(*found_);
        connect_target();
      });
}

void redis_client::master_moved(const redis_endpoint& to) {
  if (!sentinel_mode() || state_ == state::idle) {
    return;
  }
  if (to.host == host_ && to.port == port_ &&
      (state_ == state::ready || state_ == state::connecting || state_ == state::handshaking)) {
    return;  // already there (a READONLY or a lost connection got here first)
  }
  hint_ = to;
  if (asker_) {
    asker_->cancel();
  }
  if (redisAsyncContext* ac = ac_) {
    ac_ = nullptr;
    null_reply_error_ = redis_errc::connection_lost;
    redisAsyncFree(ac);  // pending commands fail now; not inside a hiredis callback here
  }
  backoff_.cancel();
  connect();
}

void redis_client::connect_target() {
  state_ = state::connecting;
  connected_.store(false, std::memory_order_relaxed);
  ++attempt_;
  connect_started_ = std::chrono::steady_clock::now();
  redisAsyncContext* ac = redisAsyncConnect(host_.c_str(), port_);
  if (ac == nullptr || ac->err) {
    last_error_ = ac ? std::string(ac->errstr) : std::string("out of memory");
    if (ac) {
      redisAsyncFree(ac);
    }
    ++counters_.connect_failures;
    note_failure("cannot connect: " + last_error_);  // refused at once: the owner hears it too
    schedule_reconnect();
    return;
  }
  ac->data = this;
  limit_reply_arrays(*ac->c.reader);
  redisAsyncSetConnectCallback(ac, &redis_client::on_connect);
  redisAsyncSetDisconnectCallback(ac, &redis_client::on_disconnect);
  watcher_ = std::make_shared<watcher>(ioc_, ac->c.fd, ac);
  ac->ev.data = watcher_.get();
  ac->ev.addRead = &watcher::add_read;
  ac->ev.delRead = &watcher::del_read;
  ac->ev.addWrite = &watcher::add_write;
  ac->ev.delWrite = &watcher::del_write;
  ac->ev.cleanup = &watcher::cleanup;
  ac_ = ac;
  sent_.clear();
  null_reply_error_ = redis_errc::connection_lost;
  send_handshake();
  arm_check();
}

void redis_client::send_handshake() {
  // Queued before the connect completes (hiredis buffers them); the PING's reply marks ready.
  if (!opts_.password.empty()) {
    send({"AUTH", opts_.password}, {}, step::handshake);
  }
  if (opts_.database != 0) {
    send({"SELECT", std::to_string(opts_.database)}, {}, step::handshake);
  }
  if (sentinel_mode()) {
    send({"ROLE"}, {}, step::role);
  }
  send({"PING"}, {}, step::last_handshake);
}

void redis_client::send(std::vector<std::string> argv, handler h, step kind) {
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  auto p = std::make_unique<pending>(pending{std::move(h), kind});
  if (redisAsyncCommandArgv(ac_, &redis_client::on_reply, p.get(), static_cast<int>(argv.size()),
                            ptrs.data(), lens.data()) != REDIS_OK) {
    if (kind == step::command) {
      fail_later(std::move(p->h), redis_errc::protocol);
    }
    return;
  }
  (void)p.release();  // owned by hiredis until on_reply
  ++counters_.commands;
  sent_.push_back(std::chrono::steady_clock::now());
}

void redis_client::subscribe(std::string channel,
                             std::function<void(const std::string&)> on_message,
                             std::function<void()> on_subscribed) {
  subs_.push_back({std::move(channel), std::move(on_message), std::move(on_subscribed)});
  if (state_ == state::ready && ac_ != nullptr) {
    send_subscription(subs_.size() - 1);
  }
}

void redis_client::send_subscriptions() {
  // After every (re)connect: the server remembers no subscription across connections.
  for (std::size_t i = 0; i < subs_.size(); ++i) {
    send_subscription(i);
  }
}

void redis_client::send_subscription(std::size_t i) {
  auto p = std::make_unique<pending>();
  p->subscription = i;
  const char* argv[2] = {"SUBSCRIBE", subs_[i].channel.c_str()};
  const std::size_t lens[2] = {9, subs_[i].channel.size()};
  if (redisAsyncCommandArgv(ac_, &redis_client::on_reply, p.get(), 2, argv, lens) == REDIS_OK) {
    (void)p.release();  // hiredis keeps it for every message; freed on the nullptr call
  }
}

void redis_client::command(std::vector<std::string> argv, handler h) {
  if (router_) {
    router_->command(std::move(argv), std::move(h));
    return;
  }
  if (state_ != state::ready || ac_ == nullptr) {
    fail_later(std::move(h), redis_errc::not_connected);
    return;
  }
  send(std::move(argv), std::move(h), step::command);
}

void redis_client::fail_later(handler h, redis_errc e) {
  if (!h) {
    return;
  }
  asio::post(ioc_, [h = std::move(h), e] { h(make_error_code(e), redis_reply{}); });
}

void redis_client::on_reply(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* self = static_cast<redis_client*>(ac->data);
  if (auto* sp = static_cast<pending*>(privdata); sp->subscription != SIZE_MAX) {
    // hiredis calls a subscription's callback for every message and once with nullptr when
    // the connection goes: only then is the pending freed.
    const auto* r = static_cast<const redisReply*>(reply);
    if (r == nullptr) {
      delete sp;
      return;
    }
    if (sp->subscription >= self->subs_.size()) {
      return;
    }
    subscription& sub = self->subs_[sp->subscription];
    if (auto payload = subscription_payload(*r)) {
      sub.on_message(*payload);
    } else if (subscription_confirmed(*r) && sub.on_subscribed) {
      sub.on_subscribed();
    }
    return;
  }
  std::unique_ptr<pending> p(static_cast<pending*>(privdata));
  if (!self->sent_.empty()) {
    self->sent_.pop_front();
  }
  const auto* r = static_cast<const redisReply*>(reply);
  if (p->kind != step::command) {
    if (r == nullptr || self->ac_ != ac) {
      return;  // the connection is already gone; its owner dealt with it
    }
    if (r->type == REDIS_REPLY_ERROR) {
      ++self->counters_.connect_failures;
      self->drop(std::string("Redis refused the connection set-up: ") + std::string(r->str, r->len),
                 redis_errc::connection_lost);
      return;
    }
    if (p->kind == step::role && !is_master_role(to_redis_reply(*r))) {
      // A sentinel not yet told of a failover, or an old master come back as a replica.
      ++self->counters_.connect_failures;
      self->drop("not a master (ROLE did not answer \"master\"); asking the sentinels again",
                 redis_errc::connection_lost);
      return;
    }
    if (p->kind == step::last_handshake) {
      self->state_ = state::ready;
      self->connected_.store(true, std::memory_order_relaxed);
      self->delay_ = self->opts_.reconnect_min;
      ++self->counters_.connects;
      if (!self->last_error_.empty() && !self->opts_.quiet) {
        spdlog::info("{}: connected", self->where());
        warned_recovered();
      }
      self->send_subscriptions();
      for (const auto& f : self->on_ready_) {
        f();
      }
    }
    return;
  }
  if (!p->h) {
    return;
  }
  if (r == nullptr) {
    p->h(make_error_code(self->null_reply_error_), redis_reply{});
    return;
  }
  p->h(error_code{}, to_redis_reply(*r));
  if (r->type == REDIS_REPLY_ERROR && self->sentinel_mode() && self->ac_ == ac &&
      std::string_view(r->str, r->len).starts_with("READONLY")) {
    // The master was demoted under this connection: nothing more is sent to it.
    self->drop("answered READONLY (demoted to a replica); asking the sentinels again",
               redis_errc::connection_lost);
  }
}

void redis_client::on_connect(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<redis_client*>(ac->data);
  if (status == REDIS_OK || self->ac_ != ac) {
    return;  // connected: the handshake replies decide readiness
  }
  // hiredis frees the context after this callback.
  self->ac_ = nullptr;
  ++self->counters_.connect_failures;
  self->note_failure(std::string("cannot connect: ") + ac->errstr);
  self->schedule_reconnect();
}

void redis_client::on_disconnect(const redisAsyncContext* ac, int) {
  auto* self = static_cast<redis_client*>(ac->data);
  const int refused = std::exchange(refused_array_elements, 0);
  if (self->ac_ != ac) {
    return;  // we dropped it ourselves (drop() or the destructor)
  }
  self->ac_ = nullptr;  // hiredis frees it after this callback
  if (self->state_ == state::ready) {
    ++self->counters_.disconnects;
  } else {
    ++self->counters_.connect_failures;  // e.g. garbage instead of the PING reply
  }
  std::string why = ac->errstr[0] != '\0' ? ac->errstr : "closed by the server";
  if (refused != 0) {
    why = "a reply array of " + std::to_string(refused) + " elements (more than " +
          std::to_string(kMaxReplyElements) + ") was refused";
  }
  self->note_failure("connection lost: " + why);
  self->schedule_reconnect();
}

void redis_client::drop(const std::string& why, redis_errc pending_error) {
  note_failure(why);
  if (redisAsyncContext* ac = ac_) {
    ac_ = nullptr;
    null_reply_error_ = pending_error;
    redisAsyncFree(ac);  // deferred by hiredis until its current callback returns
  }
  schedule_reconnect();
}

std::chrono::milliseconds jittered(std::chrono::milliseconds delay) {
  thread_local std::minstd_rand rng(std::random_device{}());
  const auto half = delay.count() / 2;
  if (half <= 0) {
    return delay;
  }
  return std::chrono::milliseconds(half + static_cast<std::int64_t>(rng() % (half + 1)));
}

bool warn_once(const std::string& line, std::chrono::milliseconds retry_max) {
  std::lock_guard lock(logged_mu);
  if (std::find(logged_lines.begin(), logged_lines.end(), line) != logged_lines.end()) {
    return false;
  }
  spdlog::warn("{} (retrying every {} ms at most)", line, retry_max.count());
  logged_lines.push_back(line);
  if (logged_lines.size() > kLoggedLinesKept) {
    logged_lines.pop_front();
  }
  return true;
}

void warned_recovered() {
  std::lock_guard lock(logged_mu);
  logged_lines.clear();
}

void redis_client::note_failure(const std::string& why) {
  // One log line per change of state, not one per attempt: a dead Redis stays quiet. The
  // workers' connections fail alike: a line another connection of this process just logged is
  // not repeated (until some connection succeeds).
  if (why != last_error_ && !opts_.quiet) {
    warn_once(where() + ": " + why, opts_.reconnect_max);
  }
  last_error_ = why;
  if (on_failure_) {
    on_failure_(why);
  }
}

void redis_client::schedule_reconnect() {
  state_ = state::backoff;
  connected_.store(false, std::memory_order_relaxed);
  sent_.clear();
  // Jittered: each wait is drawn from [delay/2, delay], so a fleet that lost Redis at one
  // moment does not reconnect in lockstep, and the cap (1 s by default) bounds how long sharing
  // stays off after Redis is back.
  backoff_.expires_after(jittered(delay_));
  delay_ = std::min(delay_ * 2, opts_.reconnect_max);
  backoff_.async_wait([this, alive = alive_](const error_code& ec) {
    if (ec || !*alive || state_ != state::backoff) {
      return;
    }
    connect();
  });
}

void redis_client::arm_check() {
  // One ticking timer per connection attempt: the connect deadline while connecting, the oldest
  // unanswered command's deadline once ready (Redis answers in order, so the oldest is the front).
  auto tick = std::max(std::chrono::milliseconds(5),
                       std::min(opts_.connect_timeout, opts_.command_timeout) / 4);
  check_.expires_after(tick);
  check_.async_wait([this, alive = alive_, attempt = attempt_](const error_code& ec) {
    if (ec || !*alive || ac_ == nullptr || attempt != attempt_) {
      return;  // this attempt is over; the next connect() arms its own check
    }
    const auto now = std::chrono::steady_clock::now();
    if (state_ != state::ready) {
      if (now - connect_started_ >= opts_.connect_timeout) {
        ++counters_.connect_failures;
        drop("connect timed out after " + std::to_string(opts_.connect_timeout.count()) + " ms",
             redis_errc::connection_lost);
        return;
      }
    } else if (!sent_.empty() && now - sent_.front() >= opts_.command_timeout) {
      ++counters_.timeouts;
      drop("no reply within " + std::to_string(opts_.command_timeout.count()) + " ms",
           redis_errc::timed_out);
      return;
    }
    arm_check();
  });
}

}  // namespace tlsfront::cluster
