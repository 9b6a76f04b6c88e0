#include "proxy/router.h"

#include <algorithm>

namespace tlsfront::proxy {

std::string normalize_host(std::string_view host) {
  if (!host.empty() && host.front() == '[') {
    size_t close = host.find(']');
    host = host.substr(0, close == std::string_view::npos ? host.size() : close + 1);
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  std::string out(host);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (!out.empty() && out.back() == '.') {
    out.pop_back();  // "a.example." names the same host
  }
  return out;
}

router::router(const std::vector<route_options>& routes,
               const std::vector<std::string>& pool_names) {
  for (const route_options& r : routes) {
    auto it = std::find(pool_names.begin(), pool_names.end(), r.pool);
    if (it == pool_names.end()) {
      continue;
    }
    routes_.push_back(compiled{normalize_host(r.host), r.path_prefix,
                               target{static_cast<int>(it - pool_names.begin()), r.upgrades,
                                      r.send_session_handle, r.early_data_methods}});
  }
}

const router::target* router::match(std::string_view host, std::string_view path) const {
  std::string h = normalize_host(host);
  for (const compiled& r : routes_) {
    if (!r.host.empty()) {
      if (r.host.rfind("*.", 0) == 0) {
        std::string_view suffix = std::string_view(r.host).substr(1);  // ".x.y"
        if (h.size() <= suffix.size() ||
            h.compare(h.size() - suffix.size(), suffix.size(), suffix) != 0 ||
            h.find('.') != h.size() - suffix.size()) {
          continue;
        }
      } else if (h != r.host) {
        continue;
      }
    }
    if (path.substr(0, r.path_prefix.size()) != r.path_prefix) {
      continue;
    }
    return &r.to;
  }
  return nullptr;
}

}  // namespace tlsfront::proxy
