// proxy/router.h — picks the backend pool for a request from its Host and path, in route order.
// Thread-safety: immutable after construction; match() is const and lock-free.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "proxy/options.h"

namespace tlsfront::proxy {

class router {
 public:
  // `pool_names[i]` is the name of pool i; routes naming a pool not in it are skipped (config
  // validation refuses them earlier).
  router(const std::vector<route_options>& routes, const std::vector<std::string>& pool_names);

  struct target {
    int pool = -1;                           // index of the pool that serves the request
    std::vector<std::string> upgrades;       // protocols it may be upgraded to (lowercase)
    bool send_session_handle = false;        // route_options::send_session_handle
    std::vector<std::string> early_methods;  // route_options::early_data_methods
  };
  // What serves this request, or nullptr if no route matches. `host` may carry a port
  // ("a.example:8443"), which is ignored; matching is case-insensitive. `path` is compared
  // as given: the caller passes the normalized one (http/path_normalize.h).
  const target* match(std::string_view host, std::string_view path) const;

 private:
  struct compiled {
    std::string host;  // lowercase; "" any; "*.x" wildcard
    std::string path_prefix;
    target to;
  };
  std::vector<compiled> routes_;
};

// "A.Example:8443" → "a.example"; "[::1]:8443" → "[::1]".
std::string normalize_host(std::string_view host);

}  // namespace tlsfront::proxy
