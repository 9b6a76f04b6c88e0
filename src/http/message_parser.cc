#include "http/message_parser.h"

#include <algorithm>
#include <charconv>

#include "core/hex.h"

namespace tlsfront::http {
namespace {

message_parser* self(llhttp_t* p) {
  return static_cast<message_parser*>(p->data);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// A field value may hold visible ASCII, obs-text, SP and HTAB. CR/LF inside a value means
// obsolete line folding got through llhttp; NUL and other controls are never valid.
bool valid_field_value(std::string_view v) {
  for (unsigned char c : v) {
    if ((c < 0x20 && c != '\t') || c == 0x7f) {
      return false;
    }
  }
  return true;
}

void append_hex(std::string& out, std::uint64_t n) {
  char buf[20];
  auto r = std::to_chars(buf, buf + sizeof buf, n, 16);
  out.append(buf, r.ptr);
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) {
    return false;
  }
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') {
      x = static_cast<char>(x - 'A' + 'a');
    }
    if (y >= 'A' && y <= 'Z') {
      y = static_cast<char>(y - 'A' + 'a');
    }
    if (x != y) {
      return false;
    }
  }
  return true;
}

bool is_idempotent(std::string_view m) {
  return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "PUT" || m == "DELETE" || m == "TRACE";
}

std::optional<std::string_view> message_head::find(std::string_view name) const {
  for (const auto& h : headers) {
    if (iequals(h.name, name)) {
      return h.value;
    }
  }
  return std::nullopt;
}

const llhttp_settings_t& message_parser::settings() {
  static const llhttp_settings_t s = [] {
    llhttp_settings_t st;
    llhttp_settings_init(&st);
    st.on_message_begin = &message_parser::on_message_begin;
    st.on_url = &message_parser::on_url;
    st.on_status = &message_parser::on_status;
    st.on_method = &message_parser::on_method;
    st.on_header_field = &message_parser::on_header_field;
    st.on_header_value = &message_parser::on_header_value;
    st.on_header_value_complete = &message_parser::on_header_value_complete;
    st.on_headers_complete = &message_parser::on_headers_complete;
    st.on_body = &message_parser::on_body;
    st.on_message_complete = &message_parser::on_message_complete;
    st.on_chunk_header = &message_parser::on_chunk_header;
    st.on_chunk_complete = &message_parser::on_chunk_complete;
    return st;
  }();
  return s;
}

message_parser::message_parser(kind k, limits l) : kind_(k), limits_(l) {
  llhttp_init(&parser_, k == kind::request ? HTTP_REQUEST : HTTP_RESPONSE, &settings());
  parser_.data = this;
  arena_.reserve(1024);
  raw_.reserve(32);
}

void message_parser::set_body_output(std::string* sink, body_framing framing) {
  sink_ = sink;
  framing_ = framing;
}

bool message_parser::has_body() const {
  return head_.chunked || (head_.content_length && *head_.content_length > 0) || until_close_;
}

std::size_t message_parser::erase_fields(std::string_view name) {
  return std::erase_if(head_.headers, [name](const header_field& h) { return iequals(h.name, name); });
}

void message_parser::reset_for_next() {
  llhttp_reset(&parser_);
  parser_.data = this;
  arena_.clear();
  raw_.clear();
  url_ = status_text_ = method_ = span{};
  in_value_ = in_trailers_ = started_ = head_complete_ = head_reported_ = complete_ = false;
  until_close_ = no_body_expected_ = upgrade_expected_ = false;
  head_bytes_ = 0;
  body_bytes_ = 0;
  feed_begin_ = feed_end_ = last_value_end_ = nullptr;
  trailers_.clear();
  value_split_ = false;
  in_chunk_line_ = chunk_digits_done_ = last_chunk_ = chunk_paused_ = false;
  chunk_digits_ = chunk_extension_bytes_ = 0;
  sink_ = nullptr;
  framing_ = body_framing::none;
  std::vector<header_field> fields = std::move(head_.headers);
  fields.clear();  // keeps its capacity: the next message's head allocates nothing
  head_ = message_head{};
  head_.headers = std::move(fields);
  error_ = parse_error::none;
  reason_.clear();
}

int message_parser::fail(parse_error e, std::string reason) {
  if (error_ == parse_error::none) {
    error_ = e;
    reason_ = std::move(reason);
  }
  return -1;
}

bool message_parser::append_head_bytes(const char* at, size_t n) {
  head_bytes_ += n;
  if (head_bytes_ > limits_.max_header_bytes) {
    fail(parse_error::header_too_large, "header section larger than the limit");
    return false;
  }
  if (!in_trailers_) {
    arena_.append(at, n);
  }
  return true;
}

int message_parser::on_message_begin(llhttp_t* p) {
  self(p)->started_ = true;
  return 0;
}

int message_parser::on_url(llhttp_t* p, const char* at, size_t n) {
  message_parser* m = self(p);
  if (m->url_.len == 0) {
    m->url_.off = m->arena_.size();
  }
  m->url_.len += n;
  return m->append_head_bytes(at, n) ? 0 : -1;
}

int message_parser::on_status(llhttp_t* p, const char* at, size_t n) {
  message_parser* m = self(p);
  if (m->status_text_.len == 0) {
    m->status_text_.off = m->arena_.size();
  }
  m->status_text_.len += n;
  return m->append_head_bytes(at, n) ? 0 : -1;
}

int message_parser::on_method(llhttp_t* p, const char* at, size_t n) {
  message_parser* m = self(p);
  if (m->method_.len == 0) {
    m->method_.off = m->arena_.size();
  }
  m->method_.len += n;
  return m->append_head_bytes(at, n) ? 0 : -1;
}

int message_parser::on_header_field(llhttp_t* p, const char* at, size_t n) {
  message_parser* m = self(p);
  if (m->in_trailers_) {
    // Trailers are kept aside (trailers()), their names checked in on_header_value_complete.
    if (m->in_value_) {
      m->in_value_ = false;
      if (m->trailers_.size() >= m->limits_.max_header_count) {
        return m->fail(parse_error::header_too_large, "more trailer fields than the limit");
      }
      m->trailers_.emplace_back();
    }
    if (!m->append_head_bytes(at, n)) {
      return -1;
    }
    m->trailers_.back().name.append(at, n);
    return 0;
  }
  if (m->in_value_ || m->raw_.empty()) {
    // A new field starts.
    m->in_value_ = false;
    if (m->raw_.size() >= m->limits_.max_header_count) {
      return m->fail(parse_error::header_too_large, "more header fields than the limit");
    }
    m->raw_.push_back(raw_header{{m->arena_.size(), 0}, {0, 0}});
  }
  m->raw_.back().name.len += n;
  return m->append_head_bytes(at, n) ? 0 : -1;
}

int message_parser::on_header_value(llhttp_t* p, const char* at, size_t n) {
  message_parser* m = self(p);
  if (!valid_field_value(std::string_view(at, n))) {
    return m->fail(parse_error::bad_message,
                   "invalid character or obsolete line folding in a header value");
  }
  if (m->in_trailers_) {
    if (!m->append_head_bytes(at, n)) {
      return -1;
    }
    m->trailers_.back().value.append(at, n);
    return 0;
  }
  raw_header& h = m->raw_.back();
  if (!m->in_value_) {
    m->in_value_ = true;
    h.value.off = m->arena_.size();
  } else if (h.value.len > 0 && !(at == m->feed_begin_ && m->value_split_)) {
    return m->fail(parse_error::bad_message, "obsolete line folding in a header value");
  }
  m->last_value_end_ = at + n;
  h.value.len += n;
  return m->append_head_bytes(at, n) ? 0 : -1;
}

int message_parser::on_header_value_complete(llhttp_t* p) {
  message_parser* m = self(p);
  if (m->in_trailers_ && !m->trailers_.empty()) {
    // Trailer values are trimmed as head values are (validate_head()).
    std::string& value = m->trailers_.back().value;
    if (const std::string_view t = trim(value); t.size() != value.size()) {
      value = std::string(t);
    }
    // Framing fields in trailers are a smuggling attempt (RFC 9110 §6.5.1).
    const std::string& name = m->trailers_.back().name;
    if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
        iequals(name, "host")) {
      return m->fail(parse_error::bad_message, "framing header in trailer section");
    }
  }
  // A field with an empty value gets no on_header_value call: mark the value as seen.
  m->in_value_ = true;
  m->last_value_end_ = nullptr;
  return 0;
}

int message_parser::validate_head() {
  message_head& h = head_;
  auto view = [this](span s) { return std::string_view(arena_.data() + s.off, s.len); };
  h.version_major = llhttp_get_http_major(&parser_);
  h.version_minor = llhttp_get_http_minor(&parser_);
  if (h.version_major != 1 || h.version_minor > 1) {
    return fail(parse_error::bad_message, "unsupported HTTP version");
  }
  h.headers.clear();
  h.headers.reserve(raw_.size());
  int host_count = 0, cl_count = 0, te_count = 0;
  for (const raw_header& r : raw_) {
    header_field f{view(r.name), trim(view(r.value))};
    h.headers.push_back(f);
    if (iequals(f.name, "host")) {
      ++host_count;
      h.host = f.value;
    } else if (iequals(f.name, "content-length")) {
      ++cl_count;
      std::uint64_t v = 0;
      auto res = std::from_chars(f.value.data(), f.value.data() + f.value.size(), v);
      if (f.value.empty() || res.ec != std::errc() || res.ptr != f.value.data() + f.value.size()) {
        return fail(parse_error::bad_message, "invalid Content-Length");
      }
      h.content_length = v;
    } else if (iequals(f.name, "transfer-encoding")) {
      ++te_count;
      if (!iequals(f.value, "chunked")) {
        return fail(parse_error::not_implemented, "unsupported Transfer-Encoding");
      }
      h.chunked = true;
    } else if (iequals(f.name, "expect")) {
      if (iequals(f.value, "100-continue")) {
        h.expect_continue = true;
      }
    } else if (iequals(f.name, "upgrade")) {
      h.upgrade = true;
    }
  }
  if (cl_count > 1) {
    return fail(parse_error::bad_message, "repeated Content-Length");
  }
  if (te_count > 1) {
    return fail(parse_error::bad_message, "repeated Transfer-Encoding");
  }
  if (te_count > 0 && cl_count > 0) {
    return fail(parse_error::bad_message, "both Content-Length and Transfer-Encoding");
  }
  if (te_count > 0 && h.version_minor == 0) {
    return fail(parse_error::bad_message, "Transfer-Encoding in an HTTP/1.0 message");
  }
  h.keep_alive = llhttp_should_keep_alive(&parser_) != 0;

  if (kind_ == kind::response) {
    h.status = llhttp_get_status_code(&parser_);
    h.reason = view(status_text_);
    if (h.status == 101 && !upgrade_expected_) {
      return fail(parse_error::bad_message, "unexpected 101 Switching Protocols");
    }
    return 0;
  }

  h.method = view(method_);
  h.target = view(url_);
  if (host_count > 1) {
    return fail(parse_error::bad_message, "repeated Host header");
  }
  if (host_count == 0 && h.version_minor == 1) {
    return fail(parse_error::bad_message, "missing Host header");
  }
  if (host_count == 1 && h.host.empty()) {
    return fail(parse_error::bad_message, "empty Host header");
  }
  if (h.method == "CONNECT") {
    return fail(parse_error::not_implemented, "CONNECT is not supported");
  }
  if (h.target.empty()) {
    return fail(parse_error::bad_message, "empty request target");
  }
  if (h.target.front() == '/') {
    // origin-form
  } else if (h.target == "*") {
    if (h.method != "OPTIONS") {
      return fail(parse_error::bad_message, "asterisk-form target outside OPTIONS");
    }
  } else {
    // absolute-form: the authority replaces Host (RFC 9112 §3.2.2).
    std::string_view t = h.target;
    size_t scheme_end = t.find("://");
    if (scheme_end == std::string_view::npos ||
        !(iequals(t.substr(0, scheme_end), "http") || iequals(t.substr(0, scheme_end), "https"))) {
      return fail(parse_error::bad_message, "invalid request target");
    }
    t.remove_prefix(scheme_end + 3);
    size_t path = t.find_first_of("/?");
    std::string_view authority = t.substr(0, path);
    if (authority.empty() || authority.find('@') != std::string_view::npos) {
      return fail(parse_error::bad_message, "invalid authority in request target");
    }
    h.host = authority;
    h.target = path == std::string_view::npos ? std::string_view("/") : t.substr(path);
    if (h.target.front() == '?') {
      return fail(parse_error::bad_message, "invalid request target");
    }
  }
  for (unsigned char c : h.host) {
    if (c <= 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '@' || c == ',') {
      return fail(parse_error::bad_message, "invalid Host");
    }
  }
  return 0;
}

int message_parser::on_headers_complete(llhttp_t* p) {
  message_parser* m = self(p);
  if (m->validate_head() != 0) {
    return -1;
  }
  m->head_complete_ = true;
  m->in_trailers_ = true;  // any further header callbacks are trailers
  m->in_value_ = true;     // so the first trailer field starts a new name
  m->head_bytes_ = 0;      // the limit applies to trailers separately
  if (m->kind_ == kind::response && (m->no_body_expected_ || m->head_.status == 101)) {
    return 1;  // no body (response to HEAD); the message completes right away
  }
  if (m->kind_ == kind::response && !m->head_.chunked && !m->head_.content_length) {
    int s = m->head_.status;
    m->until_close_ = !(s / 100 == 1 || s == 204 || s == 304);
  }
  if (m->head_.chunked) {
    m->start_chunk_line();  // the pause below leaves feed() at the first size line
  }
  return HPE_PAUSED;
}

int message_parser::on_chunk_header(llhttp_t* p) {
  self(p)->last_chunk_ = p->content_length == 0;
  return 0;
}

int message_parser::on_chunk_complete(llhttp_t* p) {
  message_parser* m = self(p);
  if (m->last_chunk_) {
    return 0;  // the message completes next
  }
  // Pause so feed() restarts llhttp exactly where the next size line begins and scans it first.
  m->start_chunk_line();
  m->chunk_paused_ = true;
  return HPE_PAUSED;
}

void message_parser::start_chunk_line() {
  in_chunk_line_ = true;
  chunk_digits_done_ = false;
  chunk_digits_ = 0;
  chunk_extension_bytes_ = 0;
}

bool message_parser::scan_chunk_line(std::string_view in) {
  for (char c : in) {
    if (c == '\n') {
      in_chunk_line_ = false;
      return true;
    }
    if (!chunk_digits_done_ && core::hex_digit_value(c) >= 0) {
      if (++chunk_digits_ > limits_.max_chunk_size_digits) {
        fail(parse_error::bad_message, "chunk size longer than " +
                                           std::to_string(limits_.max_chunk_size_digits) +
                                           " hex digits (leading zeros included)");
        return false;
      }
      continue;
    }
    chunk_digits_done_ = true;
    if (c != '\r' && ++chunk_extension_bytes_ > limits_.max_chunk_extension_bytes) {
      fail(parse_error::bad_message, "chunk extensions longer than " +
                                         std::to_string(limits_.max_chunk_extension_bytes) +
                                         " bytes");
      return false;
    }
  }
  return true;
}

int message_parser::on_body(llhttp_t* p, const char* at, size_t n) {
  message_parser* m = self(p);
  m->body_bytes_ += n;
  if (m->sink_ != nullptr && n > 0) {
    if (m->framing_ == body_framing::chunked) {
      append_hex(*m->sink_, n);
      m->sink_->append("\r\n");
      m->sink_->append(at, n);
      m->sink_->append("\r\n");
    } else {
      m->sink_->append(at, n);
    }
  }
  return 0;
}

int message_parser::on_message_complete(llhttp_t* p) {
  message_parser* m = self(p);
  m->complete_ = true;
  if (m->sink_ != nullptr && m->framing_ == body_framing::chunked) {
    m->sink_->append("0\r\n\r\n");
  }
  return HPE_PAUSED;
}

message_parser::status message_parser::feed(std::string_view in, std::size_t& consumed) {
  consumed = 0;
  if (error_ != parse_error::none) {
    return status::error;
  }
  if (head_complete_ && !head_reported_) {
    head_reported_ = true;
    return status::head_done;
  }
  if (complete_) {
    return status::message_done;
  }
  llhttp_errno_t err = HPE_OK;
  for (;;) {
    const std::string_view rest = in.substr(consumed);
    if (in_chunk_line_ && !scan_chunk_line(rest)) {
      return status::error;
    }
    feed_begin_ = rest.data();
    feed_end_ = rest.data() + rest.size();
    err = llhttp_execute(&parser_, rest.data(), rest.size());
    value_split_ = rest.size() > 0 && last_value_end_ == feed_end_;
    if (err == HPE_OK) {
      consumed = in.size();
      if (head_complete_ && !head_reported_) {
        head_reported_ = true;
        return status::head_done;
      }
      return status::need_more;
    }
    const char* pos = llhttp_get_error_pos(&parser_);
    consumed += pos != nullptr && pos >= rest.data() && pos <= rest.data() + rest.size()
                    ? static_cast<std::size_t>(pos - rest.data())
                    : rest.size();
    if (err != HPE_PAUSED && err != HPE_PAUSED_UPGRADE) {
      break;
    }
    if (err == HPE_PAUSED) {
      llhttp_resume(&parser_);
    }
    if (head_complete_ && !head_reported_) {
      head_reported_ = true;
      return status::head_done;
    }
    if (complete_) {
      return status::message_done;
    }
    if (!chunk_paused_) {
      return status::need_more;
    }
    chunk_paused_ = false;  // a chunk ended: go on with the next size line
  }
  if (error_ == parse_error::none) {
    error_ = parse_error::bad_message;
    reason_ = llhttp_get_error_reason(&parser_) ? llhttp_get_error_reason(&parser_) : "bad message";
  }
  return status::error;
}

message_parser::status message_parser::finish() {
  if (error_ != parse_error::none) {
    return status::error;
  }
  if (complete_) {
    return status::message_done;
  }
  if (!started_) {
    return status::need_more;
  }
  if (head_complete_ && until_close_) {
    llhttp_errno_t err = llhttp_finish(&parser_);
    if ((err == HPE_OK || err == HPE_PAUSED) && complete_) {
      return status::message_done;
    }
  }
  fail(parse_error::bad_message, "connection closed before the message was complete");
  return status::error;
}

}  // namespace tlsfront::http
