// One client connection of tlsfront-echo-backend (see connection.h): the read/parse/respond loop,
// the endpoints and the response formatting.
#include "echo_backend/connection.h"

#include <array>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <span>
#include <string_view>
#include <utility>

namespace tlsfront::echo_backend {
namespace {

using asio::use_awaitable;
using asio::experimental::awaitable_operators::operator||;
constexpr auto use_tuple = asio::as_tuple(use_awaitable);

constexpr std::size_t read_buffer_size = 32 * 1024;
constexpr std::size_t echo_limit = 1024 * 1024;
constexpr std::size_t max_target = 8 * 1024;
constexpr std::size_t max_recorded_head = 64 * 1024;
// Pipelined responses are batched into one write until out_ reaches this size.
constexpr std::size_t flush_threshold = 64 * 1024;
// Buffers that grew past this (a big /echo) are released after use, keeping idle memory small.
constexpr std::size_t shrink_threshold = 256 * 1024;
constexpr std::size_t bytes_chunk = 64 * 1024;
constexpr std::size_t chunked_chunk = 16 * 1024;
constexpr std::size_t chunks_per_write = 4;
constexpr auto linger_timeout = std::chrono::seconds(2);

constexpr std::string_view hello_body = "hello from tlsfront-echo-backend\n";
constexpr std::string_view continue_response = "HTTP/1.1 100 Continue\r\n\r\n";
constexpr std::string_view pattern_alphabet = "0123456789abcdef";
constexpr std::uint64_t fnv_offset = 0xcbf29ce484222325ULL;
constexpr std::uint64_t fnv_prime = 0x100000001b3ULL;

// bytes_chunk bytes of the pattern, starting at pattern offset 0. Every chunk we send is a
// multiple of 16 bytes long except the last, so every chunk can start from this block.
const char* pattern_block() {
  static const std::array<char, bytes_chunk> block = [] {
    std::array<char, bytes_chunk> b{};
    for (std::size_t i = 0; i < b.size(); ++i) {
      b[i] = pattern_alphabet[i % pattern_alphabet.size()];
    }
    return b;
  }();
  return block.data();
}

std::string_view reason_phrase(unsigned status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 413:
      return "Content Too Large";
    case 425:
      return "Too Early";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Status";
  }
}

bool equals_ignore_case(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) {
    return false;
  }
  for (std::size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
    if (c != lower[i]) {
      return false;
    }
  }
  return true;
}

// Copies what fits of [at, at+length) into `dest` at `used` and counts the full length, so a
// long value is recognisably longer than anything we compare against.
template <std::size_t Size>
void append_prefix(char (&dest)[Size], std::size_t& used, const char* at, std::size_t length) {
  for (std::size_t i = 0; i < length && used + i < Size; ++i) {
    dest[used + i] = at[i];
  }
  used += length;
}

void append_number(std::string& out, std::uint64_t value) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof digits, value);
  out.append(digits, result.ptr);
}

connection& self(llhttp_t* parser) {
  return *static_cast<connection*>(parser->data);
}

// llhttp callback results: carry on, or stop with an error (the request is refused).
constexpr int proceed = 0;
constexpr int fail = -1;

}  // namespace

asio::awaitable<void> serve_connection(tcp::socket socket, worker_stats& own,
                                       const stats_registry& all) {
  connection conn(std::move(socket), own, all);
  co_await conn.run();
}

connection::connection(tcp::socket socket, worker_stats& own, const stats_registry& all)
    : socket_(std::move(socket)),
      timer_(socket_.get_executor()),
      own_stats_(own),
      all_stats_(all),
      read_buffer_(std::make_unique_for_overwrite<char[]>(read_buffer_size)) {
  llhttp_init(&parser_, HTTP_REQUEST, &parser_settings());
  parser_.data = this;
  out_.reserve(4096);
  target_.reserve(256);
  own_stats_.count_connection();
  boost::system::error_code ignored;
  socket_.set_option(tcp::no_delay(true), ignored);
}

const llhttp_settings_t& connection::parser_settings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &connection::on_message_begin;
    s.on_url = &connection::on_url;
    s.on_url_complete = &connection::on_url_complete;
    s.on_header_field = &connection::on_header_field;
    s.on_header_field_complete = &connection::on_header_field_complete;
    s.on_header_value = &connection::on_header_value;
    s.on_header_value_complete = &connection::on_header_value_complete;
    s.on_headers_complete = &connection::on_headers_complete;
    s.on_body = &connection::on_body;
    s.on_message_complete = &connection::on_message_complete;
    return s;
  }();
  return settings;
}

int connection::on_message_begin(llhttp_t* parser) {
  connection& c = self(parser);
  c.target_.clear();
  c.recorded_head_.clear();
  c.body_.clear();
  c.route_ = {};
  c.url_done_ = false;
  c.in_head_ = true;
  c.head_only_ = false;
  c.http10_ = false;
  c.keep_alive_ = true;
  c.expect_continue_ = false;
  c.early_data_ = false;
  c.too_large_ = false;
  c.field_length_ = 0;
  c.value_length_ = 0;
  c.sink_bytes_ = 0;
  c.sink_hash_ = fnv_offset;
  return proceed;
}

int connection::on_url(llhttp_t* parser, const char* at, std::size_t length) {
  connection& c = self(parser);
  if (c.target_.size() + length > max_target) {
    return fail;
  }
  c.target_.append(at, length);
  return proceed;
}

int connection::on_url_complete(llhttp_t* parser) {
  connection& c = self(parser);
  c.route_ = parse_route(c.target_);
  c.url_done_ = true;
  if (c.route_.kind != route_kind::stats) {
    c.own_stats_.count_request();
  }
  return proceed;
}

int connection::on_header_field(llhttp_t* parser, const char* at, std::size_t length) {
  connection& c = self(parser);
  if (!c.in_head_) {
    return proceed;
  }
  append_prefix(c.field_, c.field_length_, at, length);
  if (c.records_head()) {
    if (c.recorded_head_.size() + length > max_recorded_head) {
      return fail;
    }
    c.recorded_head_.append(at, length);
  }
  return proceed;
}

int connection::on_header_field_complete(llhttp_t* parser) {
  connection& c = self(parser);
  if (c.in_head_ && c.records_head()) {
    c.recorded_head_.append(": ");
  }
  return proceed;
}

int connection::on_header_value(llhttp_t* parser, const char* at, std::size_t length) {
  connection& c = self(parser);
  if (!c.in_head_) {
    return proceed;
  }
  append_prefix(c.value_, c.value_length_, at, length);
  if (c.records_head()) {
    if (c.recorded_head_.size() + length > max_recorded_head) {
      return fail;
    }
    c.recorded_head_.append(at, length);
  }
  return proceed;
}

int connection::on_header_value_complete(llhttp_t* parser) {
  connection& c = self(parser);
  if (!c.in_head_) {
    return proceed;
  }
  if (c.records_head()) {
    c.recorded_head_.append("\r\n");
  }
  if (c.field_length_ <= sizeof c.field_ && c.value_length_ <= sizeof c.value_ &&
      equals_ignore_case({c.field_, c.field_length_}, "expect") &&
      equals_ignore_case({c.value_, c.value_length_}, "100-continue")) {
    c.expect_continue_ = true;
  }
  if (c.field_length_ <= sizeof c.field_ &&
      equals_ignore_case({c.field_, c.field_length_}, "early-data")) {
    c.early_data_ = true;
  }
  c.field_length_ = 0;
  c.value_length_ = 0;
  return proceed;
}

int connection::on_headers_complete(llhttp_t* parser) {
  connection& c = self(parser);
  c.in_head_ = false;
  c.http10_ = parser->http_major == 1 && parser->http_minor == 0;
  c.head_only_ = parser->method == HTTP_HEAD;
  const bool chunked = (parser->flags & F_CHUNKED) != 0;
  const bool has_length = (parser->flags & F_CONTENT_LENGTH) != 0;
  if (c.route_.kind == route_kind::echo && has_length && !chunked &&
      parser->content_length > echo_limit) {
    // Refuse before the body is sent (and instead of 100 Continue).
    c.too_large_ = true;
    return fail;
  }
  const bool body_follows = chunked || (has_length && parser->content_length > 0);
  if (c.expect_continue_ && !c.http10_ && body_follows) {
    // Sent by the flush that precedes the next read, i.e. before we wait for the body.
    c.out_.append(continue_response);
  }
  return proceed;
}

int connection::on_body(llhttp_t* parser, const char* at, std::size_t length) {
  connection& c = self(parser);
  switch (c.route_.kind) {
    case route_kind::echo:
      if (c.body_.size() + length > echo_limit) {
        c.too_large_ = true;
        return fail;
      }
      c.body_.append(at, length);
      break;
    case route_kind::sink: {
      std::uint64_t hash = c.sink_hash_;
      for (std::size_t i = 0; i < length; ++i) {
        hash ^= static_cast<unsigned char>(at[i]);
        hash *= fnv_prime;
      }
      c.sink_hash_ = hash;
      c.sink_bytes_ += length;
      break;
    }
    default:
      break;
  }
  return proceed;
}

int connection::on_message_complete(llhttp_t* parser) {
  connection& c = self(parser);
  // An upgrade (or CONNECT) would switch protocols after this message: answer it and close.
  c.keep_alive_ = llhttp_should_keep_alive(parser) != 0 && parser->upgrade == 0;
  // Stop here so the bytes of a pipelined next request stay in the buffer until we responded.
  return HPE_PAUSED;
}

asio::awaitable<void> connection::run() {
  for (;;) {
    if (read_pos_ == read_end_) {
      if (!out_.empty() && !co_await flush()) {
        co_return;
      }
      auto [ec, n] = co_await socket_.async_read_some(
          asio::buffer(read_buffer_.get(), read_buffer_size), use_tuple);
      if (ec) {
        co_return;  // the peer closed (between or inside requests) or the socket failed
      }
      read_pos_ = 0;
      read_end_ = n;
    }
    const char* begin = read_buffer_.get() + read_pos_;
    const llhttp_errno_t err = llhttp_execute(&parser_, begin, read_end_ - read_pos_);
    if (err == HPE_OK) {
      read_pos_ = read_end_;  // llhttp consumed (and, via callbacks, used) every byte
      continue;
    }
    if (err != HPE_PAUSED) {
      // Malformed request, or a callback refused it (too large, target too long).
      if (!url_done_) {
        own_stats_.count_request();  // it reached us, so it counts
      }
      keep_alive_ = false;
      head_only_ = false;
      if (too_large_) {
        append_text(413, "payload too large\n");
      } else {
        append_text(400, "bad request\n");
      }
      co_await close_gracefully();
      co_return;
    }
    read_pos_ = static_cast<std::size_t>(llhttp_get_error_pos(&parser_) - read_buffer_.get());
    llhttp_resume(&parser_);
    if (!respond_now() && !co_await respond_async()) {
      co_return;
    }
    if (!keep_alive_) {
      co_await close_gracefully();
      co_return;
    }
    if (out_.size() >= flush_threshold && !co_await flush()) {
      co_return;
    }
    if (body_.capacity() > shrink_threshold) {
      std::string().swap(body_);
    }
  }
}

bool connection::respond_now() {
  switch (route_.kind) {
    case route_kind::hello:
      if (keep_alive_ && !http10_ && !head_only_) {
        // Fast path: one preformatted response, appended with a single copy.
        static const std::string response = [] {
          std::string r = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ";
          append_number(r, hello_body.size());
          r.append("\r\n\r\n").append(hello_body);
          return r;
        }();
        out_.append(response);
      } else {
        append_text(200, hello_body);
      }
      return true;
    case route_kind::echo:
      append_head(200, "application/octet-stream", body_.size());
      if (!head_only_) {
        out_.append(body_);
      }
      return true;
    case route_kind::sink: {
      char text[64];
      const int n = std::snprintf(text, sizeof text, "bytes=%llu fnv1a=%016llx\n",
                                  static_cast<unsigned long long>(sink_bytes_),
                                  static_cast<unsigned long long>(sink_hash_));
      append_text(200, {text, static_cast<std::size_t>(n)});
      return true;
    }
    case route_kind::too_early:
      if (early_data_) {
        append_text(425, "too early\n");
        return true;
      }
      [[fallthrough]];
    case route_kind::headers: {
      const std::string_view method =
          llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
      const char version[] = {static_cast<char>('0' + parser_.http_major % 10), '.',
                              static_cast<char>('0' + parser_.http_minor % 10)};
      const std::size_t length =
          method.size() + 1 + target_.size() + 6 + sizeof version + 2 + recorded_head_.size();
      append_head(200, "text/plain", length);
      if (!head_only_) {
        out_.append(method).append(" ").append(target_).append(" HTTP/");
        out_.append(version, sizeof version).append("\r\n").append(recorded_head_);
      }
      return true;
    }
    case route_kind::status: {
      const auto status = static_cast<unsigned>(route_.argument);
      if (status == 204 || status == 304) {
        append_head(status, "text/plain", 0, false);
        return true;
      }
      std::string_view reason = reason_phrase(status);
      char text[64];
      const int n = std::snprintf(text, sizeof text, "status %u %.*s\n", status,
                                  static_cast<int>(reason.size()), reason.data());
      append_text(status, {text, static_cast<std::size_t>(n)});
      return true;
    }
    case route_kind::logout: {
      static constexpr std::string_view body = "logged out\n";
      append_head(200, "text/plain", body.size(), true,
                  "TLS-Logout: 1\r\nTLS-Session: from-backend\r\n");
      if (!head_only_) {
        out_.append(body);
      }
      return true;
    }
    case route_kind::close:
      keep_alive_ = false;
      append_text(200, "close\n");
      return true;
    case route_kind::stats: {
      char text[96];
      const int n = std::snprintf(text, sizeof text, "requests %llu\nconnections %llu\n",
                                  static_cast<unsigned long long>(all_stats_.total_requests()),
                                  static_cast<unsigned long long>(all_stats_.total_connections()));
      append_text(200, {text, static_cast<std::size_t>(n)});
      return true;
    }
    case route_kind::bad_argument:
      append_text(400, "bad argument\n");
      return true;
    case route_kind::bytes:
    case route_kind::chunked:
    case route_kind::hang:
    case route_kind::slow:
      return false;
  }
  return false;
}

asio::awaitable<bool> connection::respond_async() {
  switch (route_.kind) {
    case route_kind::bytes:
      co_return co_await send_bytes(route_.argument);
    case route_kind::chunked:
      if (http10_) {
        co_return co_await send_bytes(route_.argument);  // HTTP/1.0 has no chunked coding
      }
      co_return co_await send_chunked(route_.argument);
    case route_kind::slow: {
      if (!out_.empty() && !co_await flush()) {
        co_return false;
      }
      timer_.expires_after(std::chrono::milliseconds(route_.argument));
      auto [ec] = co_await timer_.async_wait(use_tuple);
      if (ec) {
        co_return false;
      }
      append_text(200, "slow\n");
      co_return true;
    }
    case route_kind::hang:
      if (!out_.empty() && !co_await flush()) {
        co_return false;
      }
      co_await drain();
      co_return false;
    default:
      co_return true;
  }
}

asio::awaitable<bool> connection::send_bytes(std::uint64_t count) {
  append_head(200, "application/octet-stream", count);
  if (head_only_ || count == 0) {
    co_return co_await flush();
  }
  const char* pattern = pattern_block();
  std::size_t piece = static_cast<std::size_t>(std::min<std::uint64_t>(count, bytes_chunk));
  const std::array<asio::const_buffer, 2> first{asio::buffer(out_), asio::buffer(pattern, piece)};
  auto [ec, n] = co_await asio::async_write(socket_, first, use_tuple);
  out_.clear();
  if (ec) {
    co_return false;
  }
  std::uint64_t left = count - piece;
  while (left > 0) {
    piece = static_cast<std::size_t>(std::min<std::uint64_t>(left, bytes_chunk));
    auto [ec2, n2] = co_await asio::async_write(socket_, asio::buffer(pattern, piece), use_tuple);
    if (ec2) {
      co_return false;
    }
    left -= piece;
  }
  co_return true;
}

asio::awaitable<bool> connection::send_chunked(std::uint64_t count) {
  append_head(200, "application/octet-stream", 0, false, "Transfer-Encoding: chunked\r\n");
  if (head_only_) {
    co_return co_await flush();
  }
  static constexpr std::string_view full_size_line = "4000\r\n";  // chunked_chunk in hex
  static_assert(chunked_chunk == 0x4000);
  static constexpr std::string_view crlf = "\r\n";
  static constexpr std::string_view last_chunk = "0\r\n\r\n";
  const char* pattern = pattern_block();
  char partial_size_line[24];
  std::array<asio::const_buffer, 2 + 3 * chunks_per_write> buffers;
  std::uint64_t left = count;
  bool first = true;
  bool done = false;
  while (!done) {
    std::size_t used = 0;
    if (first) {
      buffers[used++] = asio::buffer(out_);
      first = false;
    }
    for (std::size_t i = 0; i < chunks_per_write && left > 0; ++i) {
      const auto piece = static_cast<std::size_t>(std::min<std::uint64_t>(left, chunked_chunk));
      if (piece == chunked_chunk) {
        buffers[used++] = asio::buffer(full_size_line);
      } else {
        const auto r = std::to_chars(partial_size_line, partial_size_line + 20, piece, 16);
        r.ptr[0] = '\r';
        r.ptr[1] = '\n';
        buffers[used++] = asio::buffer(partial_size_line,
                                       static_cast<std::size_t>(r.ptr + 2 - partial_size_line));
      }
      buffers[used++] = asio::buffer(pattern, piece);
      buffers[used++] = asio::buffer(crlf);
      left -= piece;
    }
    if (left == 0) {
      buffers[used++] = asio::buffer(last_chunk);
      done = true;
    }
    auto [ec, n] = co_await asio::async_write(
        socket_, std::span<const asio::const_buffer>(buffers.data(), used), use_tuple);
    out_.clear();
    if (ec) {
      co_return false;
    }
  }
  co_return true;
}

void connection::append_head(unsigned status, std::string_view content_type,
                             std::uint64_t content_length, bool with_length,
                             std::string_view extra_headers) {
  out_.append("HTTP/1.1 ");
  append_number(out_, status);
  out_.append(" ").append(reason_phrase(status)).append("\r\nContent-Type: ").append(content_type);
  if (with_length) {
    out_.append("\r\nContent-Length: ");
    append_number(out_, content_length);
  }
  out_.append("\r\n").append(extra_headers);
  if (!keep_alive_) {
    out_.append("Connection: close\r\n");
  } else if (http10_) {
    out_.append("Connection: keep-alive\r\n");
  }
  out_.append("\r\n");
}

void connection::append_text(unsigned status, std::string_view body) {
  append_head(status, "text/plain", body.size());
  if (!head_only_) {
    out_.append(body);
  }
}

asio::awaitable<bool> connection::flush() {
  auto [ec, n] = co_await asio::async_write(socket_, asio::buffer(out_), use_tuple);
  out_.clear();
  if (out_.capacity() > shrink_threshold) {
    std::string().swap(out_);
  }
  co_return !ec;
}

asio::awaitable<void> connection::drain() {
  for (;;) {
    auto [ec, n] = co_await socket_.async_read_some(
        asio::buffer(read_buffer_.get(), read_buffer_size), use_tuple);
    if (ec) {
      co_return;
    }
  }
}

asio::awaitable<void> connection::close_gracefully() {
  boost::system::error_code ignored;
  if (out_.empty() || co_await flush()) {
    socket_.shutdown(tcp::socket::shutdown_send, ignored);
    timer_.expires_after(linger_timeout);
    co_await (drain() || timer_.async_wait(use_tuple));
  }
  socket_.close(ignored);
}

}  // namespace tlsfront::echo_backend
