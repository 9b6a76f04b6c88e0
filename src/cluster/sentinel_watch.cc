#include "cluster/sentinel_watch.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

namespace tlsfront::cluster {

sentinel_watch::sentinel_watch(asio::io_context& ioc, const redis_options& opts)
    : master_name_(opts.master_name), sub_(ioc, subscriber_options(opts)) {}

redis_options sentinel_watch::subscriber_options(const redis_options& opts) {
  redis_options o = sentinel_connection_options(opts);
  o.rotate = opts.sentinels;
  return o;
}

void sentinel_watch::follow(asio::io_context& ioc, redis_client& client) {
  followed_.push_back({&ioc, &client});
}

void sentinel_watch::start() {
  sub_.subscribe("+switch-master", [this](const std::string& payload) { on_message(payload); });
  sub_.start();
}

std::optional<redis_endpoint> sentinel_watch::parse_switch(std::string_view payload,
                                                           std::string_view master_name) {
  std::vector<std::string_view> words;
  while (!payload.empty() && words.size() <= 5) {
    const std::size_t sp = payload.find(' ');
    words.push_back(payload.substr(0, sp));
    payload = sp == std::string_view::npos ? std::string_view() : payload.substr(sp + 1);
  }
  if (words.size() != 5 || words[0] != master_name) {
    return std::nullopt;
  }
  // The new address has the shape of a get-master-addr-by-name answer: one check for both.
  redis_reply r;
  r.type = redis_reply::kind::array;
  r.elements.resize(2);
  for (int i = 0; i < 2; ++i) {
    r.elements[i].type = redis_reply::kind::string;
    r.elements[i].str = std::string(words[3 + i]);
  }
  std::string why;
  return sentinel_master_reply(r, why);
}

void sentinel_watch::on_message(const std::string& payload) {
  const std::optional<redis_endpoint> to = parse_switch(payload, master_name_);
  if (!to) {
    return;  // another master's switch, or nothing tlsfront can use
  }
  switches_.fetch_add(1, std::memory_order_relaxed);
  spdlog::info("redis master '{}': the sentinels switched it to {}", master_name_, to->str());
  for (const followed& f : followed_) {
    asio::post(*f.ioc, [c = f.client, e = *to] { c->master_moved(e); });
  }
}

}  // namespace tlsfront::cluster
