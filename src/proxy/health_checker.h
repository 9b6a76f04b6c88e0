// proxy/health_checker.h — active health checks: one coroutine per checked server, on one
// worker's io_context (worker 0), for as long as the snapshot its pool belongs to is in force.
//
// A check is a TCP connect, or an HTTP/1.1 GET (Connection: close) whose status line must carry
// a status in the pool's expected range; either must finish within the check timeout. `fall`
// failed checks in a row take the server out of rotation (backend_health::up), `rise` good ones
// in a row bring it back; each change is logged once with the reason.
//
// Thread-safety: the coroutines run on the given io_context's thread; they write only the
// shared backend_health atomics. Ownership: each coroutine keeps `keep_alive` (the snapshot) so
// its pool outlives it.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <functional>
#include <memory>
#include <string>

#include "proxy/backend_pool.h"

namespace tlsfront::proxy {

// Starts checking every server of `pool` (nothing if the pool has no health_check). The checks
// stop at the first wake-up where `in_force()` is false.
void start_health_checks(asio::io_context& ioc, std::shared_ptr<const void> keep_alive,
                         backend_pool& pool, std::function<bool()> in_force);

// One check of one server: "" if healthy, else why not ("connect: Connection refused",
// "status 503", "timed out", ...).
asio::awaitable<std::string> probe_server(asio::io_context& ioc, const backend_server& server,
                                          const health_check_options& opts);

}  // namespace tlsfront::proxy
