// proxy/http1_session.h — HTTP/1.1 (and 1.0) on one client connection: requests one after the
// other (keep-alive, pipelined bytes kept for the next request), each head parsed and checked
// (limits, path normalization), routed, and forwarded through the connection's exchange; answers
// tlsfront generates itself (400/404/408/413/431/501/502/503/504), the client-side timeouts
// (idle between requests, whole head within client_read_timeout of its first byte, body reads),
// and upgrades (a 101 from the backend turns the connection into a tunnel). It is the exchange's
// request_body_source and response_sink (exchange.h).
//
// Thread-safety: none; lives in its connection's coroutine frame on the worker thread.
// Ownership: owns the request parser, the exchange (backend side) and the buffers reused by every
// request; borrows the connection. Failure: never throws; a broken client or backend ends the
// request with a proxy-generated response where one can still be sent, bumps a counter and
// closes.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "http/message_parser.h"
#include "proxy/connection.h"
#include "proxy/exchange.h"
#include "proxy/router.h"

namespace tlsfront::proxy {

class http1_session final : public request_body_source, public response_sink, public drain_hook {
 public:
  explicit http1_session(connection& c);

  // Serves requests until the connection closes.
  asio::awaitable<void> run();
  // Draining: an idle keep-alive connection closes now; a busy one after its response.
  void on_drain() override;

  // request_body_source
  asio::awaitable<result> next_body(std::string& out) override;
  std::uint64_t body_bytes() const override { return request_.body_bytes(); }
  // response_sink
  asio::awaitable<bool> send_continue() override;
  response_body_plan start_response(const http::message_head& head, http::body_framing framing,
                                    bool no_body) override;
  asio::awaitable<bool> send(bool end) override;
  // Dropped: the chunked framing already ended the body without them, as before HTTP/2.
  void trailers(const std::vector<http::trailer_field>& /*fields*/) override {}
  asio::awaitable<void> switch_protocols(const http::message_head& head, std::string_view protocol,
                                         backend_link& backend, request_record& rec) override;
  // Reads on (what arrives is kept in the connection's buffer) until the handshake completes.
  asio::awaitable<bool> wait_for_handshake() override;

 private:
  enum class outcome { keep_alive, close };

  asio::awaitable<outcome> serve_request();
  // Reads until the request head is parsed. A value: the request ended there (answered or gone).
  asio::awaitable<std::optional<outcome>> read_head(request_record& rec);
  // Builds the backend request and runs the exchange; answers its failures.
  asio::awaitable<outcome> forward(request_record& rec, const router::target& route,
                                   bool keep_alive);
  asio::awaitable<bool> read_client(bool idle);
  asio::awaitable<outcome> respond_local(int status, bool keep_alive, request_record& rec);
  // The protocol this request may be upgraded to on this route ("" for none).
  static std::string upgrade_for(const http::message_head& h, const router::target& route);
  static int status_for(http::parse_error e);
  // Feeds the buffered client bytes to the request parser and consumes what it used.
  http::message_parser::status feed_request();

  connection& conn_;
  http::message_parser request_;
  exchange exchange_;
  std::string prefix_;  // the request head for the backend, and the body bytes that came with it
  std::string late_prefix_;  // an early request's head without Early-Data (a retry after 425)
  std::string target_;     // the request target routed and forwarded: normalized (path_normalize.h)
  std::string upgrade_;    // the protocol asked of the backend ("websocket"), or empty
  std::string to_client_;  // bytes framed for the client
  http::body_framing request_framing_ = http::body_framing::none;
  int local_status_ = 0;       // what to answer when the body source failed (0: nothing)
  bool close_client_ = false;  // the response being sent is the connection's last
  bool idle_ = false;          // waiting for the first byte of a request (between requests)
  std::uint64_t requests_ = 0;
  std::chrono::steady_clock::time_point head_deadline_ =
      std::chrono::steady_clock::time_point::max();
  bool closing_ = false;
};

}  // namespace tlsfront::proxy
