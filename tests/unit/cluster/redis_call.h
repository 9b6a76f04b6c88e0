// tests/unit/cluster/redis_call.h — one command on a redis_client, the io_context driven by the
// test thread until its reply (a missing completion fails the test, no timing is asserted).
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cluster/redis_client.h"
#include "support/run_until.h"

namespace tlsfront::cluster {

struct redis_result {
  error_code ec;
  redis_reply reply;
};

inline redis_result redis_call(boost::asio::io_context& ioc, redis_client& c,
                               std::vector<std::string> argv) {
  std::optional<redis_result> r;
  c.command(std::move(argv), [&](const error_code& ec, const redis_reply& rep) {
    r = redis_result{ec, rep};
  });
  EXPECT_TRUE(test::run_until(ioc, [&] { return r.has_value(); })) << "no completion";
  return r.value_or(redis_result{make_error_code(redis_errc::protocol), {}});
}

}  // namespace tlsfront::cluster
