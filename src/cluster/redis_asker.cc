#include "cluster/redis_asker.h"

#include <boost/asio/post.hpp>
#include <utility>

namespace tlsfront::cluster {

redis_asker::redis_asker(asio::io_context& ioc, redis_options base)
    : ioc_(ioc), base_(std::move(base)), timer_(ioc) {}

redis_asker::~redis_asker() {
  *alive_ = false;
  timer_.cancel();
  probe_.reset();
}

void redis_asker::ask(std::vector<redis_endpoint> servers, std::size_t first,
                      std::vector<std::string> argv, accept_fn accept, done_fn done) {
  cancel();
  servers_ = std::move(servers);
  at_ = servers_.empty() ? 0 : first % servers_.size();
  tried_ = 0;
  errors_.clear();
  argv_ = std::move(argv);
  accept_ = std::move(accept);
  done_ = std::move(done);
  // Posted: `done` never runs inside ask(), even when every server fails at once.
  asio::post(ioc_, [this, alive = alive_, gen = gen_] {
    if (*alive && gen == gen_ && done_) {
      next();
    }
  });
}

void redis_asker::cancel() {
  ++gen_;
  timer_.cancel();
  retire();
  done_ = nullptr;
}

void redis_asker::next() {
  if (tried_ >= servers_.size()) {
    done_fn d = std::exchange(done_, nullptr);
    d(std::nullopt, errors_.empty() ? std::string("no server to ask") : errors_);
    return;
  }
  const redis_endpoint& s = servers_[at_];
  ++tried_;
  retire();
  redis_options po = base_;
  po.rotate.clear();
  po.sentinels.clear();
  po.cluster_nodes.clear();
  po.database = 0;
  po.host = s.host;
  po.port = s.port;
  po.reconnect_min = po.reconnect_max = std::chrono::hours(1);  // one attempt: it is retired
  po.quiet = true;
  probe_ = std::make_unique<redis_client>(ioc_, po);
  const std::uint64_t gen = ++gen_;
  probe_->on_failure([this, gen, alive = alive_](const std::string& why) {
    if (*alive && gen == gen_) {
      failed(why);  // refused at once: the next server now, not after the deadline
    }
  });
  probe_->add_on_ready([this, gen, alive = alive_] {
    if (!*alive || gen != gen_) {
      return;
    }
    probe_->command(argv_, [this, gen, alive](const error_code& ec, const redis_reply& r) {
      if (*alive && gen == gen_) {
        on_answer(ec, r);
      }
    });
  });
  // Armed before start(): a connect refused at once fails the probe from inside start().
  const auto limit = base_.connect_timeout + base_.command_timeout;
  timer_.expires_after(limit);
  timer_.async_wait([this, gen, alive = alive_, limit](const error_code& ec) {
    if (ec || !*alive || gen != gen_) {
      return;
    }
    failed("no answer within " + std::to_string(limit.count()) + " ms");
  });
  probe_->start();
}

void redis_asker::on_answer(const error_code& ec, const redis_reply& r) {
  std::string why;
  const bool ok = ec ? (why = ec.message(), false) : accept_(r, servers_[at_], why);
  if (!ok) {
    failed(why);
    return;
  }
  const std::size_t which = at_;
  ++gen_;
  timer_.cancel();
  retire();
  done_fn d = std::exchange(done_, nullptr);
  d(which, errors_);
}

void redis_asker::failed(const std::string& why) {
  errors_ += (errors_.empty() ? "" : "; ") + servers_[at_].str() + " " + why;
  at_ = (at_ + 1) % servers_.size();
  ++gen_;
  timer_.cancel();
  next();
}

void redis_asker::retire() {
  // Often called from inside the probe's own callbacks: destroyed later, on this thread.
  if (probe_) {
    asio::post(ioc_, [p = std::shared_ptr<redis_client>(std::move(probe_))] {});
  }
}

}  // namespace tlsfront::cluster
