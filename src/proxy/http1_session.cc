#include "proxy/http1_session.h"

#include <algorithm>

#include "http/error_response.h"
#include "http/header_rewrite.h"
#include "http/path_normalize.h"
#include "log/logging.h"
#include "proxy/tunnel.h"

namespace tlsfront::proxy {

http1_session::http1_session(connection& c)
    : conn_(c),
      request_(http::message_parser::kind::request,
               {c.snap().opts.limits.max_header_bytes, c.snap().opts.limits.max_header_count}),
      exchange_(c.owner(), c.snap()) {}

void http1_session::on_drain() {
  // Only a keep-alive connection between requests is closed at once. One still waiting for its
  // first request was just accepted: that request may be on the wire, and closing would throw
  // it away (the client sees the connection end unanswered); it is served, with
  // `Connection: close`, or meets the read timeout.
  if (idle_ && requests_ > 1) {
    boost::system::error_code ec;
    conn_.tls().socket().cancel(ec);
  }
}

// An earlier form of run() and send(), with the co_await inside the while or if condition, built
// with GCC 12.2 (Debian 12) into coroutines that crashed on their first resume (`this` read from
// the wrong frame offset). The cause was not pinned down: the same pattern works elsewhere in
// this file. Keeping each co_await's result in a named variable first made the crash go away.
asio::awaitable<void> http1_session::run() {
  outcome o = outcome::keep_alive;
  while (!closing_ && o == outcome::keep_alive) {
    o = co_await serve_request();
  }
}

asio::awaitable<bool> http1_session::read_client(bool idle) {
  const auto& limits = conn_.snap().opts.limits;
  std::chrono::steady_clock::duration wait =
      idle ? limits.client_idle_timeout : limits.client_read_timeout;
  if (!idle && head_deadline_ != std::chrono::steady_clock::time_point::max()) {
    wait = std::min(wait, head_deadline_ - std::chrono::steady_clock::now());
    if (wait <= std::chrono::steady_clock::duration::zero()) {
      wait = std::chrono::milliseconds(1);  // due now: the watchdog fires at once
    }
  }
  co_return co_await conn_.read_client(wait);
}

http::message_parser::status http1_session::feed_request() {
  read_buffer& in = conn_.in();
  std::size_t consumed = 0;
  auto st = request_.feed(in.unread(), consumed);
  in.begin += consumed;
  return st;
}

int http1_session::status_for(http::parse_error e) {
  switch (e) {
    case http::parse_error::header_too_large:
      return 431;
    case http::parse_error::not_implemented:
      return 501;
    default:
      return 400;
  }
}

asio::awaitable<http1_session::outcome> http1_session::respond_local(int status, bool keep_alive,
                                                                     request_record& rec) {
  rec.status = status;
  std::string_view r = http::error_response(status, keep_alive);
  bool will_keep = keep_alive && r.find("Connection: close") == std::string_view::npos;
  to_client_.assign(r);
  bool ok = co_await conn_.write_client(to_client_, !will_keep);
  // Its body went out whole, or (write failed) nothing is known to have.
  rec.bytes_sent = ok ? r.size() - (r.find("\r\n\r\n") + 4) : 0;
  rec.aborted = !ok;
  conn_.metrics().local_responses[status / 100]->inc();
  conn_.record_request(rec, status);
  if (!ok || !will_keep) {
    closing_ = true;
    if (ok) {
      co_await conn_.linger();
    }
    co_return outcome::close;
  }
  co_return outcome::keep_alive;
}

asio::awaitable<std::optional<http1_session::outcome>> http1_session::read_head(
    request_record& rec) {
  for (;;) {
    if (conn_.in().empty()) {
      bool was_idle = idle_;
      if (!co_await read_client(was_idle)) {
        if (was_idle || !conn_.client_wd().fired()) {
          co_return outcome::close;  // closed between requests, or went away mid-head
        }
        co_return co_await respond_local(408, false, rec);
      }
      if (conn_.in().empty()) {
        continue;  // 0-RTT: the handshake completed, no request byte came (still idle)
      }
      if (idle_) {
        idle_ = false;
        rec.start = std::chrono::steady_clock::now();
        // The whole head must arrive within client_read_timeout of its first byte, however
        // slowly it trickles in (slowloris).
        head_deadline_ = rec.start + conn_.snap().opts.limits.client_read_timeout;
      }
    }
    auto st = feed_request();
    if (st == http::message_parser::status::head_done) {
      co_return std::nullopt;
    }
    if (st == http::message_parser::status::error) {
      conn_.metrics().bad_requests->inc();
      spdlog::debug("{}: bad request: {}", conn_.peer(), request_.error_reason());
      co_return co_await respond_local(status_for(request_.error()), false, rec);
    }
  }
}

asio::awaitable<http1_session::outcome> http1_session::serve_request() {
  request_record rec;
  request_.reset_for_next();
  idle_ = conn_.in().empty();
  if (idle_ && conn_.draining() && requests_ > 0) {
    co_return outcome::close;  // between requests while draining; a first request is served
  }
  ++requests_;
  const std::optional<outcome> ended = co_await read_head(rec);
  if (ended) {
    co_return *ended;
  }
  idle_ = false;
  head_deadline_ = std::chrono::steady_clock::time_point::max();
  const http::message_head& h = request_.head();
  rec.method.assign(h.method);
  rec.path.assign(h.target);
  const bool request_has_body = h.chunked || h.content_length.value_or(0) > 0;
  const bool keep_alive = h.keep_alive && h.version_minor == 1 && !conn_.draining();

  // Routing and the backend see the normalized path; a path that cannot be normalized safely
  // (climbs above the root, encoded slash, bad escape, NUL) is refused.
  target_.clear();
  if (h.target == "*") {
    target_.assign(h.target);
  } else if (http::path_error pe = http::normalize_target(
                 h.target, http::path_options{conn_.listener().opts.allow_encoded_slashes},
                 target_);
             pe != http::path_error::none) {
    conn_.metrics().bad_requests->inc();
    spdlog::debug("{}: bad request path: {}", conn_.peer(), http::describe(pe));
    co_return co_await respond_local(400, false, rec);
  }
  // An HTTP/1.0 request may lack Host: route it (and name it to the backend) by its SNI name.
  const router::target* route = conn_.snap().routes->match(
      h.host.empty() ? std::string_view(conn_.tls().info().server_name) : h.host, target_);
  if (route == nullptr) {
    co_return co_await respond_local(404, keep_alive && !request_has_body, rec);
  }
  rec.pool = route->pool;
  const std::uint64_t max_body = conn_.snap().opts.limits.max_body_bytes;
  if (max_body > 0 && h.content_length.value_or(0) > max_body) {
    co_return co_await respond_local(413, false, rec);
  }
  const outcome o = co_await forward(rec, *route, keep_alive);
  co_return closing_ || !keep_alive ? outcome::close : o;
}

asio::awaitable<http1_session::outcome> http1_session::forward(request_record& rec,
                                                               const router::target& route,
                                                               bool keep_alive) {
  const http::message_head& h = request_.head();
  const std::uint64_t max_body = conn_.snap().opts.limits.max_body_bytes;
  upgrade_ = upgrade_for(h, route);
  request_framing_ = h.chunked ? http::body_framing::chunked
                               : (h.content_length ? http::body_framing::content_length
                                                   : http::body_framing::none);
  backend_request req;
  req.pool = route.pool;
  req.prefix = &prefix_;
  req.has_body = h.chunked || h.content_length.value_or(0) > 0;
  req.idempotent = http::is_idempotent(h.method);
  req.head_method = h.method == "HEAD";
  req.expect_continue = h.expect_continue && h.version_minor == 1;
  req.upgrade = upgrade_;

  // 0-RTT: a request that may not go early waits for the handshake (RFC 8470 §5.1); one that
  // goes early has a second head ready, without Early-Data, for a retry after a 425.
  switch (conn_.plan_early(route, h.method, req.has_body || !upgrade_.empty())) {
    case connection::early_plan::confirmed:
      break;
    case connection::early_plan::early:
      req.early = true;
      break;
    case connection::early_plan::wait:
      break;
  }
  if (!req.early && conn_.tls().in_early_data()) {
    const bool confirmed = co_await conn_.wait_for_handshake();
    if (!confirmed) {
      closing_ = true;
      co_return outcome::close;
    }
  }

  // The head for the backend, then whatever body bytes already arrived with it, parsed before
  // any backend is touched: a malformed body that came in the same read never reaches one.
  prefix_.clear();  // a member: its capacity serves every request
  http::forwarded_info fwd{conn_.peer_ip(), "https", conn_.tls().info().server_name,
                           upgrade_,        target_, conn_.listener().opts.drop_client_headers};
  conn_.session_fields(route, fwd, req);
  const bool marked = conn_.trusted_peer() && h.find("early-data").has_value();
  if (req.early && !marked) {
    late_prefix_.clear();
    http::build_backend_request(h, fwd, request_framing_, late_prefix_);
    req.late_prefix = &late_prefix_;
  }
  fwd.early_data = fwd.early_data || req.early || marked;
  http::build_backend_request(h, fwd, request_framing_, prefix_);
  request_.set_body_output(&prefix_, request_framing_);
  const auto st = feed_request();
  if (st == http::message_parser::status::error) {
    conn_.metrics().bad_requests->inc();
    co_await respond_local(status_for(request_.error()), false, rec);
    co_return outcome::close;
  }
  if (max_body > 0 && request_.body_bytes() > max_body) {
    co_await respond_local(413, false, rec);
    co_return outcome::close;
  }
  req.whole = st == http::message_parser::status::message_done;

  local_status_ = 0;
  const exchange_result r = co_await exchange_.run(rec, req, *this, *this);
  request_.set_body_output(nullptr, http::body_framing::none);
  switch (r.what) {
    case exchange_result::kind::relayed:
      conn_.record_request(rec, r.status);
      if (!r.complete || close_client_ || r.status == 101) {
        closing_ = true;
      }
      co_return closing_ ? outcome::close : outcome::keep_alive;
    case exchange_result::kind::client_failed:
      if (local_status_ != 0) {
        co_await respond_local(local_status_, false, rec);
      }
      closing_ = true;
      co_return outcome::close;
    case exchange_result::kind::no_response:
      break;
  }
  // The client's connection stays usable only if its whole request was read.
  const bool keep = (req.whole || !req.has_body) && keep_alive && !conn_.draining();
  co_return co_await respond_local(r.status, keep, rec);
}

std::string http1_session::upgrade_for(const http::message_head& h, const router::target& route) {
  // An upgrade is a GET/1.1 with "Connection: upgrade" and an Upgrade protocol the route
  // allows. h2c is never one: HTTP/2 over TLS is negotiated by ALPN (RFC 9113 section 3.2).
  // Anything else is dropped from the request, which then goes on as a plain one.
  if (!h.upgrade || h.method != "GET" || h.version_minor != 1 ||
      !http::names_in_connection(h, "upgrade")) {
    return {};
  }
  for (const http::header_field& f : h.headers) {
    if (!http::iequals(f.name, "upgrade")) {
      continue;
    }
    for (const std::string& protocol : http::header_tokens(f.value)) {
      if (protocol != "h2c" && std::find(route.upgrades.begin(), route.upgrades.end(), protocol) !=
                                   route.upgrades.end()) {
        return protocol;
      }
    }
  }
  return {};
}

// --- request_body_source ---

asio::awaitable<request_body_source::result> http1_session::next_body(std::string& out) {
  if (conn_.in().empty() && !co_await read_client(false)) {
    if (conn_.client_wd().fired()) {
      local_status_ = 408;
    }
    co_return result::failed;  // the client went away (or stalled) mid-body
  }
  request_.set_body_output(&out, request_framing_);
  const auto st = feed_request();
  if (st == http::message_parser::status::error) {
    conn_.metrics().bad_requests->inc();
    local_status_ = status_for(request_.error());
    co_return result::failed;
  }
  const std::uint64_t max_body = conn_.snap().opts.limits.max_body_bytes;
  if (max_body > 0 && request_.body_bytes() > max_body) {
    local_status_ = 413;
    co_return result::failed;
  }
  co_return st == http::message_parser::status::message_done ? result::end : result::more;
}

// --- response_sink ---

asio::awaitable<bool> http1_session::wait_for_handshake() {
  co_return co_await conn_.wait_for_handshake();
}

asio::awaitable<bool> http1_session::send_continue() {
  to_client_.assign(http::continue_response());
  co_return co_await conn_.write_client(to_client_);
}

response_body_plan http1_session::start_response(const http::message_head& rh,
                                                 http::body_framing framing, bool no_body) {
  const http::message_head& h = request_.head();
  http::body_framing head_framing = framing;
  http::body_framing body_framing = no_body ? http::body_framing::none : framing;
  if (no_body && (rh.status == 204 || rh.status == 304)) {
    head_framing = http::body_framing::none;
  }
  close_client_ = !h.keep_alive || h.version_minor == 0 || conn_.draining();
  if (h.version_minor == 0 && head_framing == http::body_framing::chunked) {
    // HTTP/1.0 has no chunked coding: the body ends when tlsfront closes the connection.
    head_framing = body_framing = http::body_framing::none;
  }
  to_client_.clear();
  http::build_client_response(rh, head_framing, close_client_, to_client_);
  return response_body_plan{&to_client_, body_framing};
}

asio::awaitable<bool> http1_session::send(bool end) {
  const bool ok = co_await conn_.write_client(to_client_, end && close_client_);
  if (ok) {
    to_client_.clear();
  }
  co_return ok;
}

asio::awaitable<void> http1_session::switch_protocols(const http::message_head& uh,
                                                      std::string_view protocol,
                                                      backend_link& backend, request_record& rec) {
  to_client_.clear();
  http::build_client_response(uh, http::body_framing::none, false, to_client_,
                              uh.find("upgrade").value_or(protocol));
  rec.aborted = true;
  if (co_await conn_.write_client(to_client_)) {
    const pool_options& po = conn_.snap().pools[static_cast<std::size_t>(rec.pool)]->options();
    tunnel t(conn_, backend, po.read_timeout);
    rec.aborted = !co_await t.run();
    rec.bytes_received = t.to_backend();
    rec.bytes_sent = t.to_client();
  }
}

}  // namespace tlsfront::proxy
