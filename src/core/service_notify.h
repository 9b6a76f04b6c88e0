// core/service_notify.h — the systemd notification protocol (sd_notify(3)) without libsystemd:
// one datagram to the AF_UNIX socket named by $NOTIFY_SOCKET ("READY=1", "RELOADING=1",
// "STOPPING=1", "STATUS=..."). Without $NOTIFY_SOCKET (not run by systemd with Type=notify)
// every call does nothing. Thread-safety: any thread; each call opens its own socket.
#pragma once

#include <string_view>

namespace tlsfront::core {

// Sends `state` (newline-separated assignments). False if $NOTIFY_SOCKET is set but the
// message could not be sent; true otherwise.
bool service_notify(std::string_view state);

}  // namespace tlsfront::core
