#include "proxy/ocsp_stapler.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>

#include "http/message_parser.h"
#include "proxy/watchdog.h"
#include "tls/certificate.h"
#include "tls/x509_fields.h"

namespace tlsfront::proxy {
namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::size_t max_response_bytes = 64 * 1024;

std::int64_t now_posix() {
  return static_cast<std::int64_t>(std::time(nullptr));
}

}  // namespace

bool parse_http_url(std::string_view url, http_url& out, std::string& error) {
  constexpr std::string_view scheme = "http://";
  if (url.size() < scheme.size() || tls::lowercase_name(url.substr(0, scheme.size())) != scheme) {
    error = "\"" + std::string(url) + "\" is not an http:// URL";
    return false;
  }
  std::string_view rest = url.substr(scheme.size());
  const std::size_t slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (path.find('#') != std::string_view::npos) {
    path = path.substr(0, path.find('#'));
  }
  if (path.empty() || path.front() != '/') {
    out.path = "/" + std::string(path);
  } else {
    out.path = std::string(path);
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || static_cast<unsigned char>(c) >= 0x7f) {
      error = "the URL holds a space or a byte outside printable ASCII";
      return false;
    }
  }
  if (authority.find('@') != std::string_view::npos) {
    error = "\"" + std::string(url) + "\": user information is not allowed";
    return false;
  }
  std::string_view host = authority;
  std::string_view port = "80";
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "\"" + std::string(url) + "\": an IPv6 literal without its ']'";
      return false;
    }
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        error = "\"" + std::string(url) + "\": junk after the IPv6 literal";
        return false;
      }
      port = after.substr(1);
    }
  } else if (const std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) {
    error = "\"" + std::string(url) + "\" names no host";
    return false;
  }
  int port_value = 0;
  if (port.empty() || port.size() > 5 ||
      !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      (port_value = std::stoi(std::string(port))) < 1 || port_value > 65535) {
    error = "\"" + std::string(url) + "\": the port must be 1..65535";
    return false;
  }
  out.host = std::string(host);
  out.port = std::string(port);
  out.authority = std::string(authority);
  return true;
}

// One certificate's stapling state. The reported fields are guarded by ocsp_stapler::mu_;
// `timer` and `retired` belong to the stapler's thread.
struct ocsp_stapler::entry {
  std::string key;
  std::string name;  // the certificate entry's name (log lines, metric label)
  std::string source;
  bool from_file = false;
  http_url url;
  tls::ocsp_target target;
  std::shared_ptr<tls::ocsp_cell> cell = std::make_shared<tls::ocsp_cell>();
  // reported
  bool settled = false;  // the first fetch ended
  std::string last_result = "pending";
  std::string last_error;
  std::string last_logged;  // the failure last logged (a repeat is not logged again)
  std::int64_t last_fetch = 0, next_fetch = 0;
  std::int64_t this_update = 0, next_update = 0;  // of the staple in the cell
  // the stapler's thread
  asio::steady_timer* timer = nullptr;
  bool retired = false;
};

// What one fetch brought: a checked verdict, or why there is none.
struct ocsp_stapler::outcome {
  std::string result;  // an ocsp_result name, or unreachable / http_error / file_error
  std::string detail;
  tls::ocsp_verdict verdict;
  std::string der;
  bool checked = false;
};

ocsp_stapler::ocsp_stapler(const ocsp_options& opts, core::metrics_registry& metrics)
    : metrics_(metrics), work_(io_.get_executor()), opts_(opts) {
  metrics_.add_gauge_set_fn(
      "tlsfront_ocsp_staple_expiry_seconds",
      "Seconds until the stapled OCSP response of each certificate stops being stapled (its "
      "nextUpdate); no series while none is stapled",
      [this] {
        core::metrics_registry::labeled_values out;
        const double now = static_cast<double>(now_posix());
        std::lock_guard lock(mu_);
        std::set<std::string> seen;
        for (const auto& [key, e] : entries_) {
          if (e->next_update > 0 && seen.insert(e->name).second) {
            out.emplace_back("name=\"" + e->name + "\"", static_cast<double>(e->next_update) - now);
          }
        }
        return out;
      });
  thread_ = std::thread([this] { io_.run(); });
}

// The fetches still pending are destroyed with io_ (after the thread stopped), each holding
// its entry.
ocsp_stapler::~ocsp_stapler() {
  io_.stop();
  thread_.join();
}

void ocsp_stapler::set_options(const ocsp_options& opts) {
  std::lock_guard lock(mu_);
  opts_ = opts;
}

std::string ocsp_stapler::key_of(const tls::certificate_options& co, const std::string& source) {
  return co.loaded->sha256 + "|" + source;
}

void ocsp_stapler::count(const std::string& name, const std::string& result) {
  metrics_
      .add_counter("tlsfront_ocsp_fetches_total",
                   "OCSP responses fetched (or read from ocsp_file) by certificate name and what "
                   "they were: good (stapled); revoked, unknown, expired, not_yet_valid, "
                   "wrong_certificate, bad_signature, unsuccessful, malformed (never stapled); "
                   "unreachable, http_error, file_error (no response)",
                   "name=\"" + name + "\",result=\"" + result + "\"")
      .inc();
}

bool ocsp_stapler::attach(tls::certificate_options& co, std::string& error) {
  co.ocsp = nullptr;
  const tls::loaded_certificate& cert = *co.loaded;
  const bool must = tls::is_must_staple(cert.leaf.get());
  std::string source;
  bool from_file = false;
  if (co.ocsp_stapling) {
    if (!co.ocsp_file.empty()) {
      source = co.ocsp_file;
      from_file = true;
    } else if (!co.ocsp_responder.empty()) {
      source = co.ocsp_responder;
    } else {
      std::vector<std::string> urls = tls::ocsp_urls(cert.leaf.get());
      auto http = std::find_if(urls.begin(), urls.end(), [](const std::string& u) {
        http_url ignored;
        std::string why;
        return parse_http_url(u, ignored, why);
      });
      if (http != urls.end()) {
        source = *http;
      } else if (!urls.empty()) {
        error = "its OCSP responder " + urls.front() + " is not an http:// URL";
      }
    }
  }
  if (source.empty()) {
    if (must) {
      error = "certificate " + co.name + " is must-staple (TLS Feature status_request) but " +
              (!co.ocsp_stapling ? std::string("ocsp_stapling is off")
               : !error.empty()  ? error
                                 : "it names no OCSP responder (set ocsp_responder or ocsp_file)");
      return false;
    }
    if (!error.empty()) {
      spdlog::warn("certificate {}: not stapling OCSP: {}", co.name, error);
      error.clear();
    }
    return true;
  }
  const std::string key = key_of(co, (from_file ? "file:" : "url:") + source);
  std::unique_lock lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    it->second->name = co.name;
    co.ocsp = it->second->cell;
    return true;
  }
  lock.unlock();
  auto e = std::make_shared<entry>();
  e->key = key;
  e->name = co.name;
  e->source = source;
  e->from_file = from_file;
  std::string why;
  if (!tls::ocsp_target_of(cert, e->target, why) ||
      (!from_file && !parse_http_url(source, e->url, why))) {
    if (must) {
      error = "certificate " + co.name + " is must-staple but cannot be stapled: " + why;
      return false;
    }
    spdlog::warn("certificate {}: not stapling OCSP: {}", co.name, why);
    return true;
  }
  lock.lock();
  auto [it, fresh] = entries_.try_emplace(key, e);
  co.ocsp = it->second->cell;
  lock.unlock();
  if (!fresh) {
    return true;  // attached meanwhile (the server serializes attaches: only in principle)
  }
  spdlog::info("certificate {}: stapling OCSP from {}{}", co.name, source,
               must ? " (must-staple)" : "");
  asio::co_spawn(io_, run(e), asio::detached);
  return true;
}

bool ocsp_stapler::wait_ready(const server_options& opts, std::string& error) {
  std::unique_lock lock(mu_);
  const auto deadline = std::chrono::steady_clock::now() + opts_.timeout + std::chrono::seconds(2);
  for (const listener_options& lo : opts.listeners) {
    for (const tls::certificate_options& co : lo.tls.certificates) {
      if (!co.loaded || !co.ocsp || !tls::is_must_staple(co.loaded->leaf.get())) {
        continue;
      }
      auto it = std::find_if(entries_.begin(), entries_.end(),
                             [&](const auto& kv) { return kv.second->cell == co.ocsp; });
      if (it == entries_.end()) {
        continue;
      }
      entry& e = *it->second;
      settled_.wait_until(lock, deadline, [&] { return e.settled || e.next_update > 0; });
      if (e.next_update == 0) {
        error = "certificate " + co.name +
                " is must-staple (TLS Feature status_request) and has no good OCSP response from " +
                e.source + ": " +
                (e.settled ? e.last_result + (e.last_error.empty() ? "" : ": " + e.last_error)
                           : std::string("no answer in time"));
        return false;
      }
    }
  }
  return true;
}

void ocsp_stapler::retain(const server_options& opts) {
  std::set<const tls::ocsp_cell*> used;
  for (const listener_options& lo : opts.listeners) {
    for (const tls::certificate_options& co : lo.tls.certificates) {
      if (co.ocsp) {
        used.insert(co.ocsp.get());
      }
    }
  }
  std::vector<std::shared_ptr<entry>> dropped;
  {
    std::lock_guard lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (used.count(it->second->cell.get()) == 0) {
        dropped.push_back(it->second);
        it = entries_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& e : dropped) {
    asio::post(io_, [e] {
      e->retired = true;
      if (e->timer != nullptr) {
        e->timer->cancel();
      }
    });
  }
}

ocsp_stapler::description ocsp_stapler::describe(const tls::certificate_options& co) const {
  description d;
  d.must_staple = co.loaded && tls::is_must_staple(co.loaded->leaf.get());
  std::lock_guard lock(mu_);
  for (const auto& [key, e] : entries_) {
    if (co.ocsp && e->cell == co.ocsp) {
      d.state = e->next_update > 0 ? "good" : "none";
      d.source = e->source;
      d.last_result = e->last_result;
      d.last_error = e->last_error;
      d.this_update = e->this_update;
      d.next_update = e->next_update;
      d.last_fetch = e->last_fetch;
      d.next_fetch = e->next_fetch;
      return d;
    }
  }
  d.state = "off";
  return d;
}

asio::awaitable<void> ocsp_stapler::run(std::shared_ptr<entry> e) {
  asio::steady_timer timer(io_);
  e->timer = &timer;
  while (!e->retired) {
    outcome o = co_await fetch(*e);
    if (e->retired) {
      break;
    }
    apply(*e, o);
    std::int64_t wake_at = 0;
    {
      std::lock_guard lock(mu_);
      wake_at = e->next_fetch;
      if (e->next_update > 0) {
        wake_at = std::min(wake_at, e->next_update);
      }
    }
    // Wakes at the next fetch, or when the staple expires first (it is taken down then).
    for (;;) {
      const std::int64_t left = wake_at - now_posix();
      if (left <= 0 || e->retired) {
        break;
      }
      timer.expires_after(std::chrono::seconds(left));
      co_await timer.async_wait(use_tuple);
    }
    std::lock_guard lock(mu_);
    if (e->next_update > 0 && now_posix() >= e->next_update) {
      e->cell->set(nullptr);
      spdlog::warn(
          "certificate {}: the stapled OCSP response expired at {}; stapling nothing "
          "until a good one comes",
          e->name, tls::rfc3339(e->next_update));
      e->this_update = e->next_update = 0;
    }
  }
  e->timer = nullptr;
}

asio::awaitable<ocsp_stapler::outcome> ocsp_stapler::fetch(const entry& e) {
  outcome o;
  std::chrono::milliseconds timeout;
  {
    std::lock_guard lock(mu_);
    timeout = opts_.timeout;
  }
  if (e.from_file) {
    tls::file_ptr f;
    std::string why;
    if (!tls::open_file(e.source, f, why)) {
      o.result = "file_error";
      o.detail = why;
      co_return o;
    }
    char buf[4096];
    std::size_t n = 0;
    while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0 &&
           o.der.size() <= max_response_bytes) {
      o.der.append(buf, n);
    }
    if (std::ferror(f.get()) != 0 || o.der.size() > max_response_bytes) {
      o.result = "file_error";
      o.detail = o.der.size() > max_response_bytes
                     ? "larger than " + std::to_string(max_response_bytes) + " bytes"
                     : "cannot read " + e.source;
      co_return o;
    }
  } else {
    asio::ip::tcp::socket sock(io_);
    asio::ip::tcp::resolver resolver(io_);
    watchdog wd(io_.get_executor(), [&] {
      boost::system::error_code ignored;
      resolver.cancel();
      sock.close(ignored);
    });
    wd.arm(timeout);
    auto fail = [&](const std::string& what, const boost::system::error_code& ec) {
      o.result = "unreachable";
      o.detail = what + ": " + (wd.fired() ? std::string("timed out") : ec.message());
      return o;
    };
    auto [rec, endpoints] = co_await resolver.async_resolve(e.url.host, e.url.port, use_tuple);
    if (rec) {
      co_return fail("resolve " + e.url.host, rec);
    }
    auto [cec, ep] = co_await asio::async_connect(sock, endpoints, use_tuple);
    if (cec) {
      co_return fail("connect to " + e.url.authority, cec);
    }
    const std::string body = tls::ocsp_request_der(e.target);
    const std::string request = "POST " + e.url.path + " HTTP/1.1\r\nHost: " + e.url.authority +
                                "\r\nUser-Agent: tlsfront\r\nContent-Type: "
                                "application/ocsp-request\r\nAccept: application/ocsp-response"
                                "\r\nContent-Length: " +
                                std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
                                body;
    auto [wec, written] = co_await asio::async_write(sock, asio::buffer(request), use_tuple);
    if (wec) {
      co_return fail("send the request", wec);
    }
    http::message_parser parser(http::message_parser::kind::response, {});
    parser.set_body_output(&o.der, http::body_framing::none);
    char buf[4096];
    http::message_parser::status st = http::message_parser::status::need_more;
    while (st != http::message_parser::status::message_done) {
      auto [ec, n] = co_await sock.async_read_some(asio::buffer(buf), use_tuple);
      std::string_view in(buf, n);
      while (!in.empty() && st != http::message_parser::status::message_done &&
             st != http::message_parser::status::error) {
        std::size_t used = 0;
        st = parser.feed(in, used);
        in.remove_prefix(used);
        if (st == http::message_parser::status::head_done) {
          st = http::message_parser::status::need_more;
        }
      }
      if (st == http::message_parser::status::error) {
        o.result = "http_error";
        o.detail = parser.head_complete() && parser.head().status != 200
                       ? "HTTP status " + std::to_string(parser.head().status)
                       : "a bad HTTP response: " + parser.error_reason();
        co_return o;
      }
      if (o.der.size() > max_response_bytes) {
        o.result = "http_error";
        o.detail = "a response larger than " + std::to_string(max_response_bytes) + " bytes";
        co_return o;
      }
      if (ec) {
        if (ec == asio::error::eof && st != http::message_parser::status::message_done) {
          st = parser.finish();
          if (st == http::message_parser::status::message_done) {
            break;
          }
          o.result = "http_error";
          o.detail = parser.head_complete() && parser.head().status != 200
                         ? "HTTP status " + std::to_string(parser.head().status)
                         : "the responder closed the connection before its answer was complete";
          co_return o;
        }
        if (st != http::message_parser::status::message_done) {
          co_return fail("read the answer", ec);
        }
      }
    }
    if (parser.head().status != 200) {
      o.result = "http_error";
      o.detail = "HTTP status " + std::to_string(parser.head().status);
      co_return o;
    }
  }
  o.verdict = tls::check_ocsp_response(o.der, e.target, now_posix());
  o.checked = true;
  o.result = tls::ocsp_result_name(o.verdict.result);
  o.detail = o.verdict.detail;
  co_return o;
}

void ocsp_stapler::apply(entry& e, const outcome& o) {
  const std::int64_t now = now_posix();
  std::string name;  // counted once the cell is set (a reader of the count sees the staple)
  std::unique_lock lock(mu_);
  name = e.name;
  e.last_fetch = now;
  e.last_result = o.result;
  const bool good = o.checked && o.verdict.result == tls::ocsp_result::good;
  std::int64_t wait = opts_.retry_interval.count();
  if (good) {
    auto staple = std::make_shared<tls::ocsp_staple>();
    staple->der = o.der;
    staple->next_update = o.verdict.next_update;
    e.cell->set(std::move(staple));
    e.this_update = o.verdict.this_update;
    e.next_update = o.verdict.next_update;
    e.last_error.clear();
    // At half its validity (or, for a response already past that, such as one a CDN kept,
    // half of what is left), at least every refresh_interval, no sooner than a retry.
    std::int64_t half =
        o.verdict.this_update + (o.verdict.next_update - o.verdict.this_update) / 2 - now;
    if (half <= 0) {
      half = (o.verdict.next_update - now) / 2;
    }
    wait = std::min<std::int64_t>(opts_.refresh_interval.count(),
                                  std::max<std::int64_t>(half, opts_.retry_interval.count()));
    if (e.last_logged != "good") {
      spdlog::info("certificate {}: stapling the OCSP response from {}: {}", e.name, e.source,
                   o.detail);
    }
    e.last_logged = "good";
  } else {
    e.last_error = o.detail;
    // The responder has spoken against the certificate: what was stapled is no longer true.
    // Any other failure keeps a staple that is still current.
    const bool against = o.checked && (o.verdict.result == tls::ocsp_result::revoked ||
                                       o.verdict.result == tls::ocsp_result::unknown);
    const bool dropped = against && e.next_update > 0;
    if (against) {
      e.cell->set(nullptr);
      e.this_update = e.next_update = 0;
    }
    const std::string line = o.result + ": " + o.detail;
    if (line != e.last_logged || dropped) {
      spdlog::warn("certificate {}: OCSP response from {} not stapled: {}{}; retrying every {}s",
                   e.name, e.source, line,
                   dropped ? " (the staple was taken down)"
                   : e.next_update > 0
                       ? " (the current staple is kept until " + tls::rfc3339(e.next_update) + ")"
                       : std::string(),
                   wait);
      e.last_logged = line;
    }
  }
  e.next_fetch = now + std::max<std::int64_t>(wait, 1);
  e.settled = true;
  lock.unlock();
  settled_.notify_all();
  count(name, o.result);
}

}  // namespace tlsfront::proxy
