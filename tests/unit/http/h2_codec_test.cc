// The HTTP/2 server codec driven by a real nghttp2 client session (real frames both ways), and by
// hand-built frames where a client library would refuse to send them.
#include "http/h2_codec.h"

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace tlsfront::http {
namespace {

using header_list = std::vector<std::pair<std::string, std::string>>;

std::span<const std::uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// The owner: records what reached it; hooks let a test answer.
struct recorder : h2_events {
  struct stream_rec {
    h2_request_head head;
    std::string body;
    bool ended = false;
    std::vector<h2_field> trailers;
    std::optional<std::uint32_t> closed;
    int rooms = 0;
  };
  std::map<std::int32_t, stream_rec> streams;
  int heads = 0;
  std::function<void(std::int32_t)> head_hook, end_hook, room_hook;

  void on_request_head(std::int32_t id, h2_request_head head) override {
    ++heads;
    streams[id].head = std::move(head);
    if (head_hook) {
      head_hook(id);
    }
  }
  void on_request_body(std::int32_t id, std::span<const std::uint8_t> b) override {
    streams[id].body.append(reinterpret_cast<const char*>(b.data()), b.size());
  }
  void on_request_end(std::int32_t id, std::vector<h2_field> trailers) override {
    streams[id].ended = true;
    streams[id].trailers = std::move(trailers);
    if (end_hook) {
      end_hook(id);
    }
  }
  void on_stream_closed(std::int32_t id, std::uint32_t code) override {
    EXPECT_FALSE(streams[id].closed) << "stream " << id << " closed twice";
    streams[id].closed = code;
  }
  void on_output_room(std::int32_t id) override {
    ++streams[id].rooms;
    if (room_hook) {
      room_hook(id);
    }
  }
};

// A real nghttp2 client session.
struct client {
  struct stream_rec {
    std::string status;
    header_list headers;
    header_list trailers;
    std::string body;
    std::optional<std::uint32_t> rst;     // RST_STREAM received
    std::optional<std::uint32_t> closed;  // stream closed, with this code
    std::string upload;
    std::size_t upload_pos = 0;
    bool headers_done = false;
  };
  nghttp2_session* s = nullptr;
  std::map<std::int32_t, stream_rec> streams;
  std::optional<std::uint32_t> goaway;
  std::size_t received_data = 0;

  explicit client(bool auto_window = true, std::vector<nghttp2_settings_entry> settings = {}) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, void* u) {
          auto& c = *static_cast<client*>(u);
          if (f->hd.type == NGHTTP2_GOAWAY) {
            c.goaway = f->goaway.error_code;
          } else if (f->hd.type == NGHTTP2_RST_STREAM) {
            c.streams[f->hd.stream_id].rst = f->rst_stream.error_code;
          } else if (f->hd.type == NGHTTP2_HEADERS) {
            c.streams[f->hd.stream_id].headers_done = true;
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_header_callback(
        cbs, [](nghttp2_session*, const nghttp2_frame* f, const uint8_t* n, size_t nl,
                const uint8_t* v, size_t vl, uint8_t, void* u) {
          auto& st = static_cast<client*>(u)->streams[f->hd.stream_id];
          std::string name(reinterpret_cast<const char*>(n), nl);
          std::string value(reinterpret_cast<const char*>(v), vl);
          if (name == ":status") {
            st.status = value;
          } else if (st.headers_done) {
            st.trailers.emplace_back(name, value);
          } else {
            st.headers.emplace_back(name, value);
          }
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cbs, [](nghttp2_session*, uint8_t, int32_t id, const uint8_t* d, size_t len, void* u) {
          auto& c = *static_cast<client*>(u);
          c.streams[id].body.append(reinterpret_cast<const char*>(d), len);
          c.received_data += len;
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cbs, [](nghttp2_session*, int32_t id, uint32_t code, void* u) {
          static_cast<client*>(u)->streams[id].closed = code;
          return 0;
        });
    nghttp2_option* opt;
    nghttp2_option_new(&opt);
    if (!auto_window) {
      nghttp2_option_set_no_auto_window_update(opt, 1);
    }
    nghttp2_session_client_new2(&s, cbs, this, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(s, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  }
  ~client() { nghttp2_session_del(s); }

  static header_list get(std::string path = "/") {
    return {{":method", "GET"}, {":scheme", "https"}, {":authority", "example.com"},
            {":path", std::move(path)}};
  }
  // A POST head, with a content-length field when `length` is not empty.
  static header_list post(std::string length = "") {
    header_list h = get();
    h[0].second = "POST";
    if (!length.empty()) {
      h.emplace_back("content-length", std::move(length));
    }
    return h;
  }

  // Submits a request; a body (if any) is sent with END_STREAM after it.
  std::int32_t request(const header_list& h, std::optional<std::string> body = std::nullopt) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : h) {
      nv.push_back({(uint8_t*)n.data(), (uint8_t*)v.data(), n.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    nghttp2_data_provider prd{};
    prd.read_callback = [](nghttp2_session* sess, int32_t id, uint8_t* buf, size_t len,
                           uint32_t* flags, nghttp2_data_source*, void* u) -> ssize_t {
      auto& st = static_cast<client*>(u)->streams[id];
      (void)sess;
      std::size_t n = std::min(len, st.upload.size() - st.upload_pos);
      std::memcpy(buf, st.upload.data() + st.upload_pos, n);
      st.upload_pos += n;
      if (st.upload_pos == st.upload.size()) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
      }
      return ssize_t(n);
    };
    std::int32_t id = nghttp2_submit_request(s, nullptr, nv.data(), nv.size(),
                                             body ? &prd : nullptr, nullptr);
    if (body) {
      streams[id].upload = std::move(*body);
    }
    return id;
  }
};

// Server codec + client, with a pump that moves bytes both ways until both are quiet.
struct h2_pair {
  core::manual_clock clock;
  recorder owner;
  h2_options options;
  std::unique_ptr<h2_codec> server;
  std::unique_ptr<client> peer;

  explicit h2_pair(h2_options o = {}, bool client_auto_window = true,
                   std::vector<nghttp2_settings_entry> client_settings = {})
      : options(o) {
    server = std::make_unique<h2_codec>(options, owner, clock);
    peer = std::make_unique<client>(client_auto_window, std::move(client_settings));
  }

  void pump(int rounds = 10000) {
    for (int i = 0; i < rounds; ++i) {
      bool progress = false;
      for (;;) {
        const uint8_t* d = nullptr;
        ssize_t n = nghttp2_session_mem_send(peer->s, &d);
        if (n <= 0) {
          break;
        }
        server->feed({d, std::size_t(n)});
        progress = true;
      }
      std::string out;
      server->pull_output(out);
      if (!out.empty()) {
        nghttp2_session_mem_recv(peer->s, reinterpret_cast<const uint8_t*>(out.data()),
                                 out.size());
        progress = true;
      }
      if (!progress) {
        return;
      }
    }
  }
};

// ---- hand-built frames ----

struct frame {
  std::uint8_t type;
  std::uint8_t flags;
  std::int32_t stream;
  std::string payload;
};

std::string frame_bytes(std::uint8_t type, std::uint8_t flags, std::int32_t stream,
                        std::string_view payload) {
  std::string f;
  std::size_t n = payload.size();
  f += char(n >> 16);
  f += char(n >> 8);
  f += char(n);
  f += char(type);
  f += char(flags);
  f += char((stream >> 24) & 0x7f);
  f += char(stream >> 16);
  f += char(stream >> 8);
  f += char(stream);
  f += payload;
  return f;
}

std::string u32(std::uint32_t v) {
  return {char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
}

std::vector<frame> parse_frames(std::string_view b) {
  std::vector<frame> out;
  while (b.size() >= 9) {
    auto u = [&](std::size_t i) { return std::uint32_t(std::uint8_t(b[i])); };
    std::size_t n = (u(0) << 16) | (u(1) << 8) | u(2);
    if (b.size() < 9 + n) {
      break;
    }
    std::int32_t id = std::int32_t(((u(5) & 0x7f) << 24) | (u(6) << 16) | (u(7) << 8) | u(8));
    out.push_back({std::uint8_t(b[3]), std::uint8_t(b[4]), id, std::string(b.substr(9, n))});
    b.remove_prefix(9 + n);
  }
  return out;
}

std::uint32_t code_of(const frame& f) {
  std::size_t at = f.type == NGHTTP2_GOAWAY ? 4 : 0;
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    v = (v << 8) | std::uint8_t(f.payload[at + i]);
  }
  return v;
}

// A client that writes raw frames (one HPACK encoder for the connection).
struct raw_client {
  core::manual_clock clock;
  recorder owner;
  h2_codec server;
  nghttp2_hd_deflater* deflater = nullptr;
  std::string received;

  // ack_settings: acknowledge the server's SETTINGS at once (a client that has read them).
  explicit raw_client(const h2_options& o, bool ack_settings = true) : server(o, owner, clock) {
    nghttp2_hd_deflate_new(&deflater, 4096);
    send(std::string(NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN) +
         frame_bytes(NGHTTP2_SETTINGS, 0, 0, "") +
         (ack_settings ? frame_bytes(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, "") : ""));
  }
  ~raw_client() { nghttp2_hd_deflate_del(deflater); }

  std::string hpack(const header_list& h) {
    std::vector<nghttp2_nv> nv;
    for (const auto& [n, v] : h) {
      nv.push_back({(uint8_t*)n.data(), (uint8_t*)v.data(), n.size(), v.size(),
                    NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(deflater, nv.data(), nv.size()), '\0');
    ssize_t n = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(out.data()),
                                      out.size(), nv.data(), nv.size());
    out.resize(n < 0 ? 0 : std::size_t(n));
    return out;
  }

  h2_feed_status send(std::string_view bytes) {
    h2_feed_status st = server.feed(bytes_of(bytes));
    drain();
    return st;
  }
  void drain() {
    while (server.pull_output(received) > 0) {
    }
  }
  std::vector<frame> frames() const { return parse_frames(received); }
  std::optional<std::uint32_t> goaway() const {
    for (const frame& f : frames()) {
      if (f.type == NGHTTP2_GOAWAY) {
        return code_of(f);
      }
    }
    return std::nullopt;
  }
  std::optional<std::uint32_t> rst(std::int32_t stream) const {
    for (const frame& f : frames()) {
      if (f.type == NGHTTP2_RST_STREAM && f.stream == stream) {
        return code_of(f);
      }
    }
    return std::nullopt;
  }
};

// ---- a valid exchange ----

TEST(H2Codec, GetRequestReachesOwnerAndResponseReachesClient) {
  h2_pair p;
  header_list h = client::get("/a?b");
  h.emplace_back("cookie", "a=1");
  h.emplace_back("accept", "*/*");
  h.emplace_back("cookie", "b=2");
  h.emplace_back("te", "trailers");
  p.owner.end_hook = [&](std::int32_t id) {
    std::vector<h2_field> fields = {{"Content-Type", "text/plain"},
                                    {"Connection", "close, X-Hop"},
                                    {"X-Hop", "1"},
                                    {"Keep-Alive", "timeout=5"},
                                    {"Transfer-Encoding", "chunked"},
                                    {"Upgrade", "h2c"},
                                    {"Proxy-Connection", "keep-alive"},
                                    {"X-Ok", "yes"}};
    ASSERT_EQ(p.server->submit_response(id, 200, fields, false), h2_result::ok);
    EXPECT_EQ(p.server->write_body(id, bytes_of("hello")).accepted, 5u);
    std::vector<h2_field> trailers = {{"X-Checksum", "abc"}};
    EXPECT_EQ(p.server->end_response(id, trailers), h2_result::ok);
  };
  std::int32_t id = p.peer->request(h);
  p.pump();

  ASSERT_EQ(p.owner.heads, 1);
  const auto& got = p.owner.streams[id];
  EXPECT_EQ(got.head.method, "GET");
  EXPECT_EQ(got.head.scheme, "https");
  EXPECT_EQ(got.head.authority, "example.com");
  EXPECT_EQ(got.head.path, "/a?b");
  EXPECT_TRUE(got.head.end_stream);
  EXPECT_EQ(got.head.find("cookie"), "a=1; b=2");
  EXPECT_EQ(got.head.find("accept"), "*/*");
  EXPECT_EQ(got.head.find("te"), "trailers");
  EXPECT_TRUE(got.ended);
  EXPECT_EQ(got.closed, 0u);

  const auto& resp = p.peer->streams[id];
  EXPECT_EQ(resp.status, "200");
  EXPECT_EQ(resp.body, "hello");
  header_list expect_headers = {{"content-type", "text/plain"}, {"x-ok", "yes"}};
  EXPECT_EQ(resp.headers, expect_headers);
  header_list expect_trailers = {{"x-checksum", "abc"}};
  EXPECT_EQ(resp.trailers, expect_trailers);
  EXPECT_EQ(resp.closed, 0u);
  EXPECT_EQ(p.server->active_streams(), 0u);
}

TEST(H2Codec, HostStandsInForMissingAuthority) {
  h2_pair p;
  std::int32_t id =
      p.peer->request({{":method", "GET"}, {":scheme", "https"}, {":path", "/"}, {"host", "h.example"}});
  p.pump();
  ASSERT_EQ(p.owner.heads, 1);
  EXPECT_EQ(p.owner.streams[id].head.authority, "h.example");
  EXPECT_FALSE(p.owner.streams[id].head.find("host"));
}

TEST(H2Codec, HostAgreeingWithAuthorityIsAccepted) {
  h2_pair p;
  header_list h = client::get();
  h.emplace_back("host", "EXAMPLE.com");
  p.peer->request(h);
  p.pump();
  EXPECT_EQ(p.owner.heads, 1);
}

TEST(H2Codec, RequestBodyAndTrailersReachOwner) {
  raw_client c(h2_options{});
  header_list h = client::post("11");
  c.send(frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, c.hpack(h)));
  ASSERT_EQ(c.owner.heads, 1);
  EXPECT_FALSE(c.owner.streams[1].head.end_stream);
  EXPECT_EQ(c.owner.streams[1].head.content_length, 11u);
  c.send(frame_bytes(NGHTTP2_DATA, 0, 1, "hello world"));
  EXPECT_FALSE(c.owner.streams[1].ended);
  c.send(frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS, 1,
                     c.hpack({{"x-sum", "42"}})));
  EXPECT_EQ(c.owner.streams[1].body, "hello world");
  ASSERT_TRUE(c.owner.streams[1].ended);
  ASSERT_EQ(c.owner.streams[1].trailers.size(), 1u);
  EXPECT_EQ(c.owner.streams[1].trailers[0].name, "x-sum");
  EXPECT_EQ(c.owner.streams[1].trailers[0].value, "42");
  EXPECT_EQ(c.server.input_unconsumed(), 11u);
  EXPECT_EQ(c.server.consume(1, 11), h2_result::ok);
  EXPECT_EQ(c.server.input_unconsumed(), 0u);
}

TEST(H2Codec, TrailersWithPseudoFieldsAreReset) {
  raw_client c(h2_options{});
  header_list h = client::post();
  c.send(frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, c.hpack(h)));
  c.send(frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_END_HEADERS, 1,
                     c.hpack({{":path", "/x"}})));
  EXPECT_EQ(c.rst(1), std::uint32_t(h2_protocol_error));
  EXPECT_FALSE(c.owner.streams[1].ended);
  EXPECT_EQ(c.owner.streams[1].closed, std::uint32_t(h2_protocol_error));
}

// ---- malformed requests: RST_STREAM PROTOCOL_ERROR, nothing reaches the owner ----

struct malformed_case {
  std::string name;
  header_list headers;
};

void PrintTo(const malformed_case& c, std::ostream* os) { *os << c.name; }

class H2Malformed : public ::testing::TestWithParam<malformed_case> {};

TEST_P(H2Malformed, IsResetWithProtocolErrorAndNeverReachesOwner) {
  h2_pair p;
  std::int32_t id = p.peer->request(GetParam().headers, std::string("secret body"));
  std::int32_t good = p.peer->request(client::get("/after"));
  p.pump();
  EXPECT_EQ(p.peer->streams[id].rst, std::uint32_t(h2_protocol_error)) << GetParam().name;
  EXPECT_FALSE(p.owner.streams.count(id)) << GetParam().name << ": reached the owner";
  // The connection carries on: the next request on it arrives.
  EXPECT_EQ(p.owner.heads, 1);
  EXPECT_EQ(p.owner.streams[good].head.path, "/after");
  EXPECT_FALSE(p.peer->goaway);
}

header_list with(header_list h, std::string n, std::string v) {
  h.emplace_back(std::move(n), std::move(v));
  return h;
}

INSTANTIATE_TEST_SUITE_P(
    Rfc9113, H2Malformed,
    ::testing::Values(
        malformed_case{"connection", with(client::get(), "connection", "keep-alive")},
        malformed_case{"keep_alive", with(client::get(), "keep-alive", "timeout=5")},
        malformed_case{"proxy_connection", with(client::get(), "proxy-connection", "x")},
        malformed_case{"transfer_encoding", with(client::get(), "transfer-encoding", "chunked")},
        malformed_case{"upgrade", with(client::get(), "upgrade", "websocket")},
        malformed_case{"te_gzip", with(client::get(), "te", "gzip")},
        malformed_case{"space_in_name", with(client::get(), "x bad", "1")},
        malformed_case{"cr_in_value", with(client::get(), "x-a", "a\rb")},
        malformed_case{"lf_in_value", with(client::get(), "x-a", "a\nb")},
        malformed_case{"nul_in_value", with(client::get(), "x-a", std::string("a\0b", 3))},
        malformed_case{"leading_space", with(client::get(), "x-a", " a")},
        malformed_case{"trailing_tab", with(client::get(), "x-a", "a\t")},
        malformed_case{"conflicting_host", with(client::get(), "host", "other.example")},
        malformed_case{"bad_content_length", with(client::get(), "content-length", "1x")},
        malformed_case{"missing_method",
                       {{":scheme", "https"}, {":authority", "a"}, {":path", "/"}}},
        malformed_case{"missing_path",
                       {{":method", "GET"}, {":scheme", "https"}, {":authority", "a"}}},
        malformed_case{"missing_scheme",
                       {{":method", "GET"}, {":authority", "a"}, {":path", "/"}}},
        malformed_case{"missing_authority_and_host",
                       {{":method", "GET"}, {":scheme", "https"}, {":path", "/"}}},
        malformed_case{"duplicate_path", with(client::get(), ":path", "/again")},
        malformed_case{"pseudo_after_regular",
                       {{":method", "GET"}, {":scheme", "https"}, {"x-a", "1"},
                        {":authority", "a"}, {":path", "/"}}},
        malformed_case{"unknown_pseudo", with(client::get(), ":foo", "1")},
        malformed_case{"response_pseudo_in_request", with(client::get(), ":status", "200")},
        malformed_case{"empty_path", {{":method", "GET"}, {":scheme", "https"},
                                      {":authority", "a"}, {":path", ""}}},
        malformed_case{"relative_path", {{":method", "GET"}, {":scheme", "https"},
                                         {":authority", "a"}, {":path", "x"}}}),
    [](const ::testing::TestParamInfo<malformed_case>& i) { return i.param.name; });

// nghttp2's client lowercases names before sending, so an uppercase name is built by hand.
TEST(H2Codec, UppercaseFieldNameIsResetAndNeverReachesOwner) {
  raw_client c(h2_options{});
  c.send(frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
                     c.hpack(with(client::get(), "X-Upper", "1"))));
  EXPECT_EQ(c.rst(1), std::uint32_t(h2_protocol_error));
  EXPECT_EQ(c.owner.heads, 0);
  c.send(frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 3,
                     c.hpack(client::get())));
  EXPECT_EQ(c.owner.heads, 1);
  EXPECT_FALSE(c.goaway());
}

// The head reaches the owner before the body shows the mismatch; then the request never ends,
// no byte beyond content-length arrives, and the stream closes with the error (the exchange is
// dropped).
TEST(H2Codec, BodyNotMatchingContentLengthIsResetAndNeverEnds) {
  for (const char* length : {"10", "3"}) {
    h2_pair p;
    std::int32_t id = p.peer->request(client::post(length), std::string("12345"));
    p.pump();
    EXPECT_EQ(p.peer->streams[id].rst, std::uint32_t(h2_protocol_error)) << length;
    EXPECT_LE(p.owner.streams[id].body.size(), std::stoul(length)) << length;
    EXPECT_FALSE(p.owner.streams[id].ended) << length;
    EXPECT_EQ(p.owner.streams[id].closed, std::uint32_t(h2_protocol_error)) << length;
  }
}

TEST(H2Codec, HeaderListOverLimitIsAnswered431) {
  h2_options o;
  o.max_header_list_size = 4096;
  h2_pair p(o);
  std::int32_t id = p.peer->request(with(client::get(), "x-big", std::string(5000, 'a')));
  std::int32_t ok = p.peer->request(with(client::get("/small"), "x-small", std::string(1000, 'a')));
  p.pump();
  EXPECT_EQ(p.peer->streams[id].status, "431");
  EXPECT_FALSE(p.owner.streams.count(id));
  EXPECT_EQ(p.owner.streams[ok].head.path, "/small");
}

// Streams 1, 3 and 5, each a GET without END_STREAM (so all stay open).
void open_three_streams(raw_client& c) {
  for (std::int32_t id : {1, 3, 5}) {
    c.send(frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id, c.hpack(client::get())));
  }
}

// Before the client has acknowledged the limit, a stream over it is refused (it may retry).
TEST(H2Codec, StreamsOverMaxConcurrentAreRefused) {
  h2_options o;
  o.max_concurrent_streams = 2;
  raw_client c(o, false);
  open_three_streams(c);
  EXPECT_EQ(c.owner.heads, 2);
  EXPECT_FALSE(c.rst(1));
  EXPECT_FALSE(c.rst(3));
  EXPECT_EQ(c.rst(5), std::uint32_t(h2_refused_stream));
  EXPECT_FALSE(c.owner.streams.count(5));
  EXPECT_FALSE(c.goaway());
}

// After acknowledging the limit, a client that exceeds it breaks the protocol: nghttp2 ends
// the connection (RFC 9113 §5.1.2 allows either; this one is not a well-behaved client).
TEST(H2Codec, StreamsOverAnAcknowledgedMaxConcurrentEndTheConnection) {
  h2_options o;
  o.max_concurrent_streams = 2;
  raw_client c(o, true);
  open_three_streams(c);
  EXPECT_EQ(c.owner.heads, 2);
  EXPECT_FALSE(c.owner.streams.count(5));
  EXPECT_EQ(c.goaway(), std::uint32_t(h2_protocol_error));
  EXPECT_TRUE(c.server.finished());
  EXPECT_EQ(c.owner.streams[1].closed, std::uint32_t(h2_protocol_error));
}

// A client that keeps the limit: the 3rd request waits for a stream to end, then is served.
TEST(H2Codec, ClientKeepingMaxConcurrentIsServedInTurn) {
  h2_options o;
  o.max_concurrent_streams = 2;
  h2_pair p(o);
  p.owner.end_hook = [&](std::int32_t id) { p.server->submit_response(id, 204, std::span<const h2_field>{}, true); };
  p.pump();
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 6; ++i) {
    ids.push_back(p.peer->request(client::get()));
  }
  p.pump();
  for (std::int32_t id : ids) {
    EXPECT_EQ(p.peer->streams[id].status, "204");
  }
  EXPECT_EQ(p.owner.heads, 6);
}

// ---- flow control: memory stays within the windows and buffer bounds ----

TEST(H2Codec, UnconsumedRequestBodyStaysWithinTheWindows) {
  h2_options o;
  o.initial_stream_window = 64 * 1024;
  o.connection_window = 160 * 1024;
  h2_pair p(o);
  std::string big(1024 * 1024, 'x');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = char('a' + i % 26);
  }
  header_list h = client::post();
  std::vector<std::int32_t> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(p.peer->request(h, big));
  }
  p.pump();
  // The owner takes nothing: each stream holds at most its window, all together at most the
  // connection window.
  std::size_t total = 0;
  for (std::int32_t id : ids) {
    EXPECT_LE(p.owner.streams[id].body.size(), o.initial_stream_window);
    EXPECT_EQ(p.server->stream_input_unconsumed(id), p.owner.streams[id].body.size());
    total += p.owner.streams[id].body.size();
  }
  EXPECT_LE(total, o.connection_window);
  EXPECT_GT(total, 0u);
  EXPECT_EQ(p.server->input_unconsumed(), total);

  // Now the owner takes what it gets: every body arrives whole and in order.
  std::map<std::int32_t, std::size_t> taken;
  for (int round = 0; round < 1000; ++round) {
    bool any = false;
    for (std::int32_t id : ids) {
      std::size_t have = p.owner.streams[id].body.size();
      if (have > taken[id]) {
        EXPECT_EQ(p.server->consume(id, have - taken[id]), h2_result::ok);
        taken[id] = have;
        any = true;
      }
    }
    p.pump();
    EXPECT_LE(p.server->input_unconsumed(), o.connection_window);
    if (!any) {
      break;
    }
  }
  for (std::int32_t id : ids) {
    EXPECT_EQ(p.owner.streams[id].body, big);
    EXPECT_TRUE(p.owner.streams[id].ended);
  }
}

TEST(H2Codec, ResetStreamGivesItsUnconsumedBytesBackToTheConnection) {
  h2_options o;
  o.initial_stream_window = 64 * 1024;
  o.connection_window = 64 * 1024;
  h2_pair p(o);
  header_list h = client::post();
  std::int32_t first = p.peer->request(h, std::string(200 * 1024, 'a'));
  p.pump();
  EXPECT_EQ(p.owner.streams[first].body.size(), 64u * 1024);
  EXPECT_EQ(p.server->reset_stream(first, h2_cancel), h2_result::ok);
  p.pump();
  EXPECT_EQ(p.owner.streams[first].closed, std::uint32_t(h2_cancel));
  EXPECT_EQ(p.server->input_unconsumed(), 0u);
  // The connection window is whole again: a second stream gets its full window.
  std::int32_t second = p.peer->request(h, std::string(200 * 1024, 'b'));
  p.pump();
  EXPECT_EQ(p.owner.streams[second].body.size(), 64u * 1024);
  EXPECT_EQ(p.server->consume(first, 1), h2_result::no_such_stream);
}

TEST(H2Codec, ResponseBodyIsBoundedAndResumesOnRoom) {
  h2_options o;
  o.stream_output_buffer = 32 * 1024;
  o.connection_output_buffer = 48 * 1024;
  h2_pair p(o);
  std::string big(1024 * 1024 + 7, 'z');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = char('a' + (i * 7) % 26);
  }
  std::map<std::int32_t, std::size_t> sent;
  std::size_t max_buffered = 0;
  std::size_t max_stream_buffered = 0;
  auto produce = [&](std::int32_t id) {
    for (;;) {
      std::size_t& pos = sent[id];
      if (pos == big.size()) {
        p.server->end_response(id);
        return;
      }
      h2_write_result r = p.server->write_body(id, bytes_of(std::string_view(big).substr(pos)));
      ASSERT_EQ(r.result, h2_result::ok);
      pos += r.accepted;
      max_buffered = std::max(max_buffered, p.server->output_buffered());
      max_stream_buffered = std::max(max_stream_buffered, p.server->stream_output_buffered(id));
      if (r.pause) {
        return;
      }
    }
  };
  p.owner.end_hook = [&](std::int32_t id) {
    p.server->submit_response(id, 200, std::span<const h2_field>{}, false);
    produce(id);
  };
  p.owner.room_hook = produce;
  std::int32_t a = p.peer->request(client::get("/a"));
  std::int32_t b = p.peer->request(client::get("/b"));
  p.pump();
  EXPECT_EQ(p.peer->streams[a].body, big);
  EXPECT_EQ(p.peer->streams[b].body, big);
  EXPECT_LE(max_stream_buffered, o.stream_output_buffer);
  EXPECT_LE(max_buffered, o.connection_output_buffer);
  EXPECT_GT(p.owner.streams[a].rooms, 0);
  EXPECT_EQ(p.owner.streams[a].closed, 0u);
}

TEST(H2Codec, ClientThatNeverOpensItsWindowIsReportedBlocked) {
  h2_options o;
  o.stream_output_buffer = 32 * 1024;
  // The client allows 1000 bytes per stream and never sends WINDOW_UPDATE.
  h2_pair p(o, false, {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1000}});
  bool paused = false;
  p.owner.end_hook = [&](std::int32_t id) {
    p.server->submit_response(id, 200, std::span<const h2_field>{}, false);
    std::string chunk(100 * 1024, 'q');
    h2_write_result r = p.server->write_body(id, bytes_of(chunk));
    paused = r.pause;
    EXPECT_EQ(r.accepted, o.stream_output_buffer);
  };
  std::int32_t id = p.peer->request(client::get());
  std::int64_t t0 = p.clock.now_ms();
  p.pump();
  EXPECT_TRUE(paused);
  EXPECT_EQ(p.peer->streams[id].body.size(), 1000u);
  EXPECT_EQ(p.server->blocked_since_ms(id), t0);
  p.clock.advance(std::chrono::seconds(30));
  p.pump();
  EXPECT_EQ(p.server->oldest_blocked_since_ms(), t0);
  EXPECT_LE(p.server->output_buffered(), o.stream_output_buffer);
  EXPECT_EQ(p.owner.streams[id].rooms, 0);
  // The I/O layer's timeout resets it; the stream closes and the memory goes.
  EXPECT_EQ(p.server->reset_stream(id, h2_cancel), h2_result::ok);
  p.pump();
  EXPECT_EQ(p.owner.streams[id].closed, std::uint32_t(h2_cancel));
  EXPECT_EQ(p.server->output_buffered(), 0u);
  EXPECT_FALSE(p.server->oldest_blocked_since_ms());
}

// ---- attacks ----

TEST(H2Codec, RapidResetIsCutOffWithEnhanceYourCalm) {
  h2_options o;
  o.rapid_reset_budget = 50;
  h2_pair p(o);
  for (int i = 0; i < 200 && !p.peer->goaway; ++i) {
    std::int32_t id = p.peer->request(client::get());
    p.pump();
    nghttp2_submit_rst_stream(p.peer->s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    p.pump();
  }
  EXPECT_EQ(p.peer->goaway, std::uint32_t(h2_enhance_your_calm));
  EXPECT_NE(p.server->failure().find("rapid reset"), std::string_view::npos);
  EXPECT_TRUE(p.server->finished());
  EXPECT_LE(p.owner.heads, 52);
}

// With the default options: a browser cancelling all its open streams at once is not cut off,
// a client that keeps opening and cancelling is.
TEST(H2Codec, DefaultBudgetAllowsCancellingEveryOpenStreamButNotAFlood) {
  h2_pair p;
  std::vector<std::int32_t> ids;
  for (std::uint32_t i = 0; i < p.options.max_concurrent_streams; ++i) {
    ids.push_back(p.peer->request(client::get()));
  }
  p.pump();
  ASSERT_EQ(p.owner.heads, int(ids.size()));
  for (std::int32_t id : ids) {
    nghttp2_submit_rst_stream(p.peer->s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
  }
  p.pump();
  EXPECT_FALSE(p.peer->goaway);
  for (int i = 0; i < 2000 && !p.peer->goaway; ++i) {
    std::int32_t id = p.peer->request(client::get());
    p.pump();
    nghttp2_submit_rst_stream(p.peer->s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    p.pump();
  }
  EXPECT_EQ(p.peer->goaway, std::uint32_t(h2_enhance_your_calm));
  EXPECT_LE(p.owner.heads, int(ids.size() + p.options.rapid_reset_budget) + 1);
}

TEST(H2Codec, CancelsMatchedByCompletionsAreNotCutOff) {
  h2_options o;
  o.rapid_reset_budget = 20;
  h2_pair p(o);
  p.owner.end_hook = [&](std::int32_t id) {
    if (p.owner.heads % 2 == 0) {
      p.server->submit_response(id, 204, std::span<const h2_field>{}, true);
    }
  };
  for (int i = 0; i < 300; ++i) {
    std::int32_t id = p.peer->request(client::get());
    p.pump();
    if (i % 2 == 0) {
      nghttp2_submit_rst_stream(p.peer->s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
      p.pump();
    }
  }
  EXPECT_FALSE(p.peer->goaway);
  EXPECT_EQ(p.owner.heads, 300);
}

TEST(H2Codec, NghttpResetRateLimitAlsoEndsTheConnection) {
  h2_options o;
  o.rapid_reset_budget = 100000;
  o.reset_rate_burst = 10;
  o.reset_rate_per_second = 1;
  raw_client c(o);
  for (std::int32_t id = 1; id < 100 && !c.goaway(); id += 2) {
    c.send(frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, id, c.hpack(client::get())) +
           frame_bytes(NGHTTP2_RST_STREAM, 0, id, u32(NGHTTP2_CANCEL)));
  }
  ASSERT_TRUE(c.goaway());
  EXPECT_TRUE(c.server.finished());
}

TEST(H2Codec, ContinuationFloodEndsTheConnection) {
  raw_client c(h2_options{});
  std::string block = c.hpack(client::get());
  c.send(frame_bytes(NGHTTP2_HEADERS, 0, 1, block));
  // CVE-2024-27316: CONTINUATION frames without END_HEADERS, each carrying a field.
  h2_feed_status st = h2_feed_status::ok;
  for (int i = 0; i < 50 && st == h2_feed_status::ok; ++i) {
    std::string lit;
    lit += char(0x10);
    lit += char(3);
    lit += "x-c";
    lit += char(100);
    lit += std::string(100, 'v');
    st = c.send(frame_bytes(NGHTTP2_CONTINUATION, 0, 1, lit));
  }
  EXPECT_EQ(st, h2_feed_status::closing);
  EXPECT_EQ(c.goaway(), std::uint32_t(h2_enhance_your_calm));
  EXPECT_EQ(c.owner.heads, 0);
  EXPECT_TRUE(c.server.finished());
}

TEST(H2Codec, EmptyContinuationFloodEndsTheConnection) {
  h2_options o;
  o.max_continuations = 100000;
  o.max_empty_frames = 20;
  raw_client c(o);
  c.send(frame_bytes(NGHTTP2_HEADERS, 0, 1, c.hpack(client::get())));
  for (int i = 0; i < 100; ++i) {
    c.send(frame_bytes(NGHTTP2_CONTINUATION, 0, 1, ""));
  }
  EXPECT_EQ(c.goaway(), std::uint32_t(h2_enhance_your_calm));
  EXPECT_EQ(c.owner.heads, 0);
}

TEST(H2Codec, EmptyHeadersFloodEndsTheConnection) {
  h2_options o;
  o.max_empty_frames = 20;
  raw_client c(o);
  std::string flood;
  for (std::int32_t id = 1; id < 200; id += 2) {
    flood += frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id, "");
  }
  c.send(flood);
  EXPECT_EQ(c.goaway(), std::uint32_t(h2_enhance_your_calm));
  EXPECT_EQ(c.owner.heads, 0);
}

TEST(H2Codec, EmptyDataFloodEndsTheConnection) {
  h2_options o;
  o.max_empty_frames = 50;
  raw_client c(o);
  c.send(frame_bytes(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1,
                     c.hpack(with(client::get(), "content-length", "1"))));
  std::string flood;
  for (int i = 0; i < 200; ++i) {
    flood += frame_bytes(NGHTTP2_DATA, 0, 1, "");
  }
  EXPECT_EQ(c.send(flood), h2_feed_status::closing);
  EXPECT_EQ(c.goaway(), std::uint32_t(h2_enhance_your_calm));
  EXPECT_NE(c.server.failure().find("empty frame"), std::string_view::npos);
  EXPECT_EQ(c.owner.streams[1].closed, std::uint32_t(h2_enhance_your_calm));
}

// 200 copies of one control frame at once, over a budget of 50: GOAWAY ENHANCE_YOUR_CALM.
void expect_control_flood_ends_connection(const std::string& one_frame, std::string_view why) {
  h2_options o;
  o.control_frame_burst = 50;
  o.control_frames_per_second = 10;
  raw_client c(o);
  std::string flood;
  for (int i = 0; i < 200; ++i) {
    flood += one_frame;
  }
  EXPECT_EQ(c.send(flood), h2_feed_status::closing);
  EXPECT_EQ(c.goaway(), std::uint32_t(h2_enhance_your_calm));
  EXPECT_EQ(c.server.failure(), why);
}

TEST(H2Codec, SettingsFloodEndsTheConnection) {
  expect_control_flood_ends_connection(frame_bytes(NGHTTP2_SETTINGS, 0, 0, ""), "SETTINGS flood");
}

TEST(H2Codec, PingFloodEndsTheConnection) {
  expect_control_flood_ends_connection(frame_bytes(NGHTTP2_PING, 0, 0, std::string(8, 'p')),
                                       "PING flood");
}

TEST(H2Codec, SettingsAtTheRefillRateAreAccepted) {
  h2_options o;
  o.control_frame_burst = 5;
  o.control_frames_per_second = 10;
  raw_client c(o);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(c.send(frame_bytes(NGHTTP2_SETTINGS, 0, 0, "")), h2_feed_status::ok);
    c.clock.advance(std::chrono::milliseconds(100));
  }
  EXPECT_FALSE(c.goaway());
}

TEST(H2Codec, SettingsFrameWithTooManyEntriesEndsTheConnection) {
  h2_options o;
  o.max_settings_entries = 8;
  raw_client c(o);
  std::string entries;
  for (int i = 0; i < 20; ++i) {
    entries += std::string{0, char(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)} + u32(100);
  }
  // nghttp2 ends this one itself: the GOAWAY comes with the next output.
  c.send(frame_bytes(NGHTTP2_SETTINGS, 0, 0, entries));
  EXPECT_TRUE(c.server.finished());
  EXPECT_EQ(c.goaway(), std::uint32_t(h2_enhance_your_calm));
}

TEST(H2Codec, PingsNeverReadBackEndTheConnection) {
  // The client does not read our PING ACKs: nghttp2's outbound ACK limit ends it.
  h2_options o;
  o.control_frame_burst = 100000;
  o.max_outbound_ack = 100;
  core::manual_clock clock;
  recorder owner;
  h2_codec server(o, owner, clock);
  std::string flood = std::string(NGHTTP2_CLIENT_MAGIC, NGHTTP2_CLIENT_MAGIC_LEN) +
                      frame_bytes(NGHTTP2_SETTINGS, 0, 0, "");
  for (int i = 0; i < 500; ++i) {
    flood += frame_bytes(NGHTTP2_PING, 0, 0, std::string(8, 'p'));
  }
  EXPECT_EQ(server.feed(bytes_of(flood)), h2_feed_status::closing);
  std::string out;
  while (server.pull_output(out) > 0) {
  }
  std::size_t acks = 0;
  std::optional<std::uint32_t> goaway;
  for (const frame& f : parse_frames(out)) {
    acks += f.type == NGHTTP2_PING;
    if (f.type == NGHTTP2_GOAWAY) {
      goaway = code_of(f);
    }
  }
  EXPECT_LE(acks, o.max_outbound_ack);
  EXPECT_EQ(goaway, std::uint32_t(h2_enhance_your_calm));
}

TEST(H2Codec, BadClientPrefaceEndsTheConnection) {
  core::manual_clock clock;
  recorder owner;
  h2_codec server(h2_options{}, owner, clock);
  EXPECT_EQ(server.feed(bytes_of("GET / HTTP/1.1\r\nHost: a\r\n\r\n")), h2_feed_status::closing);
  std::string out;
  while (server.pull_output(out) > 0) {
  }
  EXPECT_TRUE(server.finished());
  EXPECT_EQ(owner.heads, 0);
  EXPECT_EQ(server.feed(bytes_of("more")), h2_feed_status::closing);
}

// ---- GOAWAY ----

TEST(H2Codec, GracefulGoawayLetsInFlightStreamsFinish) {
  h2_pair p;
  std::vector<std::int32_t> seen;
  p.owner.end_hook = [&](std::int32_t id) { seen.push_back(id); };
  std::int32_t a = p.peer->request(client::get("/a"));
  std::int32_t b = p.peer->request(client::get("/b"));
  p.pump();
  ASSERT_EQ(seen.size(), 2u);
  p.server->goaway_graceful();
  p.pump();
  EXPECT_EQ(p.peer->goaway, 0u);
  EXPECT_FALSE(p.server->finished());
  // A stream opened after the GOAWAY is not served.
  std::int32_t late = p.peer->request(client::get("/late"));
  p.pump();
  EXPECT_FALSE(p.owner.streams.count(late));
  for (std::int32_t id : {a, b}) {
    p.server->submit_response(id, 200, std::span<const h2_field>{}, false);
    p.server->write_body(id, bytes_of("done"));
    p.server->end_response(id);
  }
  p.pump();
  EXPECT_EQ(p.peer->streams[a].body, "done");
  EXPECT_EQ(p.peer->streams[b].body, "done");
  EXPECT_EQ(p.owner.streams[a].closed, 0u);
  EXPECT_TRUE(p.server->finished());
}

TEST(H2Codec, ImmediateGoawayClosesOpenStreamsWithItsCode) {
  h2_pair p;
  std::int32_t a = p.peer->request(client::get("/a"));
  p.pump();
  ASSERT_EQ(p.owner.heads, 1);
  p.server->goaway_now(h2_internal_error);
  p.pump();
  EXPECT_EQ(p.peer->goaway, std::uint32_t(h2_internal_error));
  EXPECT_TRUE(p.server->finished());
  EXPECT_EQ(p.owner.streams[a].closed, std::uint32_t(h2_internal_error));
}

TEST(H2Codec, ClientResetIsReportedToTheOwner) {
  h2_pair p;
  std::int32_t a = p.peer->request(client::get("/a"));
  p.pump();
  nghttp2_submit_rst_stream(p.peer->s, NGHTTP2_FLAG_NONE, a, NGHTTP2_CANCEL);
  p.pump();
  EXPECT_EQ(p.owner.streams[a].closed, std::uint32_t(h2_cancel));
  EXPECT_EQ(p.server->write_body(a, bytes_of("x")).result, h2_result::no_such_stream);
}

TEST(H2Codec, OwnerMistakesAreErrorValues) {
  h2_pair p;
  std::int32_t a = p.peer->request(client::get("/a"));
  p.pump();
  EXPECT_EQ(p.server->write_body(a, bytes_of("x")).result, h2_result::bad_state);
  EXPECT_EQ(p.server->end_response(a), h2_result::bad_state);
  EXPECT_EQ(p.server->submit_response(99, 200, std::span<const h2_field>{}, true), h2_result::no_such_stream);
  EXPECT_EQ(p.server->submit_response(a, 42, std::span<const h2_field>{}, true), h2_result::bad_state);
  EXPECT_EQ(p.server->submit_response(a, 200, std::span<const h2_field>{}, true), h2_result::ok);
  EXPECT_EQ(p.server->submit_response(a, 200, std::span<const h2_field>{}, true), h2_result::bad_state);
  EXPECT_EQ(p.server->consume(a, 1), h2_result::bad_state);
  p.pump();
  EXPECT_EQ(p.peer->streams[a].status, "200");
}

}  // namespace
}  // namespace tlsfront::http
