// Unit tests of http::normalize_target: RFC 3986 §5.4 examples (as merged paths), dot-segments,
// percent-decoding of unreserved characters, and every refusal.
#include "http/path_normalize.h"

#include <gtest/gtest.h>

namespace tlsfront::http {
namespace {

struct outcome {
  path_error error;
  std::string path;
};

outcome normalize(std::string_view target, bool allow_encoded_slashes = false) {
  std::string out = "kept:";  // appended to, never cleared
  path_error e = normalize_target(target, path_options{allow_encoded_slashes}, out);
  if (e != path_error::none) {
    EXPECT_EQ(out, "kept:") << "output written on error for " << target;
    return {e, ""};
  }
  return {e, out.substr(5)};
}

// RFC 3986 §5.4.1 and §5.4.2 with base "http://a/b/c/d;p?q": each relative reference merged
// with the base path (§5.2.3: "/b/c/" + reference) must normalize to the RFC's result path.
TEST(PathNormalize, Rfc3986Section54Examples) {
  const struct {
    const char* reference;
    const char* expected;
  } cases[] = {
      {"g", "/b/c/g"},
      {"./g", "/b/c/g"},
      {"g/", "/b/c/g/"},
      {".", "/b/c/"},
      {"./", "/b/c/"},
      {"..", "/b/"},
      {"../", "/b/"},
      {"../g", "/b/g"},
      {"../..", "/"},
      {"../../", "/"},
      {"../../g", "/g"},
      {"g?y", "/b/c/g?y"},
      {"g#s", "/b/c/g#s"},
      {"g?y#s", "/b/c/g?y#s"},
      {";x", "/b/c/;x"},
      {"g;x", "/b/c/g;x"},
      {"g;x?y#s", "/b/c/g;x?y#s"},
      // abnormal examples (§5.4.2)
      {"g.", "/b/c/g."},
      {".g", "/b/c/.g"},
      {"g..", "/b/c/g.."},
      {"..g", "/b/c/..g"},
      {"./../g", "/b/g"},
      {"./g/.", "/b/c/g/"},
      {"g/./h", "/b/c/g/h"},
      {"g/../h", "/b/c/h"},
      {"g;x=1/./y", "/b/c/g;x=1/y"},
      {"g;x=1/../y", "/b/c/y"},
      {"g?y/./x", "/b/c/g?y/./x"},
      {"g?y/../x", "/b/c/g?y/../x"},
      {"g#s/./x", "/b/c/g#s/./x"},
      {"g#s/../x", "/b/c/g#s/../x"},
  };
  for (const auto& tc : cases) {
    const std::string target = std::string("/b/c/") + tc.reference;
    outcome o = normalize(target);
    EXPECT_EQ(o.error, path_error::none) << target;
    EXPECT_EQ(o.path, tc.expected) << target;
  }
  // The absolute-path examples: "/./g" is "/g"; "/../g" and "../../../g" (RFC: "/g", the
  // extra ".." dropped) climb above the root, which a proxy refuses.
  EXPECT_EQ(normalize("/./g").path, "/g");
  EXPECT_EQ(normalize("/../g").error, path_error::above_root);
  EXPECT_EQ(normalize("/b/c/../../../g").error, path_error::above_root);
  EXPECT_EQ(normalize("/b/c/../../../../g").error, path_error::above_root);
}

TEST(PathNormalize, PlainPathsAndQueriesPassUnchanged) {
  for (const char* t : {"/", "/a", "/a/b/", "/a?x=1&y=/../z", "/a?", "/index.html", "/a;b=c",
                        "/~user/", "/a-b_c.d~e", "/%E2%82%AC", "/a%20b", "/?%zz"}) {
    outcome o = normalize(t);
    EXPECT_EQ(o.error, path_error::none) << t;
    EXPECT_EQ(o.path, t);
  }
}

TEST(PathNormalize, EmptySegmentsAreKept) {
  EXPECT_EQ(normalize("//").path, "//");
  EXPECT_EQ(normalize("//a//b").path, "//a//b");
  EXPECT_EQ(normalize("/a//../b").path, "/a/b");  // ".." removes the empty segment
  EXPECT_EQ(normalize("/a/.//b").path, "/a//b");
}

TEST(PathNormalize, TrailingDotSegmentsLeaveASlash) {
  EXPECT_EQ(normalize("/a/b/..").path, "/a/");
  EXPECT_EQ(normalize("/a/..").path, "/");
  EXPECT_EQ(normalize("/a/.").path, "/a/");
  EXPECT_EQ(normalize("/.").path, "/");
  EXPECT_EQ(normalize("/a/b/..?q").path, "/a/?q");
  EXPECT_EQ(normalize("/..").error, path_error::above_root);
  EXPECT_EQ(normalize("/a/../..").error, path_error::above_root);
}

TEST(PathNormalize, EncodedUnreservedAreDecodedBeforeDotSegments) {
  EXPECT_EQ(normalize("/public/%2e%2E/admin").path, "/admin");
  EXPECT_EQ(normalize("/public/%2E%2e/admin").path, "/admin");
  EXPECT_EQ(normalize("/public/.%2e/admin").path, "/admin");
  EXPECT_EQ(normalize("/public/%2e/admin").path, "/public/admin");
  EXPECT_EQ(normalize("/%2e%2e").error, path_error::above_root);
  EXPECT_EQ(normalize("/%41%62%7e%5F%2D%30").path, "/Ab~_-0");
  EXPECT_EQ(normalize("/%61dmin").path, "/admin");
}

TEST(PathNormalize, OtherEscapesStayWithUpperCaseHex) {
  EXPECT_EQ(normalize("/a%3ab").path, "/a%3Ab");
  EXPECT_EQ(normalize("/a%3Ab").path, "/a%3Ab");
  EXPECT_EQ(normalize("/%e2%82%ac").path, "/%E2%82%AC");
  EXPECT_EQ(normalize("/a%25").path, "/a%25");        // an encoded '%' stays encoded
  EXPECT_EQ(normalize("/%252e%252e").path, "/%252e%252e");  // not decoded twice
  EXPECT_EQ(normalize("/a%3F?q").path, "/a%3F?q");   // an encoded '?' is not the query
}

TEST(PathNormalize, EncodedSlashesRefusedUnlessAllowed) {
  for (const char* t : {"/a%2Fb", "/a%2fb", "/a%5Cb", "/a%5cb", "/%2F", "/..%2F..%2Fetc"}) {
    EXPECT_EQ(normalize(t).error, path_error::encoded_slash) << t;
  }
  EXPECT_EQ(normalize("/a%2fb", true).path, "/a%2Fb");
  EXPECT_EQ(normalize("/a%5cb", true).path, "/a%5Cb");
  // Allowed, an encoded slash does not split segments: "..%2F.." is one segment.
  EXPECT_EQ(normalize("/x/..%2F../y", true).path, "/x/..%2F../y");
}

TEST(PathNormalize, InvalidEscapesAndNulAreRefused) {
  for (const char* t : {"/%", "/a%", "/a%4", "/a%zz", "/a%G0", "/a%0g", "/%%41", "/a%-1"}) {
    EXPECT_EQ(normalize(t).error, path_error::bad_escape) << t;
  }
  EXPECT_EQ(normalize("/a%00b").error, path_error::nul);
  EXPECT_EQ(normalize(std::string_view("/a\0b", 4)).error, path_error::nul);
  EXPECT_EQ(normalize(std::string_view("/a?b\0", 5)).error, path_error::nul);
}

TEST(PathNormalize, NotOriginFormIsRefused) {
  EXPECT_EQ(normalize("").error, path_error::not_origin_form);
  EXPECT_EQ(normalize("*").error, path_error::not_origin_form);
  EXPECT_EQ(normalize("a/b").error, path_error::not_origin_form);
  EXPECT_FALSE(describe(path_error::above_root).empty());
}

}  // namespace
}  // namespace tlsfront::http
