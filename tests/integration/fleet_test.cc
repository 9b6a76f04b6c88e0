// The fleet: two (or three) tlsfront instances sharing TLS 1.2 sessions and the ticket keys
// through a real redis-server. Sessions and tickets made on A resume on B, across forced key
// rotations; Redis down, paused, or holding tampered or foreign values never fails a handshake
// (full handshake instead, counted).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <set>
#include <thread>

#include "core/hex.h"
#include "integration/harness.h"
#include "support/redis_server.h"
#include "support/test_env.h"

namespace tlsfront::test {
namespace {

class FleetTest : public ::testing::Test {
 public:
  void SetUp() override {
    dir_ = make_temp_dir();
    secret_file_ = write_fleet_secret(dir_);
  }
  // Tickets off (every TLS 1.2 client gets a session ID), two workers, the shared Redis.
  std::string config(const std::string& backend, const redis_server& r,
                     const std::string& secret_file, const std::string& extra = "") {
    std::string c = default_config(backend, "", "", 2);
    c.replace(c.find("handshake_timeout = \"1s\"\n"), 0, "session_tickets = false\n");
    return c + "[cluster]\nredis = \"" + r.address() + "\"\nsecret_file = \"" + secret_file +
           "\"\nlookup_timeout = \"300ms\"\nconnect_timeout = \"300ms\"\n"
           "command_timeout = \"500ms\"\n" +
           extra;
  }
  // Tickets on (the fleet's keys, read every 200 ms, published 2 s ahead), two workers.
  std::string ticket_config(const std::string& backend, const redis_server& r,
                            const std::string& tickets = "publish_ahead = \"1s\"\n") {
    return default_config(backend, "", "", 2) + "[cluster]\nredis = \"" + r.address() +
           "\"\nsecret_file = \"" + secret_file_ +
           "\"\npoll_interval = \"200ms\"\nconnect_timeout = \"300ms\"\n"
           "command_timeout = \"500ms\"\n[tickets]\n" +
           tickets;
  }
  // Waits until both instances seal under the fleet's key (the same one).
  static void wait_shared_keys(proxy_instance& a, proxy_instance& b) {
    for (int i = 0; i < 200; ++i) {
      if (a.metric("tlsfront_fleet_ticket_keys_shared") == 1 &&
          b.metric("tlsfront_fleet_ticket_keys_shared") == 1 &&
          current_key_name(a) == current_key_name(b) && !current_key_name(a).empty()) {
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    ADD_FAILURE() << "the instances never shared their ticket keys:\n"
                  << a.admin_get("/tickets") << b.admin_get("/tickets");
  }
  static tls_client::options tls12(SSL_SESSION* session = nullptr) {
    return tls_client::session_id_only("a.example", session);
  }

  // A new session on `p`, after one request; waits until `p` wrote it to the fleet store.
  static bssl::UniquePtr<SSL_SESSION> session_on(proxy_instance& p, bool expect_written = true) {
    double before = p.metric("tlsfront_fleet_session_writes_total");
    tls_client c(p.port(), tls12());
    EXPECT_TRUE(c.connected()) << c.error();
    c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(response_status(c.read_response()), 200);
    if (expect_written) {
      EXPECT_GE(p.metric_reaching("tlsfront_fleet_session_writes_total", before + 1), before + 1);
    }
    return c.session();
  }
  // Handshake on `p` offering `s`, one request; true if it resumed. The request must succeed.
  static bool resumes_on(proxy_instance& p, SSL_SESSION* s) {
    tls_client c(p.port(), tls12(s));
    EXPECT_TRUE(c.connected()) << c.error();
    c.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    EXPECT_EQ(response_status(c.read_response()), 200);
    return c.resumed();
  }
  // Waits until every worker of `p` (two) has a ready Redis connection again.
  static void wait_for_redis(proxy_instance& p) {
    double up = 0;
    for (int i = 0; i < 3 && up < 2; ++i) {  // 15 s: the reconnect backoff is at most 1 s
      up = p.metric_reaching("tlsfront_fleet_redis_connections_up", 2);
    }
    EXPECT_EQ(up, 2) << "tlsfront did not reconnect to Redis";
  }
  // The Redis key holding session `s`: ...s:<hex context id><hex session id>.
  std::string key_of(const redis_server& r, SSL_SESSION* s) {
    unsigned len = 0;
    const uint8_t* id = SSL_SESSION_get_id(s, &len);
    std::string hex = core::to_hex(std::string_view(reinterpret_cast<const char*>(id), len));
    std::string keys = session_keys(r), key;
    for (std::size_t p = 0, e; p < keys.size(); p = e + 1) {
      e = keys.find('\n', p);
      if (e == std::string::npos) {
        e = keys.size();
      }
      std::string k = keys.substr(p, e - p);
      if (k.size() > hex.size() && k.compare(k.size() - hex.size(), hex.size(), hex) == 0) {
        key = k;
      }
    }
    return key;
  }
  std::string session_keys(const redis_server& r) {
    return r.cli({"--scan", "--pattern", "tlsfront:s:*"});
  }

  const std::string& dir() const { return dir_; }
  const std::string& secret_file() const { return secret_file_; }

 protected:
  std::string dir_, secret_file_;
};

// Redis, the echo backend and two instances A and B of one fleet, started in that order.
struct fleet {
  redis_server r;
  echo_backend b;
  proxy_instance a, bb;
  explicit fleet(FleetTest& t, std::vector<std::string> redis_args = {})
      : r("", std::move(redis_args)),
        b(t.dir()),
        a(t.config(b.address(), r, t.secret_file()), make_temp_dir()),
        bb(t.config(b.address(), r, t.secret_file()), make_temp_dir()) {}
};

TEST_F(FleetTest, ASessionMadeOnOneInstanceResumesOnAnother) {
  fleet f(*this);
  auto& [r, b, a, bb] = f;
  auto s = session_on(a);
  EXPECT_NE(key_of(r, s.get()), "");
  EXPECT_TRUE(resumes_on(bb, s.get())) << "B did not resume A's session";
  EXPECT_GE(bb.metric("tlsfront_fleet_session_hits_total"), 1);
  EXPECT_GE(bb.metric("tlsfront_handshakes_total{listener=\"https\",version=\"TLSv1.2\","
                      "resumed=\"id\"}"),
            1);
  // The hit filled B's own cache: resuming again needs no fleet lookup.
  double lookups = bb.metric("tlsfront_fleet_session_lookups_total");
  EXPECT_TRUE(resumes_on(bb, s.get()));
  EXPECT_EQ(bb.metric("tlsfront_fleet_session_lookups_total"), lookups);
  // The value in Redis is sealed: the session's bytes are not readable there.
  std::string value = r.cli({"GET", key_of(r, s.get())});
  EXPECT_EQ(value.find("a.example"), std::string::npos);
}

// One session-ID lookup is one L1 hit or miss, and each L1 miss is one fleet lookup:
// tlsfront_session_cache_misses_total once counted every miss twice in a fleet (the get
// callback ran the L1 lookup again after the suspended Redis lookup).
TEST_F(FleetTest, EachSessionIdLookupCountsOnceInEachTier) {
  fleet f(*this);
  auto& [r, b, a, bb] = f;
  struct counts {
    double l1_hits, l1_misses, lookups, fleet_hits, fleet_misses;
  };
  auto read = [](proxy_instance& p) {
    return counts{p.metric("tlsfront_session_cache_hits_total"),
                  p.metric("tlsfront_session_cache_misses_total"),
                  p.metric("tlsfront_fleet_session_lookups_total"),
                  p.metric("tlsfront_fleet_session_hits_total"),
                  p.metric("tlsfront_fleet_session_misses_total")};
  };
  auto expect_delta = [](const counts& before, const counts& after, counts d, const char* what) {
    EXPECT_EQ(after.l1_hits - before.l1_hits, d.l1_hits) << what << ": L1 hits";
    EXPECT_EQ(after.l1_misses - before.l1_misses, d.l1_misses) << what << ": L1 misses";
    EXPECT_EQ(after.lookups - before.lookups, d.lookups) << what << ": fleet lookups";
    EXPECT_EQ(after.fleet_hits - before.fleet_hits, d.fleet_hits) << what << ": fleet hits";
    EXPECT_EQ(after.fleet_misses - before.fleet_misses, d.fleet_misses) << what << ": fleet misses";
  };
  constexpr int n = 5;
  auto template_session = session_on(a);

  // IDs nobody issued: on B, one L1 miss and one fleet lookup (a miss) each.
  counts before = read(bb);
  for (int i = 0; i < n; ++i) {
    auto unknown = session_with_id(template_session.get());
    ASSERT_TRUE(unknown);
    EXPECT_FALSE(resumes_on(bb, unknown.get()));
  }
  expect_delta(before, read(bb), {0, n, n, 0, n}, "unknown IDs");

  // Sessions made on A, resumed on B: one L1 miss and one fleet hit each; then B's own cache
  // has them: L1 hits, no fleet lookup.
  std::vector<bssl::UniquePtr<SSL_SESSION>> made;
  for (int i = 0; i < n; ++i) {
    made.push_back(session_on(a));
  }
  before = read(bb);
  for (auto& s : made) {
    EXPECT_TRUE(resumes_on(bb, s.get()));
  }
  expect_delta(before, read(bb), {0, n, n, n, 0}, "A's sessions on B");
  before = read(bb);
  for (auto& s : made) {
    EXPECT_TRUE(resumes_on(bb, s.get()));
  }
  expect_delta(before, read(bb), {n, 0, 0, 0, 0}, "A's sessions on B again");

  // On A, where they were made: L1 hits only.
  before = read(a);
  for (auto& s : made) {
    EXPECT_TRUE(resumes_on(a, s.get()));
  }
  expect_delta(before, read(a), {n, 0, 0, 0, 0}, "A's sessions on A");
  // Every L1 miss went to the fleet once, on both instances.
  EXPECT_EQ(read(a).l1_misses, read(a).lookups);
  EXPECT_EQ(read(bb).l1_misses, read(bb).lookups);
}

// Redis, the echo backend and two instances with tickets on, sharing the fleet's keys.
struct ticket_fleet {
  redis_server r;
  echo_backend b;
  proxy_instance a, bb;
  explicit ticket_fleet(FleetTest& t, const std::string& tickets = "publish_ahead = \"1s\"\n")
      : b(t.dir()),
        a(t.ticket_config(b.address(), r, tickets), make_temp_dir()),
        bb(t.ticket_config(b.address(), r, tickets), make_temp_dir()) {
    FleetTest::wait_shared_keys(a, bb);
  }
};

TEST_F(FleetTest, TicketsMadeOnOneInstanceResumeOnAnother) {
  ticket_fleet f(*this);
  auto& [r, b, a, bb] = f;
  for (std::uint16_t version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto s = ticket_session(a.port(), "a.example", version);
    EXPECT_EQ(ticket_key_name(s.get()), current_key_name(bb));
    EXPECT_TRUE(resumes(bb.port(), "a.example", version, s.get()))
        << "B did not resume A's ticket, version " << version;
    auto back = ticket_session(bb.port(), "a.example", version);
    EXPECT_TRUE(resumes(a.port(), "a.example", version, back.get())) << "version " << version;
  }
  EXPECT_GE(bb.metric("tlsfront_handshakes_total{listener=\"https\",version=\"TLSv1.3\","
                      "resumed=\"ticket\"}"),
            1);
  EXPECT_GE(bb.metric("tlsfront_handshakes_total{listener=\"https\",version=\"TLSv1.2\","
                      "resumed=\"ticket\"}"),
            1);
  EXPECT_GE(a.metric("tlsfront_fleet_ticket_keys_version"), 1);
  EXPECT_EQ(a.metric("tlsfront_fleet_ticket_keys_version"),
            bb.metric("tlsfront_fleet_ticket_keys_version"));
  // The list in Redis is sealed: no key bytes are readable there.
  std::string list = r.cli({"GET", "tlsfront:ticket-keys"});
  EXPECT_GT(list.size(), 80u);
  EXPECT_EQ(list.find(current_key_name(a)), std::string::npos);
}

TEST_F(FleetTest, ForcedRotationsNeverFailAResumptionAcrossInstances) {
  ticket_fleet f(*this);
  auto& [r, b, a, bb] = f;
  proxy_instance* inst[2] = {&a, &bb};
  std::set<std::string> keys_seen;
  int failures = 0;
  for (int i = 0; i < 48; ++i) {
    proxy_instance& x = *inst[i % 2];
    proxy_instance& y = *inst[1 - i % 2];
    const std::uint16_t version = (i / 2) % 2 == 0 ? TLS1_2_VERSION : TLS1_3_VERSION;
    if (i % 6 == 0) {
      std::string resp = x.admin_request("POST", "/tickets/rotate");
      EXPECT_EQ(response_status(resp), 202) << resp;
    }
    auto s = ticket_session(x.port(), "a.example", version);
    keys_seen.insert(ticket_key_name(s.get()));
    if (!resumes(y.port(), "a.example", version, s.get())) {
      ++failures;
      ADD_FAILURE() << "iteration " << i << ": a ticket under " << ticket_key_name(s.get())
                    << " did not resume on the other instance\n"
                    << y.admin_get("/tickets");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GE(keys_seen.size(), 4u) << "the rotations did not happen: the test proved nothing";
  EXPECT_EQ(a.metric("tlsfront_tickets_unknown_key_total"), 0);
  EXPECT_EQ(bb.metric("tlsfront_tickets_unknown_key_total"), 0);
  EXPECT_GE(a.metric("tlsfront_fleet_ticket_key_updates_total") +
                bb.metric("tlsfront_fleet_ticket_key_updates_total"),
            8);
}

TEST_F(FleetTest, TicketKeysOutliveARedisOutageAndConvergeAfterIt) {
  ticket_fleet f(*this);
  auto& [r, b, a, bb] = f;
  r.kill();
  EXPECT_EQ(a.metric_reaching("tlsfront_fleet_ticket_key_errors_total", 1) >= 1, true);
  for (int i = 0; i < 50 && a.metric("tlsfront_fleet_ticket_keys_shared") != 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(a.metric("tlsfront_fleet_ticket_keys_shared"), 0);
  // The keys already held are still the same on both: tickets keep resuming across instances.
  for (std::uint16_t version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    auto s = ticket_session(a.port(), "a.example", version);
    EXPECT_TRUE(resumes(bb.port(), "a.example", version, s.get())) << "version " << version;
  }
  EXPECT_TRUE(a.log().find("ticket key list unavailable") != std::string::npos) << a.log();
  ASSERT_TRUE(r.restart());
  wait_shared_keys(a, bb);
  auto s = ticket_session(bb.port(), "a.example", TLS1_3_VERSION);
  EXPECT_TRUE(resumes(a.port(), "a.example", TLS1_3_VERSION, s.get()));
  EXPECT_NE(a.log().find("ticket keys shared again"), std::string::npos);
}

// Issue 18: the fleet's list holds keys_ahead keys published ahead, so a Redis outage of three
// rotations (2 s each here) keeps every instance sealing under fleet keys: each TLS 1.3 ticket
// made on one instance resumes on the other (100 %), and neither makes a key of its own.
TEST_F(FleetTest, AnOutageOfThreeRotationsKeepsTicketsResumingAcrossInstances) {
  ticket_fleet f(*this,
                 "rotation = \"2s\"\nlifetime = \"2s\"\npublish_ahead = \"1s\"\n"
                 "keys_ahead = 4\n");
  auto& [r, b, a, bb] = f;
  auto next_keys = [](proxy_instance& p) {
    const std::string t = p.admin_get("/tickets");
    int n = 0;
    for (std::size_t at = t.find("\"role\":\"next\""); at != std::string::npos;
         at = t.find("\"role\":\"next\"", at + 1)) {
      ++n;
    }
    return n;
  };
  for (int i = 0; i < 100 && (next_keys(a) < 4 || next_keys(bb) < 4); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(next_keys(a), 4) << a.admin_get("/tickets");
  ASSERT_GE(next_keys(bb), 4) << bb.admin_get("/tickets");
  r.kill();
  proxy_instance* inst[2] = {&a, &bb};
  std::set<std::string> keys_seen;
  int made = 0, resumed = 0;
  const auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(6500);
  for (int i = 0; std::chrono::steady_clock::now() < end; ++i) {
    proxy_instance& x = *inst[i % 2];
    proxy_instance& y = *inst[1 - i % 2];
    auto s = ticket_session(x.port(), "a.example", TLS1_3_VERSION);
    ++made;
    keys_seen.insert(ticket_key_name(s.get()));
    if (resumes(y.port(), "a.example", TLS1_3_VERSION, s.get())) {
      ++resumed;
    } else {
      ADD_FAILURE() << "ticket " << i << " under " << ticket_key_name(s.get())
                    << " did not resume on the other instance\n"
                    << y.admin_get("/tickets");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  EXPECT_EQ(resumed, made);
  EXPECT_GE(keys_seen.size(), 4u) << "fewer than three rotations happened: the test proved nothing";
  EXPECT_EQ(a.metric("tlsfront_fleet_ticket_local_keys_total"), 0);
  EXPECT_EQ(bb.metric("tlsfront_fleet_ticket_local_keys_total"), 0);
  EXPECT_EQ(a.metric("tlsfront_fleet_ticket_keys_shared"), 0) << "Redis was down all along";
  std::printf(
      "outage of 6.5 s (3 rotations of 2 s): %d of %d TLS 1.3 tickets resumed across "
      "instances under %zu keys\n",
      resumed, made, keys_seen.size());
}

// Redis restarted without persistence (the test server runs with --save "" --appendonly no)
// loses the key list; the instances keep their keys and write the list again, and its version
// goes on from where it was instead of starting again at 1.
TEST_F(FleetTest, TheKeyListVersionNeverGoesBackWhenRedisLosesTheList) {
  ticket_fleet f(*this);
  auto& [r, b, a, bb] = f;
  const std::string version = "tlsfront_fleet_ticket_keys_version";
  // A few forced rotations move the version on.
  for (int i = 0; i < 2; ++i) {
    const double v = a.metric(version);
    ASSERT_EQ(response_status(a.admin_request("POST", "/tickets/rotate")), 202);
    ASSERT_GE(a.metric_reaching(version, v + 1), v + 1);
  }
  wait_shared_keys(a, bb);
  const double before = a.metric(version);
  ASSERT_GE(before, 3);
  ASSERT_GE(bb.metric_reaching(version, before), before);
  auto s12 = ticket_session(a.port(), "a.example", TLS1_2_VERSION);
  auto s13 = ticket_session(a.port(), "a.example", TLS1_3_VERSION);

  r.kill();
  ASSERT_TRUE(r.restart());  // empty
  // Until both share a list again, and after: never below `before`, and past it at the end.
  double lowest = before;
  for (int i = 0; i < 400; ++i) {
    const double va = a.metric(version), vb = bb.metric(version);
    lowest = std::min({lowest, va, vb});
    if (va > before && va == vb && a.metric("tlsfront_fleet_ticket_keys_shared") == 1 &&
        bb.metric("tlsfront_fleet_ticket_keys_shared") == 1) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_EQ(lowest, before) << "the version went back";
  EXPECT_GT(a.metric(version), before);
  EXPECT_EQ(a.metric(version), bb.metric(version));
  EXPECT_EQ(r.cli({"EXISTS", "tlsfront:ticket-keys"}), "1\n");
  // The keys were kept: tickets from before the restart resume on either instance.
  for (SSL_SESSION* s : {s12.get(), s13.get()}) {
    const std::uint16_t v = s == s12.get() ? TLS1_2_VERSION : TLS1_3_VERSION;
    EXPECT_TRUE(resumes(bb.port(), "a.example", v, s)) << "version " << v;
    EXPECT_TRUE(resumes(a.port(), "a.example", v, s)) << "version " << v;
  }
}

// Keys an instance made alone (the list did not open) are demoted when the fleet's list is
// back: the one that never sealed is dropped at once, the one that sealed stays decrypt-only
// (GET /tickets, the tlsfront_ticket_keys gauge) until its tickets have expired, then goes.
TEST_F(FleetTest, DemotedKeysStayOnlyWhileTheirTicketsCanBeValid) {
  // Tickets live 3 s; a key published 2 s before it seals.
  ticket_fleet f(*this, "publish_ahead = \"2s\"\nlifetime = \"3s\"\n");
  auto& [r, b, a, bb] = f;
  const std::string list_key = "tlsfront:ticket-keys";
  const std::string fleet_key = current_key_name(a);
  // Both hold the fleet's keys only (the keys the later one made at start are demoted, and
  // gone once the tickets they might have sealed expired).
  double fleet_keys = -1;
  for (int i = 0; i < 200; ++i) {
    fleet_keys = a.metric("tlsfront_ticket_keys");
    if (fleet_keys == bb.metric("tlsfront_ticket_keys") &&
        a.admin_get("/tickets").find("\"local\":true") == std::string::npos &&
        bb.admin_get("/tickets").find("\"local\":true") == std::string::npos) {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(fleet_keys, 2);
  ASSERT_EQ(bb.metric("tlsfront_ticket_keys"), fleet_keys) << bb.admin_get("/tickets");
  // Hide the list behind one that does not open: both instances keep their keys and fall back.
  ASSERT_EQ(r.cli({"RENAME", list_key, "saved-list"}), "OK\n");
  ASSERT_EQ(r.cli({"SET", list_key, "not a key list"}), "OK\n");
  for (int i = 0; i < 100 && (a.metric("tlsfront_fleet_ticket_keys_shared") != 0 ||
                              bb.metric("tlsfront_fleet_ticket_keys_shared") != 0);
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_NE(a.admin_get("/tickets").find("\"fallback\":true"), std::string::npos);
  // A seals under a key of its own (L), then publishes another (N) that never gets to seal.
  ASSERT_EQ(response_status(a.admin_request("POST", "/tickets/rotate")), 200);
  std::string own;
  for (int i = 0; i < 200 && (own = current_key_name(a)) == fleet_key; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  ASSERT_NE(own, fleet_key);
  auto s12 = ticket_session(a.port(), "a.example", TLS1_2_VERSION);
  auto s13 = ticket_session(a.port(), "a.example", TLS1_3_VERSION);
  ASSERT_EQ(ticket_key_name(s12.get()), own);
  ASSERT_EQ(ticket_key_name(s13.get()), own);
  ASSERT_EQ(response_status(a.admin_request("POST", "/tickets/rotate")), 200);
  EXPECT_EQ(a.metric("tlsfront_ticket_keys"), fleet_keys + 2);
  // The fleet's list is back before N starts sealing.
  ASSERT_EQ(r.cli({"RENAME", "saved-list", list_key}), "OK\n");
  for (int i = 0; i < 100 && a.metric("tlsfront_fleet_ticket_keys_shared") != 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(a.metric("tlsfront_fleet_ticket_keys_shared"), 1);
  EXPECT_EQ(current_key_name(a), fleet_key);
  // N is gone; L is listed as what it is: decrypt-only, local, dropped when its tickets expire.
  std::string list = a.admin_get("/tickets");
  EXPECT_EQ(a.metric("tlsfront_ticket_keys"), fleet_keys + 1) << list;
  const std::size_t at = list.find("\"name\":\"" + own + "\"");
  ASSERT_NE(at, std::string::npos) << list;
  const std::string entry = list.substr(at, list.find('}', at) - at);
  EXPECT_NE(entry.find("\"role\":\"previous\""), std::string::npos) << entry;
  EXPECT_NE(entry.find("\"state\":\"decrypt-only\""), std::string::npos) << entry;
  EXPECT_NE(entry.find("\"local\":true"), std::string::npos) << entry;
  const std::size_t na = entry.find("\"not_after\":");
  ASSERT_NE(na, std::string::npos);
  const long not_after = std::stol(entry.substr(na + 12));
  const long now = static_cast<long>(std::time(nullptr));
  EXPECT_LE(not_after, now + 3 + 2) << "kept past its tickets' lifetime: " << entry;
  // Its tickets still open (and are renewed under the fleet's key), on A only.
  for (SSL_SESSION* s : {s12.get(), s13.get()}) {
    const std::uint16_t v = s == s12.get() ? TLS1_2_VERSION : TLS1_3_VERSION;
    bool resumed = false;
    auto renewed = ticket_session(a.port(), "a.example", v, s, &resumed);
    EXPECT_TRUE(resumed) << "version " << v;
    EXPECT_EQ(ticket_key_name(renewed.get()), fleet_key) << "version " << v;
  }
  // Past the lifetime of its last ticket, L is dropped: neither listed nor counted.
  for (int i = 0; i < 120 && a.metric("tlsfront_ticket_keys") != fleet_keys; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(a.metric("tlsfront_ticket_keys"), fleet_keys);
  list = a.admin_get("/tickets");
  EXPECT_EQ(list.find(own), std::string::npos) << list;
  EXPECT_EQ(list.find("\"local\":true"), std::string::npos) << list;
  const double unknown = a.metric("tlsfront_tickets_unknown_key_total");
  SSL_SESSION_set_timeout(s12.get(), 3600);  // a client that ignores the lifetime
  EXPECT_FALSE(resumes(a.port(), "a.example", TLS1_2_VERSION, s12.get()));
  EXPECT_EQ(a.metric("tlsfront_tickets_unknown_key_total"), unknown + 1);
}

TEST_F(FleetTest, RedisDownGivesFullHandshakesAndARestartRestoresSharing) {
  fleet f(*this);
  auto& [r, b, a, bb] = f;
  auto before = session_on(a);
  r.kill();
  for (int i = 0; i < 5; ++i) {  // every handshake completes, none resumes across instances
    auto s = session_on(a, false);
    EXPECT_FALSE(resumes_on(bb, s.get()));
  }
  EXPECT_FALSE(resumes_on(bb, before.get()));
  EXPECT_GE(bb.metric("tlsfront_fleet_session_errors_total") +
                bb.metric("tlsfront_fleet_session_timeouts_total"),
            1);
  EXPECT_GE(a.metric("tlsfront_fleet_session_writes_queued"), 5);
  EXPECT_EQ(a.metric("tlsfront_fleet_session_dropped_writes_total"), 0);
  ASSERT_TRUE(r.restart());
  wait_for_redis(a);
  wait_for_redis(bb);
  auto s = session_on(a);
  EXPECT_TRUE(resumes_on(bb, s.get())) << "sharing did not come back after Redis restarted";
  EXPECT_TRUE(a.proc().running());
  EXPECT_TRUE(bb.proc().running());
}

// Issue 18: sessions made while Redis is down are queued and written when it returns, so they
// resume on the other instance; and the reconnect backoff is capped near 1 s, so after an
// outage long enough to have grown a 5 s backoff, sharing is back within 1.5 s of Redis. The
// queue is bounded per worker: the oldest fall out first, counted.
TEST_F(FleetTest, SessionsMadeDuringAnOutageResumeElsewhereOnceRedisIsBack) {
  redis_server r;
  echo_backend b(dir());
  proxy_instance a(config(b.address(), r, secret_file(), "write_queue = 4\n"), make_temp_dir());
  proxy_instance bb(config(b.address(), r, secret_file()), make_temp_dir());
  r.kill();
  std::vector<bssl::UniquePtr<SSL_SESSION>> made;
  for (int i = 0; i < 12; ++i) {  // two workers, 4 each: at least 4 of the 12 fall out
    made.push_back(session_on(a, false));
  }
  EXPECT_GE(a.metric("tlsfront_fleet_session_dropped_writes_total"), 4);
  EXPECT_LE(a.metric("tlsfront_fleet_session_writes_queued"), 8);
  const double queued = a.metric("tlsfront_fleet_session_writes_queued");
  EXPECT_EQ(queued + a.metric("tlsfront_fleet_session_dropped_writes_total"), 12);
  // Long enough for the old backoff (100 ms doubling to 5 s) to be waiting 5 s.
  std::this_thread::sleep_for(std::chrono::seconds(8));
  ASSERT_TRUE(r.restart());
  const auto back = std::chrono::steady_clock::now();
  while ((a.metric("tlsfront_fleet_redis_connections_up") < 2 ||
          bb.metric("tlsfront_fleet_redis_connections_up") < 2) &&
         std::chrono::steady_clock::now() - back < std::chrono::seconds(10)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - back);
  EXPECT_LT(took.count(), 1500) << "sharing came back " << took.count() << " ms after Redis";
  EXPECT_EQ(a.metric_reaching("tlsfront_fleet_session_writes_total", queued), queued);
  EXPECT_EQ(a.metric("tlsfront_fleet_session_writes_queued"), 0);
  int resumed = 0;
  for (auto& s : made) {
    resumed += resumes_on(bb, s.get()) ? 1 : 0;
  }
  // The newest 4 of each worker resume on B (which worker took which session is the kernel's
  // choice, so only the total is known): every queued one.
  EXPECT_EQ(resumed, static_cast<int>(queued));
  EXPECT_TRUE(resumes_on(bb, made.back().get())) << "the newest session was not shared";
}

TEST_F(FleetTest, TamperedAndForeignValuesGiveFullHandshakes) {
  fleet f(*this);
  auto& [r, b, a, bb] = f;
  std::string other_secret = dir_ + "/other.secret";
  write_file(other_secret, "another-fleet-entirely-0123456789abcdef\n");
  ::chmod(other_secret.c_str(), 0600);
  proxy_instance foreign(config(b.address(), r, other_secret), make_temp_dir());

  auto s = session_on(a);
  EXPECT_FALSE(resumes_on(foreign, s.get())) << "another fleet's secret opened the session";
  EXPECT_GE(foreign.metric("tlsfront_fleet_session_rejected_total"), 1);

  std::string key = key_of(r, s.get());
  ASSERT_FALSE(key.empty());
  for (const char* bad : {"garbage", "", "\x01\x02\x03\x04"}) {
    r.cli({"SET", key, bad});
    EXPECT_FALSE(resumes_on(bb, s.get())) << "a tampered value resumed";
  }
  r.cli({"DEL", key});
  EXPECT_FALSE(resumes_on(bb, s.get()));
  EXPECT_GE(bb.metric("tlsfront_fleet_session_rejected_total"), 2);
  EXPECT_GE(bb.metric("tlsfront_fleet_session_misses_total"), 1);
}

TEST_F(FleetTest, PausedRedisCostsAtMostTheLookupTimeout) {
  fleet f(*this);
  auto& [r, b, a, bb] = f;
  auto s = session_on(a);
  r.cli({"CLIENT", "PAUSE", "2000"});
  EXPECT_FALSE(resumes_on(bb, s.get()));  // completes: a full handshake, not a hang
  EXPECT_GE(bb.metric("tlsfront_fleet_session_timeouts_total"), 1);
  EXPECT_TRUE(bb.proc().running());
}

TEST_F(FleetTest, ASessionRevokedOnOneInstanceResumesNowhere) {
  fleet f(*this);
  auto& [r, b, a, bb] = f;
  auto s = session_on(a);
  auto other = session_on(a);
  ASSERT_TRUE(resumes_on(bb, s.get()));  // now in A's cache, B's cache and Redis
  ASSERT_TRUE(resumes_on(a, s.get()));
  // Wait until A's revocation subscriber is connected: PUBLISH counts the listeners.
  for (int i = 0;
       i < 100 && r.cli({"PUBSUB", "NUMSUB", "tlsfront:revoke"}).find("\n2") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  unsigned len = 0;
  const uint8_t* id = SSL_SESSION_get_id(s.get(), &len);
  std::string hex = core::to_hex(std::string_view(reinterpret_cast<const char*>(id), len));
  std::string resp = bb.admin_request("DELETE", "/sessions/" + hex);
  // The answer says what went where, once Redis has it: the L2 copy deleted, B's entry.
  EXPECT_NE(resp.find("\"removed_local\":1,\"fleet\":\"accepted\",\"fleet_deleted\":1"),
            std::string::npos)
      << resp;
  EXPECT_GE(a.metric_reaching("tlsfront_fleet_revocations_received_total", 1), 1);
  EXPECT_GE(bb.metric_reaching("tlsfront_fleet_revocations_received_total", 1), 1);
  EXPECT_EQ(key_of(r, s.get()), "") << "the session is still in Redis";
  EXPECT_FALSE(resumes_on(a, s.get())) << "revoked on B, resumed on A";
  EXPECT_FALSE(resumes_on(bb, s.get()));
  EXPECT_TRUE(resumes_on(bb, other.get())) << "revocation took more than the one session";
  // An ID neither this instance nor Redis knows: 404 that says so (published all the same).
  std::string unknown = bb.admin_request("DELETE", "/sessions/" + std::string(64, 'a'));
  EXPECT_EQ(response_status(unknown), 404) << unknown;
  EXPECT_NE(unknown.find("\"fleet\":\"accepted\",\"fleet_deleted\":0"), std::string::npos)
      << unknown;
}

TEST_F(FleetTest, AFullRedisCostsSharingNotHandshakes) {
  fleet f(*this, {"--maxmemory-policy", "noeviction"});
  auto& [r, b, a, bb] = f;
  // Redis over its memory limit: every write gets "-OOM ..." as its reply.
  for (int i = 0; i < 20; ++i) {
    r.cli({"SET", "filler" + std::to_string(i), std::string(100000, 'x')});
  }
  r.cli({"CONFIG", "SET", "maxmemory", "1mb"});
  ASSERT_NE(r.cli({"SET", "one-more", "x"}).find("OOM"), std::string::npos);
  for (int i = 0; i < 3; ++i) {
    auto s = session_on(a);  // written (and refused by Redis): counted, handshake fine
    EXPECT_FALSE(resumes_on(bb, s.get()));
    EXPECT_TRUE(resumes_on(a, s.get()));  // the local cache still serves
  }
  EXPECT_GE(a.metric_reaching("tlsfront_fleet_session_errors_total", 3), 3);
}

TEST_F(FleetTest, AWrongPasswordIsLoggedAndTheInstanceServesAlone) {
  redis_server r("the-right-password");
  echo_backend b(dir_);
  std::string pw = dir_ + "/redis.password";
  write_file(pw, "a-wrong-password\n");
  proxy_instance a(config(b.address(), r, secret_file_, "password_file = \"" + pw + "\"\n"),
                   make_temp_dir());
  auto s = session_on(a, false);
  EXPECT_TRUE(resumes_on(a, s.get()));
  std::string log;
  for (int i = 0; i < 50 && log.find("refused the connection set-up") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    log = a.log();
  }
  EXPECT_NE(log.find("refused the connection set-up"), std::string::npos) << log;
  EXPECT_TRUE(a.proc().running());
}

TEST_F(FleetTest, BadClusterConfigIsRefusedWithItsPosition) {
  redis_server r;
  echo_backend b(dir_);
  std::string short_secret = dir_ + "/short.secret";
  write_file(short_secret, "too short\n");
  struct bad {
    std::string cfg;
    std::string message;
  };
  std::vector<bad> cases = {
      {config(b.address(), r, dir_ + "/missing.secret"), "cannot read the fleet secret"},
      {config(b.address(), r, short_secret), "at least 32 are needed"},
      {config(b.address(), r, secret_file_, "password_file = \"" + dir_ + "/nope\"\n"),
       "cannot read the Redis password file"},
      {config(b.address(), r, secret_file_, "colour = \"blue\"\n"), "unknown key"},
      {config(b.address(), r, secret_file_, "max_pending_writes = 0\n"), "max_pending_writes"},
      {config(b.address(), r, secret_file_, "database = 99\n"), "database"},
  };
  cases.push_back({config(b.address(), r, secret_file_, "poll_interval = \"10ms\"\n"),
                   "'poll_interval' must be between 100ms and 10m"});
  cases.push_back({config(b.address(), r, secret_file_,
                          "poll_interval = \"5s\"\n[tickets]\npublish_ahead = \"2s\"\n"),
                   "'publish_ahead' must be at least two [cluster] poll intervals"});
  cases.push_back({default_config(b.address()) + "[tickets]\nsource = \"redis\"\n",
                   "source = \"redis\" needs a [cluster] section"});
  cases.push_back({default_config(b.address()) + "[tickets]\nsource = \"etcd\"\n",
                   "'source' must be \"memory\", \"file\" or \"redis\""});
  std::string host_cfg = config(b.address(), r, secret_file_);
  host_cfg.replace(host_cfg.find("redis = \"127.0.0.1:"), 19, "redis = \"redis.example:");
  cases.push_back({host_cfg, "invalid address"});
  for (const auto& c : cases) {
    std::string d = make_temp_dir(), path = d + "/tlsfront.toml", text = c.cfg;
    for (std::size_t p; (p = text.find("{certs}")) != std::string::npos;) {
      text.replace(p, 7, certs_dir());
    }
    for (std::size_t p; (p = text.find("{dir}")) != std::string::npos;) {
      text.replace(p, 5, d);
    }
    write_file(path, text);
    command_result res = run_command(std::string(TLSFRONT_BINARY) + " -t -c " + path + " 2>&1");
    EXPECT_NE(res.status, 0) << c.cfg;
    EXPECT_NE(res.out.find(path + ":"), std::string::npos) << res.out;
    EXPECT_NE(res.out.find(c.message), std::string::npos) << res.out;
  }
}

}  // namespace
}  // namespace tlsfront::test
