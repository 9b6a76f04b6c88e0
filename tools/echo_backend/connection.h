// One client connection of tlsfront-echo-backend: reads HTTP/1.1 requests with llhttp (keep-alive,
// pipelining, chunked and Content-Length bodies, Expect: 100-continue) and answers each according
// to its route (see route.h).
//
// Thread-safety: a connection lives in one coroutine on one io_context thread and is never
// touched from another. Ownership: serve_connection() owns the connection (in its coroutine
// frame) until the peer goes away or the connection is closed; the stats outlive it.
// Errors are values: nothing here throws on the data path; a failed read or write closes the
// connection.
#pragma once

#include <llhttp.h>

#include <boost/asio.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "echo_backend/route.h"
#include "echo_backend/stats.h"

namespace tlsfront::echo_backend {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

// Serves `socket` until it closes. Counts the connection and its requests in `own`; /__stats
// reports the sums over `all`.
asio::awaitable<void> serve_connection(tcp::socket socket, worker_stats& own,
                                       const stats_registry& all);

class connection {
 public:
  connection(tcp::socket socket, worker_stats& own, const stats_registry& all);
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Serves requests until the peer closes, an I/O error, a malformed request or a request that
  // asks to close. Must not be called twice.
  asio::awaitable<void> run();

 private:
  // llhttp callbacks: `parser->data` is the connection.
  static const llhttp_settings_t& parser_settings();
  static int on_message_begin(llhttp_t* parser);
  static int on_url(llhttp_t* parser, const char* at, std::size_t length);
  static int on_url_complete(llhttp_t* parser);
  static int on_header_field(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_field_complete(llhttp_t* parser);
  static int on_header_value(llhttp_t* parser, const char* at, std::size_t length);
  static int on_header_value_complete(llhttp_t* parser);
  static int on_headers_complete(llhttp_t* parser);
  static int on_body(llhttp_t* parser, const char* at, std::size_t length);
  static int on_message_complete(llhttp_t* parser);

  // Appends the response to the request that just completed to out_ when it needs no waiting;
  // returns false when the route streams, waits or hangs (respond_async() handles those).
  bool respond_now();
  asio::awaitable<bool> respond_async();
  asio::awaitable<bool> send_bytes(std::uint64_t count);
  asio::awaitable<bool> send_chunked(std::uint64_t count);

  // Appends a status line and headers (Connection header from keep_alive_/http10_) to out_.
  void append_head(unsigned status, std::string_view content_type, std::uint64_t content_length,
                   bool with_length = true, std::string_view extra_headers = {});
  // Appends a complete text/plain response (no body for HEAD).
  void append_text(unsigned status, std::string_view body);

  // Writes out_ with one async_write; false on error.
  asio::awaitable<bool> flush();
  // Reads and discards until the peer closes or an error.
  asio::awaitable<void> drain();
  // Flushes out_, half-closes, drains the peer for a short while so a pending request body does
  // not turn our last response into a reset, then closes.
  asio::awaitable<void> close_gracefully();

  tcp::socket socket_;
  asio::steady_timer timer_;
  worker_stats& own_stats_;
  const stats_registry& all_stats_;
  llhttp_t parser_;

  std::unique_ptr<char[]> read_buffer_;
  std::size_t read_pos_ = 0;  // first unparsed byte in read_buffer_
  std::size_t read_end_ = 0;  // end of the bytes read into read_buffer_

  std::string out_;            // responses waiting for the next flush()
  std::string target_;         // request-target of the current request
  std::string recorded_head_;  // header lines of the current request, for /headers only
  std::string body_;           // request body, for /echo only

  route route_;
  bool url_done_ = false;
  bool in_head_ = false;    // false once the headers are complete (skips trailers)
  bool head_only_ = false;  // HEAD request: responses carry no body
  bool http10_ = false;
  bool keep_alive_ = true;
  bool expect_continue_ = false;
  bool early_data_ = false;  // the request carried an Early-Data field (/too-early)
  bool records_head() const {
    return route_.kind == route_kind::headers || route_.kind == route_kind::too_early;
  }
  bool too_large_ = false;  // /echo body over the limit: 413
  char field_[16] = {};     // current header name, its first bytes (to spot Expect, Early-Data)
  std::size_t field_length_ = 0;
  char value_[16] = {};  // current header value, only its first bytes
  std::size_t value_length_ = 0;
  std::uint64_t sink_bytes_ = 0;
  std::uint64_t sink_hash_ = 0;
};

}  // namespace tlsfront::echo_backend
