// proxy/exchange.h — one request's stages with a backend, shared by the protocol sessions
// (http1_session today, an h2 session per stream next): choose a server of the route's pool and
// retry, take a pooled keep-alive backend connection or connect, send the request head and body
// (100-continue), read the response head (interim responses dropped, 101 handed to the session),
// stream the response, return the backend connection to the worker's idle cache or drop it on
// any doubt, and count the request (pool status classes, reuse, retries, backend errors and
// timeouts, passive health).
//
// The exchange never touches the client's connection. It reaches the client through two small
// interfaces the session implements: a request_body_source (the body bytes still to come, framed
// for the backend) and a response_sink (what goes back: 100 Continue, the response head, body
// bytes, the end). How a protocol session drives an exchange:
//
//   1. It parses a request head, routes it, and builds backend_request::prefix: the head for the
//      backend (http::build_backend_request: X-Forwarded-*, framing) followed by whatever body
//      bytes it already holds, framed, so head and first body bytes leave in one write. It sets
//      `whole` when the prefix is the whole request (then the source is never asked).
//   2. It calls run(rec, req, source, sink) and awaits the outcome. Meanwhile the exchange calls:
//        sink.send_continue()       once, before the first body byte is asked for, if the
//                                   request expects 100-continue;
//        source.next_body(out)      until it says end (or failed: the session keeps why);
//        sink.start_response(...)   once, with the final response head: the sink writes the
//                                   client's head into its buffer and chooses the body framing;
//        sink.trailers(fields)      a chunked response's trailer fields, if it had any, once
//                                   the response is complete (before its send(true), if one
//                                   is still due);
//        sink.send(end)             each time the buffer should go out (about 8 KiB, the end, or
//                                   when nothing more is buffered from the backend); `end` marks
//                                   the response's last bytes, so an HTTP/1.1 sink closing the
//                                   connection writes them with close_notify and FIN
//                                   (tls::stream::write_last()); an h2 sink ends the stream;
//        sink.switch_protocols(...) on a 101 to a request that asked for an upgrade: the sink
//                                   answers 101 and runs the tunnel over the backend link.
//      Calls are per chunk, never per byte; the buffers are the session's and the exchange's
//      own, reused for every request (no allocation, no copy on the keep-alive path).
//   3. On `relayed` the response (or tunnel) is done: the session logs it and goes on or closes
//      (`complete` false: close). On `no_response` nothing reached the client and it answers
//      `status` itself (502/503/504). On `client_failed` the client side broke (the source or
//      sink said so): the session answers what its source recorded (408/400/413) or just closes.
//
// Thread-safety: none; an exchange lives on its connection's worker thread. Ownership: owns the
// backend link (socket, buffer, watchdog) and the response parser, reused across requests (one
// exchange per HTTP/1.1 connection; one per stream for HTTP/2). Borrows the session's buffers
// through the interfaces for the call only.
// Failure: never throws; every backend failure ends in a status for the client and a counter.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http/message_parser.h"
#include "proxy/backend_link.h"
#include "proxy/connection.h"
#include "proxy/worker.h"

namespace tlsfront::proxy {

// The body bytes of the request still to come from the client.
class request_body_source {
 public:
  enum class result { more, end, failed };
  // Appends the next body bytes, framed for the backend (chunked framing ends with the last chunk
  // and the trailers), to `out`, waiting for the client if nothing is buffered; `out` may stay
  // empty on `more`. `failed`: the client went away, timed out, sent a bad body or too much; the
  // source keeps what to answer.
  virtual asio::awaitable<result> next_body(std::string& out) = 0;
  // Body bytes received from the client so far (for the access log).
  virtual std::uint64_t body_bytes() const = 0;

 protected:
  ~request_body_source() = default;
};

// Where the response goes.
struct response_body_plan {
  std::string* out = nullptr;  // the sink's buffer: the client's head is in it, body bytes follow
  http::body_framing framing = http::body_framing::none;  // how body bytes are framed into `out`
};

class response_sink {
 public:
  // A 100 Continue for a client that asked (Expect: 100-continue). False: the client is gone.
  virtual asio::awaitable<bool> send_continue() = 0;
  // The final response head. `framing` is how the backend frames its body (chunked for a body
  // until close); `no_body`: the response has none (HEAD, 204, 304). The sink puts the client's
  // head into its buffer and says how body bytes must be framed after it.
  virtual response_body_plan start_response(const http::message_head& head,
                                            http::body_framing framing, bool no_body) = 0;
  // Sends the buffer (and empties it). `end`: these are the response's last bytes. False: the
  // client is gone or took nothing for client_write_timeout.
  virtual asio::awaitable<bool> send(bool end) = 0;
  // The trailer fields of a chunked response, before the send(true) that ends it (only when it
  // had some). An HTTP/1.1 sink drops them (its chunked framing ends the body without them); an
  // HTTP/2 sink sends them as the stream's trailing HEADERS.
  virtual void trailers(const std::vector<http::trailer_field>& fields) = 0;
  // A 101 to a request that asked to upgrade to `protocol`: the sink answers it and relays both
  // ways over `backend` until done (tunnel.h), filling rec's byte counts and `aborted`.
  virtual asio::awaitable<void> switch_protocols(const http::message_head& head,
                                                 std::string_view protocol, backend_link& backend,
                                                 request_record& rec) = 0;
  // 0-RTT: returns once the client's handshake is complete (at once if it is). False: the
  // client went away first. The exchange calls it before retrying a request a backend answered
  // 425 (Too Early) to.
  virtual asio::awaitable<bool> wait_for_handshake() = 0;

 protected:
  ~response_sink() = default;
};

// One request as the session hands it over.
struct backend_request {
  int pool = -1;                        // the route's pool, index in the snapshot
  const std::string* prefix = nullptr;  // head for the backend + the body bytes that came with it
  bool whole = false;                   // `prefix` is the whole request
  bool has_body = false;                // the request has a body (content-length > 0 or chunked)
  bool idempotent = false;              // may be retried on another server once sent
  bool head_method = false;             // HEAD: the response has no body whatever its head says
  bool expect_continue = false;         // the client waits for 100 Continue before its body
  std::string_view upgrade;             // the protocol asked of the backend ("websocket"), or empty
  // The client connection's session handle (0: none). A final response carrying `logout_header`
  // revokes it; that field and `session_header` never reach the client.
  std::uint64_t session_handle = 0;
  std::string_view session_header;
  std::string_view logout_header;
  // Forwarded before the client's handshake completed (its prefix says Early-Data: 1; it has no
  // body). A 425 (Too Early) to it never reaches the client: the exchange waits for the
  // handshake and sends `late_prefix` (the same request without Early-Data) once, as RFC 8470
  // §5.2 lets an intermediary do for a request the client did not send as early itself.
  bool early = false;
  const std::string* late_prefix = nullptr;
};

struct exchange_result {
  enum class kind { relayed, no_response, client_failed };
  kind what = kind::no_response;
  int status = 0;         // relayed: the backend's status; no_response: what to answer
  bool complete = false;  // relayed: the whole response (or tunnel) ended cleanly
};

class exchange {
 public:
  // `snap`: the configuration the connection was accepted under (its limits size the response
  // parser).
  exchange(worker& w, const snapshot& snap);
  exchange(const exchange&) = delete;
  exchange& operator=(const exchange&) = delete;

  // Runs the request through its pool until a response was relayed or every attempt failed.
  // Fills rec.server, status, bytes and `aborted`.
  asio::awaitable<exchange_result> run(request_record& rec, const backend_request& req,
                                       request_body_source& source, response_sink& sink);
  // The client no longer wants the response (an HTTP/2 stream reset or its connection gone):
  // a wait on the backend ends now and run() returns client_failed, with nothing counted
  // against the backend. A connect in progress runs to its end (bounded by connect_timeout).
  // Before run(): run() sends nothing. For good: an exchange that was aborted stays so.
  void abort();
  // Before the exchange serves another request after an abort(): clears it.
  void reset() { aborted_ = false; }

 private:
  struct attempt;
  enum class step { ok, retry, fail, client_failed };

  // A pooled connection to the attempt's server, or a new one.
  asio::awaitable<exchange_result> run_attempts(request_record& rec, const backend_request& req,
                                                request_body_source& source, response_sink& sink);
  asio::awaitable<bool> acquire(attempt& a);
  // The request head and body. retry: a stale pooled connection, fail: 502/504 set.
  asio::awaitable<step> send_request(attempt& a);
  asio::awaitable<step> stream_body(attempt& a);
  // Up to the final response head (interim responses dropped).
  asio::awaitable<step> read_response_head(attempt& a);
  // The response body to the sink; then the backend connection is returned or dropped.
  asio::awaitable<exchange_result> stream_response(attempt& a);
  asio::awaitable<exchange_result> switched(attempt& a);
  // The final head's session-handle fields: removed; a logout revokes the request's handle.
  void take_session_fields(const backend_request& req);
  // True when the backend broke before anything reached the client (then 502 is answered).
  asio::awaitable<bool> relay_body(attempt& a, response_body_plan plan, bool& complete,
                                   bool& client_ok);
  http::message_parser::status feed_response();
  void reset_response(const attempt& a);

  worker& worker_;
  const snapshot& snap_;
  backend_link backend_;
  http::message_parser response_;
  std::string out_;  // request body bytes framed for the backend
  bool aborted_ = false;
  bool connecting_ = false;
  bool too_early_ = false;  // run_attempts(): an early request got 425 (nothing was relayed)
};

}  // namespace tlsfront::proxy
