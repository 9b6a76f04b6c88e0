#include "proxy/h2_session.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <charconv>

#include "core/clock.h"
#include "http/error_response.h"
#include "http/header_rewrite.h"
#include "http/path_normalize.h"
#include "log/logging.h"
#include "proxy/exchange.h"
#include "proxy/router.h"

namespace tlsfront::proxy {
namespace {

using steady = std::chrono::steady_clock;
// Finished streams kept for reuse while the connection has streams in flight.
constexpr std::size_t max_spare_streams = 16;
// From the drain's shutdown notice to its final GOAWAY: a generous round trip, for the streams
// the client sent before it read the notice.
constexpr int kDrainGraceMs = 1000;

void append_chunk_size(std::string& out, std::size_t n) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, n, 16);
  out.append(buf, r.ptr);
  out.append("\r\n");
}

}  // namespace

// One stream: the exchange's request body source and response sink.
class h2_session::stream final : public request_body_source, public response_sink {
 public:
  explicit stream(h2_session& s)
      : s_(s),
        exchange_(s.conn_.owner(), s.conn_.snap()),
        wake_(s.conn_.owner().ioc.get_executor()) {}

  // A new request on this object: a fresh one, or a finished stream's (reused, so its
  // exchange, buffers and strings allocate nothing again).
  void open(std::int32_t id, http::h2_request_head head) {
    id_ = id;
    head_ = std::move(head);
    exchange_.reset();
    wake_.reset();
    rec_ = request_record{};
    rec_.protocol = "h2";
    rec_.method = head_.method;
    rec_.path = head_.path;
    in_.clear();
    out_.clear();
    request_trailers_.clear();
    response_trailers_.clear();
    framing_ = http::body_framing::none;
    body_bytes_ = 0;
    close_code_ = 0;
    local_status_ = 0;
    request_ended_ = closed_ = response_started_ = response_ended_ = reset_by_us_ = false;
    early_plan_ = connection::early_plan::confirmed;
  }

  asio::awaitable<void> serve();

  // --- events, through the session ---
  void take_body(std::span<const std::uint8_t> bytes) {
    in_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    body_bytes_ += bytes.size();
    wake_.notify();
  }
  void end_request(std::vector<http::h2_field> trailers) {
    request_trailers_ = std::move(trailers);
    request_ended_ = true;
    wake_.notify();
  }
  void closed(std::uint32_t code) {
    closed_ = true;
    close_code_ = code;
    exchange_.abort();
    wake_.notify();
  }
  void room() { wake_.notify(); }
  bool reset_by_us() const { return reset_by_us_; }
  std::int32_t id() const { return id_; }
  bool response_ended() const { return response_ended_; }

  // --- request_body_source ---
  asio::awaitable<result> next_body(std::string& out) override;
  std::uint64_t body_bytes() const override { return body_bytes_; }
  // --- response_sink ---
  asio::awaitable<bool> send_continue() override { co_return !closed_; }
  response_body_plan start_response(const http::message_head& head, http::body_framing framing,
                                    bool no_body) override;
  asio::awaitable<bool> send(bool end) override;
  void trailers(const std::vector<http::trailer_field>& fields) override;
  asio::awaitable<void> switch_protocols(const http::message_head&, std::string_view, backend_link&,
                                         request_record&) override {
    reset(http::h2_internal_error);  // never asked for: an h2 request has no Upgrade
    co_return;
  }
  // The session's reader completes the handshake and wakes every stream (read_loop()).
  asio::awaitable<bool> wait_for_handshake() override {
    const steady::time_point deadline = steady::now() + limits().client_read_timeout;
    bool woken = true;
    while (woken && !closed_ && !s_.client_gone_ && s_.conn_.tls().in_early_data()) {
      const bool w = co_await wake_.wait(deadline);
      woken = w;
    }
    co_return woken && !closed_ && !s_.client_gone_;
  }

 private:
  // Routes and checks the head and builds the backend request. 0, or the status to answer.
  int prepare(backend_request& req);
  // The body bytes received so far, framed for the backend, acknowledged to the client.
  void take_input(std::string& out);
  void frame_end(std::string& out) const;
  asio::awaitable<void> respond_local(int status);
  void finish(const exchange_result& r);
  void reset(std::uint32_t code);
  const limits_options& limits() const { return s_.conn_.snap().opts.limits; }

  h2_session& s_;
  std::int32_t id_ = 0;
  http::h2_request_head head_;
  exchange exchange_;
  wakeup wake_;  // request bytes came, output room, the stream closed
  request_record rec_;
  std::string target_;       // the normalized path
  std::string prefix_;       // the backend request head and the body bytes that came with it
  std::string late_prefix_;  // an early request's head without Early-Data (a retry after 425)
  connection::early_plan early_plan_ = connection::early_plan::confirmed;
  std::string in_;   // request body bytes received, not yet taken by the exchange
  std::string out_;  // response body bytes for the codec
  std::vector<http::h2_field> request_trailers_;
  std::vector<http::h2_field> response_trailers_;
  http::body_framing framing_ = http::body_framing::none;  // of the request body to the backend
  std::uint64_t body_bytes_ = 0;
  std::uint32_t close_code_ = 0;
  int local_status_ = 0;  // what to answer when the body source failed
  bool request_ended_ = false;
  bool closed_ = false;  // the codec closed the stream (both sides ended, or a reset)
  bool response_started_ = false;
  bool response_ended_ = false;
  bool reset_by_us_ = false;
};

// --- the session ---

h2_session::h2_session(connection& c)
    : conn_(c),
      codec_(c.snap().opts.http2, *this, core::real_clock::instance()),
      writer_wake_(c.owner().ioc.get_executor()),
      tasks_done_(c.owner().ioc.get_executor()),
      idle_wd_(c.owner().ioc.get_executor(), [this] { on_idle(); }),
      drain_wd_(c.owner().ioc.get_executor(), [this] { close_gracefully(); }) {}

h2_session::~h2_session() = default;

h2_session::stream* h2_session::find(std::int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second;
}

asio::awaitable<void> h2_session::run() {
  proxy_metrics& m = conn_.metrics();
  m.h2_connections->inc();
  idle_wd_.arm(conn_.snap().opts.limits.client_idle_timeout);
  if (conn_.draining()) {
    // Its handshake ended after the drain began (it was accepted before): the drain hook's
    // call went to the connections already serving, so this one starts draining itself.
    on_drain();
  }
  {
    using namespace asio::experimental::awaitable_operators;
    co_await (read_loop() && write_loop());
  }
  idle_wd_.disarm();
  drain_wd_.disarm();
  close_streams();
  while (tasks_ > 0) {
    co_await tasks_done_.wait();
  }
  if (const auto code = codec_.goaway_code(); code && *code != http::h2_no_error) {
    m.h2_goaway_errors[*code == http::h2_enhance_your_calm ? 0 : 1]->inc();
    spdlog::debug("{}: HTTP/2 connection ended: {}", conn_.peer(), codec_.failure());
  }
  if (!client_gone_) {
    co_await conn_.linger();  // so the GOAWAY is read, not destroyed by a reset
  }
  m.h2_connections->dec();
}

void h2_session::on_drain() {
  // Two steps (RFC 9113 §6.8), as a graceful shutdown should: a GOAWAY naming the highest
  // stream ID first, so requests the client sent before it reads the GOAWAY are still taken
  // and served, and the final GOAWAY (the last stream taken) a grace period later. A first
  // request sent just after the handshake is so served, as HTTP/1.1 serves it while draining.
  if (closing_ || noticed_) {
    return;
  }
  noticed_ = true;
  codec_.shutdown_notice();
  flush();
  drain_wd_.arm(std::chrono::milliseconds(kDrainGraceMs));
}

void h2_session::close_gracefully() {
  if (!closing_) {
    closing_ = true;
    codec_.goaway_graceful();
    flush();
  }
}

void h2_session::on_idle() {
  if (tasks_ > 0 || closing_) {
    idle_wd_.arm(conn_.snap().opts.limits.client_idle_timeout);
    return;
  }
  close_gracefully();  // GOAWAY NO_ERROR, then the writer closes
}

asio::awaitable<void> h2_session::read_loop() {
  read_buffer& in = conn_.in();
  tls::stream& tls = conn_.tls();
  while (!done_) {
    if (!in.empty()) {
      const auto st = codec_.feed(std::span<const std::uint8_t>(
          reinterpret_cast<const std::uint8_t*>(in.bytes.data() + in.begin), in.end - in.begin));
      in.clear();
      start_streams();
      flush();
      if (st == http::h2_feed_status::closing) {
        break;
      }
    }
    const bool early = tls.in_early_data();
    auto [ec, n] = co_await tls.read_some(in.bytes.data(), in.bytes.size());
    if (ec) {
      if (!done_) {
        client_gone_ = true;  // closed or broken: nothing more can be sent either
      }
      break;
    }
    in.begin = 0;
    in.end = n;
    if (early && !tls.in_early_data()) {
      for (auto& [id, s] : streams_) {
        s->room();  // the handshake completed: streams waiting for it go on
      }
    }
  }
  flush();
}

asio::awaitable<void> h2_session::write_loop() {
  for (;;) {
    batch_.clear();
    codec_.pull_output(batch_);
    if (!batch_.empty() && !client_gone_) {
      const bool ok = co_await conn_.write_client(batch_);
      if (!ok) {
        client_gone_ = true;
        break;
      }
      continue;
    }
    if (client_gone_ || codec_.finished() || (closing_ && tasks_ == 0)) {
      break;
    }
    co_await writer_wake_.wait();
  }
  done_ = true;
  boost::system::error_code ignored;
  conn_.tls().socket().cancel(ignored);  // ends the reader's wait
}

void h2_session::close_streams() {
  while (!streams_.empty()) {
    auto it = streams_.begin();
    stream* s = it->second;
    streams_.erase(it);
    s->closed(http::h2_cancel);
  }
}

void h2_session::on_request_head(std::int32_t id, http::h2_request_head head) {
  std::unique_ptr<stream> s;
  if (spare_.empty()) {
    s = std::make_unique<stream>(*this);
  } else {
    s = std::move(spare_.back());
    spare_.pop_back();
  }
  s->open(id, std::move(head));
  streams_[id] = s.get();
  ++tasks_;
  conn_.metrics().h2_streams->inc();
  starting_.push_back(std::move(s));  // started once feed() returned (start_streams())
}

void h2_session::start_streams() {
  // co_spawn runs each coroutine at once, up to its first wait: never from inside the codec.
  spawning_.swap(starting_);  // both keep their capacity: nothing allocated per feed()
  for (auto& s : spawning_) {
    asio::co_spawn(conn_.owner().ioc, serve(std::move(s)), asio::detached);
  }
  spawning_.clear();
}

asio::awaitable<void> h2_session::serve(std::unique_ptr<stream> s) {
  co_await s->serve();
  if (auto it = streams_.find(s->id()); it != streams_.end() && it->second == s.get()) {
    streams_.erase(it);  // still open (its response queued): later events find no stream
  }
  conn_.metrics().h2_streams->dec();
  if (--tasks_ == 0) {
    tasks_done_.notify();
    idle_wd_.arm(conn_.snap().opts.limits.client_idle_timeout);
    spare_.clear();  // an idle connection keeps no stream memory
  } else if (spare_.size() < max_spare_streams) {
    spare_.push_back(std::move(s));
  }
  flush();
}

void h2_session::on_request_body(std::int32_t id, std::span<const std::uint8_t> bytes) {
  if (stream* s = find(id)) {
    s->take_body(bytes);
    return;
  }
  // The stream's response is done (answered before its whole body came): the rest is dropped,
  // but still acknowledged so the connection window does not shrink.
  codec_.consume(id, bytes.size());
}

void h2_session::on_request_end(std::int32_t id, std::vector<http::h2_field> trailers) {
  if (stream* s = find(id)) {
    s->end_request(std::move(trailers));
  }
}

void h2_session::on_stream_closed(std::int32_t id, std::uint32_t error_code) {
  stream* s = find(id);
  if (s == nullptr) {
    return;
  }
  streams_.erase(id);
  if ((error_code != http::h2_no_error || !s->response_ended()) && !s->reset_by_us()) {
    conn_.metrics().h2_resets[0]->inc();
  }
  s->closed(error_code);
}

void h2_session::on_output_room(std::int32_t id) {
  if (stream* s = find(id)) {
    s->room();
  }
}

// --- one stream ---

asio::awaitable<void> h2_session::stream::serve() {
  if (closed_) {
    rec_.aborted = true;  // reset before it started (or the connection is gone)
    s_.conn_.record_request(rec_, 0);
    co_return;
  }
  backend_request req;
  if (const int status = prepare(req); status != 0) {
    co_await respond_local(status);
    co_return;
  }
  bool confirmed = true;
  if (early_plan_ == connection::early_plan::wait) {
    const bool done = co_await wait_for_handshake();
    confirmed = done;
  }
  if (!confirmed) {
    if (!closed_) {
      reset(http::h2_cancel);
    }
    rec_.aborted = true;
    s_.conn_.record_request(rec_, 0);
    co_return;
  }
  const exchange_result r = co_await exchange_.run(rec_, req, *this, *this);
  if (r.what == exchange_result::kind::no_response) {
    co_await respond_local(r.status);
  } else if (r.what == exchange_result::kind::client_failed && local_status_ != 0 &&
             !response_started_) {
    co_await respond_local(local_status_);
  } else {
    finish(r);
  }
  // Body bytes that came after the exchange stopped reading: acknowledged, so the connection
  // window does not shrink.
  if (!closed_ && !in_.empty()) {
    s_.codec_.consume(id_, in_.size());
    in_.clear();
  }
}

int h2_session::stream::prepare(backend_request& req) {
  connection& c = s_.conn_;
  if (head_.method == "CONNECT") {
    return 501;  // no tunnels over HTTP/2 (WebSocket stays on HTTP/1.1)
  }
  target_.clear();
  if (head_.path == "*") {
    target_ = head_.path;
  } else if (http::path_error pe = http::normalize_target(
                 head_.path, http::path_options{c.listener().opts.allow_encoded_slashes}, target_);
             pe != http::path_error::none) {
    c.metrics().bad_requests->inc();
    spdlog::debug("{}: bad request path on stream {}: {}", c.peer(), id_, http::describe(pe));
    return 400;
  }
  const router::target* route = c.snap().routes->match(head_.authority, target_);
  if (route == nullptr) {
    return 404;
  }
  rec_.pool = route->pool;
  const std::uint64_t max_body = limits().max_body_bytes;
  if (max_body > 0 && head_.content_length.value_or(0) > max_body) {
    return 413;
  }

  // The head as HTTP/1.1 sees it; views into head_.
  http::message_head h;
  h.method = head_.method;
  h.target = head_.path;
  h.host = head_.authority;
  h.content_length = head_.content_length;
  h.headers.reserve(head_.fields.size());
  for (const http::h2_field& f : head_.fields) {
    h.headers.push_back(http::header_field{f.name, f.value});
  }
  const bool no_body = head_.end_stream || head_.content_length == std::uint64_t{0};
  framing_ = head_.content_length
                 ? http::body_framing::content_length
                 : (no_body ? http::body_framing::none : http::body_framing::chunked);
  prefix_.clear();
  http::forwarded_info fwd{c.peer_ip(), "https", c.tls().info().server_name,
                           {},          target_, c.listener().opts.drop_client_headers};
  c.session_fields(*route, fwd, req);
  // 0-RTT, as on HTTP/1.1 (http1_session::forward): early with a second head for a 425 retry,
  // or wait for the handshake in serve().
  early_plan_ = c.plan_early(*route, head_.method, !no_body);
  const bool marked = c.trusted_peer() &&
                      std::any_of(head_.fields.begin(), head_.fields.end(),
                                  [](const http::h2_field& f) { return f.name == "early-data"; });
  req.early = early_plan_ == connection::early_plan::early;
  if (req.early && !marked) {
    late_prefix_.clear();
    http::build_backend_request(h, fwd, framing_, late_prefix_);
    req.late_prefix = &late_prefix_;
  }
  fwd.early_data = req.early || marked;
  http::build_backend_request(h, fwd, framing_, prefix_);
  req.pool = route->pool;
  req.prefix = &prefix_;
  req.has_body = !no_body;
  req.idempotent = http::is_idempotent(head_.method);
  req.head_method = head_.method == "HEAD";
  // Body bytes that came with the head go in the same write; a request already complete is
  // whole (so a stale pooled connection can be retried).
  take_input(prefix_);
  if (max_body > 0 && body_bytes_ > max_body) {
    return 413;
  }
  req.whole = no_body || request_ended_;
  if (req.whole && !no_body) {
    frame_end(prefix_);
  }
  return 0;
}

void h2_session::stream::take_input(std::string& out) {
  if (in_.empty()) {
    return;
  }
  if (framing_ == http::body_framing::chunked) {
    append_chunk_size(out, in_.size());
    out.append(in_);
    out.append("\r\n");
  } else {
    out.append(in_);
  }
  s_.codec_.consume(id_, in_.size());  // the client may send that much more
  s_.flush();
  in_.clear();
}

void h2_session::stream::frame_end(std::string& out) const {
  if (framing_ != http::body_framing::chunked) {
    return;  // content-length: the trailers cannot follow (nghttp2 checked the length)
  }
  out.append("0\r\n");
  for (const http::h2_field& f : request_trailers_) {
    if (http::forwardable_trailer(f.name, s_.conn_.listener().opts.drop_client_headers)) {
      out.append(f.name);
      out.append(": ");
      out.append(f.value);
      out.append("\r\n");
    }
  }
  out.append("\r\n");
}

asio::awaitable<request_body_source::result> h2_session::stream::next_body(std::string& out) {
  const steady::time_point deadline = steady::now() + limits().client_read_timeout;
  for (;;) {
    if (closed_) {
      co_return result::failed;  // reset by the client, or the connection is gone
    }
    if (!in_.empty() || request_ended_) {
      take_input(out);
      const std::uint64_t max_body = limits().max_body_bytes;
      if (max_body > 0 && body_bytes_ > max_body) {
        local_status_ = 413;
        co_return result::failed;
      }
      if (!request_ended_) {
        co_return result::more;
      }
      frame_end(out);
      co_return result::end;
    }
    const bool woken = co_await wake_.wait(deadline);
    if (!woken && in_.empty() && !request_ended_ && !closed_) {
      local_status_ = 408;  // the body stalled for client_read_timeout
      co_return result::failed;
    }
  }
}

response_body_plan h2_session::stream::start_response(const http::message_head& rh,
                                                      http::body_framing framing, bool no_body) {
  std::vector<http::h2_field_ref>& fields = s_.fields_;  // the session's, capacity reused
  fields.clear();
  const bool keep_length =
      framing == http::body_framing::content_length && rh.status != 204 && rh.status != 304;
  for (const http::header_field& f : rh.headers) {
    if (http::is_hop_by_hop(rh, f.name) ||
        (!keep_length && http::iequals(f.name, "content-length"))) {
      continue;
    }
    fields.push_back(http::h2_field_ref{f.name, f.value});  // values trimmed by the parser
  }
  response_started_ = true;
  response_ended_ = no_body;
  if (s_.codec_.submit_response(id_, rh.status, std::span<const http::h2_field_ref>(fields),
                                no_body) != http::h2_result::ok) {
    closed_ = true;
  }
  s_.flush();
  out_.clear();
  return response_body_plan{&out_, http::body_framing::none};
}

void h2_session::stream::trailers(const std::vector<http::trailer_field>& fields) {
  response_trailers_.clear();
  for (const http::trailer_field& f : fields) {
    response_trailers_.push_back(http::h2_field{f.name, f.value});
  }
}

asio::awaitable<bool> h2_session::stream::send(bool end) {
  const auto timeout = s_.conn_.snap().opts.limits.client_write_timeout;
  std::size_t off = 0;
  steady::time_point deadline = steady::now() + timeout;
  while (off < out_.size()) {
    if (closed_) {
      co_return false;
    }
    const http::h2_write_result w = s_.codec_.write_body(
        id_, std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(out_.data()) + off,
                                           out_.size() - off));
    if (w.result != http::h2_result::ok) {
      co_return false;
    }
    if (w.accepted > 0) {
      off += w.accepted;
      deadline = steady::now() + timeout;
      s_.flush();
      continue;
    }
    // The stream's buffer is full: wait for the writer to drain it or the client's window.
    if (!co_await wake_.wait(deadline) && !closed_) {
      const auto since = s_.codec_.blocked_since_ms(id_);
      const std::int64_t now_ms = core::real_clock::instance().now_ms();
      if (since && now_ms - *since >= timeout.count()) {
        s_.conn_.listener().client_write_timeouts->inc();
        spdlog::debug("{}: stream {} cut: the client's window stayed shut for {} ms",
                      s_.conn_.peer(), id_, timeout.count());
        reset(http::h2_cancel);
        co_return false;
      }
      deadline =
          steady::now() + timeout;  // not the client's window: the socket write has its bound
    }
  }
  out_.clear();
  if (end && !response_ended_) {
    response_ended_ = true;
    if (s_.codec_.end_response(id_, response_trailers_) != http::h2_result::ok) {
      co_return false;
    }
    s_.flush();
  }
  co_return true;
}

void h2_session::stream::finish(const exchange_result& r) {
  if (!closed_) {
    if (r.what == exchange_result::kind::relayed && r.complete) {
      if (!response_ended_) {
        response_ended_ = true;
        s_.codec_.end_response(id_, response_trailers_);
        s_.flush();
      }
    } else {
      rec_.aborted = true;
      reset(r.what == exchange_result::kind::relayed ? http::h2_internal_error : http::h2_cancel);
    }
  } else if (close_code_ != http::h2_no_error || !response_ended_) {
    rec_.aborted = true;
  }
  s_.conn_.record_request(rec_, rec_.status);
}

void h2_session::stream::reset(std::uint32_t code) {
  if (closed_ || reset_by_us_) {
    return;
  }
  reset_by_us_ = true;
  s_.conn_.metrics().h2_resets[1]->inc();
  s_.codec_.reset_stream(id_, code);
  s_.flush();
}

asio::awaitable<void> h2_session::stream::respond_local(int status) {
  rec_.status = status;
  s_.conn_.metrics().local_responses[status / 100]->inc();
  if (!closed_ && !response_started_) {
    const std::string_view body = http::error_body(status);
    char len[24];
    auto r = std::to_chars(len, len + sizeof len, body.size());
    const http::h2_field fields[] = {{"content-type", "text/plain"},
                                     {"content-length", std::string(len, r.ptr)}};
    response_started_ = true;
    out_.assign(body);
    if (s_.codec_.submit_response(id_, status, fields, false) == http::h2_result::ok &&
        co_await send(true)) {
      rec_.bytes_sent = body.size();
    } else {
      rec_.aborted = true;
    }
  } else {
    rec_.aborted = true;
  }
  s_.conn_.record_request(rec_, status);
}

}  // namespace tlsfront::proxy
