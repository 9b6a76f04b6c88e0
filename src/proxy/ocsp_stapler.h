// proxy/ocsp_stapler.h — OCSP stapling's control plane: one thread of its own that, for each
// served certificate, fetches its OCSP response over HTTP from the responder the certificate
// names (or the configured one), or reads it from a file, checks it (tls/ocsp.h), and puts it
// in the certificate's ocsp_cell for every worker's handshakes; it refreshes the response at
// half its validity (and at least every refresh_interval), retries failures every
// retry_interval, and takes the staple down the moment it stops being good.
//
// Entries are keyed by the certificate's fingerprint and where its response comes from, so a
// reload or a certificate replacement that keeps a certificate keeps its response (nothing is
// fetched again); a reload that took effect drops the entries it no longer serves (retain()).
//
// Thread-safety: attach(), wait_ready(), retain(), describe() and set_options() from control
// threads (main, admin; the server calls them under its reload lock); the fetches run on the
// stapler's own thread. Every outcome is logged (a repeated failure once until it changes) and
// counted in tlsfront_ocsp_fetches_total{name,result}.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "core/metrics.h"
#include "proxy/options.h"
#include "tls/ocsp.h"
#include "tls/options.h"

namespace tlsfront::proxy {

namespace asio = boost::asio;

// An OCSP responder's address: "http://host[:port][/path]" (host a name, an IPv4 literal or a
// bracketed IPv6 literal; port 80 by default; path "/" by default). Only http: OCSP responses
// are signed, and RFC 6960 A.1 names HTTP.
struct http_url {
  std::string host;  // without brackets
  std::string port;
  std::string path;
  std::string authority;  // the Host header
};
bool parse_http_url(std::string_view url, http_url& out, std::string& error);

class ocsp_stapler {
 public:
  ocsp_stapler(const ocsp_options& opts, core::metrics_registry& metrics);
  ~ocsp_stapler();
  ocsp_stapler(const ocsp_stapler&) = delete;
  ocsp_stapler& operator=(const ocsp_stapler&) = delete;

  // Sets co.ocsp to the cell of co's certificate (co.loaded must be set), starting its fetches
  // if the entry is new. Nothing to staple (stapling off, no responder and no file, no issuer
  // in the chain: logged once per entry) leaves co.ocsp null. False with `error` only for a
  // must-staple certificate that cannot be stapled at all.
  bool attach(tls::certificate_options& co, std::string& error);
  // Waits until every must-staple certificate of `opts` (attached) has a good response, or its
  // first fetch failed (then false, `error` naming it and why). Bounded by the fetch timeout.
  bool wait_ready(const server_options& opts, std::string& error);
  // Drops the entries no certificate of `opts` uses (after a reload took effect).
  void retain(const server_options& opts);
  // Fetch settings for the fetches scheduled from now on ([ocsp] after a reload).
  void set_options(const ocsp_options& opts);

  // What GET /certificates shows of one certificate entry's OCSP.
  struct description {
    std::string state;        // "good", "none" (no good response yet), or "off"
    std::string source;       // the URL or the file
    std::string last_result;  // of the newest fetch: good, revoked, unreachable, ...
    std::string last_error;   // its detail, when not good
    std::int64_t this_update = 0, next_update = 0;  // of the stapled response
    std::int64_t last_fetch = 0, next_fetch = 0;    // seconds since the epoch
    bool must_staple = false;
  };
  description describe(const tls::certificate_options& co) const;

 private:
  struct entry;
  struct outcome;
  asio::awaitable<void> run(std::shared_ptr<entry> e);
  asio::awaitable<outcome> fetch(const entry& e);
  void apply(entry& e, const outcome& o);
  void count(const std::string& name, const std::string& result);
  static std::string key_of(const tls::certificate_options& co, const std::string& source);

  core::metrics_registry& metrics_;
  asio::io_context io_{1};
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  mutable std::mutex mu_;  // guards entries_, opts_ and each entry's reported state
  std::condition_variable settled_;
  ocsp_options opts_;
  std::map<std::string, std::shared_ptr<entry>> entries_;
  std::thread thread_;  // last: started once the rest exists
};

}  // namespace tlsfront::proxy
