// tests/support/run_until.h — drives an io_context on the test thread until a condition holds
// or a limit passes (a hang fails the test instead of blocking it; no timing is asserted).
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <functional>

namespace tlsfront::test {

inline bool run_until(boost::asio::io_context& ioc, const std::function<bool()>& done,
                      std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < end) {
    ioc.run_for(std::chrono::milliseconds(5));
    ioc.restart();
  }
  return done();
}

}  // namespace tlsfront::test
