// Revocation across a fleet (issue 14): instances A and B (and C, started later) sharing one
// real redis-server, with the echo backend (its /logout answers "TLS-Logout: 1"). For each
// resumption path (TLS 1.2 session ID, TLS 1.2 ticket, TLS 1.3 ticket) a session made on A and
// resumed on B is logged out on B; then it resumes nowhere (A, B, C) while another client's
// session still does. Redis killed before a logout and restarted after: A refuses once Redis is
// back. A purge refuses every old session and ticket everywhere and replaces the ticket keys;
// new sessions work. A fleet flush refuses every cached session ID everywhere; scope=local
// says it is local. The propagation lag (a logout or admin revocation on B answered → the
// first handshake on A that is refused) is measured and printed (TLSFRONT_LAG_TRIALS trials,
// default 10), never asserted.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include "integration/harness.h"
#include "support/redis_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

using clock_type = std::chrono::steady_clock;

bool has(const std::string& s, const std::string& needle) {
  return s.find(needle) != std::string::npos;
}

struct mode {
  const char* name;
  tls_client::options (*opts)(SSL_SESSION* s);
};

const std::vector<mode>& modes() {
  static const std::vector<mode> m = {
      {"TLS 1.2 session ID",
       [](SSL_SESSION* s) { return tls_client::session_id_only("a.example", s); }},
      {"TLS 1.2 ticket", [](SSL_SESSION* s) { return client("a.example", TLS1_2_VERSION, s); }},
      {"TLS 1.3 ticket", [](SSL_SESSION* s) { return client("a.example", TLS1_3_VERSION, s); }},
  };
  return m;
}

using visit = session_visit;

visit connect_and_get(proxy_instance& p, const tls_client::options& o, const std::string& path) {
  return visit_with(p.port(), o, path);
}

class FleetRevocationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = make_temp_dir();
    secret_ = dir_ + "/fleet.secret";
    write_file(secret_, "fleet-secret-for-revocation-tests-0123456789\n");
    ::chmod(secret_.c_str(), 0600);
    backend_ = std::make_unique<echo_backend>(dir_);
  }
  // Session cache + fleet store, the fleet's ticket keys (read every 200 ms), two workers.
  std::string config(const redis_server& r) const {
    return default_config(backend_->address(), "", "", 2) + "send_session_handle = true\n" +
           "[cluster]\nredis = \"" + r.address() + "\"\nsecret_file = \"" + secret_ +
           "\"\npoll_interval = \"200ms\"\nconnect_timeout = \"300ms\"\n"
           "command_timeout = \"500ms\"\nlookup_timeout = \"300ms\"\n"
           "[tickets]\npublish_ahead = \"1s\"\n";
  }
  std::unique_ptr<proxy_instance> instance(const redis_server& r) const {
    auto p = std::make_unique<proxy_instance>(config(r), make_temp_dir());
    // Subscribed and read back (a later revocation reaches it through the channel).
    EXPECT_GE(p->metric_reaching("tlsfront_fleet_revocation_resyncs_total", 1), 1);
    return p;
  }
  // Until every instance seals under the same fleet key.
  static void wait_shared(const std::vector<proxy_instance*>& ps) {
    for (int i = 0; i < 200; ++i) {
      bool same = true;
      for (proxy_instance* p : ps) {
        same = same && p->metric("tlsfront_fleet_ticket_keys_shared") == 1 &&
               current_key_name(*p) == current_key_name(*ps.front()) &&
               !current_key_name(*p).empty();
      }
      if (same) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ADD_FAILURE() << "the instances never shared their ticket keys";
  }
  // A resumable session made on `a` (written to Redis for session IDs) and resumed on `b`.
  static visit made_on_a_resumed_on_b(const mode& m, proxy_instance& a, proxy_instance& b) {
    const double writes = a.metric("tlsfront_fleet_session_writes_total");
    visit made = connect_and_get(a, m.opts(nullptr), "/headers");
    if (std::string(m.name) == "TLS 1.2 session ID") {
      a.metric_reaching("tlsfront_fleet_session_writes_total", writes + 1);
    }
    visit on_b = connect_and_get(b, m.opts(made.session.get()), "/headers");
    EXPECT_TRUE(on_b.resumed) << m.name << ": made on A, not resumed on B";
    EXPECT_EQ(on_b.handle, made.handle);
    return on_b;
  }

  std::string dir_, secret_;
  std::unique_ptr<echo_backend> backend_;
};

TEST_F(FleetRevocationTest, ALogoutOnOneInstanceRefusesThatSessionOnEveryInstance) {
  redis_server r;
  auto a = instance(r), b = instance(r);
  wait_shared({a.get(), b.get()});
  std::vector<visit> logged_out, bystanders;
  for (const mode& m : modes()) {
    SCOPED_TRACE(m.name);
    visit on_b = made_on_a_resumed_on_b(m, *a, *b);
    bystanders.push_back(made_on_a_resumed_on_b(m, *a, *b));
    const double received = a->metric("tlsfront_fleet_revocations_received_total");
    visit logout = connect_and_get(*b, m.opts(on_b.session.get()), "/logout");
    ASSERT_TRUE(logout.resumed);
    EXPECT_EQ(response_body(logout.response), "logged out\n");
    EXPECT_GE(a->metric_reaching("tlsfront_fleet_revocations_received_total", received + 1),
              received + 1);
    for (proxy_instance* p : {a.get(), b.get()}) {
      for (SSL_SESSION* s : {on_b.session.get(), logout.session.get()}) {
        visit v = connect_and_get(*p, m.opts(s), "/headers");
        EXPECT_FALSE(v.resumed) << "a logged-out session resumed";
        EXPECT_EQ(response_status(v.response), 200);
      }
    }
    logged_out.push_back(std::move(logout));
  }
  EXPECT_EQ(b->metric("tlsfront_revocations_total{source=\"backend\"}"), 3);
  // C starts after the logouts: it reads them back from Redis.
  auto c = instance(r);
  wait_shared({a.get(), b.get(), c.get()});
  for (std::size_t i = 0; i < modes().size(); ++i) {
    SCOPED_TRACE(modes()[i].name);
    EXPECT_FALSE(
        connect_and_get(*c, modes()[i].opts(logged_out[i].session.get()), "/headers").resumed)
        << "a third instance started later resumed a logged-out session";
    visit still = connect_and_get(*c, modes()[i].opts(bystanders[i].session.get()), "/headers");
    EXPECT_TRUE(still.resumed) << "another client's session must still resume";
    EXPECT_EQ(still.handle, bystanders[i].handle);
  }
  EXPECT_GE(c->metric("tlsfront_fleet_revoked_handles_read_total"), 3);
}

TEST_F(FleetRevocationTest, OpensslSessionsLoggedOutOnOneInstanceResumeOnNone) {
  redis_server r;
  auto a = instance(r), b = instance(r);
  wait_shared({a.get(), b.get()});
  const std::string get = "GET /headers HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  const std::string logout = "GET /logout HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
  for (std::string flags : {"-tls1_2 -no_ticket", "-tls1_2", "-tls1_3"}) {
    SCOPED_TRACE(flags);
    const std::string sess = dir_ + "/sess", other = dir_ + "/other";
    auto s_client = [&](proxy_instance& p) {
      return "openssl s_client -connect 127.0.0.1:" + std::to_string(p.port()) +
             " -servername a.example -ign_eof " + flags + " ";
    };
    const double writes = a->metric("tlsfront_fleet_session_writes_total");
    ASSERT_TRUE(
        has(run_command(s_client(*a) + "-sess_out " + sess + " 2>&1", get).out, "New, TLSv1."));
    ASSERT_TRUE(
        has(run_command(s_client(*a) + "-sess_out " + other + " 2>&1", get).out, "New, TLSv1."));
    a->metric_reaching("tlsfront_fleet_session_writes_total", writes + 2);  // session IDs
    const double heard = a->metric("tlsfront_fleet_revocations_received_total");
    command_result out = run_command(s_client(*b) + "-sess_in " + sess + " 2>&1", logout);
    ASSERT_TRUE(has(out.out, "Reused, TLSv1.")) << "made on A, resumed on B:\n" << out.out;
    EXPECT_TRUE(has(out.out, "logged out")) << out.out;
    EXPECT_GE(a->metric_reaching("tlsfront_fleet_revocations_received_total", heard + 1),
              heard + 1);
    for (proxy_instance* p : {a.get(), b.get()}) {
      command_result after = run_command(s_client(*p) + "-sess_in " + sess + " 2>&1", get);
      EXPECT_TRUE(has(after.out, "New, TLSv1.")) << after.out;
      EXPECT_TRUE(has(after.out, "200 OK")) << after.out;
    }
    command_result still = run_command(s_client(*b) + "-sess_in " + other + " 2>&1", get);
    EXPECT_TRUE(has(still.out, "Reused, TLSv1.")) << "another client's session:\n" << still.out;
  }
}

TEST_F(FleetRevocationTest, AKeyRotationAfterALogoutDoesNotBringTheSessionBack) {
  redis_server r;
  auto a = instance(r), b = instance(r);
  wait_shared({a.get(), b.get()});
  for (const mode& m : {modes()[1], modes()[2]}) {  // the ticket paths
    SCOPED_TRACE(m.name);
    visit on_b = made_on_a_resumed_on_b(m, *a, *b);
    visit bystander = made_on_a_resumed_on_b(m, *a, *b);
    const double heard = a->metric("tlsfront_fleet_revocations_received_total");
    ASSERT_TRUE(connect_and_get(*b, m.opts(on_b.session.get()), "/logout").resumed);
    a->metric_reaching("tlsfront_fleet_revocations_received_total", heard + 1);
    // Rotate: the tickets made so far are now under a previous key, and renewed ones under the
    // new current key.
    const std::string before = current_key_name(*a);
    ASSERT_EQ(response_status(a->admin_request("POST", "/tickets/rotate")), 202);
    for (int i = 0; i < 200 && (current_key_name(*a) == before ||
                                current_key_name(*a) != current_key_name(*b));
         ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ASSERT_NE(current_key_name(*a), before) << "the rotation did not happen";
    for (proxy_instance* p : {a.get(), b.get()}) {
      EXPECT_FALSE(connect_and_get(*p, m.opts(on_b.session.get()), "/headers").resumed)
          << "the logged-out session came back after a key rotation";
    }
    // The bystander's ticket renews under the new key and keeps its handle.
    visit renewed = connect_and_get(*b, m.opts(bystander.session.get()), "/headers");
    ASSERT_TRUE(renewed.resumed);
    EXPECT_EQ(renewed.handle, bystander.handle);
    visit again = connect_and_get(*a, m.opts(renewed.session.get()), "/headers");
    EXPECT_TRUE(again.resumed);
    EXPECT_EQ(again.handle, bystander.handle);
  }
}

TEST_F(FleetRevocationTest, ALogoutWhileRedisIsDownReachesTheFleetWhenItReturns) {
  redis_server r;
  auto a = instance(r), b = instance(r);
  wait_shared({a.get(), b.get()});
  const mode& m = modes()[2];  // TLS 1.3: the ticket needs no Redis to resume on A
  visit on_b = made_on_a_resumed_on_b(m, *a, *b);
  r.kill();
  visit logout = connect_and_get(*b, m.opts(on_b.session.get()), "/logout");
  ASSERT_TRUE(logout.resumed);
  EXPECT_FALSE(connect_and_get(*b, m.opts(on_b.session.get()), "/headers").resumed)
      << "B enforces its logout at once";
  EXPECT_EQ(b->metric_reaching("tlsfront_fleet_revocations_queued", 1), 1);
  EXPECT_TRUE(connect_and_get(*a, m.opts(on_b.session.get()), "/headers").resumed)
      << "A cannot know yet (this shows the test can fail)";
  // The admin says it is queued, not that the fleet has it.
  std::string admin = b->admin_request("DELETE", "/sessions/handle/" + on_b.handle);
  EXPECT_TRUE(has(admin, "\"fleet\":\"queued\"")) << admin;
  ASSERT_TRUE(r.restart());
  for (int i = 0; i < 300 && b->metric("tlsfront_fleet_revocations_queued") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(b->metric("tlsfront_fleet_revocations_queued"), 0);
  // A hears it (channel or read-back on its reconnect), then refuses.
  bool refused = false;
  for (int i = 0; i < 300 && !refused; ++i) {
    refused = !connect_and_get(*a, m.opts(on_b.session.get()), "/headers").resumed;
    if (!refused) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  EXPECT_TRUE(refused) << "A still resumes a session logged out while Redis was down";
  EXPECT_EQ(r.cli({"ZSCORE", "tlsfront:{rv}:h", on_b.handle}).empty(), false);
}

TEST_F(FleetRevocationTest, APurgeRefusesEveryOldSessionEverywhereAndReplacesTheKeys) {
  redis_server r;
  auto a = instance(r), b = instance(r);
  wait_shared({a.get(), b.get()});
  std::vector<visit> old;
  for (const mode& m : modes()) {
    old.push_back(made_on_a_resumed_on_b(m, *a, *b));
  }
  const std::string key_before = current_key_name(*a);
  std::string resp = b->admin_request("POST", "/sessions/purge");
  EXPECT_EQ(response_status(resp), 200) << resp;
  EXPECT_TRUE(has(resp, "\"fleet\":\"accepted\"")) << resp;
  EXPECT_TRUE(has(resp, "\"ticket_keys\":\"replaced in the fleet\"")) << resp;
  // Every instance ends up sealing under a new fleet key, and holds none of the old ones.
  for (int i = 0; i < 200 && (current_key_name(*a) == key_before ||
                              current_key_name(*a) != current_key_name(*b));
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_NE(current_key_name(*a), key_before);
  EXPECT_EQ(current_key_name(*a), current_key_name(*b));
  EXPECT_FALSE(has(a->admin_get("/tickets"), key_before)) << a->admin_get("/tickets");
  EXPECT_FALSE(has(b->admin_get("/tickets"), key_before)) << b->admin_get("/tickets");
  for (std::size_t i = 0; i < modes().size(); ++i) {
    SCOPED_TRACE(modes()[i].name);
    for (proxy_instance* p : {a.get(), b.get()}) {
      EXPECT_FALSE(connect_and_get(*p, modes()[i].opts(old[i].session.get()), "/headers").resumed)
          << "a session made before the purge resumed";
    }
    // New sessions work, across the fleet too.
    visit fresh = made_on_a_resumed_on_b(modes()[i], *a, *b);
    EXPECT_NE(fresh.handle, old[i].handle);
  }
  EXPECT_EQ(b->metric("tlsfront_revocations_total{source=\"purge\"}"), 1);
  EXPECT_EQ(r.cli({"--scan", "--pattern", "tlsfront:s:*"}).find(old[0].handle), std::string::npos);
}

TEST_F(FleetRevocationTest, APurgeFromBeforeAnInstanceStartedIsNotAppliedAgain) {
  redis_server r;
  // A purge five minutes ago, as its markers stand in Redis (generation = minutes since
  // 2025-01-01 UTC).
  const long long now_gen = (static_cast<long long>(std::time(nullptr)) - 1735689600) / 60;
  const std::string old_gen = std::to_string(now_gen - 5);
  r.cli({"SET", "tlsfront:{rv}:floor", old_gen});
  r.cli({"SET", "tlsfront:{rv}:purge", old_gen});
  auto a = instance(r);
  // Read back (the floor came with it), and the purge was not carried out again.
  EXPECT_EQ(
      a->metric_reaching("tlsfront_revocation_floor_generation", static_cast<double>(now_gen - 5)),
      static_cast<double>(now_gen - 5));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the rest of that read-back
  EXPECT_FALSE(has(a->log(), "purge heard")) << a->log();
  // A purge made now is (this shows the check can see one). Its generation is taken now, as a
  // purge takes it: the instance may have started a minute after now_gen, and a purge of the
  // generation it started in counts as one from before it.
  const long long purge_gen = (static_cast<long long>(std::time(nullptr)) - 1735689600) / 60 + 1;
  r.cli({"PUBLISH", "tlsfront:revoke",
         "p:" + std::to_string(purge_gen) + ":" + std::to_string(std::time(nullptr)) + ":0"});
  EXPECT_TRUE(has(a->log_containing("purge heard"), "purge heard"));
}

TEST_F(FleetRevocationTest, AFlushIsFleetWideUnlessAskedToBeLocal) {
  redis_server r;
  auto a = instance(r), b = instance(r);
  const mode& id = modes()[0];
  visit s1 = made_on_a_resumed_on_b(id, *a, *b);
  std::string local = a->admin_request("POST", "/sessions/flush?scope=local");
  EXPECT_TRUE(has(local, "\"scope\":\"local\"")) << local;
  EXPECT_TRUE(connect_and_get(*b, id.opts(s1.session.get()), "/headers").resumed)
      << "a local flush leaves the other instances alone";
  visit s2 = made_on_a_resumed_on_b(id, *a, *b);
  std::string fleet = a->admin_request("POST", "/sessions/flush");
  EXPECT_EQ(response_status(fleet), 200) << fleet;
  EXPECT_TRUE(has(fleet, "\"scope\":\"fleet\",\"fleet\":\"accepted\"")) << fleet;
  for (proxy_instance* p : {a.get(), b.get()}) {
    for (SSL_SESSION* s : {s1.session.get(), s2.session.get()}) {
      EXPECT_FALSE(connect_and_get(*p, id.opts(s), "/headers").resumed)
          << "a flushed session resumed (from a cache or from Redis)";
    }
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(2000));  // the next second
  visit s3 = made_on_a_resumed_on_b(id, *a, *b);
  EXPECT_TRUE(s3.resumed);
  std::string bad = a->admin_request("POST", "/sessions/flush?scope=everything");
  EXPECT_EQ(response_status(bad), 400) << bad;
}

TEST_F(FleetRevocationTest, PropagationLagFromAnAnsweredRevocationToARefusal) {
  redis_server r;
  auto a = instance(r), b = instance(r);
  wait_shared({a.get(), b.get()});
  const char* env = std::getenv("TLSFRONT_LAG_TRIALS");
  const int trials = env != nullptr ? std::max(1, std::atoi(env)) : 10;
  std::vector<double> logout_ms, admin_ms;
  int refused_at_once = 0;
  for (int t = 0; t < trials; ++t) {
    visit on_b = made_on_a_resumed_on_b(modes()[2], *a, *b);
    // Odd trials: the backend's logout (answered without waiting for Redis); even: the admin
    // call (answered once Redis accepted it).
    if (t % 2 == 1) {
      ASSERT_TRUE(connect_and_get(*b, modes()[2].opts(on_b.session.get()), "/logout").resumed);
    } else {
      std::string resp = b->admin_request("DELETE", "/sessions/handle/" + on_b.handle);
      ASSERT_TRUE(has(resp, "\"fleet\":\"accepted\"")) << resp;
    }
    const auto answered = clock_type::now();
    bool refused = false;
    int tries = 0;
    while (!refused && tries++ < 5000) {
      // A handshake alone (no request): the lag's resolution is one resumed handshake.
      tls_client probe(a->port(), modes()[2].opts(on_b.session.get()));
      ASSERT_TRUE(probe.connected()) << probe.error();
      refused = !probe.resumed();
    }
    ASSERT_TRUE(refused);
    refused_at_once += tries == 1 ? 1 : 0;
    (t % 2 == 1 ? logout_ms : admin_ms)
        .push_back(std::chrono::duration<double, std::milli>(clock_type::now() - answered).count());
  }
  for (auto* v : {&logout_ms, &admin_ms}) {
    if (v->empty()) {
      continue;
    }
    std::sort(v->begin(), v->end());
    const char* what = v == &logout_ms ? "backend logout on B" : "admin revocation on B";
    std::printf(
        "revocation lag (%s answered -> A refuses), %zu trials: median %.2f ms, max %.2f "
        "ms\n",
        what, v->size(), (*v)[v->size() / 2], v->back());
    RecordProperty(v == &logout_ms ? "logout_lag_median_ms" : "admin_lag_median_ms",
                   std::to_string((*v)[v->size() / 2]));
  }
  std::printf("refused on the first handshake after the answer: %d/%d\n", refused_at_once, trials);
}

}  // namespace
}  // namespace tlsfront::test
