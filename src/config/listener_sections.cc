#include <algorithm>
#include <cctype>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "config/reader.h"
#include "proxy/ocsp_stapler.h"
#include "proxy/proxy_protocol.h"
#include "tls/certificate.h"
#include "tls/cipher_policy.h"
#include "tls/client_auth.h"
#include "tls/ocsp.h"

namespace tlsfront::config::detail {

void reader::read_listeners(const toml::array& listeners,
                            std::vector<proxy::listener_options>& out) {
  struct seen {
    std::string name;
    std::string address;
    std::uint16_t port;
    toml::source_position where;
  };
  std::vector<seen> earlier;
  for (std::size_t i = 0; i < listeners.size(); ++i) {
    const toml::table& t = *listeners[i].as_table();
    proxy::listener_options l;
    read_listener(t, i, l);

    const toml::node* name_node = t.get("name");
    const toml::node& listen_node = *t.get("listen");
    for (const seen& s : earlier) {
      if (s.name == l.name) {
        fail(name_node != nullptr ? name_node->source() : t.source(),
             "duplicate listener name " + single_quoted(l.name) + " (first at line " +
                 std::to_string(s.where.line) + ")");
      }
      if (l.port != 0 && s.port == l.port && s.address == l.address) {
        fail(listen_node, "listener " + single_quoted(l.name) + " listens on the same address as " +
                              "listener " + single_quoted(s.name));
      }
    }
    earlier.push_back({l.name, l.address, l.port, t.source().begin});
    out.push_back(std::move(l));
  }
}

// mode, pool and proxy_protocol (tcp listeners), trusted_proxies (any listener).
void reader::read_listener_mode(const toml::table& t, proxy::listener_options& out) {
  using mode = proxy::listener_options::mode_kind;
  if (const toml::node* n = t.get("mode")) {
    const std::string v = as_string(*n, "mode");
    if (v == "tcp") {
      out.mode = mode::tcp;
    } else if (v != "http") {
      fail(*n, "'mode' must be \"http\" or \"tcp\"");
    }
  }
  if (const toml::node* n = t.get("pool")) {
    if (out.mode != mode::tcp) {
      fail(*n, "'pool' needs mode = \"tcp\" (http listeners are served by [[route]])");
    }
    out.pool = as_nonempty_string(*n, "pool");
    tcp_pools_.push_back(n);
  } else if (out.mode == mode::tcp) {
    fail(*t.get("mode"), "mode = \"tcp\" needs 'pool', the pool every connection goes to");
  }
  if (const toml::node* n = t.get("proxy_protocol")) {
    if (out.mode != mode::tcp) {
      fail(*n, "'proxy_protocol' needs mode = \"tcp\"");
    }
    const std::string v = as_string(*n, "proxy_protocol");
    if (v == "v1") {
      out.send_proxy = proxy::listener_options::proxy_header::v1;
    } else if (v == "v2") {
      out.send_proxy = proxy::listener_options::proxy_header::v2;
    } else if (v != "off") {
      fail(*n, "'proxy_protocol' must be \"v1\", \"v2\" or \"off\"");
    }
  }
  if (const toml::node* n = t.get("trusted_proxies")) {
    for_each_string(*n, "trusted_proxies", [&](const toml::node& e, const std::string& v) {
      proxy::network net;
      std::string why;
      if (!proxy::parse_network(v, net, why)) {
        fail(e, "invalid 'trusted_proxies' entry " + double_quoted(v) + ": " + why);
      }
      out.trusted_proxies.push_back(net);
    });
  }
}

void reader::read_listener(const toml::table& t, std::size_t index, proxy::listener_options& out) {
  check_keys(t, "listener",
             {"name",
              "listen",
              "min_tls",
              "max_tls",
              "ciphers",
              "curves",
              "alpn",
              "handshake_timeout",
              "session_tickets",
              "certificate",
              "mode",
              "pool",
              "proxy_protocol",
              "trusted_proxies",
              "drop_client_headers",
              "allow_encoded_slashes",
              "early_data",
              "max_early_data",
              "early_data_window",
              "client_auth",
              "client_ca",
              "client_crl",
              "client_verify_depth"});
  out.name = "listener" + std::to_string(index);
  if (const toml::node* n = t.get("name")) {
    out.name = as_nonempty_string(*n, "name");
    if (!is_plain_name(out.name)) {
      fail(*n, "'name' may hold only letters, digits, '_', '-' and '.'");
    }
  }
  host_port hp = as_host_port(require(t, "listen", "listener"), "listen", /*ip_only=*/true,
                              /*allow_port_zero=*/true);
  out.address = std::move(hp.host);
  out.port = hp.port;
  read_listener_mode(t, out);
  read_listener_requests(t, out);

  tls::listener_tls_options& tls = out.tls;
  optional_key(t, "min_tls", tls.min_version,
               [](const toml::node& n) { return as_tls_version(n, "min_tls"); });
  optional_key(t, "max_tls", tls.max_version,
               [](const toml::node& n) { return as_tls_version(n, "max_tls"); });
  if (tls.min_version > tls.max_version) {
    fail(*t.get("min_tls"), "'min_tls' (1.3) is higher than 'max_tls' (1.2)");
  }
  if (const toml::node* n = t.get("ciphers")) {
    tls.ciphers = as_string(*n, "ciphers");
    std::string error;
    if (!tls.ciphers.empty() && !tls::check_cipher_list(tls.ciphers, error)) {
      fail(*n, "invalid 'ciphers': " + error);
    }
    if (const std::string w = tls::weak_cipher_warning(tls::weak_ciphers(tls.ciphers));
        !w.empty()) {
      warn(*n, "listener " + single_quoted(out.name) + ": " + w);
    }
  }
  if (const toml::node* n = t.get("curves")) {
    tls.curves = as_nonempty_string(*n, "curves");
    std::string error;
    if (!tls::check_curves_list(tls.curves, error)) {
      fail(*n, "invalid 'curves': " + error);
    }
  }
  const bool http_mode = out.mode == proxy::listener_options::mode_kind::http;
  if (http_mode) {
    tls.alpn = {"h2", "http/1.1"};  // HTTP/2 preferred
  }
  if (const toml::node* n = t.get("alpn")) {
    tls.alpn.clear();
    for_each_string(*n, "alpn", [&](const toml::node& e, const std::string& protocol) {
      if (protocol.size() > 255) {
        fail(e, "an 'alpn' protocol name is at most 255 bytes");
      }
      // An http listener serves what it offers: a protocol it cannot speak would be chosen by
      // clients and then answered as HTTP/1.1.
      if (http_mode && protocol != "h2" && protocol != "http/1.1") {
        fail(e, "an http listener's 'alpn' may name only \"h2\" and \"http/1.1\", not " +
                    double_quoted(protocol) + " (mode = \"tcp\" relays any protocol)");
      }
      if (std::find(tls.alpn.begin(), tls.alpn.end(), protocol) != tls.alpn.end()) {
        fail(e, "'alpn' names " + double_quoted(protocol) + " twice");
      }
      tls.alpn.push_back(protocol);
    });
  }
  optional_timeout(t, "handshake_timeout", tls.handshake_timeout);
  optional_key(t, "session_tickets", tls.session_tickets,
               [](const toml::node& n) { return as_bool(n, "session_tickets"); });
  tls.session_timeout = session_timeout_;
  read_listener_early_data(t, out);
  read_listener_client_auth(t, out);

  const toml::node* certs = t.get("certificate");
  if (certs == nullptr) {
    fail(t, "listener " + single_quoted(out.name) +
                " has no certificate: add a [[listener.certificate]] with cert and key");
  }
  const toml::array& list = as_table_array(*certs, "certificate", "listener.certificate");
  if (list.empty()) {
    fail(*certs, "listener " + single_quoted(out.name) + " has no certificate");
  }
  const toml::node* default_node = nullptr;
  for (const toml::node& c : list) {
    const toml::table& ct = *c.as_table();
    tls::certificate_options cert;
    read_certificate(ct, cert);
    if (cert.is_default) {
      if (default_node != nullptr) {
        fail(*ct.get("default"), "listener " + single_quoted(out.name) +
                                     " has more than one default certificate (the first at line " +
                                     std::to_string(default_node->source().begin.line) + ")");
      }
      default_node = ct.get("default");
    }
    tls.certificates.push_back(std::move(cert));
  }
}

// TLS 1.3 0-RTT: early_data, max_early_data, early_data_window (tls/early_data.h).
void reader::read_listener_early_data(const toml::table& t, proxy::listener_options& out) {
  tls::early_data_options& e = out.tls.early_data;
  optional_key(t, "early_data", e.enabled,
               [](const toml::node& n) { return as_bool(n, "early_data"); });
  if (const toml::node* n = t.get("max_early_data")) {
    e.max_bytes = as_size(*n, "max_early_data", 1, tls::max_early_data_bytes);
  }
  optional_duration(t, "early_data_window", e.window);
  if (const toml::node* n = t.get("early_data_window");
      n != nullptr && (e.window.count() <= 0 || e.window > std::chrono::seconds(60))) {
    fail(*n,
         "'early_data_window' must be more than 0 and at most 60s (BoringSSL refuses early "
         "data past a 60 s ticket age skew anyway)");
  }
  if (!e.enabled) {
    return;
  }
  const toml::node& on = *t.get("early_data");
  if (out.mode != proxy::listener_options::mode_kind::http) {
    fail(on,
         "'early_data' needs mode = \"http\": a tcp listener cannot hold replayable bytes "
         "back from its backend");
  }
  if (out.tls.max_version < tls::tls1_3) {
    fail(on, "'early_data' needs TLS 1.3 (max_tls = \"1.2\" here)");
  }
  if (!out.tls.session_tickets) {
    fail(on, "'early_data' needs session_tickets = true (0-RTT resumes a TLS 1.3 ticket)");
  }
}

// Client certificates: client_auth, client_ca, client_crl, client_verify_depth
// (tls/client_auth.h). The bundle and the CRLs are loaded here, so a bad file is refused with
// its key's position rather than at startup.
void reader::read_listener_client_auth(const toml::table& t, proxy::listener_options& out) {
  using mode = tls::client_auth_options::mode_kind;
  tls::client_auth_options& a = out.tls.client_auth;
  const toml::node* on = t.get("client_auth");
  if (on != nullptr) {
    const std::string v = as_string(*on, "client_auth");
    if (v == "optional") {
      a.mode = mode::optional;
    } else if (v == "required") {
      a.mode = mode::required;
    } else if (v != "off") {
      fail(*on,
           "'client_auth' must be \"off\", \"optional\" or \"required\", not " + double_quoted(v));
    }
  }
  optional_integer(t, "client_verify_depth", 1, 16, a.verify_depth);
  const toml::node* ca = t.get("client_ca");
  const toml::node* crl = t.get("client_crl");
  if (a.mode == mode::off) {
    for (const char* key : {"client_ca", "client_crl", "client_verify_depth"}) {
      if (const toml::node* n = t.get(key)) {
        fail(*n, single_quoted(key) + " needs client_auth = \"optional\" or \"required\"");
      }
    }
    return;
  }
  if (ca == nullptr) {
    fail(*on, "client_auth = " + double_quoted(as_string(*on, "client_auth")) +
                  " needs 'client_ca', the PEM bundle of the CAs client certificates are "
                  "verified against");
  }
  a.ca_file = resolve(as_nonempty_string(*ca, "client_ca"));
  if (crl != nullptr) {
    a.crl_file = resolve(as_nonempty_string(*crl, "client_crl"));
  }
  tls::client_trust trust;
  std::string error;
  tls::client_trust_part part = tls::client_trust_part::ca;
  if (!tls::load_client_trust(a, static_cast<std::int64_t>(std::time(nullptr)), trust, error,
                              &part)) {
    fail(part == tls::client_trust_part::crl ? *crl : *ca, error);
  }
}

// A listener's request rules (http mode): the client fields dropped before forwarding and
// whether encoded slashes may stay in a path.
void reader::read_listener_requests(const toml::table& t, proxy::listener_options& out) {
  if (const toml::node* n = t.get("drop_client_headers")) {
    out.drop_client_headers.clear();  // []: none beyond what tlsfront always replaces
    for_each_string(*n, "drop_client_headers", [&](const toml::node& e, const std::string& v) {
      const bool token = std::all_of(v.begin(), v.end(), is_token_char);
      if (!token) {
        fail(e, "invalid header name " + double_quoted(v) + " in 'drop_client_headers'");
      }
      out.drop_client_headers.push_back(v);
    });
  }
  optional_key(t, "allow_encoded_slashes", out.allow_encoded_slashes,
               [](const toml::node& n) { return as_bool(n, "allow_encoded_slashes"); });
}

namespace {

// "/etc/tls/a.example.pem" -> "a.example".
std::string name_from_file(const std::string& path) {
  return std::filesystem::path(path).stem().string();
}

}  // namespace

void reader::read_certificate(const toml::table& t, tls::certificate_options& out) {
  const std::string_view section = "listener.certificate";
  check_keys(t, section,
             {"cert", "key", "server_names", "default", "name", "ocsp_stapling", "ocsp_file",
              "ocsp_responder"});
  const toml::node& cert_node = require(t, "cert", section);
  const toml::node& key_node = require(t, "key", section);
  out.cert_file = resolve(as_nonempty_string(cert_node, "cert"));
  out.key_file = resolve(as_nonempty_string(key_node, "key"));
  if (const toml::node* n = t.get("server_names")) {
    for_each_string(*n, "server_names", [&](const toml::node& e, const std::string& text) {
      std::string name = text;
      std::string why;
      if (!check_server_name(name, why)) {
        fail(e, "invalid server name " + double_quoted(text) + ": " + why);
      }
      out.server_names.push_back(std::move(name));
    });
  }
  optional_key(t, "default", out.is_default,
               [](const toml::node& n) { return as_bool(n, "default"); });
  const toml::node* name_node = t.get("name");
  if (name_node != nullptr) {
    out.name = as_nonempty_string(*name_node, "name");
    if (!tls::valid_certificate_name(out.name)) {
      fail(*name_node, "certificate name " + double_quoted(out.name) +
                           " must be 1 to 64 letters, digits, '.', '_' or '-', not starting "
                           "with '.' or '-'");
    }
  } else {
    out.name = name_from_file(out.cert_file);
    if (!tls::valid_certificate_name(out.name)) {
      fail(cert_node, "no certificate name can be made from the file name of " + out.cert_file +
                          ": set 'name' (1 to 64 letters, digits, '.', '_' or '-')");
    }
  }
  const toml::node& named_at = name_node != nullptr ? *name_node : cert_node;
  const auto [seen, fresh] = certificate_names_.try_emplace(
      out.name, named_certificate{out.cert_file, out.key_file, named_at.source().begin.line});
  if (!fresh &&
      (seen->second.cert_file != out.cert_file || seen->second.key_file != out.key_file)) {
    fail(named_at, "certificate name " + single_quoted(out.name) + " is already used (line " +
                       std::to_string(seen->second.line) +
                       ") for other files: one name, one certificate (set 'name')");
  }

  auto loaded = std::make_shared<tls::loaded_certificate>();
  std::string error;
  tls::certificate_part part = tls::certificate_part::cert;
  if (!tls::load_certificate(out, *loaded, error, &part)) {
    fail(part == tls::certificate_part::key ? key_node : cert_node, error);
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (!tls::check_certificate_chain(*loaded, now, error)) {
    fail(cert_node, out.cert_file + ": " + error);
  }
  // A replacement installed through the admin API and kept in certificate_dir wins.
  if (!certificate_dir_.empty()) {
    const std::string copy = tls::certificate_file_path(certificate_dir_, out.name);
    std::error_code ec;
    if (std::filesystem::exists(copy, ec)) {
      const std::string text = read_whole_file(copy, *certificate_dir_node_, "certificate");
      auto replaced = std::make_shared<tls::loaded_certificate>();
      if (!tls::parse_certificate_pem(text, copy, *replaced, error) ||
          !tls::check_certificate_chain(*replaced, now, error)) {
        fail(*certificate_dir_node_, "certificate " + single_quoted(out.name) +
                                         " from certificate_dir: " + error + " (remove " + copy +
                                         " to serve the config's files)");
      }
      loaded = std::move(replaced);
      out.source = tls::certificate_options::source_kind::certificate_dir;
    }
  }
  read_certificate_ocsp(t, *loaded, out);
  out.loaded = std::move(loaded);
}

void reader::read_certificate_ocsp(const toml::table& t, const tls::loaded_certificate& cert,
                                   tls::certificate_options& out) {
  optional_key(t, "ocsp_stapling", out.ocsp_stapling,
               [](const toml::node& n) { return as_bool(n, "ocsp_stapling"); });
  const toml::node* file_node = t.get("ocsp_file");
  const toml::node* responder_node = t.get("ocsp_responder");
  if (file_node != nullptr && responder_node != nullptr) {
    fail(*responder_node,
         "'ocsp_responder' and 'ocsp_file' exclude each other: the response "
         "is either fetched or read");
  }
  if (!out.ocsp_stapling && (file_node != nullptr || responder_node != nullptr)) {
    fail(file_node != nullptr ? *file_node : *responder_node,
         "ocsp_stapling is off: remove " +
             single_quoted(file_node != nullptr ? "ocsp_file" : "ocsp_responder"));
  }
  std::string error;
  if (file_node != nullptr) {
    out.ocsp_file = resolve(as_nonempty_string(*file_node, "ocsp_file"));
    tls::file_ptr f;
    if (!tls::open_file(out.ocsp_file, f, error)) {
      fail(*file_node, error);
    }
  }
  if (responder_node != nullptr) {
    out.ocsp_responder = as_nonempty_string(*responder_node, "ocsp_responder");
    proxy::http_url url;
    if (!proxy::parse_http_url(out.ocsp_responder, url, error)) {
      fail(*responder_node, "ocsp_responder: " + error);
    }
  }
  // What the stapler would refuse at start, said here with a position.
  const bool must = tls::is_must_staple(cert.leaf.get());
  const bool has_source = !out.ocsp_file.empty() || !out.ocsp_responder.empty() ||
                          !tls::ocsp_urls(cert.leaf.get()).empty();
  if (must && (!out.ocsp_stapling || !has_source)) {
    const toml::node* at = t.get("ocsp_stapling");
    fail(at != nullptr ? *at : *t.get("cert"),
         out.cert_file + " is must-staple (TLS Feature status_request): it needs OCSP stapling " +
             (!out.ocsp_stapling ? std::string("on")
                                 : "and names no responder (set 'ocsp_responder' or 'ocsp_file')"));
  }
  if (out.ocsp_stapling && has_source) {
    tls::ocsp_target target;
    if (!tls::ocsp_target_of(cert, target, error) &&
        (must || !out.ocsp_file.empty() || !out.ocsp_responder.empty())) {
      fail(*t.get("cert"), out.cert_file + ": cannot staple OCSP: " + error);
    }
  }
}

}  // namespace tlsfront::config::detail
