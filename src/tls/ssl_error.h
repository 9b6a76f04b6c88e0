// tls/ssl_error.h — turning BoringSSL's thread-local error queue into values.
#pragma once

#include <string>

namespace tlsfront::tls {

// Returns the queued BoringSSL errors as one line ("error:...:lib:reason; ...") and clears the
// queue. Returns "unknown error" if the queue was empty.
std::string take_ssl_error();

}  // namespace tlsfront::tls
