#include "cluster/cluster_router.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <utility>

namespace tlsfront::cluster {

void cluster_stats::connection(const redis_endpoint& node, int delta) {
  std::lock_guard lock(mu_);
  nodes_[node.str()].connections_up += delta;
}

void cluster_stats::redirected(const redis_endpoint& to, bool ask) {
  std::lock_guard lock(mu_);
  node_view& v = nodes_[to.str()];
  ++(ask ? v.ask : v.moved);
}

void cluster_stats::roles(const std::vector<slot_range>& map) {
  std::lock_guard lock(mu_);
  std::map<std::string, bool> now;  // node -> master in this map
  for (const slot_range& r : map) {
    now[r.master.str()] = true;
    for (const redis_endpoint& e : r.replicas) {
      now.emplace(e.str(), false);
    }
  }
  for (auto& [name, v] : nodes_) {
    if (!now.contains(name)) {
      v.master = false;  // gone from the map (a failed master, a removed node)
    }
  }
  for (const auto& [name, master] : now) {
    auto [it, added] = nodes_.try_emplace(name);
    node_view& v = it->second;
    if (master && !v.master && !added && v.seen_replica) {
      ++v.promotions;
    }
    v.seen_replica = v.seen_replica || !master;
    v.master = master;
  }
}

std::map<std::string, cluster_stats::node_view> cluster_stats::nodes() const {
  std::lock_guard lock(mu_);
  return nodes_;
}

cluster_router::cluster_router(asio::io_context& ioc, redis_options opts,
                               std::function<void()> ready, std::shared_ptr<cluster_stats> stats)
    : ioc_(ioc),
      opts_(std::move(opts)),
      on_ready_(std::move(ready)),
      stats_(std::move(stats)),
      asker_(ioc, opts_),
      refresh_timer_(ioc),
      retry_(opts_.reconnect_min),
      degraded_(opts_.reconnect_min) {
  slots_.fill(kNoNode);
}

cluster_router::~cluster_router() {
  *alive_ = false;
  refresh_timer_.cancel();
  asker_.cancel();
  for (auto& n : nodes_) {
    if (n->up && stats_) {
      stats_->connection(n->ep, -1);
    }
  }
  nodes_.clear();  // pending commands complete now, with shutting_down
  retired_.clear();
}

void cluster_router::start() {
  if (!started_) {
    started_ = true;
    refresh();
  }
}

void cluster_router::refresh_soon() {
  // A redirect or a lost node: read the map again shortly (at most one read in flight; a burst
  // of redirects is one read).
  schedule_refresh(std::min(opts_.reconnect_min, std::chrono::milliseconds(100)));
}

void cluster_router::schedule_refresh(std::chrono::milliseconds after) {
  if (asker_.busy()) {
    refresh_wanted_ = true;
    return;
  }
  const auto at = std::chrono::steady_clock::now() + after;
  if (refresh_at_ > std::chrono::steady_clock::now() && refresh_at_ <= at) {
    return;  // an earlier read is already due
  }
  refresh_at_ = at;
  refresh_timer_.expires_at(at);
  refresh_timer_.async_wait([this, alive = alive_](const error_code& ec) {
    if (!ec && *alive) {
      refresh();
    }
  });
}

void cluster_router::refresh() {
  refresh_timer_.cancel();
  refresh_at_ = {};
  refresh_wanted_ = false;
  // The node that gave the last map first, then the masters (they know the map best), the
  // replicas, the nodes reached by redirections and the seeds.
  std::vector<redis_endpoint> ask;
  auto add = [&ask](const redis_endpoint& e) {
    if (std::find(ask.begin(), ask.end(), e) == ask.end()) {
      ask.push_back(e);
    }
  };
  if (answered_) {
    add(*answered_);
  }
  for (const auto& e : masters_) {
    add(e);
  }
  for (const auto& e : replicas_) {
    add(e);
  }
  for (const auto& n : nodes_) {
    add(n->ep);
  }
  for (const auto& e : opts_.cluster_nodes) {
    add(e);
  }
  asker_.ask(
      ask, 0, {"CLUSTER", "SLOTS"},
      [this](const redis_reply& r, const redis_endpoint& from, std::string& why) {
        read_ = parse_cluster_slots(r, from, why);
        if (read_) {
          answered_ = from;
        }
        return read_.has_value();
      },
      [this, alive = alive_](std::optional<std::size_t> which, const std::string& errors) {
        if (!*alive) {
          return;
        }
        if (!which) {
          const std::string why = "no node gave the slot map: " + errors;
          if (why != last_error_) {
            warn_once("redis cluster: " + why, opts_.reconnect_max);
            last_error_ = why;
          }
          // Until a map is read the owner is not ready and its callers degrade.
          schedule_refresh(retry_);
          retry_ = std::min(retry_ * 2, opts_.reconnect_max);
          return;
        }
        retry_ = opts_.reconnect_min;
        if (!last_error_.empty()) {
          spdlog::info("redis cluster: slot map read");
          last_error_.clear();
          warned_recovered();
        }
        apply(std::move(*read_));
        read_.reset();
        if (refresh_wanted_) {
          refresh_soon();
        } else if (!all_up()) {
          schedule_refresh(degraded_);
          degraded_ = std::min(degraded_ * 2, std::chrono::milliseconds(1000));
        } else {
          degraded_ = opts_.reconnect_min;
          schedule_refresh(opts_.map_refresh);
        }
      });
}

std::uint16_t cluster_router::index_of(const redis_endpoint& ep) const {
  for (std::size_t i = 0; i < nodes_.size(); ++i) {
    if (nodes_[i]->ep == ep) {
      return static_cast<std::uint16_t>(i);
    }
  }
  return kNoNode;
}

cluster_router::node& cluster_router::node_at(const redis_endpoint& ep) {
  if (const std::uint16_t i = index_of(ep); i != kNoNode) {
    return *nodes_[i];
  }
  auto n = std::make_unique<node>();
  n->ep = ep;
  redis_options o = opts_;
  o.cluster_nodes.clear();
  o.rotate.clear();
  o.sentinels.clear();
  o.host = ep.host;
  o.port = ep.port;
  o.database = 0;
  n->client = std::make_unique<redis_client>(ioc_, o);
  node* raw = n.get();
  raw->client->add_on_ready([this, raw, alive = alive_] {
    if (!*alive || raw->retired) {
      return;
    }
    raw->settled = true;
    if (!raw->up) {
      raw->up = true;
      if (stats_) {
        stats_->connection(raw->ep, +1);
      }
    }
    check_ready();
  });
  raw->client->on_failure([this, raw, alive = alive_](const std::string&) {
    if (!*alive || raw->retired) {
      return;
    }
    raw->settled = true;
    if (raw->up) {
      raw->up = false;
      if (stats_) {
        stats_->connection(raw->ep, -1);
      }
    }
    // A master lost: its replica may be promoted; read the map until every master is back.
    degraded_ = opts_.reconnect_min;
    refresh_soon();
    check_ready();
  });
  nodes_.push_back(std::move(n));
  raw->client->start();
  return *raw;
}

void cluster_router::apply(std::vector<slot_range> map) {
  if (stats_) {
    stats_->map_read();
    stats_->roles(map);
  }
  std::vector<redis_endpoint> masters, replicas;
  for (const slot_range& r : map) {
    if (std::find(masters.begin(), masters.end(), r.master) == masters.end()) {
      masters.push_back(r.master);
    }
    replicas.insert(replicas.end(), r.replicas.begin(), r.replicas.end());
  }
  replicas_ = std::move(replicas);
  // Nodes that are no master any more are closed (their pending commands fail, later); the
  // others keep their connections and their indexes are rebuilt.
  std::vector<std::unique_ptr<node>> keep;
  for (auto& n : nodes_) {
    if (std::find(masters.begin(), masters.end(), n->ep) != masters.end()) {
      keep.push_back(std::move(n));
    } else {
      retire(std::move(n));
    }
  }
  nodes_ = std::move(keep);
  masters_ = masters;
  slots_.fill(kNoNode);
  for (const slot_range& r : map) {
    node& n = node_at(r.master);
    const std::uint16_t i = index_of(n.ep);
    std::fill(slots_.begin() + r.first, slots_.begin() + r.last + 1, i);
  }
  have_map_ = true;
  check_ready();
}

bool cluster_router::all_up() const {
  return std::all_of(nodes_.begin(), nodes_.end(), [](const auto& n) { return n->up; });
}

void cluster_router::check_ready() {
  if (ready_ || !have_map_) {
    return;
  }
  if (std::all_of(nodes_.begin(), nodes_.end(), [](const auto& n) { return n->settled; })) {
    ready_ = true;
    if (on_ready_) {
      on_ready_();
    }
  }
}

void cluster_router::retire(std::unique_ptr<node> n) {
  if (n->up && stats_) {
    stats_->connection(n->ep, -1);
  }
  n->up = false;
  n->retired = true;
  node* raw = n.get();
  retired_.push_back(std::move(n));
  // Its replies already on their way still arrive (a redirection among them is followed);
  // then it goes. Not inside one of its client's callbacks: from a timer.
  after(opts_.command_timeout,
        [this, raw] { std::erase_if(retired_, [raw](const auto& r) { return r.get() == raw; }); });
}

void cluster_router::later(handler h, std::function<void(handler)> f) {
  auto t = std::make_shared<asio::steady_timer>(ioc_, std::chrono::milliseconds(20));
  t->async_wait([t, alive = alive_, h = std::move(h), f = std::move(f)](const error_code&) mutable {
    if (!*alive) {
      h(make_error_code(redis_errc::shutting_down), redis_reply{});
      return;
    }
    f(std::move(h));
  });
}

void cluster_router::after(std::chrono::milliseconds delay, std::function<void()> f) {
  auto t = std::make_shared<asio::steady_timer>(ioc_, delay);
  t->async_wait([t, alive = alive_, f = std::move(f)](const error_code& ec) {
    if (!ec && *alive) {
      f();
    }
  });
}

void cluster_router::fail_later(handler h, redis_errc e) {
  if (h) {
    asio::post(ioc_, [h = std::move(h), e] { h(make_error_code(e), redis_reply{}); });
  }
}

std::vector<redis_endpoint> cluster_router::masters() const {
  return masters_;
}

void cluster_router::command_at(const redis_endpoint& ep, std::vector<std::string> argv,
                                handler h) {
  const std::uint16_t i = index_of(ep);
  if (i == kNoNode) {
    fail_later(std::move(h), redis_errc::not_connected);
    return;
  }
  nodes_[i]->client->command(std::move(argv), std::move(h));
}

void cluster_router::command(std::vector<std::string> argv, handler h) {
  if (!have_map_ || nodes_.empty()) {
    fail_later(std::move(h), redis_errc::not_connected);
    return;
  }
  const command_route route = route_of(argv);
  switch (route.type) {
    case command_route::kind::slot:
      to_slot(route.slot, std::make_shared<std::vector<std::string>>(std::move(argv)), std::move(h),
              0);
      return;
    case command_route::kind::split:
      split(std::move(argv), std::move(h));
      return;
    case command_route::kind::per_node:
      asio::post(ioc_, [h = std::move(h)] {
        redis_reply r;
        r.type = redis_reply::kind::error;
        r.str = "ERR tlsfront: SCAN reads one node of a cluster: send it with command_at";
        h(error_code{}, r);
      });
      return;
    case command_route::kind::any:
      break;
  }
  // No key: any connected master, in turn.
  for (std::size_t k = 0; k < nodes_.size(); ++k) {
    node& n = *nodes_[(any_next_ + k) % nodes_.size()];
    if (n.up) {
      any_next_ = (any_next_ + k + 1) % nodes_.size();
      n.client->command(std::move(argv), std::move(h));
      return;
    }
  }
  fail_later(std::move(h), redis_errc::not_connected);
}

void cluster_router::to_slot(std::uint16_t slot, std::shared_ptr<std::vector<std::string>> argv,
                             handler h, int hops) {
  const std::uint16_t i = slots_[slot];
  if (i == kNoNode) {
    // A slot no master serves (a cluster not fully covered): not now.
    fail_later(std::move(h), redis_errc::not_connected);
    return;
  }
  send(*nodes_[i], std::move(argv), std::move(h), hops, false);
}

void cluster_router::send(node& n, std::shared_ptr<std::vector<std::string>> argv, handler h,
                          int hops, bool asking) {
  if (asking) {
    // The importing node serves the slot's keys to the next command after ASKING, on the
    // same connection: both go out back to back.
    n.client->command({"ASKING"}, [](const error_code&, const redis_reply&) {});
  }
  std::vector<std::string> copy = *argv;  // kept for a redirection
  n.client->command(std::move(copy),
                    [this, alive = alive_, from = n.ep, argv = std::move(argv), h = std::move(h),
                     hops](const error_code& ec, const redis_reply& r) mutable {
                      if (!*alive) {
                        h(ec, r);
                        return;
                      }
                      on_reply(from, std::move(argv), std::move(h), hops, ec, r);
                    });
}

void cluster_router::on_reply(const redis_endpoint& from,
                              std::shared_ptr<std::vector<std::string>> argv, handler h, int hops,
                              const error_code& ec, const redis_reply& r) {
  if (!h) {
    h = [](const error_code&, const redis_reply&) {};  // still followed: ASKING pairs, MOVED
  }
  if (ec || !r.is_error() || hops >= kMaxHops) {
    h(ec, r);
    return;
  }
  if (auto rd = parse_redirect(r.str, from.host)) {
    ++redirects_;
    if (stats_) {
      stats_->redirected(rd->to, rd->ask);
    }
    node& to = node_at(rd->to);
    if (!rd->ask) {
      // The slot has a new owner for good: route it there now, and read the whole map (a
      // failover or a resharding moves more than one slot).
      slots_[rd->slot] = index_of(to.ep);
      refresh_soon();
    }
    if (!to.client->ready()) {
      // A node this worker was not connected to (a promoted replica, a new master): its
      // connection is being made; send once it is up, a few pauses at most.
      const redis_endpoint target = to.ep;
      const bool ask = rd->ask;
      later(std::move(h), [this, target, ask, argv = std::move(argv), hops](handler h2) {
        send(node_at(target), argv, std::move(h2), hops + 1, ask);
      });
      return;
    }
    send(to, std::move(argv), std::move(h), hops + 1, rd->ask);
    return;
  }
  if (r.str.starts_with("TRYAGAIN")) {
    // Keys of one slot on both sides of a migration: shortly it is one side.
    later(std::move(h), [this, argv = std::move(argv), hops](handler h2) {
      to_slot(route_of(*argv).slot, argv, std::move(h2), hops + 1);
    });
    return;
  }
  if (r.str.starts_with("CLUSTERDOWN")) {
    refresh_soon();
  }
  h(ec, r);
}

void cluster_router::split(std::vector<std::string> argv, handler h) {
  // One command per slot; the integer replies summed, the first error kept.
  std::map<std::uint16_t, std::vector<std::string>> per_slot;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    auto& part = per_slot[key_slot(argv[i])];
    if (part.empty()) {
      part.push_back(argv[0]);
    }
    part.push_back(std::move(argv[i]));
  }
  struct total {
    std::size_t left;
    redis_reply sum;
    error_code ec;
    handler h;
  };
  auto t = std::make_shared<total>();
  t->left = per_slot.size();
  t->sum.type = redis_reply::kind::integer;
  t->h = std::move(h);
  for (auto& [slot, part] : per_slot) {
    to_slot(
        slot, std::make_shared<std::vector<std::string>>(std::move(part)),
        [t](const error_code& ec, const redis_reply& r) {
          if (ec && !t->ec) {
            t->ec = ec;
          } else if (!ec && r.type == redis_reply::kind::integer &&
                     t->sum.type == redis_reply::kind::integer) {
            t->sum.integer += r.integer;
          } else if (!ec && t->sum.type != redis_reply::kind::error) {
            t->sum = r;  // an error reply (or an odd one) is what the caller sees
          }
          if (--t->left == 0) {
            t->h(t->ec, t->ec ? redis_reply{} : t->sum);
          }
        },
        0);
  }
}

}  // namespace tlsfront::cluster
