#include "http/error_response.h"

#include <array>
#include <string>

namespace tlsfront::http {
namespace {

struct canned {
  int status;
  const char* reason;
  const char* body;
};

constexpr canned table[] = {
    {400, "Bad Request", "400 bad request\n"},
    {404, "Not Found", "404 no route for this request\n"},
    {408, "Request Timeout", "408 request timeout\n"},
    {413, "Content Too Large", "413 request body too large\n"},
    {431, "Request Header Fields Too Large", "431 request header fields too large\n"},
    {500, "Internal Server Error", "500 internal error\n"},
    {501, "Not Implemented", "501 not implemented\n"},
    {502, "Bad Gateway", "502 bad gateway: the backend refused or broke the connection\n"},
    {503, "Service Unavailable", "503 no backend server available\n"},
    {504, "Gateway Timeout", "504 gateway timeout: the backend did not answer in time\n"},
};

std::string render(const canned& c, bool keep_alive) {
  std::string body = c.body;
  return "HTTP/1.1 " + std::to_string(c.status) + " " + c.reason +
         "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
         (keep_alive ? "\r\n\r\n" : "\r\nConnection: close\r\n\r\n") + body;
}

struct rendered {
  std::string keep, close;
};

const rendered* all() {
  static const std::array<rendered, std::size(table)> r = [] {
    std::array<rendered, std::size(table)> out;
    for (size_t i = 0; i < std::size(table); ++i) {
      out[i].keep = render(table[i], true);
      out[i].close = render(table[i], false);
    }
    return out;
  }();
  return r.data();
}

}  // namespace

std::string_view error_response(int status, bool keep_alive) {
  bool may_keep = status == 404 || status == 502 || status == 503 || status == 504;
  const rendered* r = all();
  size_t fallback = 0;
  for (size_t i = 0; i < std::size(table); ++i) {
    if (table[i].status == 500) {
      fallback = i;
    }
    if (table[i].status == status) {
      return keep_alive && may_keep ? r[i].keep : r[i].close;
    }
  }
  return r[fallback].close;
}

std::string_view error_body(int status) {
  const std::string_view r = error_response(status, false);
  return r.substr(r.find("\r\n\r\n") + 4);
}

std::string_view continue_response() { return "HTTP/1.1 100 Continue\r\n\r\n"; }

}  // namespace tlsfront::http
