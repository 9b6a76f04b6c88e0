// proxy/h2_session.h — HTTP/2 on one client connection (ALPN "h2"): the codec (http/h2_codec.h)
// turns frames into requests; each stream is one request, served by its own coroutine through
// its own exchange (exchange.h) to the route's pool over the pooled HTTP/1.1 backend
// connections, many at once. Two loops carry the connection: the reader feeds decrypted bytes
// to the codec; the writer sends what the codec queues, one TLS write per batch.
//
// Per stream: the head is checked (path normalization, route, body limit, CONNECT refused)
// and built into an HTTP/1.1 request (X-Forwarded-*, :authority as Host, cookie crumbs joined
// by the codec); the body streams to the backend as it comes (Content-Length when the client
// gave one, else chunked with the client's trailers), acknowledged to the client (WINDOW_UPDATE)
// only once the exchange took it, so a stream buffers at most its window and the connection at
// most the connection window; the response streams back under the client's flow control, at
// most the codec's output buffers ahead, with the backend's chunked trailers as trailing
// HEADERS. tlsfront's own answers (400/404/408/413/501/502/503/504) are short text responses.
//
// Timeouts: a request body that stalls for client_read_timeout is answered 408; a response the
// client's window keeps blocked for client_write_timeout is reset (CANCEL); a write to the
// socket that makes no progress for client_write_timeout ends the connection; a connection with
// no stream for client_idle_timeout is closed (GOAWAY). Draining, or a reload that removes the
// listener, sends GOAWAY: streams already opened finish, newer ones are refused.
//
// Thread-safety: none; the session and its stream coroutines run on the connection's worker
// thread. Ownership: owns the codec and (through their coroutines) the streams; run() returns only
// once every stream coroutine ended. Borrows the connection.
// Failure: never throws. A client breaking the protocol or an abuse rule gets GOAWAY (counted);
// a client or backend failing one stream ends only that stream.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "http/h2_codec.h"
#include "proxy/connection.h"
#include "proxy/wakeup.h"
#include "proxy/watchdog.h"

namespace tlsfront::proxy {

class h2_session final : public http::h2_events, public drain_hook {
 public:
  explicit h2_session(connection& c);
  ~h2_session() override;  // out of line: `stream` is complete only in the .cc
  h2_session(const h2_session&) = delete;
  h2_session& operator=(const h2_session&) = delete;

  // Serves streams until the connection ends.
  asio::awaitable<void> run();
  // GOAWAY: the streams opened so far finish, then the connection closes.
  void on_drain() override;

  // http::h2_events (called from inside the codec)
  void on_request_head(std::int32_t id, http::h2_request_head head) override;
  void on_request_body(std::int32_t id, std::span<const std::uint8_t> bytes) override;
  void on_request_end(std::int32_t id, std::vector<http::h2_field> trailers) override;
  void on_stream_closed(std::int32_t id, std::uint32_t error_code) override;
  void on_output_room(std::int32_t id) override;

 private:
  class stream;
  friend class stream;

  asio::awaitable<void> read_loop();
  asio::awaitable<void> write_loop();
  // One stream's request, from its head to the end of its response; owns the stream.
  asio::awaitable<void> serve(std::unique_ptr<stream> s);
  // Spawns the coroutines of the streams whose heads the last feed() delivered.
  void start_streams();
  // The connection is over: every stream still open is told (its exchange aborted).
  void close_streams();
  void on_idle();
  // GOAWAY NO_ERROR with the last stream taken: no new stream; end once none is left.
  void close_gracefully();
  // Output was queued in the codec: the writer sends it.
  void flush() { writer_wake_.notify(); }
  stream* find(std::int32_t id);

  connection& conn_;
  http::h2_codec codec_;
  std::unordered_map<std::int32_t, stream*> streams_;  // open streams whose coroutine runs
  std::vector<std::unique_ptr<stream>> starting_;      // delivered by feed(), not yet spawned
  std::vector<std::unique_ptr<stream>> spawning_;      // the list start_streams() spawns from
  std::vector<std::unique_ptr<stream>> spare_;         // finished, kept for the next streams
  wakeup writer_wake_;
  wakeup tasks_done_;
  watchdog idle_wd_;
  watchdog drain_wd_;         // the drain's final GOAWAY, a grace period after the notice
  std::size_t tasks_ = 0;     // stream coroutines running
  bool closing_ = false;      // GOAWAY sent (drain, idle): end once no stream is left
  bool noticed_ = false;      // the drain's shutdown notice was sent
  bool done_ = false;         // the writer ended: the reader stops
  bool client_gone_ = false;  // reading or writing failed
  std::string batch_;         // codec output for one TLS write
  std::vector<http::h2_field_ref> fields_;  // a response head being submitted
};

}  // namespace tlsfront::proxy
