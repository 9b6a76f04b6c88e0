// http/message_parser.h — an HTTP/1.1 request or response parser over llhttp that enforces
// RFC 9112 framing more strictly than llhttp 8.1 does, and streams the body into an output
// buffer re-framed by the proxy (so what leaves tlsfront is framed by tlsfront, never copied
// verbatim from an untrusted peer). Chunk-size lines are capped (limits: size digits, leading
// zeros included, and extension bytes), so neither a request nor a backend response can spin
// the parser on zeros or stream unmetered extension bytes.
//
// Use: feed() bytes as they arrive. It stops after a complete head (head_done: inspect head()),
// and after a complete message (message_done). Body bytes decoded meanwhile are appended to the
// body sink set with set_body_output(), framed as chosen (content-length or chunked). After
// message_done call reset_for_next() before feeding the rest (pipelining).
// Thread-safety: none; one parser belongs to one connection. No I/O, no allocation per body byte
// beyond appending to the sink.
#pragma once

#include <llhttp.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace tlsfront::http {

// Why a message was refused; maps to the status a proxy answers with.
enum class parse_error {
  none,
  bad_message,       // 400 (request) / 502 (response)
  header_too_large,  // 431: head bytes or header count over the limit
  not_implemented,   // 501: a transfer coding other than chunked
};

struct header_field {
  std::string_view name;
  std::string_view value;
};

// The parsed head. Views point into the parser and stay valid until reset_for_next().
struct message_head {
  // request
  std::string_view method;
  std::string_view target;  // origin-form ("/p?q"), "*" or the path of an absolute-form target
  std::string_view host;    // Host header, or the authority of an absolute-form target
  // response
  int status = 0;
  std::string_view reason;
  // both
  int version_major = 1;
  int version_minor = 1;
  std::vector<header_field> headers;
  bool chunked = false;
  std::optional<std::uint64_t> content_length;
  bool keep_alive = true;  // per llhttp_should_keep_alive(): version and Connection header
  bool expect_continue = false;
  bool upgrade = false;  // an Upgrade header was present

  // The first header of that name (case-insensitive), if any.
  std::optional<std::string_view> find(std::string_view name) const;
};

// A field of a chunked message's trailer section.
struct trailer_field {
  std::string name;
  std::string value;
};

// How the body is framed on output.
enum class body_framing { none, content_length, chunked };

class message_parser {
 public:
  enum class kind { request, response };
  enum class status { need_more, head_done, message_done, error };

  struct limits {
    std::size_t max_header_bytes = 16 * 1024;
    std::size_t max_header_count = 100;
    // A chunk-size line: at most this many hex digits, leading zeros included ("0000…01"
    // must not make a parser spin or disagree with another one about the size) ...
    std::size_t max_chunk_size_digits = 16;
    // ... and at most this many bytes of chunk extensions after them (tlsfront drops them;
    // uncapped, they would be an unmetered stream beside the body).
    std::size_t max_chunk_extension_bytes = 1024;
  };

  message_parser(kind k, limits l);
  message_parser(const message_parser&) = delete;
  message_parser& operator=(const message_parser&) = delete;

  // Parses from `in`; sets `consumed` to how many bytes were used. Returns at the first of:
  // input exhausted (need_more), a head completed (head_done), a message completed
  // (message_done), an error (error; see error() and error_reason()).
  status feed(std::string_view in, std::size_t& consumed);
  // The peer closed: completes a read-until-close body (message_done), or reports an error if
  // the message was cut short, or need_more if nothing had started.
  status finish();

  // For responses: the request was HEAD (or the response must have no body): set before the
  // response head is fed.
  void set_no_body_expected(bool v) { no_body_expected_ = v; }
  // Response parser: the request asked for a protocol upgrade, so a 101 is a valid answer (its
  // head completes the message; what follows is the new protocol, not HTTP). Otherwise a 101 is
  // refused. Cleared by reset_for_next().
  void set_upgrade_expected(bool v) { upgrade_expected_ = v; }
  // Where decoded body bytes go and how they are framed there. nullptr discards them.
  void set_body_output(std::string* sink, body_framing framing);

  const message_head& head() const { return head_; }
  // Removes every field named `name` (case-insensitive) from the parsed head; returns how many.
  // Never allocates.
  std::size_t erase_fields(std::string_view name);
  bool message_started() const { return started_; }
  bool head_complete() const { return head_complete_; }
  // True when the body length is given by the connection closing (responses only).
  bool body_until_close() const { return until_close_; }
  bool has_body() const;
  std::uint64_t body_bytes() const { return body_bytes_; }
  // The trailer fields of a chunked message, once it is complete (values trimmed, framing
  // fields refused; the same limits as the head). They never reach the re-framed body output: a sink that wants
  // them (an HTTP/2 response's trailers) takes them from here.
  const std::vector<trailer_field>& trailers() const { return trailers_; }

  parse_error error() const { return error_; }
  const std::string& error_reason() const { return reason_; }

  // Prepares for the next message on the same connection.
  void reset_for_next();

 private:
  static int on_message_begin(llhttp_t*);
  static int on_url(llhttp_t*, const char*, size_t);
  static int on_status(llhttp_t*, const char*, size_t);
  static int on_method(llhttp_t*, const char*, size_t);
  static int on_header_field(llhttp_t*, const char*, size_t);
  static int on_header_value(llhttp_t*, const char*, size_t);
  static int on_header_value_complete(llhttp_t*);
  static int on_headers_complete(llhttp_t*);
  static int on_body(llhttp_t*, const char*, size_t);
  static int on_message_complete(llhttp_t*);
  static int on_chunk_header(llhttp_t*);
  static int on_chunk_complete(llhttp_t*);
  static const llhttp_settings_t& settings();

  int fail(parse_error e, std::string reason);
  // The chunk-size line checks (limits above): start_chunk_line() where a size line begins,
  // scan_chunk_line() over input before llhttp parses it; false (and error set) when over.
  void start_chunk_line();
  bool scan_chunk_line(std::string_view in);
  int validate_head();
  bool append_head_bytes(const char* at, size_t n);

  struct span {
    std::size_t off = 0, len = 0;
  };
  struct raw_header {
    span name, value;
  };

  kind kind_;
  limits limits_;
  llhttp_t parser_;
  std::string arena_;  // the head's pieces, contiguous per element
  span url_, status_text_, method_;
  std::vector<raw_header> raw_;
  bool in_value_ = false;
  // Obsolete line folding shows up as a second value span of one field. A second span is
  // legitimate only when the first ended exactly at the end of the previous input buffer.
  const char* feed_begin_ = nullptr;
  const char* feed_end_ = nullptr;
  const char* last_value_end_ = nullptr;
  bool value_split_ = false;
  // Chunk-size line state: inside one (from its start to its LF), digits and extension bytes
  // seen; the last chunk (size 0) is followed by trailers, not by another size line.
  bool in_chunk_line_ = false;
  bool chunk_digits_done_ = false;
  bool last_chunk_ = false;
  bool chunk_paused_ = false;  // llhttp paused at a chunk's end so feed() knows the position
  std::size_t chunk_digits_ = 0;
  std::size_t chunk_extension_bytes_ = 0;
  std::vector<trailer_field> trailers_;
  bool in_trailers_ = false;
  bool started_ = false;
  bool head_complete_ = false;
  bool head_reported_ = false;
  bool complete_ = false;
  bool until_close_ = false;
  bool no_body_expected_ = false;
  bool upgrade_expected_ = false;
  std::size_t head_bytes_ = 0;
  std::uint64_t body_bytes_ = 0;
  std::string* sink_ = nullptr;
  body_framing framing_ = body_framing::none;
  message_head head_;
  parse_error error_ = parse_error::none;
  std::string reason_;
};

// True for methods RFC 9110 calls idempotent (safe to retry when nothing was sent).
bool is_idempotent(std::string_view method);
// Case-insensitive ASCII comparison.
bool iequals(std::string_view a, std::string_view b);

}  // namespace tlsfront::http
