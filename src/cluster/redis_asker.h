// cluster/redis_asker.h — asks a list of servers, one after another, for one answer: a short-lived
// connection to each in turn sends one command, and the first reply that `accept` takes ends the
// round. A server that refuses the connection, fails AUTH, does not answer within
// connect_timeout + command_timeout or gives a reply `accept` refuses is passed over at once.
// What the sentinel mode asks the sentinels (the master's address) and the cluster mode asks the
// nodes (the slot map) with.
//
// Thread-safety: none; one io_context thread. Destroying the asker (or cancel()) ends a round
// without calling `done`.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster/redis_client.h"

namespace tlsfront::cluster {

class redis_asker {
 public:
  // Takes or refuses a reply; on refusal sets `why` (for the round's summary).
  using accept_fn =
      std::function<bool(const redis_reply&, const redis_endpoint& from, std::string& why)>;
  // The index (in `servers`) of the server whose reply was taken, or nullopt when none was;
  // `errors` says what each server did ("a:p why; b:p why").
  using done_fn = std::function<void(std::optional<std::size_t> which, const std::string& errors)>;

  // `base`: the password and the timeouts of the connections (its address is unused).
  redis_asker(asio::io_context& ioc, redis_options base);
  ~redis_asker();
  redis_asker(const redis_asker&) = delete;
  redis_asker& operator=(const redis_asker&) = delete;

  // Starts a round (ending any running one without calling its `done`): `servers` from index
  // `first`, each once. `done` runs once, never inside this call.
  void ask(std::vector<redis_endpoint> servers, std::size_t first, std::vector<std::string> argv,
           accept_fn accept, done_fn done);
  void cancel();
  bool busy() const noexcept { return done_ != nullptr; }

 private:
  void next();
  void failed(const std::string& why);
  void on_answer(const error_code& ec, const redis_reply& r);
  void retire();

  asio::io_context& ioc_;
  redis_options base_;
  std::vector<redis_endpoint> servers_;
  std::vector<std::string> argv_;
  accept_fn accept_;
  done_fn done_;
  std::size_t at_ = 0, tried_ = 0;
  std::string errors_;
  std::unique_ptr<redis_client> probe_;
  asio::steady_timer timer_;
  std::uint64_t gen_ = 0;  // one per server asked: a late callback of an earlier one is ignored
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace tlsfront::cluster
