// http/h2_codec.h — the HTTP/2 server side of one client connection, without I/O: an nghttp2
// server session that takes the bytes TLS decrypted and hands back the bytes TLS must encrypt,
// in batches (one write per batch). It turns frames into events for its owner (the future
// proxy/h2_session: one exchange per stream) and the owner's responses into frames.
//
// What reaches the owner is a valid request (RFC 9113 §8.2-8.3). nghttp2 1.52's HTTP messaging
// checks (left on) enforce: pseudo-header fields required (:method, :scheme, :path, and
// :authority or Host), allowed, once each and before regular fields; uppercase names;
// connection-specific fields (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding,
// Upgrade, TE other than "trailers"); the :path form; a well-formed content-length and DATA
// that matches it. nghttp2 silently drops a field with other bad characters in its name or
// CR/LF/NUL or surrounding whitespace in its value; the codec resets the stream instead. The
// codec adds: Host conflicting with :authority, the header list size (431), cookie crumbs
// joined with "; ", Host standing in for a missing :authority. A malformed request is answered
// RST_STREAM PROTOCOL_ERROR (an oversized head: 431) and the owner hears nothing of it, neither
// its head nor its body nor its close. The exception is a body that turns out not to match
// content-length: its head (and the bytes up to the length) have reached the owner, then the
// stream closes with PROTOCOL_ERROR and on_request_end never comes.
//
// Memory is bounded both ways. Input: window updates are not automatic; a request's DATA is
// acknowledged to the client only when the owner calls consume() (the bytes left for the
// backend), so unconsumed input is at most initial_stream_window per stream and
// connection_window per connection. Output: write_body() takes at most the room left under
// stream_output_buffer and connection_output_buffer; the producer stops when it is told to
// and resumes on on_output_room().
//
// Abuse: rapid reset (CVE-2023-44487; nghttp2's reset rate limit and our cancel/complete
// budget), CONTINUATION floods (CVE-2024-27316; nghttp2's continuation limit), SETTINGS/PING
// floods (nghttp2's limits plus our per-second budget), empty-frame floods (counted here)
// end the connection with GOAWAY ENHANCE_YOUR_CALM; streams over max_concurrent_streams get
// RST_STREAM REFUSED_STREAM. A stream whose client never opens its window is reported
// (blocked_since_ms) so the I/O layer can time it out; the codec itself has no timers.
//
// Driving it (the owner's loop):
//   h2_codec codec(options, events, clock);   // queues the server SETTINGS
//   loop: pull_output(batch) → write batch to TLS; read from TLS → feed(bytes);
//         close the connection when finished() and no output is left.
// Events arrive from inside feed() and pull_output(); the owner may call any codec function
// from an event (submit_response, write_body, consume, reset_stream, goaway_*).
//
// Thread-safety: none; one codec belongs to one connection on one thread.
// Failure: no exceptions; functions return h2_result, feed() an h2_feed_status. After a
// connection error feed() refuses more input; pull_output() still yields the GOAWAY.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/clock.h"
#include "http/h2_options.h"

struct nghttp2_session;

namespace tlsfront::http {

// HTTP/2 error codes (RFC 9113 §7) the owner and the tests name.
enum h2_error_code : std::uint32_t {
  h2_no_error = 0x0,
  h2_protocol_error = 0x1,
  h2_internal_error = 0x2,
  h2_flow_control_error = 0x3,
  h2_stream_closed = 0x5,
  h2_frame_size_error = 0x6,
  h2_refused_stream = 0x7,
  h2_cancel = 0x8,
  h2_compression_error = 0x9,
  h2_enhance_your_calm = 0xb,
};

struct h2_field {
  std::string name;  // lowercase
  std::string value;
};

// A field by reference, for submit_response(): valid for the call only (the codec copies).
struct h2_field_ref {
  std::string_view name;
  std::string_view value;
};

// A request head that passed validation.
struct h2_request_head {
  std::string method;
  std::string scheme;     // empty for CONNECT
  std::string authority;  // :authority, else Host (routes like Host)
  std::string path;       // empty for CONNECT
  std::string protocol;   // :protocol (extended CONNECT), usually empty
  // Regular fields in arrival order: lowercase names, no Host (it is `authority`), the cookie
  // crumbs joined with "; " into one cookie field.
  std::vector<h2_field> fields;
  std::optional<std::uint64_t> content_length;
  bool end_stream = false;  // no body: on_request_end follows at once

  // The first field of that (lowercase) name, if any.
  std::optional<std::string_view> find(std::string_view name) const;
};

// What the owner hears. Each stream delivered by on_request_head ends with exactly one
// on_stream_closed; no other event names a stream that was never delivered.
class h2_events {
 public:
  virtual ~h2_events() = default;
  virtual void on_request_head(std::int32_t stream, h2_request_head head) = 0;
  // Body bytes, valid during the call. Acknowledge them with consume() once taken.
  virtual void on_request_body(std::int32_t stream, std::span<const std::uint8_t> bytes) = 0;
  // The request ended (END_STREAM), with trailers if it had any.
  virtual void on_request_end(std::int32_t stream, std::vector<h2_field> trailers) = 0;
  // The stream is gone: error_code 0 when both sides ended, else the RST_STREAM code (sent by
  // the client, by the codec, or by reset_stream) or the GOAWAY code that ended it. The owner
  // drops the stream's exchange; its id is unknown to the codec from now on.
  virtual void on_stream_closed(std::int32_t stream, std::uint32_t error_code) = 0;
  // The stream's response buffer has room again after write_body() said to pause.
  virtual void on_output_room(std::int32_t stream) = 0;
};

enum class h2_result {
  ok,
  no_such_stream,   // unknown or closed stream id
  bad_state,        // e.g. body before head, head twice, body after end
  session_failure,  // nghttp2 refused (the connection is ending)
};

enum class h2_feed_status {
  ok,
  // The codec ended the connection (an abuse rule, a fatal nghttp2 error) or it has nothing
  // more to read: pull the output (the GOAWAY), then close. nghttp2 also ends connections by
  // itself on protocol errors; then feed() says ok and the GOAWAY is in the next pull_output,
  // after which finished() is true. finished() is the one test for "close now".
  closing,
};

struct h2_write_result {
  std::size_t accepted = 0;  // bytes taken from the front of the span
  bool pause = false;        // the buffer is full: wait for on_output_room
  h2_result result = h2_result::ok;
};

class h2_codec {
 public:
  // `events` and `clock` must outlive the codec. Queues the server connection preface
  // (SETTINGS and the connection WINDOW_UPDATE).
  h2_codec(const h2_options& options, h2_events& events, const core::clock& clock);
  ~h2_codec();
  h2_codec(const h2_codec&) = delete;
  h2_codec& operator=(const h2_codec&) = delete;

  // Bytes from the client. Never throws; a protocol violation or an abuse rule queues GOAWAY
  // and returns closing (later calls return closing and read nothing).
  h2_feed_status feed(std::span<const std::uint8_t> bytes);
  // Appends up to options.output_batch bytes for the client to `out`; returns how many.
  std::size_t pull_output(std::string& out);

  // True when the connection is done: nothing more to read or write for nghttp2 (a GOAWAY was
  // exchanged and every stream closed, or a connection error). Close after writing the output.
  bool finished() const;
  // Code of the GOAWAY the codec sent, if it sent one.
  std::optional<std::uint32_t> goaway_code() const { return goaway_code_; }
  // Why the codec ended the connection ("rapid reset", "empty frame flood", nghttp2's text...).
  std::string_view failure() const { return failure_; }

  // The response head. Connection-specific fields (Connection and the fields it names,
  // Keep-Alive, Proxy-Connection, Transfer-Encoding, Upgrade, TE) are dropped, names are
  // lowercased. end_stream: no body.
  h2_result submit_response(std::int32_t stream, int status, std::span<const h2_field> fields,
                            bool end_stream);
  // The same from views (no copy of the fields before nghttp2's own).
  h2_result submit_response(std::int32_t stream, int status, std::span<const h2_field_ref> fields,
                            bool end_stream);
  // Queues body bytes (at most the room left, see h2_write_result).
  h2_write_result write_body(std::int32_t stream, std::span<const std::uint8_t> bytes);
  // Ends the response after the queued body, with trailers if non-empty.
  h2_result end_response(std::int32_t stream, std::span<const h2_field> trailers = {});
  // RST_STREAM with `code`; on_stream_closed follows once it is sent.
  h2_result reset_stream(std::int32_t stream, std::uint32_t code);
  // The owner took `bytes` of the stream's request body: the client may send that many more.
  h2_result consume(std::int32_t stream, std::size_t bytes);

  // GOAWAY NO_ERROR naming the last stream received: those finish, newer ones are refused.
  void goaway_graceful();
  // The first step of a graceful shutdown (RFC 9113 §6.8): GOAWAY with the highest stream ID,
  // so the client opens no new stream while those it already sent are still served; the final
  // goaway_graceful() follows after about a round trip.
  void shutdown_notice();
  // GOAWAY with `code` now; streams are closed with it.
  void goaway_now(std::uint32_t code);

  // Reports for the I/O layer.
  // Response body bytes queued in the codec's stream buffers, all streams (frames nghttp2 has
  // queued, such as heads and ACKs, are not counted; nghttp2 bounds its ACK queue).
  std::size_t output_buffered() const { return output_buffered_; }
  std::size_t input_unconsumed() const { return input_unconsumed_; }
  std::size_t stream_input_unconsumed(std::int32_t stream) const;
  std::size_t stream_output_buffered(std::int32_t stream) const;
  std::size_t active_streams() const { return streams_.size(); }
  // Since when (clock ms) the stream has response bytes queued but no window from the client
  // to send them; nullopt if it is not blocked.
  std::optional<std::int64_t> blocked_since_ms(std::int32_t stream) const;
  // The earliest such time over all streams (the slow-read timer's deadline base).
  std::optional<std::int64_t> oldest_blocked_since_ms() const;

 private:
  struct stream_state;
  struct callbacks;
  // Control frames of one kind: refilled at control_frames_per_second up to the burst.
  struct token_bucket {
    double tokens;
    std::int64_t last_ms;
  };
  friend struct callbacks;

  template <class Field>
  h2_result submit(std::int32_t stream, int status, std::span<const Field> fields, bool end_stream);
  stream_state* find(std::int32_t stream);
  const stream_state* find(std::int32_t stream) const;
  std::size_t room(const stream_state& s) const;
  void fail(std::uint32_t code, std::string_view why);
  bool take_control_token(token_bucket& bucket);
  void reject(stream_state& s, std::uint32_t code);
  void deliver_head(stream_state& s, bool end_stream);
  void update_blocked();
  void after_output();

  h2_options options_;
  h2_events& events_;
  const core::clock& clock_;
  nghttp2_session* session_ = nullptr;
  std::unordered_map<std::int32_t, std::unique_ptr<stream_state>> streams_;
  std::vector<std::int32_t> room_pending_;
  std::size_t output_buffered_ = 0;
  std::size_t input_unconsumed_ = 0;
  std::int64_t reset_budget_;
  token_bucket settings_bucket_;
  token_bucket ping_bucket_;
  std::uint32_t empty_frames_ = 0;
  bool failed_ = false;
  std::optional<std::uint32_t> goaway_code_;
  std::string failure_;
  // Scratch for the name/value pairs of one submit (capacity reused).
  struct scratch;
  std::unique_ptr<scratch> scratch_;
};

}  // namespace tlsfront::http
