#include "http/h2_codec.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>

#include "http/header_rewrite.h"
#include "http/message_parser.h"

namespace tlsfront::http {

namespace {

// Fields that only mean something on one HTTP/1.1 hop (RFC 9113 §8.2.2); a backend's are
// dropped from the response.
constexpr std::array<std::string_view, 6> connection_specific = {
    "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"};

nghttp2_nv make_nv(std::string_view name, std::string_view value) {
  return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), NGHTTP2_NV_FLAG_NONE};
}

// Appends response fields to `nv` as nghttp2 name/value pairs: lowercase names (written into
// `names`, which must outlive the submit call; its capacity is reused), no pseudo fields, no
// connection-specific fields nor those the Connection field names. Values point into `fields`.
template <class Field>
void response_nv(std::span<const Field> fields, std::string& names, std::vector<nghttp2_nv>& nv) {
  std::vector<std::string> named;  // allocates only when a Connection field names some
  std::size_t total = 0;
  for (const Field& f : fields) {
    if (iequals(f.name, "connection")) {
      for (std::string& t : header_tokens(f.value)) {
        named.push_back(std::move(t));
      }
    }
    total += f.name.size();
  }
  names.clear();
  names.reserve(total);  // no reallocation below: the views into it stay valid
  nv.reserve(nv.size() + fields.size());
  for (const Field& f : fields) {
    const std::size_t at = names.size();
    for (char c : std::string_view(f.name)) {
      names.push_back(c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c);
    }
    const std::string_view name(names.data() + at, names.size() - at);
    const bool drop = name.empty() || name[0] == ':' ||
                      std::find(connection_specific.begin(), connection_specific.end(), name) !=
                          connection_specific.end() ||
                      std::find(named.begin(), named.end(), name) != named.end();
    if (drop) {
      names.resize(at);
      continue;
    }
    nv.push_back(make_nv(name, f.value));
  }
}

std::string_view view(const uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}

}  // namespace

std::optional<std::string_view> h2_request_head::find(std::string_view name) const {
  for (const h2_field& f : fields) {
    if (f.name == name) {
      return std::string_view(f.value);
    }
  }
  return std::nullopt;
}

struct h2_codec::scratch {
  std::string names;
  std::vector<nghttp2_nv> nv;
};

struct h2_codec::stream_state {
  std::int32_t id = 0;
  // request
  h2_request_head head;
  std::vector<std::string> cookies;
  std::string host;
  bool has_host = false;
  std::size_t header_bytes = 0;
  bool too_large = false;  // head over max_header_list_size: answered 431
  bool rejected = false;   // reset or answered by the codec: the owner never hears of it
  bool delivered = false;  // on_request_head was called
  std::vector<h2_field> trailers;
  std::size_t unconsumed = 0;
  // response
  bool response_started = false;
  bool body_ended = false;     // end_response() called (or head with end_stream)
  bool response_done = false;  // END_STREAM (or RST_STREAM) left
  bool deferred = false;       // the data provider returned DEFERRED
  bool paused = false;         // write_body() said pause; on_output_room owed
  std::string out;
  std::size_t out_pos = 0;
  std::vector<h2_field> out_trailers;
  std::optional<std::int64_t> blocked_since;

  std::size_t out_size() const { return out.size() - out_pos; }
};

// The nghttp2 callbacks, as static members of a friend so they reach the codec's state.
struct h2_codec::callbacks {
  static h2_codec& self(void* user) { return *static_cast<h2_codec*>(user); }

  static int on_begin_frame(nghttp2_session*, const nghttp2_frame_hd* hd, void* user) {
    h2_codec& c = self(user);
    bool empty =
        hd->length == 0 && ((hd->type == NGHTTP2_DATA && !(hd->flags & NGHTTP2_FLAG_END_STREAM)) ||
                            hd->type == NGHTTP2_HEADERS || hd->type == NGHTTP2_CONTINUATION);
    if (empty && ++c.empty_frames_ > c.options_.max_empty_frames) {
      c.fail(h2_enhance_your_calm, "empty frame flood");
      return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
  }

  static int on_begin_headers(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    h2_codec& c = self(user);
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
      return 0;
    }
    auto s = std::make_unique<stream_state>();
    s->id = frame->hd.stream_id;
    c.streams_[s->id] = std::move(s);
    return 0;
  }

  static int on_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name,
                       size_t namelen, const uint8_t* value, size_t valuelen, uint8_t, void* user) {
    h2_codec& c = self(user);
    stream_state* s = c.find(frame->hd.stream_id);
    if (s == nullptr || s->rejected || frame->hd.type != NGHTTP2_HEADERS) {
      return 0;
    }
    s->header_bytes += namelen + valuelen + 32;
    if (s->header_bytes > c.options_.max_header_list_size) {
      if (s->delivered) {  // trailers over the limit
        c.reject(*s, h2_protocol_error);
      } else {
        s->too_large = true;
      }
    }
    if (s->too_large) {
      return 0;
    }
    std::string_view n = view(name, namelen);
    std::string_view v = view(value, valuelen);
    if (s->delivered) {
      s->trailers.push_back({std::string(n), std::string(v)});
      return 0;
    }
    // nghttp2 has checked the pseudo fields (allowed, once, before regular fields) and the
    // connection-specific ones; a field it calls invalid goes to on_invalid_header.
    h2_request_head& h = s->head;
    if (n == ":method") {
      h.method = v;
    } else if (n == ":scheme") {
      h.scheme = v;
    } else if (n == ":authority") {
      h.authority = v;
    } else if (n == ":path") {
      h.path = v;
    } else if (n == ":protocol") {
      h.protocol = v;
    } else if (n == "host") {
      s->host = v;
      s->has_host = true;
    } else if (n == "cookie") {
      s->cookies.emplace_back(v);
    } else {
      if (n == "content-length") {
        // nghttp2 has parsed it (digits only, once); keep the number.
        std::uint64_t len = 0;
        for (char d : v) {
          len = len * 10 + std::uint64_t(d - '0');
        }
        h.content_length = len;
      }
      h.fields.push_back({std::string(n), std::string(v)});
    }
    return 0;
  }

  // A field nghttp2 would silently drop (bad characters in a name, CR/LF/NUL or surrounding
  // whitespace in a value): the request is malformed (RFC 9113 §8.2.1), not to be repaired.
  static int on_invalid_header(nghttp2_session*, const nghttp2_frame* frame, const uint8_t*, size_t,
                               const uint8_t*, size_t, uint8_t, void* user) {
    h2_codec& c = self(user);
    if (stream_state* s = c.find(frame->hd.stream_id); s != nullptr && !s->rejected) {
      c.reject(*s, h2_protocol_error);
    }
    return 0;
  }

  static int on_frame_recv(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    h2_codec& c = self(user);
    switch (frame->hd.type) {
      case NGHTTP2_SETTINGS:
      case NGHTTP2_PING: {
        bool settings = frame->hd.type == NGHTTP2_SETTINGS;
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
            !c.take_control_token(settings ? c.settings_bucket_ : c.ping_bucket_)) {
          c.fail(h2_enhance_your_calm, settings ? "SETTINGS flood" : "PING flood");
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
      }
      case NGHTTP2_RST_STREAM: {
        stream_state* s = c.find(frame->hd.stream_id);
        if (s != nullptr && !s->response_done && --c.reset_budget_ < 0) {
          c.fail(h2_enhance_your_calm, "rapid reset: streams cancelled faster than completed");
          return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
      }
      case NGHTTP2_HEADERS:
      case NGHTTP2_DATA:
        break;
      default:
        return 0;
    }
    stream_state* s = c.find(frame->hd.stream_id);
    if (s == nullptr || s->rejected) {
      return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && !s->delivered) {
      c.deliver_head(*s, (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0);
      if (s->rejected || c.find(frame->hd.stream_id) == nullptr) {
        return 0;
      }
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
      std::vector<h2_field> trailers = std::move(s->trailers);
      c.events_.on_request_end(s->id, std::move(trailers));
    }
    return 0;
  }

  static int on_data_chunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                           const uint8_t* data, size_t len, void* user) {
    h2_codec& c = self(user);
    stream_state* s = c.find(stream_id);
    if (s == nullptr || s->rejected || !s->delivered) {
      // Nobody takes these bytes: give the client its window back at once.
      nghttp2_session_consume(session, stream_id, len);
      return 0;
    }
    s->unconsumed += len;
    c.input_unconsumed_ += len;
    c.events_.on_request_body(stream_id, {data, len});
    return 0;
  }

  static int on_stream_close(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                             void* user) {
    h2_codec& c = self(user);
    auto it = c.streams_.find(stream_id);
    if (it == c.streams_.end()) {
      return 0;
    }
    std::unique_ptr<stream_state> s = std::move(it->second);
    c.streams_.erase(it);
    if (s->unconsumed > 0) {
      nghttp2_session_consume_connection(session, s->unconsumed);
      c.input_unconsumed_ -= s->unconsumed;
    }
    c.output_buffered_ -= s->out_size();
    if (error_code == NGHTTP2_NO_ERROR && s->response_done) {
      c.reset_budget_ = std::min<std::int64_t>(c.reset_budget_ + 1, c.options_.rapid_reset_budget);
    }
    if (s->delivered) {
      c.events_.on_stream_closed(stream_id, error_code);
    }
    return 0;
  }

  static int on_frame_send(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    h2_codec& c = self(user);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      c.goaway_code_ = frame->goaway.error_code;
      return 0;
    }
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      if (stream_state* s = c.find(frame->hd.stream_id)) {
        s->response_done = true;
      }
    }
    if (frame->hd.type == NGHTTP2_RST_STREAM) {
      if (stream_state* s = c.find(frame->hd.stream_id)) {
        s->response_done = true;
      }
    }
    return 0;
  }

  static int on_error(nghttp2_session*, int, const char* msg, size_t len, void* user) {
    h2_codec& c = self(user);
    if (c.failure_.empty()) {
      c.failure_.assign(msg, len);
    }
    return 0;
  }

  static ssize_t read_body(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                           uint32_t* data_flags, nghttp2_data_source* source, void* user) {
    h2_codec& c = self(user);
    auto* s = static_cast<stream_state*>(source->ptr);
    std::size_t n = std::min(length, s->out_size());
    if (n > 0) {
      std::memcpy(buf, s->out.data() + s->out_pos, n);
      s->out_pos += n;
      c.output_buffered_ -= n;
      if (s->out_pos == s->out.size()) {
        s->out.clear();
        s->out_pos = 0;
      } else if (s->out_pos > s->out.size() / 2) {
        s->out.erase(0, s->out_pos);
        s->out_pos = 0;
      }
      if (s->paused) {
        c.room_pending_.push_back(stream_id);
      }
    }
    if (s->out_size() == 0 && s->body_ended) {
      *data_flags |= NGHTTP2_DATA_FLAG_EOF;
      if (!s->out_trailers.empty()) {
        std::vector<nghttp2_nv>& nv = c.scratch_->nv;
        nv.clear();
        response_nv(std::span<const h2_field>(s->out_trailers), c.scratch_->names, nv);
        if (!nv.empty()) {
          *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
          nghttp2_submit_trailer(session, stream_id, nv.data(), nv.size());  // copies them
        }
      }
      return ssize_t(n);
    }
    if (n == 0) {
      s->deferred = true;
      return NGHTTP2_ERR_DEFERRED;
    }
    return ssize_t(n);
  }
};

h2_codec::h2_codec(const h2_options& options, h2_events& events, const core::clock& clock)
    : options_(options),
      events_(events),
      clock_(clock),
      reset_budget_(options.rapid_reset_budget),
      settings_bucket_{double(options.control_frame_burst), clock.now_ms()},
      ping_bucket_{double(options.control_frame_burst), clock.now_ms()},
      scratch_(std::make_unique<scratch>()) {
  nghttp2_session_callbacks* cbs = nullptr;
  nghttp2_option* opt = nullptr;
  if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&opt) != 0) {
    nghttp2_session_callbacks_del(cbs);
    failed_ = true;
    failure_ = "out of memory";
    return;
  }
  nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, &callbacks::on_begin_frame);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, &callbacks::on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &callbacks::on_header);
  nghttp2_session_callbacks_set_on_invalid_header_callback(cbs, &callbacks::on_invalid_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &callbacks::on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &callbacks::on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &callbacks::on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &callbacks::on_frame_send);
  nghttp2_session_callbacks_set_error_callback2(cbs, &callbacks::on_error);

  // HTTP messaging checks stay on (nghttp2's default); windows are ours.
  nghttp2_option_set_no_auto_window_update(opt, 1);
  nghttp2_option_set_max_settings(opt, options_.max_settings_entries);
  nghttp2_option_set_max_outbound_ack(opt, options_.max_outbound_ack);
  nghttp2_option_set_stream_reset_rate_limit(opt, options_.reset_rate_burst,
                                             options_.reset_rate_per_second);
  nghttp2_option_set_max_continuations(opt, options_.max_continuations);
  nghttp2_option_set_no_closed_streams(opt, 1);

  int rv = nghttp2_session_server_new2(&session_, cbs, this, opt);
  nghttp2_session_callbacks_del(cbs);
  nghttp2_option_del(opt);
  if (rv != 0) {
    session_ = nullptr;
    failed_ = true;
    failure_ = nghttp2_strerror(rv);
    return;
  }
  const std::array<nghttp2_settings_entry, 5> settings = {{
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, options_.max_concurrent_streams},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, options_.max_header_list_size},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_stream_window},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, options_.max_frame_size},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  }};
  rv = nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  if (rv == 0) {
    rv = nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                               std::int32_t(options_.connection_window));
  }
  if (rv != 0) {
    fail(h2_internal_error, nghttp2_strerror(rv));
  }
}

h2_codec::~h2_codec() {
  nghttp2_session_del(session_);
}

h2_codec::stream_state* h2_codec::find(std::int32_t stream) {
  auto it = streams_.find(stream);
  return it == streams_.end() ? nullptr : it->second.get();
}

const h2_codec::stream_state* h2_codec::find(std::int32_t stream) const {
  auto it = streams_.find(stream);
  return it == streams_.end() ? nullptr : it->second.get();
}

void h2_codec::fail(std::uint32_t code, std::string_view why) {
  if (failed_) {
    return;
  }
  failed_ = true;
  failure_ = why;
  if (session_ != nullptr) {
    nghttp2_session_terminate_session(session_, code);
  }
}

bool h2_codec::take_control_token(token_bucket& b) {
  std::int64_t now = clock_.now_ms();
  if (now > b.last_ms) {
    b.tokens = std::min<double>(
        options_.control_frame_burst,
        b.tokens + double(now - b.last_ms) * double(options_.control_frames_per_second) / 1000.0);
    b.last_ms = now;
  }
  if (b.tokens < 1.0) {
    return false;
  }
  b.tokens -= 1.0;
  return true;
}

void h2_codec::reject(stream_state& s, std::uint32_t code) {
  s.rejected = true;
  s.head = {};
  s.cookies.clear();
  s.trailers.clear();
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, s.id, code);
}

void h2_codec::deliver_head(stream_state& s, bool end_stream) {
  if (s.too_large) {
    // 431 with no body; the owner never hears of the stream.
    s.rejected = true;
    s.head = {};
    std::array<nghttp2_nv, 1> nv = {make_nv(":status", "431")};
    nghttp2_submit_response(session_, s.id, nv.data(), nv.size(), nullptr);
    return;
  }
  h2_request_head& h = s.head;
  if (s.has_host) {
    if (h.authority.empty()) {
      h.authority = std::move(s.host);
    } else if (!iequals(h.authority, s.host)) {
      reject(s, h2_protocol_error);  // RFC 9113 §8.3.1: Host names another entity
      return;
    }
  }
  if (!s.cookies.empty()) {
    std::string joined;
    for (const std::string& crumb : s.cookies) {
      if (!joined.empty()) {
        joined += "; ";
      }
      joined += crumb;
    }
    h.fields.push_back({"cookie", std::move(joined)});
    s.cookies.clear();
  }
  s.delivered = true;
  s.header_bytes = 0;  // trailers count afresh
  std::int32_t id = s.id;
  h.end_stream = end_stream;
  events_.on_request_head(id, std::move(h));
}

std::size_t h2_codec::room(const stream_state& s) const {
  std::size_t stream_room = options_.stream_output_buffer > s.out_size()
                                ? options_.stream_output_buffer - s.out_size()
                                : 0;
  std::size_t conn_room = options_.connection_output_buffer > output_buffered_
                              ? options_.connection_output_buffer - output_buffered_
                              : 0;
  return std::min(stream_room, conn_room);
}

h2_feed_status h2_codec::feed(std::span<const std::uint8_t> bytes) {
  if (failed_) {
    return h2_feed_status::closing;
  }
  ssize_t rv = nghttp2_session_mem_recv(session_, bytes.data(), bytes.size());
  if (rv < 0 && !failed_) {
    std::uint32_t code = (rv == NGHTTP2_ERR_FLOODED || rv == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS)
                             ? h2_enhance_your_calm
                             : h2_protocol_error;
    fail(code, nghttp2_strerror(int(rv)));
  }
  update_blocked();
  if (failed_ || nghttp2_session_want_read(session_) == 0) {
    return h2_feed_status::closing;
  }
  return h2_feed_status::ok;
}

std::size_t h2_codec::pull_output(std::string& out) {
  if (session_ == nullptr) {
    return 0;
  }
  std::size_t start = out.size();
  while (out.size() - start < options_.output_batch) {
    const uint8_t* data = nullptr;
    ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      fail(h2_internal_error, nghttp2_strerror(int(n)));
      break;
    }
    if (n == 0) {
      break;
    }
    out.append(reinterpret_cast<const char*>(data), std::size_t(n));
  }
  after_output();
  return out.size() - start;
}

void h2_codec::update_blocked() {
  if (session_ == nullptr) {
    return;
  }
  std::int32_t conn_window = nghttp2_session_get_remote_window_size(session_);
  std::int64_t now = clock_.now_ms();
  for (auto& [id, s] : streams_) {
    bool waiting = s->response_started && !s->response_done && s->out_size() > 0;
    bool blocked = waiting && (conn_window <= 0 ||
                               nghttp2_session_get_stream_remote_window_size(session_, id) <= 0);
    if (!blocked) {
      s->blocked_since.reset();
    } else if (!s->blocked_since) {
      s->blocked_since = now;
    }
  }
}

void h2_codec::after_output() {
  update_blocked();
  if (finished()) {
    // The connection is over: close what nghttp2 will not close any more.
    std::uint32_t code = goaway_code_.value_or(h2_internal_error);
    std::vector<std::int32_t> ids;
    for (auto& [id, s] : streams_) {
      ids.push_back(id);
    }
    for (std::int32_t id : ids) {
      auto it = streams_.find(id);
      if (it == streams_.end()) {
        continue;
      }
      bool delivered = it->second->delivered;
      input_unconsumed_ -= it->second->unconsumed;
      output_buffered_ -= it->second->out_size();
      streams_.erase(it);
      if (delivered) {
        events_.on_stream_closed(id, code);
      }
    }
    room_pending_.clear();
    return;
  }
  std::vector<std::int32_t> ids;
  ids.swap(room_pending_);
  std::size_t threshold = std::min<std::size_t>(16 * 1024, options_.stream_output_buffer);
  for (std::int32_t id : ids) {
    stream_state* s = find(id);
    if (s != nullptr && s->paused && room(*s) >= threshold) {
      s->paused = false;
      events_.on_output_room(id);
    } else if (s != nullptr && s->paused) {
      room_pending_.push_back(id);
    }
  }
  // A stream paused by the connection bound waits on other streams' output: wake it too.
  for (auto& [id, s] : streams_) {
    if (s->paused &&
        std::find(room_pending_.begin(), room_pending_.end(), id) == room_pending_.end()) {
      room_pending_.push_back(id);
    }
  }
}

bool h2_codec::finished() const {
  if (session_ == nullptr) {
    return true;
  }
  return nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
}

h2_result h2_codec::submit_response(std::int32_t stream, int status,
                                    std::span<const h2_field> fields, bool end_stream) {
  return submit(stream, status, fields, end_stream);
}

h2_result h2_codec::submit_response(std::int32_t stream, int status,
                                    std::span<const h2_field_ref> fields, bool end_stream) {
  return submit(stream, status, fields, end_stream);
}

template <class Field>
h2_result h2_codec::submit(std::int32_t stream, int status, std::span<const Field> fields,
                           bool end_stream) {
  stream_state* s = find(stream);
  if (s == nullptr || !s->delivered) {
    return h2_result::no_such_stream;
  }
  if (s->response_started || status < 100 || status > 999) {
    return h2_result::bad_state;
  }
  char status_text[4];
  const auto st = std::to_chars(status_text, status_text + sizeof status_text, status);
  std::vector<nghttp2_nv>& nv = scratch_->nv;
  nv.clear();
  nv.push_back(make_nv(":status", std::string_view(status_text, st.ptr)));
  response_nv(fields, scratch_->names, nv);
  nghttp2_data_provider provider{};
  provider.source.ptr = s;
  provider.read_callback = &callbacks::read_body;
  int rv = nghttp2_submit_response(session_, stream, nv.data(), nv.size(),
                                   end_stream ? nullptr : &provider);
  if (rv != 0) {
    return h2_result::session_failure;
  }
  s->response_started = true;
  s->body_ended = end_stream;
  return h2_result::ok;
}

h2_write_result h2_codec::write_body(std::int32_t stream, std::span<const std::uint8_t> bytes) {
  stream_state* s = find(stream);
  if (s == nullptr || !s->delivered) {
    return {0, false, h2_result::no_such_stream};
  }
  if (!s->response_started || s->body_ended) {
    return {0, false, h2_result::bad_state};
  }
  std::size_t n = std::min(bytes.size(), room(*s));
  s->out.append(reinterpret_cast<const char*>(bytes.data()), n);
  output_buffered_ += n;
  bool pause = n < bytes.size() || room(*s) == 0;
  if (pause) {
    s->paused = true;
    if (std::find(room_pending_.begin(), room_pending_.end(), stream) == room_pending_.end()) {
      room_pending_.push_back(stream);
    }
  }
  if (n > 0 && s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, stream);
  }
  return {n, pause, h2_result::ok};
}

h2_result h2_codec::end_response(std::int32_t stream, std::span<const h2_field> trailers) {
  stream_state* s = find(stream);
  if (s == nullptr || !s->delivered) {
    return h2_result::no_such_stream;
  }
  if (!s->response_started || s->body_ended) {
    return h2_result::bad_state;
  }
  s->body_ended = true;
  s->out_trailers.assign(trailers.begin(), trailers.end());
  if (s->deferred) {
    s->deferred = false;
    nghttp2_session_resume_data(session_, stream);
  }
  return h2_result::ok;
}

h2_result h2_codec::reset_stream(std::int32_t stream, std::uint32_t code) {
  stream_state* s = find(stream);
  if (s == nullptr || !s->delivered) {
    return h2_result::no_such_stream;
  }
  if (nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream, code) != 0) {
    return h2_result::session_failure;
  }
  return h2_result::ok;
}

h2_result h2_codec::consume(std::int32_t stream, std::size_t bytes) {
  stream_state* s = find(stream);
  if (s == nullptr || !s->delivered) {
    return h2_result::no_such_stream;
  }
  if (bytes > s->unconsumed) {
    return h2_result::bad_state;
  }
  if (nghttp2_session_consume(session_, stream, bytes) != 0) {
    return h2_result::session_failure;
  }
  s->unconsumed -= bytes;
  input_unconsumed_ -= bytes;
  return h2_result::ok;
}

void h2_codec::goaway_graceful() {
  if (session_ == nullptr || failed_) {
    return;
  }
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
}

void h2_codec::shutdown_notice() {
  if (session_ == nullptr || failed_) {
    return;
  }
  nghttp2_submit_shutdown_notice(session_);
}

void h2_codec::goaway_now(std::uint32_t code) {
  fail(code, "GOAWAY by the owner");
}

std::size_t h2_codec::stream_input_unconsumed(std::int32_t stream) const {
  const stream_state* s = find(stream);
  return s == nullptr ? 0 : s->unconsumed;
}

std::size_t h2_codec::stream_output_buffered(std::int32_t stream) const {
  const stream_state* s = find(stream);
  return s == nullptr ? 0 : s->out_size();
}

std::optional<std::int64_t> h2_codec::blocked_since_ms(std::int32_t stream) const {
  const stream_state* s = find(stream);
  return s == nullptr ? std::nullopt : s->blocked_since;
}

std::optional<std::int64_t> h2_codec::oldest_blocked_since_ms() const {
  std::optional<std::int64_t> oldest;
  for (const auto& [id, s] : streams_) {
    if (s->blocked_since && (!oldest || *s->blocked_since < *oldest)) {
      oldest = s->blocked_since;
    }
  }
  return oldest;
}

}  // namespace tlsfront::http
