// config/http2_section.cc — [http2]: the limits of every HTTP/2 client connection, read into
// http::h2_options (http/h2_options.h documents each field and its default). One key per field,
// same names; counts are integers, byte amounts are sizes ("64k" or an integer). Every value is
// range-checked here, because a codec given one it cannot advertise (a frame size outside
// 16384..16777215, a window over 2^31-1) would end each connection at once.
//
// Thread-safety: part of the reader (one load, one thread).
// Failure: throws `failure` at the offending value; a cross-field rule fails at the key the file
// sets (the larger one when both are set).
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

#include "config/reader.h"

namespace tlsfront::config::detail {

namespace {

constexpr std::int64_t max_window = (std::int64_t{1} << 31) - 1;  // RFC 9113 §6.9.1
constexpr std::int64_t max_u32 = std::numeric_limits<std::uint32_t>::max();
constexpr std::int64_t unbounded = std::numeric_limits<std::int64_t>::max();
constexpr std::uint64_t mib16 = std::uint64_t{16} * 1024 * 1024;

// Refuses `big` < `small`: "'big_key' (..) must be at least 'small_key' (..): why". Fails at
// big_key's value when the file sets it, else at small_key's (the file raised that one above
// big_key's default). `show` writes a value as the message shows it.
template <class Show>
void require_at_least(const toml::table& t, std::string_view big_key, std::uint64_t big,
                      std::string_view small_key, std::uint64_t small, Show&& show,
                      std::string_view why) {
  if (big >= small) {
    return;
  }
  const toml::node* at = t.get(big_key);
  const std::string message = single_quoted(big_key) + " (" + show(big) +
                              (at != nullptr ? "" : ", the default") + ") must be at least " +
                              single_quoted(small_key) + " (" + show(small) +
                              "): " + std::string(why);
  if (at == nullptr) {
    at = t.get(small_key);
  }
  if (at == nullptr) {
    fail(t, message);  // both defaults: cannot happen while the defaults agree
  }
  fail(*at, message);
}

}  // namespace

void reader::read_http2(const toml::table& t, http::h2_options& out) {
  check_keys(
      t, "http2",
      {"max_concurrent_streams", "max_header_list_size", "initial_stream_window",
       "connection_window", "max_frame_size", "rapid_reset_budget", "reset_rate_burst",
       "reset_rate_per_second", "max_settings_entries", "max_outbound_ack", "control_frame_burst",
       "control_frames_per_second", "max_empty_frames", "max_continuations", "stream_output_buffer",
       "connection_output_buffer", "output_batch"});
  // What the codec advertises in its SETTINGS and the windows that bound buffered input.
  optional_integer(t, "max_concurrent_streams", 1, 100000, out.max_concurrent_streams);
  optional_size(t, "max_header_list_size", 1024, mib16, out.max_header_list_size);
  optional_size(t, "initial_stream_window", 1, max_window, out.initial_stream_window);
  // The connection window starts at 65535 (RFC 9113 §6.9.2) and can only be raised.
  optional_size(t, "connection_window", 65535, max_window, out.connection_window);
  optional_size(t, "max_frame_size", 16384, 16777215, out.max_frame_size);  // RFC 9113 §6.5.2
  // Budgets against abusive clients.
  optional_integer(t, "rapid_reset_budget", 1, max_u32, out.rapid_reset_budget);
  optional_integer(t, "reset_rate_burst", 1, unbounded, out.reset_rate_burst);
  optional_integer(t, "reset_rate_per_second", 1, unbounded, out.reset_rate_per_second);
  optional_integer(t, "max_settings_entries", 1, 1000, out.max_settings_entries);
  optional_integer(t, "max_outbound_ack", 1, unbounded, out.max_outbound_ack);
  optional_integer(t, "control_frame_burst", 1, max_u32, out.control_frame_burst);
  optional_integer(t, "control_frames_per_second", 1, max_u32, out.control_frames_per_second);
  optional_integer(t, "max_empty_frames", 1, max_u32, out.max_empty_frames);
  optional_integer(t, "max_continuations", 1, 1000, out.max_continuations);
  // Buffered output.
  optional_size(t, "stream_output_buffer", 1024, max_window, out.stream_output_buffer);
  optional_size(t, "connection_output_buffer", 1024, std::numeric_limits<std::uint64_t>::max(),
                out.connection_output_buffer);
  optional_size(t, "output_batch", 1024, mib16, out.output_batch);

  require_at_least(
      t, "rapid_reset_budget", out.rapid_reset_budget, "max_concurrent_streams",
      out.max_concurrent_streams, [](std::uint64_t v) { return std::to_string(v); },
      "a browser that navigates away cancels all its open streams at once, and a smaller "
      "budget would answer that with GOAWAY ENHANCE_YOUR_CALM");
  require_at_least(
      t, "connection_output_buffer", out.connection_output_buffer, "stream_output_buffer",
      out.stream_output_buffer, format_size,
      "every stream's output is also counted against the connection's buffer, so a smaller "
      "one would keep each stream below its own stream_output_buffer");
}

}  // namespace tlsfront::config::detail
