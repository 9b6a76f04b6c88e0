#include "http/header_rewrite.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace tlsfront::http {

bool names_in_connection(const message_head& head, std::string_view name) {
  for (const auto& h : head.headers) {
    if (!iequals(h.name, "connection")) {
      continue;
    }
    std::string_view v = h.value;
    while (!v.empty()) {
      size_t comma = v.find(',');
      std::string_view token = v.substr(0, comma);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
        token.remove_prefix(1);
      }
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
        token.remove_suffix(1);
      }
      if (iequals(token, name)) {
        return true;
      }
      if (comma == std::string_view::npos) {
        break;
      }
      v.remove_prefix(comma + 1);
    }
  }
  return false;
}

namespace {

// The first seven are hop-by-hop in both directions; the rest are re-created by tlsfront or,
// for HTTP2-Settings, only meaningful for the h2c upgrade tlsfront never forwards; Early-Data is
// tlsfront's to say (RFC 8470 §5.1), never the client's.
constexpr std::array<std::string_view, 14> dropped_fields = {
    "connection",        "keep-alive",       "proxy-connection", "te",        "transfer-encoding",
    "upgrade",           "trailer",          "content-length",   "expect",    "x-forwarded-for",
    "x-forwarded-proto", "x-forwarded-host", "http2-settings",   "early-data"};

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_framing(const message_head& head, body_framing framing, std::string& out) {
  if (framing == body_framing::chunked) {
    out.append("Transfer-Encoding: chunked\r\n");
  } else if (framing == body_framing::content_length) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, head.content_length.value_or(0));
    append_field(out, "Content-Length", std::string_view(buf, static_cast<size_t>(r.ptr - buf)));
  }
}

bool dropped(const message_head& head, std::string_view name) {
  for (std::string_view d : dropped_fields) {
    if (iequals(name, d)) {
      return true;
    }
  }
  return names_in_connection(head, name);
}

}  // namespace

bool forwardable_trailer(std::string_view name, std::span<const std::string> drop) {
  const auto named = [&](std::string_view d) { return iequals(name, d); };
  return !iequals(name, "host") &&
         std::none_of(dropped_fields.begin(), dropped_fields.end(), named) &&
         std::none_of(drop.begin(), drop.end(), named);
}

bool is_hop_by_hop(const message_head& head, std::string_view name) {
  for (size_t i = 0; i < 7; ++i) {
    if (iequals(name, dropped_fields[i])) {
      return true;
    }
  }
  return names_in_connection(head, name);
}

void build_backend_request(const message_head& head, const forwarded_info& fwd,
                           body_framing framing, std::string& out) {
  out.append(head.method);
  out.push_back(' ');
  out.append(fwd.target.empty() ? head.target : fwd.target);
  out.append(" HTTP/1.1\r\n");
  bool host_written = false;
  for (const auto& h : head.headers) {
    if (iequals(h.name, "host")) {
      // Written once, from the parsed value (which an absolute-form target may override).
      continue;
    }
    if (dropped(head, h.name) ||
        std::any_of(fwd.drop.begin(), fwd.drop.end(),
                    [&](const std::string& d) { return iequals(h.name, d); })) {
      continue;
    }
    append_field(out, h.name, h.value);
  }
  std::string_view host = head.host.empty() ? fwd.default_host : head.host;
  if (!host.empty()) {
    append_field(out, "Host", host);
    host_written = true;
  }
  append_field(out, "X-Forwarded-For", fwd.client_address);
  append_field(out, "X-Forwarded-Proto", fwd.proto);
  if (host_written) {
    append_field(out, "X-Forwarded-Host", host);
  }
  if (!fwd.session_header.empty() && !fwd.session_handle.empty()) {
    append_field(out, fwd.session_header, fwd.session_handle);
  }
  if (!fwd.client_verify_header.empty() && !fwd.client_verify.empty()) {
    append_field(out, fwd.client_verify_header, fwd.client_verify);
  }
  if (!fwd.client_cert_header.empty() && !fwd.client_cert.empty()) {
    append_field(out, fwd.client_cert_header, fwd.client_cert);
  }
  if (fwd.early_data) {
    append_field(out, "Early-Data", "1");
  }
  if (!fwd.upgrade.empty()) {
    append_field(out, "Connection", "Upgrade");
    append_field(out, "Upgrade", fwd.upgrade);
  }
  append_framing(head, framing, out);
  out.append("\r\n");
}

void build_client_response(const message_head& head, body_framing framing, bool close,
                           std::string& out, std::string_view upgrade) {
  out.append("HTTP/1.1 ");
  char buf[8];
  auto r = std::to_chars(buf, buf + sizeof buf, head.status);
  out.append(buf, r.ptr);
  out.push_back(' ');
  out.append(head.reason);
  out.append("\r\n");
  for (const auto& h : head.headers) {
    if (is_hop_by_hop(head, h.name) || iequals(h.name, "content-length")) {
      continue;
    }
    append_field(out, h.name, h.value);
  }
  append_framing(head, framing, out);
  if (!upgrade.empty()) {
    append_field(out, "Connection", "Upgrade");
    append_field(out, "Upgrade", upgrade);
  } else if (close) {
    out.append("Connection: close\r\n");
  }
  out.append("\r\n");
}

std::vector<std::string> header_tokens(std::string_view value) {
  std::vector<std::string> out;
  while (!value.empty()) {
    const std::size_t comma = value.find(',');
    std::string_view token = value.substr(0, comma);
    token = token.substr(0, token.find('/'));  // "websocket/13" → "websocket"
    while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) {
      token.remove_prefix(1);
    }
    while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) {
      token.remove_suffix(1);
    }
    if (!token.empty()) {
      std::string t(token);
      for (char& c : t) {
        c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      }
      out.push_back(std::move(t));
    }
    if (comma == std::string_view::npos) {
      break;
    }
    value.remove_prefix(comma + 1);
  }
  return out;
}

}  // namespace tlsfront::http
