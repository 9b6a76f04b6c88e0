// http/h2_options.h — the limits of one HTTP/2 server connection (http/h2_codec.h): what the
// codec advertises in its SETTINGS, the flow-control windows that bound buffered request bytes,
// the output buffer bounds that bound buffered response bytes, and the budgets against abusive
// clients (rapid reset, floods). config fills it from TOML; every default below is the one a
// listener gets when its config says nothing.
// Thread-safety: a plain value; copied into each codec.
// Failure: none here. config must refuse out-of-range values (max_frame_size outside
// 16384..16777215, a window over 2^31-1, a zero buffer); a codec given such values cannot
// submit its SETTINGS and ends each connection at once with GOAWAY INTERNAL_ERROR.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tlsfront::http {

struct h2_options {
  // SETTINGS_MAX_CONCURRENT_STREAMS. A HEADERS frame that opens one more stream than this is
  // answered RST_STREAM REFUSED_STREAM (nghttp2 enforces it).
  std::uint32_t max_concurrent_streams = 128;
  // SETTINGS_MAX_HEADER_LIST_SIZE, counted as RFC 9113 §6.5.2 does (name + value + 32 per
  // field). A request head over it is answered 431 without reaching the owner.
  std::uint32_t max_header_list_size = 64 * 1024;
  // SETTINGS_INITIAL_WINDOW_SIZE: request body bytes a client may send on one stream before
  // the owner has taken (consumed) them. Bounds buffered input per stream.
  std::uint32_t initial_stream_window = 256 * 1024;
  // The connection-level receive window: request body bytes in flight on all streams together
  // before the owner has consumed them. Bounds buffered input per connection.
  std::uint32_t connection_window = 1024 * 1024;
  // SETTINGS_MAX_FRAME_SIZE (16384..16777215): the largest frame payload the client may send.
  std::uint32_t max_frame_size = 16384;

  // Rapid reset (CVE-2023-44487), our own rule: each stream the client cancels before its
  // response has ended costs one token of this budget, each stream that completes gives one
  // back (up to the budget). A client that cancels streams much faster than they complete
  // empties it and is sent GOAWAY ENHANCE_YOUR_CALM. Keep it above max_concurrent_streams: a
  // browser that navigates away cancels all its open streams at once.
  std::uint32_t rapid_reset_budget = 256;
  // nghttp2's own token bucket on incoming RST_STREAM frames (burst, tokens per second);
  // exhausted, nghttp2 tears the connection down with GOAWAY.
  std::uint64_t reset_rate_burst = 1000;
  std::uint64_t reset_rate_per_second = 33;

  // Floods. SETTINGS entries per frame (nghttp2: more is a connection error) ...
  std::size_t max_settings_entries = 32;
  // ... SETTINGS ACK and PING ACK frames queued for a client that does not read them
  // (nghttp2: more and the connection is closed) ...
  std::size_t max_outbound_ack = 1000;
  // ... SETTINGS frames and PING frames (each kind) a client may send per connection and second,
  // over a burst; more is GOAWAY ENHANCE_YOUR_CALM ...
  std::uint32_t control_frame_burst = 1000;
  std::uint32_t control_frames_per_second = 100;
  // ... empty DATA frames without END_STREAM and empty HEADERS/CONTINUATION frames a client may
  // send per connection (they cost work and carry nothing); more is GOAWAY ENHANCE_YOUR_CALM ...
  std::uint32_t max_empty_frames = 100;
  // ... and CONTINUATION frames after one HEADERS frame (CVE-2024-27316; nghttp2 closes the
  // connection beyond it).
  std::size_t max_continuations = 8;

  // Response body bytes buffered per stream before the producer is told to pause, and at most
  // over all streams of the connection (a stream's room is the smaller of both).
  std::size_t stream_output_buffer = 64 * 1024;
  std::size_t connection_output_buffer = 1024 * 1024;
  // The most bytes one pull_output() batch carries (one TLS write).
  std::size_t output_batch = 64 * 1024;
};

}  // namespace tlsfront::http
