// admin/certificate_routes.h — the served certificates, and their replacement without a reload:
//   GET /certificates          every certificate by name: listeners, server names, DNS names,
//                              subject, issuer, serial, SHA-256, validity, where it comes from
//                              (config, certificate_dir, admin) and its OCSP status; never a
//                              byte of a key
//   PUT /certificates/<name>   the body (PEM: the chain from the leaf up and its unencrypted
//                              key) replaces the certificate named <name> on every listener, for
//                              new handshakes on every worker at once; checked as the config is
//                              (key matches, chain order and signatures, validity) and against
//                              the names it is served for. 200 when in force; 400 (why) and
//                              404 (unknown name) change nothing. With [admin] certificate_dir
//                              it is also written there (<dir>/<name>.pem, 0600); a 500 says it
//                              is in force but not persisted.
// Counted in tlsfront_certificate_replacements_total{result}. Thread-safety: handlers run on
// the admin thread; the replacement is serialized with reloads inside proxy::server.
#pragma once

#include <string>

#include "admin/admin_server.h"
#include "core/metrics.h"
#include "proxy/server.h"

namespace tlsfront::admin {

void register_certificate_routes(admin_server& admin, proxy::server& srv,
                                 const std::string& certificate_dir,
                                 core::metrics_registry& metrics);

}  // namespace tlsfront::admin
