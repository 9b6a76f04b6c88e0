// http/header_rewrite.h — builds the heads tlsfront sends: the request towards a backend and
// the response towards the client. Hop-by-hop fields (RFC 9110 §7.6.1, plus every field the
// Connection header names) and framing fields are dropped and re-created by tlsfront; the
// client's X-Forwarded-For/-Proto/-Host are never trusted and are replaced, and the other
// client identity fields backends tend to trust (Forwarded, X-Real-IP, ...; a configurable
// list, default_untrusted_fields) are dropped.
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "http/message_parser.h"

namespace tlsfront::http {

// Client-sent fields that claim to say who the client is, dropped from requests by default
// (a listener's `drop_client_headers`): a backend would take them for tlsfront's word.
inline constexpr std::array<std::string_view, 5> default_untrusted_fields = {
    "Forwarded", "X-Real-IP", "True-Client-IP", "X-Client-IP", "X-Forwarded-Port"};

struct forwarded_info {
  std::string_view client_address;  // the TCP peer, without port
  std::string_view proto = "https";
  // Host sent when the request had none (HTTP/1.0): the TLS SNI name, if any.
  std::string_view default_host;
  // Non-empty: the protocol upgrade to ask the backend for ("websocket"), sent as
  // "Connection: Upgrade" + "Upgrade: <it>". Empty: any Upgrade of the client is dropped.
  std::string_view upgrade = {};
  // Non-empty: the request target sent instead of head.target (the normalized path, see
  // http/path_normalize.h).
  std::string_view target = {};
  // Further client fields to drop (case-insensitive names), e.g. default_untrusted_fields.
  std::span<const std::string> drop = {};
  // Both non-empty: "<session_header>: <session_handle>" is added (the connection's session
  // handle, 16 hex digits; client-sent fields of that name are dropped through `drop`).
  std::string_view session_header = {};
  std::string_view session_handle = {};
  // Each pair non-empty: "<name>: <value>" added (the client certificate and whether it
  // verified; client-sent fields of those names are dropped through `drop`).
  std::string_view client_cert_header = {};
  std::string_view client_cert = {};
  std::string_view client_verify_header = {};
  std::string_view client_verify = {};
  // The request goes to the backend before the client's handshake completed (0-RTT): adds
  // "Early-Data: 1" (RFC 8470 §5.1). A client-sent Early-Data field is always dropped.
  bool early_data = false;
};

// Appends the request head for the backend to `out`. `framing` says how tlsfront frames the
// body it streams after this head (content_length copies head.content_length).
void build_backend_request(const message_head& head, const forwarded_info& fwd,
                           body_framing framing, std::string& out);

// Appends the response head for the client to `out`. `close` adds "Connection: close";
// `upgrade` (a 101's protocol) adds "Connection: Upgrade" + "Upgrade: <it>" instead.
void build_client_response(const message_head& head, body_framing framing, bool close,
                           std::string& out, std::string_view upgrade = {});

// The tokens of a comma-separated header value ("Upgrade: h2c, WebSocket/13" → "h2c",
// "websocket"; "Connection: keep-alive, Upgrade" → "keep-alive", "upgrade"): lowercase, without
// a "/version" suffix.
std::vector<std::string> header_tokens(std::string_view value);

// True if a request trailer field of this name may go to the backend: not a framing, routing or
// hop-by-hop field, none tlsfront sets itself (X-Forwarded-*), none in `drop`.
bool forwardable_trailer(std::string_view name, std::span<const std::string> drop);

// True if the field is hop-by-hop for this message (fixed list or named in Connection).
bool is_hop_by_hop(const message_head& head, std::string_view name);

// True if a Connection header of the message lists `token` (case-insensitive): "upgrade",
// "close", or a field name.
bool names_in_connection(const message_head& head, std::string_view token);

}  // namespace tlsfront::http
