// proxy/client_connection.h — one client connection, start to end, on one worker thread:
// TLS handshake, then HTTP/1.1 requests (keep-alive, pipelining) each routed to a backend pool
// and streamed both ways through a pooled keep-alive backend connection.
//
// Thread-safety: none needed; the object lives in its coroutine frame on its worker's
// io_context. Ownership: owns the TLS stream and the backend socket in use; registers itself in
// worker::live for drain and removes itself when done.
// Failure: never throws; a broken client or backend ends the request with a proxy-generated
// response where one can still be sent (400/408/413/431/501/502/503/504), bumps a counter and
// closes.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "http/message_parser.h"
#include "proxy/server.h"
#include "proxy/watchdog.h"
#include "tls/stream.h"

namespace tlsfront::proxy {

class client_connection {
 public:
  // `peer` is the client's address as accept(2) returned it; `snap` the configuration it was
  // accepted under (kept until the connection closes, whatever reloads happen meanwhile).
  client_connection(server& srv, worker& w, std::shared_ptr<const snapshot> snap,
                    std::size_t listener_index, asio::ip::tcp::socket socket,
                    const asio::ip::tcp::endpoint& peer);
  ~client_connection();
  client_connection(const client_connection&) = delete;
  client_connection& operator=(const client_connection&) = delete;

  // Serves the connection until it closes.
  asio::awaitable<void> run();
  // Server is draining: an idle keep-alive connection closes now; a busy one after its response.
  void on_drain();

 private:
  enum class outcome { keep_alive, close };
  struct exchange;  // one request/response, see .cc

  asio::awaitable<outcome> serve_request();
  // Trusted peers: reads the PROXY header in front of the TLS bytes (consuming nothing past
  // it); its source then stands for the client. False: missing, malformed or timed out.
  asio::awaitable<bool> read_proxy_header();
  // tcp mode: one backend connection (PROXY header first if configured), then a tunnel.
  asio::awaitable<void> serve_tcp();
  void set_peer(const asio::ip::tcp::endpoint& ep);
  asio::awaitable<bool> read_client(bool idle);
  // `last`: the connection closes right after (close_notify and FIN leave with these bytes).
  // Bounded by client_write_timeout as a progress timeout (arm_write_timeout()).
  asio::awaitable<bool> write_client(const std::string& data, bool last = false);
  // Arms client_wd_ for a write to the client: it fires once the client took nothing for
  // client_write_timeout.
  void arm_write_timeout();
  // After a failed write to the client: true (and counted) if client_wd_ cut it.
  bool write_timed_out();
  asio::awaitable<outcome> respond_local(int status, bool keep_alive, exchange& ex);
  asio::awaitable<void> linger();
  asio::awaitable<int> forward(exchange& ex);
  // A new connection to server `server_index` of the request's pool in backend_. On failure
  // it is counted, the server's passive health noted, ex.failure_status set (502/504), false.
  asio::awaitable<bool> connect_backend(exchange& ex, int server_index);
  asio::awaitable<boost::system::error_code> read_backend(std::size_t& n);
  // The protocol this request may be upgraded to on this route ("" for none).
  static std::string upgrade_for(const http::message_head& h, const router::target& route);

  // A tunnel: bytes relayed both ways between the client (TLS) and backend_, half-closes passed
  // on, until both directions ended or nothing moved for `idle` (a write to the client in flight
  // is movement: it is bounded by client_write_timeout instead). Bytes already buffered (in_,
  // bin_) go first. Counts what went each way. True if both directions ended cleanly (not cut
  // by a timeout or an error).
  struct tunnel_state {
    watchdog* wd = nullptr;
    std::chrono::milliseconds idle{};
    std::uint64_t to_backend = 0, to_client = 0;
    bool failed = false;
    bool writing_to_client = false;
  };
  asio::awaitable<bool> tunnel(std::chrono::milliseconds idle, std::uint64_t& to_backend,
                               std::uint64_t& to_client);
  asio::awaitable<void> pump_to_backend(tunnel_state& t);
  asio::awaitable<void> pump_to_client(tunnel_state& t);
  void abort_tunnel(tunnel_state& t);
  void log_access(const exchange& ex, int status);
  int status_for(http::parse_error e) const;
  // Feed the buffered client (backend) bytes to the request (response) parser and consume what
  // it used.
  http::message_parser::status feed_request();
  http::message_parser::status feed_response();

  server& srv_;
  worker& worker_;
  std::shared_ptr<const snapshot> snap_holder_;
  const snapshot& snap_;
  const listener_runtime& listener_;
  tls::stream tls_;
  std::string peer_ip_;
  std::string peer_;                     // ip:port
  asio::ip::tcp::endpoint client_ep_;    // the client (from accept, or a PROXY header)
  asio::ip::tcp::endpoint proxied_dst_;  // the address the client reached, from a PROXY header
  watchdog client_wd_;

  std::vector<char> in_;  // client bytes read, [in_begin_, in_end_) not yet parsed
  std::size_t in_begin_ = 0, in_end_ = 0;
  http::message_parser request_;
  std::string prefix_;  // the request head for the backend, and the body bytes that came with it
  std::string out_;     // bytes framed for the backend
  std::string target_;  // the request target routed and forwarded: normalized (path_normalize.h)

  asio::ip::tcp::socket backend_;
  watchdog backend_wd_;
  std::vector<char> bin_;  // backend bytes read
  std::size_t bin_begin_ = 0, bin_end_ = 0;
  http::message_parser response_;
  std::string to_client_;  // bytes framed for the client

  bool idle_ = false;  // waiting for the first byte of a request (between requests)
  std::uint64_t requests_ = 0;
  std::chrono::steady_clock::time_point head_deadline_ =
      std::chrono::steady_clock::time_point::max();
  bool closing_ = false;
};

}  // namespace tlsfront::proxy
