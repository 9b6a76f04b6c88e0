#include "support/redis_cluster.h"

#include <gtest/gtest.h>

#include <sstream>

#include "support/test_env.h"

namespace tlsfront::test {

int free_cluster_port() {
  for (;;) {
    if (const int p = free_port(); p + 10000 <= 65535) {
      return p;
    }
  }
}

std::string role_of(const redis_server& r) {
  const std::string out = r.cli({"ROLE"});
  return out.substr(0, out.find('\n'));
}

redis_cluster::redis_cluster(int masters, int replicas_each) {
  const int total = masters * (1 + replicas_each);
  std::vector<std::string> create = {"--cluster", "create"};
  for (int i = 0; i < total; ++i) {
    nodes.push_back(std::make_unique<redis_server>(
        "",
        std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                 "--cluster-node-timeout", "1000", "--repl-diskless-sync-delay",
                                 "0"},
        free_cluster_port()));
    if (!nodes.back()->running()) {
      return;
    }
    create.push_back(nodes.back()->address());
  }
  create.insert(create.end(),
                {"--cluster-replicas", std::to_string(replicas_each), "--cluster-yes"});
  const std::string out = nodes.front()->cli(create);
  if (out.find("All 16384 slots covered") == std::string::npos) {
    ADD_FAILURE() << "redis-cli --cluster create failed:\n" << out;
    return;
  }
  const bool ok = wait_ok(std::chrono::seconds(20));
  EXPECT_TRUE(ok) << "the cluster never reached cluster_state:ok";
  // A failover keeps what reached the replicas: every replica's first sync is done first.
  const bool synced = eventually(
      [&] {
        for (const auto& n : nodes) {
          if (role_of(*n) == "slave" &&
              n->cli({"INFO", "replication"}).find("master_link_status:up") == std::string::npos) {
            return false;
          }
        }
        return true;
      },
      std::chrono::seconds(20));
  EXPECT_TRUE(synced) << "a replica never synced";
  created_ = ok && synced;
}

std::string redis_cluster::seeds(std::size_t n) const {
  std::string list;
  for (std::size_t i = 0; i < nodes.size() && (n == 0 || i < n); ++i) {
    list += std::string(i ? ", " : "") + "\"" + nodes[i]->address() + "\"";
  }
  return list;
}

std::vector<redis_server*> redis_cluster::masters() const {
  std::vector<redis_server*> out;
  for (const auto& n : nodes) {
    if (n->running() && role_of(*n) == "master") {
      out.push_back(n.get());
    }
  }
  return out;
}

redis_server* redis_cluster::by_port(int port) const {
  for (const auto& n : nodes) {
    if (n->port() == port) {
      return n.get();
    }
  }
  return nullptr;
}

redis_server* redis_cluster::owner_of(int slot, const redis_server& asked) const {
  // redis-cli prints CLUSTER SLOTS one item per line: first, last, ip, port, id, ...
  std::istringstream in(asked.cli({"CLUSTER", "SLOTS"}));
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) {
    lines.push_back(l);
  }
  for (std::size_t i = 0; i + 3 < lines.size(); ++i) {
    const std::string& a = lines[i];
    const std::string& b = lines[i + 1];
    if (a.empty() || b.empty() || a.find_first_not_of("0123456789") != std::string::npos ||
        b.find_first_not_of("0123456789") != std::string::npos || lines[i + 2] != "127.0.0.1") {
      continue;
    }
    if (std::stoi(a) <= slot && slot <= std::stoi(b)) {
      return by_port(std::stoi(lines[i + 3]));
    }
  }
  return nullptr;
}

std::string redis_cluster::id_of(const redis_server& node) const {
  std::string id = node.cli({"CLUSTER", "MYID"});
  while (!id.empty() && (id.back() == '\n' || id.back() == '\r')) {
    id.pop_back();
  }
  return id;
}

bool redis_cluster::wait_ok(std::chrono::milliseconds limit) const {
  return eventually(
      [&] {
        for (const auto& n : nodes) {
          if (n->running() &&
              n->cli({"CLUSTER", "INFO"}).find("cluster_state:ok") == std::string::npos) {
            return false;
          }
        }
        return true;
      },
      limit);
}

long long redis_cluster::keys_on(const redis_server& node) const {
  const std::string out = node.cli({"DBSIZE"});
  return out.empty() ? -1 : std::stoll(out);
}

}  // namespace tlsfront::test
