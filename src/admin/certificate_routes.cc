#include "admin/certificate_routes.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "admin/json_reply.h"
#include "tls/certificate.h"
#include "tls/x509_fields.h"

namespace tlsfront::admin {
namespace {

std::string quoted(std::string_view s) {
  return "\"" + json_escape(s) + "\"";
}

std::string string_array(const std::vector<std::string>& v) {
  std::string out = "[";
  for (const std::string& s : v) {
    out += (out.size() > 1 ? "," : "") + quoted(s);
  }
  return out + "]";
}

void add_once(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) {
    v.push_back(s);
  }
}

// One certificate as GET /certificates shows it (what the entries of that name share).
struct shown {
  const tls::certificate_options* entry = nullptr;  // the first entry of the name
  std::vector<std::string> listeners;
  std::vector<std::string> server_names;
};

// The "ocsp" object: whether a response is stapled, where it comes from, the newest fetch.
std::string describe_ocsp(const proxy::ocsp_stapler::description& d) {
  std::string out =
      "{\"state\":" + quoted(d.state) + ",\"must_staple\":" + (d.must_staple ? "true" : "false");
  if (d.state == "off") {
    return out + "}";
  }
  out += ",\"source\":" + quoted(d.source) + ",\"last_result\":" + quoted(d.last_result);
  if (!d.last_error.empty()) {
    out += ",\"last_error\":" + quoted(d.last_error);
  }
  if (d.next_update > 0) {
    out += ",\"this_update\":" + quoted(tls::rfc3339(d.this_update)) +
           ",\"next_update\":" + quoted(tls::rfc3339(d.next_update));
  }
  if (d.last_fetch > 0) {
    out += ",\"last_fetch\":" + quoted(tls::rfc3339(d.last_fetch)) +
           ",\"next_fetch\":" + quoted(tls::rfc3339(d.next_fetch));
  }
  return out + "}";
}

std::string describe(const shown& c, const proxy::ocsp_stapler& ocsp, std::int64_t now) {
  const tls::certificate_options& co = *c.entry;
  std::string out = "{\"name\":" + quoted(co.name) +
                    ",\"source\":" + quoted(tls::certificate_source_name(co.source)) +
                    ",\"listeners\":" + string_array(c.listeners) +
                    ",\"server_names\":" + string_array(c.server_names);
  if (co.source == tls::certificate_options::source_kind::config) {
    out += ",\"cert_file\":" + quoted(co.cert_file) + ",\"key_file\":" + quoted(co.key_file);
  }
  if (const tls::loaded_certificate* l = co.loaded.get()) {
    X509* leaf = l->leaf.get();
    out += ",\"dns_names\":" + string_array(l->names) +
           ",\"subject\":" + quoted(tls::name_line(X509_get_subject_name(leaf))) +
           ",\"issuer\":" + quoted(tls::name_line(X509_get_issuer_name(leaf))) +
           ",\"serial\":" + quoted(tls::serial_hex(leaf)) + ",\"sha256\":" + quoted(l->sha256) +
           ",\"not_before\":" + quoted(tls::rfc3339(l->not_before)) +
           ",\"not_after\":" + quoted(tls::rfc3339(l->not_after)) +
           ",\"expires_in_seconds\":" + std::to_string(l->not_after - now) +
           ",\"chain_certificates\":" + std::to_string(l->chain.size());
  }
  return out + ",\"ocsp\":" + describe_ocsp(ocsp.describe(co)) + "}";
}

admin_response list_certificates(const proxy::server& srv) {
  const std::shared_ptr<const proxy::snapshot> snap = srv.current();
  std::vector<std::string> order;
  std::map<std::string, shown> by_name;
  for (const proxy::listener_runtime& lr : snap->listeners) {
    for (const tls::certificate_options& co : lr.opts.tls.certificates) {
      auto [it, fresh] = by_name.try_emplace(co.name);
      if (fresh) {
        it->second.entry = &co;
        order.push_back(co.name);
      }
      add_once(it->second.listeners, lr.opts.name);
      for (const std::string& n : co.server_names) {
        add_once(it->second.server_names, n);
      }
    }
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  std::string body = "{\"certificates\":[";
  for (std::size_t i = 0; i < order.size(); ++i) {
    body += (i == 0 ? "" : ",") + describe(by_name.at(order[i]), srv.ocsp(), now);
  }
  return json_reply(200, body + "]}\n");
}

}  // namespace

void register_certificate_routes(admin_server& admin, proxy::server& srv,
                                 const std::string& certificate_dir,
                                 core::metrics_registry& metrics) {
  const char* help =
      "Certificate replacements asked of the admin API (PUT /certificates/<name>): "
      "ok, refused (nothing changed), not_persisted (in force, not written to "
      "certificate_dir)";
  core::counter* ok =
      &metrics.add_counter("tlsfront_certificate_replacements_total", help, "result=\"ok\"");
  core::counter* refused =
      &metrics.add_counter("tlsfront_certificate_replacements_total", help, "result=\"refused\"");
  core::counter* not_persisted = &metrics.add_counter("tlsfront_certificate_replacements_total",
                                                      help, "result=\"not_persisted\"");
  admin.handle("GET", "/certificates",
               [&srv](const admin_request&) { return list_certificates(srv); });
  admin.handle(
      "PUT", "/certificates/",
      [&srv, certificate_dir, ok, refused, not_persisted](const admin_request& r) {
        const std::string name(
            std::string_view(r.path).substr(std::string_view("/certificates/").size()));
        auto refuse = [&](int status, const std::string& why) {
          refused->inc();
          spdlog::warn("admin: certificate '{}' not replaced: {}", name, why);
          return json_error(status, why);
        };
        if (!tls::valid_certificate_name(name)) {
          return refuse(404, "no certificate is named '" + name +
                                 "' (names are 1 to 64 letters, digits, '.', '_' or '-')");
        }
        if (r.body.empty()) {
          return refuse(400,
                        "send the certificate chain (leaf first) and its private key, in PEM, "
                        "as the request body");
        }
        auto cert = std::make_shared<tls::loaded_certificate>();
        std::string error;
        if (!tls::parse_certificate_pem(r.body, "the request body", *cert, error) ||
            !tls::check_certificate_chain(*cert, static_cast<std::int64_t>(std::time(nullptr)),
                                          error)) {
          return refuse(400, error);
        }
        const std::string sha256 = cert->sha256;
        const std::int64_t not_after = cert->not_after;
        const std::string pem =
            certificate_dir.empty() ? std::string() : tls::certificate_pem(*cert);
        if (!certificate_dir.empty() && pem.empty()) {
          return refuse(400, "the certificate cannot be encoded for certificate_dir");
        }
        switch (srv.replace_certificate(name, cert, error)) {
          case proxy::server::replace_outcome::unknown_name:
            return refuse(404, error);
          case proxy::server::replace_outcome::refused:
            return refuse(400, error);
          case proxy::server::replace_outcome::replaced:
            break;
        }
        std::string persisted = "false";
        if (!certificate_dir.empty()) {
          if (!tls::write_certificate_file(certificate_dir, name, pem, error)) {
            not_persisted->inc();
            spdlog::error(
                "admin: certificate '{}' replaced (sha256 {}) but not written to certificate_dir: "
                "{}; "
                "a restart will serve the previous one",
                name, sha256, error);
            return json_reply(500, "{\"name\":" + quoted(name) +
                                       ",\"replaced\":true,\"persisted\":false,\"error\":" +
                                       quoted(error) + "}\n");
          }
          persisted = quoted(tls::certificate_file_path(certificate_dir, name));
        }
        ok->inc();
        spdlog::info("admin: certificate '{}' replaced: sha256 {}, valid until {}{}", name, sha256,
                     tls::rfc3339(not_after),
                     certificate_dir.empty()
                         ? " (in memory only: no certificate_dir)"
                         : ", written to " + tls::certificate_file_path(certificate_dir, name));
        return json_reply(200, "{\"name\":" + quoted(name) +
                                   ",\"replaced\":true,\"sha256\":" + quoted(sha256) +
                                   ",\"not_after\":" + quoted(tls::rfc3339(not_after)) +
                                   ",\"persisted\":" + persisted + "}\n");
      });
}

}  // namespace tlsfront::admin
