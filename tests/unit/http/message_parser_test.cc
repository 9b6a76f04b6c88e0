#include "http/message_parser.h"

#include <gtest/gtest.h>

#include "http/error_response.h"
#include "http/header_rewrite.h"

namespace tlsfront::http {
namespace {

using status = message_parser::status;

struct parsed {
  status last = status::need_more;
  std::string body;   // as framed on output
  message_head head;  // copy of the views is unsafe; tests read through the parser instead
};

// Feeds `raw` in pieces of `step` bytes until message_done or error; returns the last status.
status feed_all(message_parser& p, const std::string& raw, std::size_t step, std::string* sink,
                body_framing framing, std::size_t* leftover = nullptr) {
  std::size_t pos = 0;
  bool head_seen = false;
  for (;;) {
    std::size_t n = std::min(step, raw.size() - pos);
    std::size_t consumed = 0;
    status st = p.feed(std::string_view(raw).substr(pos, n), consumed);
    pos += consumed;
    if (st == status::head_done) {
      head_seen = true;
      p.set_body_output(sink, framing);
      continue;
    }
    if (st == status::message_done || st == status::error) {
      if (leftover) {
        *leftover = raw.size() - pos;
      }
      EXPECT_TRUE(st == status::error || head_seen);
      return st;
    }
    if (pos == raw.size()) {
      return st;
    }
  }
}

message_parser::limits small_limits() {
  return {1024, 10};
}

TEST(MessageParser, SimpleGetAnyChunking) {
  const std::string raw = "GET /a?b=c HTTP/1.1\r\nHost: Example.com:8443\r\nX-A: 1\r\n\r\n";
  for (std::size_t step : {1u, 2u, 3u, 7u, 1000u}) {
    message_parser p(message_parser::kind::request, small_limits());
    EXPECT_EQ(feed_all(p, raw, step, nullptr, body_framing::none), status::message_done)
        << "step " << step << ": " << p.error_reason();
    EXPECT_EQ(p.head().method, "GET");
    EXPECT_EQ(p.head().target, "/a?b=c");
    EXPECT_EQ(p.head().host, "Example.com:8443");
    EXPECT_EQ(p.head().find("x-a").value_or(""), "1");
    EXPECT_TRUE(p.head().keep_alive);
  }
}

TEST(MessageParser, ValueWithSpacesSplitAcrossFeedsIsNotFolding) {
  const std::string raw = "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: a b c d e f\r\n\r\n";
  for (std::size_t step = 1; step < raw.size(); ++step) {
    message_parser p(message_parser::kind::request, small_limits());
    ASSERT_EQ(feed_all(p, raw, step, nullptr, body_framing::none), status::message_done)
        << "step " << step << ": " << p.error_reason();
    EXPECT_EQ(p.head().find("user-agent").value_or(""), "a b c d e f");
  }
}

TEST(MessageParser, ObsoleteLineFoldingIsRefusedAtAnySplit) {
  const std::string raw = "GET / HTTP/1.1\r\nHost: a\r\nX-Long: one\r\n two\r\n\r\n";
  for (std::size_t step = 1; step <= raw.size(); ++step) {
    message_parser p(message_parser::kind::request, small_limits());
    EXPECT_EQ(feed_all(p, raw, step, nullptr, body_framing::none), status::error) << step;
    EXPECT_EQ(p.error(), parse_error::bad_message);
  }
}

TEST(MessageParser, ContentLengthBodyStreamsToSink) {
  const std::string raw = "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world";
  for (std::size_t step : {1u, 5u, 1000u}) {
    message_parser p(message_parser::kind::request, small_limits());
    std::string sink;
    EXPECT_EQ(feed_all(p, raw, step, &sink, body_framing::content_length), status::message_done);
    EXPECT_EQ(sink, "hello world");
    EXPECT_EQ(p.body_bytes(), 11u);
  }
}

TEST(MessageParser, ChunkedBodyIsReframedAndTrailersDropped) {
  const std::string raw =
      "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=v\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
  message_parser p(message_parser::kind::request, small_limits());
  std::string sink;
  ASSERT_EQ(feed_all(p, raw, 1000, &sink, body_framing::chunked), status::message_done);
  EXPECT_EQ(sink, "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_TRUE(p.head().chunked);
}

TEST(MessageParser, TrailersAreKeptAsideFedInPieces) {
  const std::string raw =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n0\r\nX-Checksum: abc \t\r\ngrpc-status: 0\r\n\r\n";
  for (std::size_t piece : {std::size_t{1}, std::size_t{7}, std::size_t{1000}}) {
    message_parser p(message_parser::kind::response, small_limits());
    std::string sink;
    ASSERT_EQ(feed_all(p, raw, piece, &sink, body_framing::none), status::message_done) << piece;
    EXPECT_EQ(sink, "hello");
    ASSERT_EQ(p.trailers().size(), 2u) << piece;
    EXPECT_EQ(p.trailers()[0].name, "X-Checksum");
    EXPECT_EQ(p.trailers()[0].value, "abc");
    EXPECT_EQ(p.trailers()[1].name, "grpc-status");
    EXPECT_EQ(p.trailers()[1].value, "0");
    p.reset_for_next();
    EXPECT_TRUE(p.trailers().empty());
  }
}

TEST(MessageParser, TooManyTrailerFieldsAreRefused) {
  std::string raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n";
  for (std::size_t i = 0; i <= small_limits().max_header_count; ++i) {
    raw += "t" + std::to_string(i) + ": v\r\n";
  }
  raw += "\r\n";
  message_parser p(message_parser::kind::response, small_limits());
  ASSERT_EQ(feed_all(p, raw, 1000, nullptr, body_framing::none), status::error);
  EXPECT_EQ(p.error(), parse_error::header_too_large);
}

TEST(MessageParser, PipelinedRequestsStopAtTheMessageBoundary) {
  const std::string one = "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n";
  const std::string two = "GET /2 HTTP/1.1\r\nHost: a\r\n\r\n";
  message_parser p(message_parser::kind::request, small_limits());
  std::size_t leftover = 0;
  ASSERT_EQ(feed_all(p, one + two, 1000, nullptr, body_framing::none, &leftover),
            status::message_done);
  EXPECT_EQ(leftover, two.size());
  p.reset_for_next();
  ASSERT_EQ(feed_all(p, two, 1000, nullptr, body_framing::none), status::message_done);
  EXPECT_EQ(p.head().target, "/2");
}

TEST(MessageParser, FramingAttacksAreRefused) {
  struct {
    const char* name;
    std::string raw;
    parse_error err;
  } cases[] = {
      {"CL+TE",
       "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
       parse_error::bad_message},
      {"CL twice", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
       parse_error::bad_message},
      {"TE twice",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
       "chunked\r\n\r\n",
       parse_error::bad_message},
      {"TE gzip", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
       parse_error::not_implemented},
      {"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
       parse_error::bad_message},
      {"no Host", "GET / HTTP/1.1\r\n\r\n", parse_error::bad_message},
      {"Host twice", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", parse_error::bad_message},
      {"empty Host", "GET / HTTP/1.1\r\nHost: \r\n\r\n", parse_error::bad_message},
      {"Host with slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", parse_error::bad_message},
      {"CL in trailer",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nContent-Length: "
       "3\r\n\r\n",
       parse_error::bad_message},
      {"TE in trailer",
       "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nTransfer-Encoding: "
       "chunked\r\n\r\n",
       parse_error::bad_message},
      {"negative CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
       parse_error::bad_message},
      {"HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", parse_error::bad_message},
      {"CONNECT", "CONNECT a:1 HTTP/1.1\r\nHost: a:1\r\n\r\n", parse_error::not_implemented},
      {"asterisk GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", parse_error::bad_message},
      {"too many headers", "GET / HTTP/1.1\r\nHost: a\r\n" + std::string(11 * 5, 'x') + "\r\n\r\n",
       parse_error::bad_message},
      {"header bytes", "GET / HTTP/1.1\r\nHost: a\r\nX: " + std::string(2000, 'v') + "\r\n\r\n",
       parse_error::header_too_large},
  };
  for (const auto& tc : cases) {
    for (std::size_t step : {1u, 1000000u}) {
      message_parser p(message_parser::kind::request, small_limits());
      EXPECT_EQ(feed_all(p, tc.raw, step, nullptr, body_framing::none), status::error)
          << tc.name << " step " << step;
      EXPECT_EQ(p.error(), tc.err) << tc.name << ": " << p.error_reason();
    }
  }
}

TEST(MessageParser, HeaderCountLimitGives431) {
  std::string raw = "GET / HTTP/1.1\r\nHost: a\r\n";
  for (int i = 0; i < 12; ++i) {
    raw += "X-" + std::to_string(i) + ": v\r\n";
  }
  raw += "\r\n";
  message_parser p(message_parser::kind::request, small_limits());
  EXPECT_EQ(feed_all(p, raw, 1000, nullptr, body_framing::none), status::error);
  EXPECT_EQ(p.error(), parse_error::header_too_large);
}

TEST(MessageParser, AbsoluteFormTargetTakesTheAuthority) {
  message_parser p(message_parser::kind::request, small_limits());
  ASSERT_EQ(feed_all(p, "GET https://b.example:8443/p?q HTTP/1.1\r\nHost: ignored\r\n\r\n", 1000,
                     nullptr, body_framing::none),
            status::message_done);
  EXPECT_EQ(p.head().host, "b.example:8443");
  EXPECT_EQ(p.head().target, "/p?q");
}

TEST(MessageParser, ResponseToHeadHasNoBody) {
  message_parser p(message_parser::kind::response, small_limits());
  p.set_no_body_expected(true);
  std::size_t leftover = 0;
  ASSERT_EQ(feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nHTTP/1.1 204 No\r\n\r\n",
                     1000, nullptr, body_framing::none, &leftover),
            status::message_done);
  EXPECT_EQ(leftover, 19u);
}

TEST(MessageParser, ResponseUntilCloseCompletesOnFinish) {
  message_parser p(message_parser::kind::response, small_limits());
  std::string sink;
  EXPECT_EQ(feed_all(p, "HTTP/1.1 200 OK\r\n\r\nabc", 1000, &sink, body_framing::chunked),
            status::need_more);
  EXPECT_TRUE(p.body_until_close());
  EXPECT_EQ(p.finish(), status::message_done);
  EXPECT_EQ(sink, "3\r\nabc\r\n0\r\n\r\n");
}

TEST(MessageParser, TruncatedResponseIsAnError) {
  message_parser p(message_parser::kind::response, small_limits());
  EXPECT_EQ(feed_all(p, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 1000, nullptr,
                     body_framing::none),
            status::need_more);
  EXPECT_EQ(p.finish(), status::error);
}

TEST(MessageParser, ResponseFramingConflictsAreErrors) {
  for (std::string raw : {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
                          "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
                          "HTTP/1.1 101 Switching\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n"}) {
    message_parser p(message_parser::kind::response, small_limits());
    EXPECT_EQ(feed_all(p, raw, 1000, nullptr, body_framing::none), status::error) << raw;
  }
}

TEST(HeaderRewrite, BackendRequestDropsHopByHopAndUntrustedForwarding) {
  message_parser p(message_parser::kind::request, small_limits());
  ASSERT_EQ(feed_all(p,
                     "POST /u HTTP/1.1\r\nHost: a.example\r\nConnection: close, X-Drop\r\n"
                     "X-Drop: 1\r\nX-Keep: 2\r\nX-Forwarded-For: 9.9.9.9\r\nTE: trailers\r\n"
                     "Content-Length: 0\r\nExpect: 100-continue\r\n\r\n",
                     1000, nullptr, body_framing::none),
            status::message_done);
  std::string out;
  build_backend_request(p.head(), forwarded_info{"10.0.0.1", "https", "", ""},
                        body_framing::content_length, out);
  EXPECT_EQ(out,
            "POST /u HTTP/1.1\r\nX-Keep: 2\r\nHost: a.example\r\nX-Forwarded-For: 10.0.0.1\r\n"
            "X-Forwarded-Proto: https\r\nX-Forwarded-Host: a.example\r\nContent-Length: 0\r\n\r\n");
}

TEST(HeaderRewrite, ClientResponseGetsTlsfrontFraming) {
  message_parser p(message_parser::kind::response, small_limits());
  std::string raw = "HTTP/1.1 200 OK\r\nKeep-Alive: timeout=5\r\nX-A: b\r\n\r\nbody";
  std::size_t consumed = 0;
  ASSERT_EQ(p.feed(raw, consumed), status::head_done);
  std::string out;
  build_client_response(p.head(), body_framing::chunked, true, out);
  EXPECT_EQ(out,
            "HTTP/1.1 200 OK\r\nX-A: b\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
}

TEST(ErrorResponse, CannedResponsesAreWellFormed) {
  for (int s : {400, 404, 408, 413, 431, 501, 502, 503, 504}) {
    std::string r(error_response(s, true));
    message_parser p(message_parser::kind::response, small_limits());
    ASSERT_EQ(feed_all(p, r, 1000, nullptr, body_framing::none), status::message_done) << r;
    EXPECT_EQ(p.head().status, s);
  }
  EXPECT_NE(std::string(error_response(400, true)).find("Connection: close"), std::string::npos);
  EXPECT_EQ(std::string(error_response(502, true)).find("Connection: close"), std::string::npos);
}


// A chunk-size line is capped: at most 16 hex digits (leading zeros included) and 1 KiB of
// extensions, for requests and responses alike, however the bytes are split.
TEST(MessageParser, ChunkSizeDigitsAndExtensionsAreCapped) {
  const std::string head_req = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  const std::string head_resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
  const struct {
    const char* name;
    std::string body;
    bool ok;
  } cases[] = {
      {"16 digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", true},
      {"17 digits", "00000000000000005\r\nhello\r\n0\r\n\r\n", false},
      {"many zeros", std::string(10000, '0') + "5\r\nhello\r\n0\r\n\r\n", false},
      {"17 digits, second chunk", "1\r\na\r\n00000000000000005\r\nhello\r\n0\r\n\r\n", false},
      {"zeros in the last chunk", "1\r\na\r\n" + std::string(17, '0') + "\r\n\r\n", false},
      {"1 KiB extension", "5;" + std::string(1023, 'e') + "\r\nhello\r\n0\r\n\r\n", true},
      {"extension over 1 KiB", "5;" + std::string(1024, 'e') + "\r\nhello\r\n0\r\n\r\n", false},
      {"long value", "5;a=" + std::string(2000, 'v') + "\r\nhello\r\n0\r\n\r\n", false},
      {"many extensions", "5" + [] {
         std::string e;
         for (int i = 0; i < 200; ++i) {
           e += ";e=" + std::to_string(i);
         }
         return e;
       }() + "\r\nhello\r\n0\r\n\r\n", false},
      {"long extension on the last chunk", "5\r\nhello\r\n0;" + std::string(2000, 'e') + "\r\n\r\n",
       false},
  };
  for (const auto& tc : cases) {
    for (bool request : {true, false}) {
      for (std::size_t step : {1u, 7u, 1000000u}) {
        message_parser p(request ? message_parser::kind::request : message_parser::kind::response,
                         small_limits());
        std::string sink;
        status st = feed_all(p, (request ? head_req : head_resp) + tc.body, step, &sink,
                             body_framing::content_length);
        if (tc.ok) {
          EXPECT_EQ(st, status::message_done) << tc.name << " step " << step << ": " << p.error_reason();
          EXPECT_EQ(sink, "hello") << tc.name;
        } else {
          EXPECT_EQ(st, status::error) << tc.name << " step " << step;
          EXPECT_EQ(p.error(), parse_error::bad_message) << tc.name;
          EXPECT_NE(p.error_reason().find("chunk"), std::string::npos) << p.error_reason();
        }
      }
    }
  }
}

// Many chunks and a pipelined request after a chunked one: the pauses at each chunk's end stay
// inside feed().
TEST(MessageParser, ManyChunksThenPipelinedRequest) {
  std::string raw = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
  std::string expect;
  for (int i = 1; i <= 300; ++i) {
    raw += "1;x=y\r\n" + std::string(1, static_cast<char>('a' + i % 26)) + "\r\n";
    expect += static_cast<char>('a' + i % 26);
  }
  raw += "0\r\n\r\nDELETE /next HTTP/1.1\r\nHost: a\r\n\r\n";
  for (std::size_t step : {1u, 5u, 1000000u}) {
    message_parser p(message_parser::kind::request, small_limits());
    std::string sink;
    std::size_t leftover = 0;
    ASSERT_EQ(feed_all(p, raw, step, &sink, body_framing::content_length, &leftover),
              status::message_done)
        << p.error_reason();
    EXPECT_EQ(sink, expect);
    p.reset_for_next();
    const std::string rest = raw.substr(raw.size() - leftover);
    EXPECT_EQ(feed_all(p, rest, step, nullptr, body_framing::none), status::message_done) << rest;
    EXPECT_EQ(p.head().method, "DELETE");
  }
}

TEST(HeaderRewrite, UntrustedClientFieldsAreDroppedAndTargetReplaced) {
  message_parser p(message_parser::kind::request, small_limits());
  ASSERT_EQ(feed_all(p,
                     "GET /a/../b HTTP/1.1\r\nHost: a.example\r\nForwarded: for=6.6.6.6\r\n"
                     "x-real-ip: 6.6.6.6\r\nTrue-Client-IP: 6.6.6.6\r\nX-Client-IP: 6.6.6.6\r\n"
                     "X-Forwarded-Port: 1\r\nX-Custom: c\r\nX-Keep: k\r\n\r\n",
                     1000, nullptr, body_framing::none),
            status::message_done);
  const std::vector<std::string> defaults(default_untrusted_fields.begin(),
                                          default_untrusted_fields.end());
  std::string out;
  build_backend_request(p.head(),
                        forwarded_info{"10.0.0.1", "https", "", "", "/b", defaults},
                        body_framing::none, out);
  EXPECT_EQ(out,
            "GET /b HTTP/1.1\r\nX-Custom: c\r\nX-Keep: k\r\nHost: a.example\r\n"
            "X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: "
            "a.example\r\n\r\n");
  // A list of its own: only those go (Forwarded is then the client's to send).
  const std::vector<std::string> custom = {"x-custom"};
  out.clear();
  build_backend_request(p.head(), forwarded_info{"10.0.0.1", "https", "", "", "", custom},
                        body_framing::none, out);
  EXPECT_EQ(out.rfind("GET /a/../b HTTP/1.1\r\n", 0), 0u) << out;
  EXPECT_EQ(out.find("X-Custom"), std::string::npos) << out;
  EXPECT_NE(out.find("x-real-ip: 6.6.6.6\r\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Forwarded: for=6.6.6.6\r\n"), std::string::npos) << out;
}

}  // namespace
}  // namespace tlsfront::http

namespace tlsfront::http {
namespace {

TEST(HeaderRewrite, Http10RequestWithoutHostGetsTheSniName) {
  message_parser p(message_parser::kind::request, {1024, 10});
  std::size_t consumed = 0;
  ASSERT_EQ(p.feed("GET /x HTTP/1.0\r\n\r\n", consumed), message_parser::status::head_done);
  std::string out;
  build_backend_request(p.head(), forwarded_info{"10.0.0.1", "https", "a.example", ""},
                        body_framing::none, out);
  EXPECT_NE(out.find("Host: a.example\r\n"), std::string::npos) << out;
  EXPECT_EQ(out.rfind("GET /x HTTP/1.1\r\n", 0), 0u);
}

}  // namespace
}  // namespace tlsfront::http
