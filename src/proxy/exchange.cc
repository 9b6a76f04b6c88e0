#include "proxy/exchange.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "log/logging.h"
#include "log/rate_limit.h"

namespace tlsfront::proxy {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t flush_bytes = 8192;  // response bytes gathered before a write to the client

}  // namespace

// The state of one run(): the request, its pool, and the attempt on the current server.
struct exchange::attempt {
  request_record& rec;
  const backend_request& req;
  request_body_source& source;
  response_sink& sink;
  backend_pool& pool;
  idle_cache& cache;
  // Pooled connections go back only into the worker's current snapshot (a reload clears the
  // old one's and nothing may refill it).
  bool current_config;
  int server = -1;
  bool reused = false;
  bool continue_sent = false;
  // What the client is told if every attempt fails before a response head arrived.
  int failure_status = 502;

  const pool_options& po() const { return pool.options(); }
  backend_server& bs() const { return pool.server(static_cast<std::size_t>(server)); }
};

exchange::exchange(worker& w, const snapshot& snap)
    : worker_(w),
      snap_(snap),
      backend_(w.ioc),
      response_(http::message_parser::kind::response,
                {snap.opts.limits.max_header_bytes * 4, snap.opts.limits.max_header_count * 2}) {}

http::message_parser::status exchange::feed_response() {
  read_buffer& bin = backend_.in();
  std::size_t consumed = 0;
  auto st = response_.feed(bin.unread(), consumed);
  bin.begin += consumed;
  return st;
}

void exchange::reset_response(const attempt& a) {
  response_.reset_for_next();
  response_.set_no_body_expected(a.req.head_method);
  response_.set_upgrade_expected(!a.req.upgrade.empty());
}

asio::awaitable<exchange_result> exchange::run(request_record& rec, const backend_request& req,
                                               request_body_source& source, response_sink& sink) {
  too_early_ = false;
  rec.early = req.early;
  exchange_result r = co_await run_attempts(rec, req, source, sink);
  if (!too_early_) {
    co_return r;
  }
  // 425 to a request sent in early data: once more, after the handshake, without Early-Data.
  too_early_ = false;
  const bool confirmed = co_await sink.wait_for_handshake();
  if (!confirmed || aborted_) {
    co_return exchange_result{exchange_result::kind::client_failed, 0, false};
  }
  worker_.server.metrics->early_retries->inc();
  rec.server = -1;
  backend_request late = req;
  late.early = false;
  late.prefix = req.late_prefix;
  late.late_prefix = nullptr;
  rec.early = false;
  co_return co_await run_attempts(rec, late, source, sink);
}

asio::awaitable<exchange_result> exchange::run_attempts(request_record& rec,
                                                        const backend_request& req,
                                                        request_body_source& source,
                                                        response_sink& sink) {
  backend_pool& pool = *snap_.pools[static_cast<std::size_t>(req.pool)];
  attempt a{rec,
            req,
            source,
            sink,
            pool,
            snap_.idle[worker_.index][static_cast<std::size_t>(req.pool)],
            worker_.snap.get() == &snap_};
  std::uint64_t tried = 0;
  int attempts_left = 1 + std::max(0, pool.options().retries);
  while (attempts_left-- > 0) {
    const int si = pool.pick(tried);
    if (si < 0) {
      break;
    }
    if (tried != 0) {
      pool.stats().retries->inc();  // a second (or later) attempt really starts
    }
    tried |= std::uint64_t{1} << si;
    rec.server = a.server = si;
    if (!co_await acquire(a)) {
      if (aborted_) {
        break;
      }
      continue;  // nothing was sent: any request may go to the next server
    }
    a.bs().active.fetch_add(1, std::memory_order_relaxed);
    struct active_guard {
      backend_server& s;
      ~active_guard() { s.active.fetch_sub(1, std::memory_order_relaxed); }
    } guard{a.bs()};

    step s = co_await send_request(a);
    if (s == step::ok) {
      s = co_await read_response_head(a);
    }
    if (s == step::client_failed || aborted_) {
      backend_.drop();
      co_return exchange_result{exchange_result::kind::client_failed, 0, false};
    }
    if (s == step::retry) {
      ++attempts_left;  // a stale pooled connection does not use up an attempt
      tried &= ~(std::uint64_t{1} << si);
      continue;
    }
    if (s == step::fail) {
      break;
    }
    pool.note_success(static_cast<std::size_t>(si));
    if (req.early && req.late_prefix != nullptr && response_.head().status == 425) {
      backend_.drop();  // its body is not wanted: the request goes again after the handshake
      too_early_ = true;
      co_return exchange_result{exchange_result::kind::no_response, 425, false};
    }
    take_session_fields(req);
    if (response_.head().status == 101) {
      co_return co_await switched(a);
    }
    exchange_result r = co_await stream_response(a);
    if (r.what != exchange_result::kind::no_response) {
      co_return r;
    }
    break;  // the response broke before anything of it reached the client
  }
  if (aborted_) {
    backend_.drop();
    co_return exchange_result{exchange_result::kind::client_failed, 0, false};
  }
  // Every attempt failed before a response head: the session answers.
  if (tried == 0 && rec.server < 0) {
    a.failure_status = 503;  // every server is cooling down
  }
  co_return exchange_result{exchange_result::kind::no_response, a.failure_status, false};
}

asio::awaitable<bool> exchange::acquire(attempt& a) {
  a.reused = a.cache.take(static_cast<std::size_t>(a.server), backend_.socket());
  if (a.reused) {
    a.pool.stats().reused->inc();
    co_return true;
  }
  connecting_ = true;
  const bool connected = co_await backend_.connect(a.pool, a.server, a.failure_status);
  connecting_ = false;
  co_return connected && !aborted_;
}

void exchange::abort() {
  aborted_ = true;
  if (!connecting_) {
    // A cancelled connect would count as the server's failure; it ends within connect_timeout.
    boost::system::error_code ignored;
    backend_.socket().cancel(ignored);
  }
}

asio::awaitable<exchange::step> exchange::send_request(attempt& a) {
  const backend_request& req = a.req;
  if (req.expect_continue && req.has_body && !a.continue_sent) {
    a.continue_sent = true;
    if (!co_await a.sink.send_continue()) {
      co_return step::client_failed;
    }
  }
  // The prefix (head + the body bytes that came with it) is kept whole until a backend took it,
  // so a write failure on a pooled connection the backend had closed can be retried.
  bool request_sent = false;
  bool stale = false;
  backend_.wd().arm(a.po().read_timeout);
  auto [prefix_ec, prefix_n] =
      co_await asio::async_write(backend_.socket(), asio::buffer(*req.prefix), use_tuple);
  backend_.wd().disarm();
  if (prefix_ec && aborted_) {
    co_return step::client_failed;
  }
  if (prefix_ec && backend_.wd().fired()) {
    worker_.server.metrics->backend_timeouts->inc();
    backend_.drop();
    a.failure_status = 504;
    co_return step::fail;
  } else if (prefix_ec) {
    stale = a.reused;
  } else if (req.whole) {
    request_sent = true;
  } else {
    const step s = co_await stream_body(a);
    if (s == step::client_failed) {
      co_return s;
    }
    request_sent = s == step::ok;
  }
  a.rec.bytes_received = a.source.body_bytes();
  if (!request_sent) {
    backend_.drop();
    if (stale && req.idempotent) {
      co_return step::retry;
    }
    worker_.server.metrics->backend_errors->inc();
    a.failure_status = 502;
    co_return step::fail;
  }
  co_return step::ok;
}

asio::awaitable<exchange::step> exchange::stream_body(attempt& a) {
  // The rest of the body, from the client as it comes.
  out_.clear();
  for (;;) {
    const request_body_source::result r = co_await a.source.next_body(out_);
    if (r == request_body_source::result::failed) {
      co_return step::client_failed;  // half a request went out: the backend is dropped
    }
    if (!out_.empty()) {
      backend_.wd().arm(a.po().read_timeout);
      auto [ec, n] = co_await asio::async_write(backend_.socket(), asio::buffer(out_), use_tuple);
      backend_.wd().disarm();
      out_.clear();
      if (ec) {
        co_return aborted_ ? step::client_failed : step::fail;
      }
    }
    if (r == request_body_source::result::end) {
      co_return step::ok;
    }
  }
}

asio::awaitable<exchange::step> exchange::read_response_head(attempt& a) {
  reset_response(a);
  read_buffer& bin = backend_.in();
  bin.clear();
  bool got_any = false;
  bool retry = false;
  backend_.wd().arm(a.po().read_timeout);
  for (;;) {
    if (bin.empty()) {
      std::size_t n = 0;
      boost::system::error_code ec = co_await backend_.read(n);
      if (ec && aborted_) {
        backend_.wd().disarm();
        backend_.drop();
        co_return step::client_failed;
      }
      if (ec) {
        if (ec == asio::error::timed_out) {
          worker_.server.metrics->backend_timeouts->inc();
          a.failure_status = 504;
        } else if (!got_any && a.reused && a.req.idempotent && a.req.whole) {
          retry = true;  // a pooled connection closed under us: the request was not seen
        } else {
          worker_.server.metrics->backend_errors->inc();
          a.failure_status = 502;
        }
        break;
      }
      got_any = true;
      backend_.wd().arm(a.po().read_timeout);
    }
    auto st = feed_response();
    if (st == http::message_parser::status::error) {
      worker_.server.metrics->backend_errors->inc();
      static log::rate_limiter bad_response_log;
      log::limited(bad_response_log, spdlog::level::warn, "pool {}: bad response from {}: {}",
                   a.po().name, a.bs().name, response_.error_reason());
      a.failure_status = 502;
      break;
    }
    if (st == http::message_parser::status::head_done) {
      const int s = response_.head().status;
      if (s >= 100 && s < 200 && s != 101) {
        // Interim response (100, 102, 103): tlsfront answered Expect itself; drop it.
        feed_response();  // completes the interim message
        reset_response(a);
        continue;
      }
      co_return step::ok;  // the watchdog stays armed for the body
    }
  }
  backend_.wd().disarm();
  backend_.drop();
  if (retry) {
    co_return step::retry;
  }
  a.pool.note_failure(static_cast<std::size_t>(a.server));
  co_return step::fail;
}

void exchange::take_session_fields(const backend_request& req) {
  // Whatever the status: a logout may come with a redirect or an error page. Both fields are
  // tlsfront's, never the client's to see.
  if (!req.logout_header.empty() && response_.erase_fields(req.logout_header) > 0 &&
      req.session_handle != 0 && worker_.server.revoker != nullptr) {
    worker_.server.revoker->revoke(req.session_handle, revocation_source::backend);
  }
  if (!req.session_header.empty()) {
    response_.erase_fields(req.session_header);
  }
}

asio::awaitable<exchange_result> exchange::switched(attempt& a) {
  // Switched (only possible when this request asked for it): the sink answers 101, then bytes
  // flow both ways untouched until both sides are done or idle too long.
  a.rec.status = 101;
  backend_.wd().disarm();
  a.rec.aborted = true;
  co_await a.sink.switch_protocols(response_.head(), a.req.upgrade, backend_, a.rec);
  backend_.drop();
  a.pool.requests(1).inc();
  co_return exchange_result{exchange_result::kind::relayed, 101, !a.rec.aborted};
}

asio::awaitable<exchange_result> exchange::stream_response(attempt& a) {
  const http::message_head& rh = response_.head();
  a.rec.status = rh.status;
  const bool no_body = a.req.head_method || rh.status == 204 || rh.status == 304;
  http::body_framing framing = http::body_framing::none;
  if (rh.chunked || response_.body_until_close()) {
    framing = http::body_framing::chunked;
  } else if (rh.content_length) {
    framing = http::body_framing::content_length;
  }
  const response_body_plan plan = a.sink.start_response(rh, framing, no_body);
  response_.set_body_output(no_body ? nullptr : plan.out, plan.framing);
  bool complete = false;
  bool client_ok = true;
  const bool bad_before_client = co_await relay_body(a, plan, complete, client_ok);
  backend_.wd().disarm();
  if (bad_before_client) {
    // The response broke (bad chunk framing, ...) before anything of it reached the client.
    spdlog::debug("pool {}: bad response body from {}: {}", a.po().name, a.bs().name,
                  response_.error_reason());
    backend_.drop();
    plan.out->clear();
    a.failure_status = 502;
    co_return exchange_result{exchange_result::kind::no_response, 502, false};
  }
  a.rec.aborted = !complete;
  if (!complete && client_ok) {
    static log::rate_limiter broke_off_log;
    log::limited(
        broke_off_log, spdlog::level::warn,
        "pool {}: response from {} broke off after {} body bytes: {}", a.po().name, a.bs().name,
        response_.body_bytes(),
        response_.error_reason().empty() ? "closed or timed out" : response_.error_reason());
  }
  const bool reusable = complete && rh.keep_alive && !response_.body_until_close() &&
                        backend_.in().empty() && rh.version_minor == 1;
  if (reusable && a.current_config) {
    a.cache.put(static_cast<std::size_t>(a.server), std::move(backend_.socket()));
  }
  backend_.drop();
  a.pool.requests(rh.status / 100 >= 1 && rh.status / 100 <= 5 ? rh.status / 100 : 5).inc();
  co_return exchange_result{exchange_result::kind::relayed, rh.status, complete};
}

asio::awaitable<bool> exchange::relay_body(attempt& a, response_body_plan plan, bool& complete,
                                           bool& client_ok) {
  const std::string& out = *plan.out;
  read_buffer& bin = backend_.in();
  bool head_written = false;  // a body error before any byte left answers 502 instead
  for (;;) {
    const auto st = feed_response();
    const bool done = st == http::message_parser::status::message_done;
    if (st == http::message_parser::status::error) {
      worker_.server.metrics->backend_errors->inc();
      co_return !head_written;
    }
    if (done && !response_.trailers().empty()) {
      a.sink.trailers(response_.trailers());
    }
    if (!out.empty() && (out.size() >= flush_bytes || done || bin.empty())) {
      head_written = true;
      if (!co_await a.sink.send(done)) {
        client_ok = false;
        co_return false;
      }
      a.rec.bytes_sent = response_.body_bytes();  // all parsed so far was in the sink's buffer
    }
    if (done) {
      complete = true;
      co_return false;
    }
    if (bin.empty()) {
      std::size_t n = 0;
      backend_.wd().arm(a.po().read_timeout);
      boost::system::error_code ec = co_await backend_.read(n);
      if (ec == asio::error::eof && response_.body_until_close()) {
        if (response_.finish() == http::message_parser::status::message_done) {
          if (!out.empty() && !co_await a.sink.send(true)) {
            client_ok = false;
          }
          complete = client_ok;
          if (client_ok) {
            a.rec.bytes_sent = response_.body_bytes();
          }
        }
        co_return false;
      }
      if (ec && aborted_) {
        client_ok = false;
        co_return false;
      }
      if (ec) {
        if (ec == asio::error::timed_out) {
          worker_.server.metrics->backend_timeouts->inc();
        } else {
          worker_.server.metrics->backend_errors->inc();
        }
        co_return false;
      }
    }
  }
}

}  // namespace tlsfront::proxy
