// proxy/connection.h — one client connection's lifecycle on one worker thread: the accepted
// socket → the PROXY header (trusted peers only) → the TLS handshake → a protocol session chosen
// by listener mode and negotiated ALPN (http1_session, h2_session, tcp_session) → close
// (close_notify and FIN, with the last bytes when the session wrote them with write_client(...,
// last)). It also holds what every protocol shares: the client's TLS stream and read buffer, its
// identity (address, or the PROXY header's source), the client-side timeouts, the drain hook and
// the access-log line.
//
// Thread-safety: none needed; the object lives in its coroutine frame on its worker's io_context.
// Ownership: owns the TLS stream and the client read buffer; sessions borrow them for the
// connection's life. Registers itself in worker::live for drain and removes itself when done.
// Failure: never throws; a failed PROXY header or handshake is counted and closes the connection.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proxy/read_buffer.h"
#include "proxy/watchdog.h"
#include "proxy/worker.h"
#include "tls/stream.h"

namespace tlsfront::http {
struct forwarded_info;
}

namespace tlsfront::proxy {

// One request (or one tcp-mode tunnel) as the access log sees it.
struct request_record {
  std::chrono::steady_clock::time_point start = std::chrono::steady_clock::now();
  std::string method, path;
  const char* protocol = "h1";  // h1 | h2 | tcp (access log, request metrics)
  int pool = -1;
  int server = -1;
  int status = 0;
  // The response broke off after its head (backend framing error or close, client gone or too
  // slow): the client got `bytes_sent` body bytes of it, not what the head announced.
  bool aborted = false;
  std::uint64_t bytes_sent = 0;  // body bytes the client's socket took
  std::uint64_t bytes_received = 0;
  bool early = false;  // forwarded before the handshake completed (0-RTT, Early-Data: 1)
};

// What a protocol session does when the server starts draining (connection::on_drain()).
class drain_hook {
 public:
  virtual void on_drain() = 0;

 protected:
  ~drain_hook() = default;
};

struct backend_request;

class connection {
 public:
  // `peer` is the client's address as accept(2) returned it; `snap` the configuration it was
  // accepted under (kept until the connection closes, whatever reloads happen meanwhile).
  connection(worker& w, std::shared_ptr<const snapshot> snap, std::size_t listener_index,
             asio::ip::tcp::socket socket, const asio::ip::tcp::endpoint& peer);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // Serves the connection until it closes.
  asio::awaitable<void> run();
  // Server is draining: the session's hook decides (HTTP/1.1: an idle keep-alive connection
  // closes now, a busy one after its response).
  void on_drain();
  void set_drain_hook(drain_hook* h) { drain_hook_ = h; }

  // --- what sessions use ---
  worker& owner() { return worker_; }
  const snapshot& snap() const { return snap_; }
  const listener_runtime& listener() const { return listener_; }
  proxy_metrics& metrics() { return *worker_.server.metrics; }
  // The server drains, or a reload removed this connection's listener (retire()).
  bool draining() const { return retired_ || worker_.server.draining(); }
  // A reload removed the listener: this connection drains as if the server did (HTTP/1.1
  // closes after its response, HTTP/2 sends GOAWAY).
  void retire() {
    retired_ = true;
    on_drain();
  }
  tls::stream& tls() { return tls_; }
  // The session-handle fields of one request (issue 14), shared by HTTP/1.1 and HTTP/2: the
  // handle header for the backend when `route` asks for it, and what the exchange needs to
  // strip the handle fields from the response and act on a logout. No allocation.
  void session_fields(const router::target& route, http::forwarded_info& fwd, backend_request& req);
  read_buffer& in() { return in_; }
  watchdog& client_wd() { return client_wd_; }
  const std::string& peer() const { return peer_; }        // ip:port
  const std::string& peer_ip() const { return peer_ip_; }  // without port
  const asio::ip::tcp::endpoint& client_endpoint() const { return client_ep_; }
  // The address the client reached, from a PROXY header (port 0 without one).
  const asio::ip::tcp::endpoint& proxied_destination() const { return proxied_dst_; }

  // 0-RTT (RFC 8470): what a request received now may do. `confirmed`: the handshake is
  // complete, forward it as usual. `early`: forward it now with Early-Data: 1 (the route allows
  // its method early, it has no body, and the early bytes are within max_early_data; counted).
  // `wait`: it waits for the handshake (wait_for_handshake(); counted).
  enum class early_plan { confirmed, early, wait };
  early_plan plan_early(const router::target& route, std::string_view method, bool has_body);
  // The peer is one of the listener's trusted_proxies: an intermediary whose own Early-Data: 1
  // (it forwarded the request in its client's early data) is kept, never dropped, and whose
  // requests are never retried after a 425 (it understands 425; RFC 8470 §5.1, §5.2).
  bool trusted_peer() const { return trusted_peer_; }
  // Reads client bytes into in() (after its unread ones) until the handshake is complete.
  // False: the client went away or took longer than client_read_timeout.
  asio::awaitable<bool> wait_for_handshake();
  // Reads more client bytes into in() (after its unread ones), bounded by `wait`. While in early
  // data it may read none (true): the handshake just completed. False: closed,
  // broken, or cut by the watchdog (client_wd().fired()).
  asio::awaitable<bool> read_client(std::chrono::steady_clock::duration wait);
  // `last`: the connection closes right after (close_notify and FIN leave with these bytes).
  // Bounded by client_write_timeout as a progress timeout (arm_write_timeout()).
  asio::awaitable<bool> write_client(std::string_view data, bool last = false);
  // After the last bytes of a connection the client may still be sending to (an error
  // response, a GOAWAY): close_notify and FIN, then what the client still sends is read and
  // dropped for up to a second (1 MiB at most), so the close sends no TCP reset that could
  // destroy those last bytes before the client read them.
  asio::awaitable<void> linger();
  // Arms client_wd() for a write to the client: it fires once the client took nothing for
  // client_write_timeout.
  void arm_write_timeout();
  // After a failed write to the client: true (and counted) if client_wd() cut it.
  bool write_timed_out();
  // A request is over: counted by protocol and status class (HTTP only), and one access-log
  // line (when the access log is on). `status` 0: a tcp-mode tunnel.
  void record_request(const request_record& r, int status);
  // The listener asks for client certificates (tls/client_auth.h).
  bool client_auth_on() const {
    return listener_.opts.tls.client_auth.mode != tls::client_auth_options::mode_kind::off;
  }

 private:
  // Trusted peers: reads the PROXY header in front of the TLS bytes (consuming nothing past
  // it); its source then stands for the client. False: missing, malformed or timed out.
  asio::awaitable<bool> read_proxy_header();
  // The handshake, counted by version and resumption kind. False: failed or timed out (counted).
  asio::awaitable<bool> handshake();
  // The session ended while the client's Finished (0-RTT) was still on its way: it is read (at
  // most a second), so the close that follows finds nothing unread and sends a FIN, not a reset
  // that could destroy the response the client has not read yet.
  asio::awaitable<void> settle_handshake();
  // Counts what happened to offered early data (after the handshake, failed or not).
  void count_early_data();
  // Runs the protocol session for this listener's mode and the negotiated ALPN.
  asio::awaitable<void> dispatch();
  // Runs one protocol session on this connection (its drain hook set while it runs).
  template <class Session>
  asio::awaitable<void> serve();
  void set_peer(const asio::ip::tcp::endpoint& ep);

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
  read_buffer in_;            // client bytes read, not yet parsed or relayed
  char handle_hex_[16] = {};  // the session handle's text, made at its first use
  bool handle_hex_made_ = false;
  std::string client_cert_text_;  // the client certificate's header value, made at first use
  bool client_cert_made_ = false;
  bool too_large_counted_ = false;
  bool trusted_peer_ = false;  // the peer is one of trusted_proxies (a PROXY header came first)  //
                               // early bytes went past max_early_data (counted once)
  drain_hook* drain_hook_ = nullptr;
  bool retired_ = false;
};

}  // namespace tlsfront::proxy
