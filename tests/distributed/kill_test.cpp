// tests/distributed/kill_test.cpp: one superior and three subordinate node
// processes (examples/distributed:node) over loopback commit distributed
// transactions while one of them is killed with SIGKILL, at each step of
// the protocol (before and after each device flush, each message sent and
// each message received: node --crash-at) or at a random time, and
// restarted on its directory. Once everything is quiet, every node's log is
// recovered offline (node --dump) and the two-phase commit invariant is
// checked: the same transactions committed in all four RMs (never one RM
// committed while another rolled back), nothing in doubt or unresolved
// anywhere, every transaction the superior reported committed is committed
// everywhere, every transaction a subordinate reported rolled back is
// committed nowhere, and the superior committed all it was asked to.
//
// KTM_DIST_KILLS (--test_env) sets the kills per node and step kind and the
// random-time kills per node (default 2 each: 48 + 8 rounds, under a minute).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <set>
#include <string>

#include "examples/distributed/crash_points.hpp"
#include "tests/distributed/cluster.hpp"

using namespace std::chrono_literals;
using ktm::distributed::test::cluster;
using ktm::distributed::test::node_dump;

namespace {

constexpr std::size_t transactions = 4;
constexpr int concurrency = 2;

int kills_per_kind() {
  const char* e = std::getenv("KTM_DIST_KILLS");
  const int n = e ? std::atoi(e) : 2;
  return n > 0 ? n : 1;
}

std::filesystem::path test_dir(const std::string& name) {
  const char* t = std::getenv("TEST_TMPDIR");
  auto p = std::filesystem::path(t ? t : "/tmp") / name;
  std::filesystem::remove_all(p);
  return p;
}

struct totals {
  int rounds = 0, kills = 0, crash_points_missed = 0;
  std::size_t transactions_checked = 0;
} total;

// One round: every node started, `victim` with `crash_arg` (empty: killed by
// the test after `kill_after`, or once everything is quiet if sooner); the
// dead victim restarted once; run until settled; then checked offline.
void round(const std::string& name, int victim, const std::string& crash_arg, std::chrono::milliseconds kill_after) {
  INFO("round " << name);
  cluster c(test_dir(name), transactions, concurrency);
  for (int i = 1; i < cluster::nodes; ++i) c.start(i, i == victim ? crash_arg : "");
  c.start(0, victim == 0 ? crash_arg : "");
  const auto begin = std::chrono::steady_clock::now();
  bool killed = false, restarted = false;
  while (std::chrono::steady_clock::now() - begin < 90s) {
    c.pump(20ms);
    // A random kill comes at its time, or at quiescence if that is sooner.
    if (crash_arg.empty() && !killed && (std::chrono::steady_clock::now() - begin >= kill_after || c.settled())) {
      c.kill(victim);
      killed = true;
    }
    for (const auto& d : c.deaths()) {
      INFO("node " << d.node << " died: signal " << d.signal << ", exit " << d.exit_code);
      REQUIRE(d.node == victim);
      REQUIRE(d.signal == SIGKILL);
      REQUIRE(!restarted);
      ++total.kills;
      c.start(victim);
      restarted = true;
    }
    if (c.settled() && (!crash_arg.empty() || restarted)) break;
  }
  if (!restarted && !crash_arg.empty()) ++total.crash_points_missed;
  std::string lines;
  for (const auto& l : c.log()) lines += l + "\n";
  INFO("what the nodes printed:\n" << lines);
  REQUIRE(c.settled());
  const std::string shutdown = c.shut_down(20s);
  if (!shutdown.empty())
    for (int i = 0; i < cluster::nodes; ++i) UNSCOPED_INFO("node " << i << " stderr:\n" << c.stderr_of(i));
  CHECK(shutdown == "");

  node_dump d[cluster::nodes];
  for (int i = 0; i < cluster::nodes; ++i) {
    d[i] = c.dump(i);
    INFO("node " << i << " dump:\n" << d[i].text);
    REQUIRE(d[i].ok);
    CHECK(d[i].in_doubt == 0);
    CHECK(d[i].unresolved == 0);
    CHECK(d[i].map_in_doubt == 0);
  }
  CHECK(d[0].committed.size() == transactions);
  for (int i = 1; i < cluster::nodes; ++i) {
    INFO("subordinate " << i);
    CHECK(d[i].committed == d[0].committed);
    for (const auto& u : c.sub_committed(i)) CHECK(d[0].committed.count(u) == 1);
    for (const auto& u : c.sub_aborted(i)) CHECK(d[0].committed.count(u) == 0);
  }
  for (const auto& u : c.reported_committed()) CHECK(d[0].committed.count(u) == 1);
  ++total.rounds;
  std::set<std::string> seen;  // every transaction some node reported or holds
  for (int i = 0; i < cluster::nodes; ++i) {
    seen.insert(d[i].committed.begin(), d[i].committed.end());
    seen.insert(c.sub_committed(i).begin(), c.sub_committed(i).end());
    seen.insert(c.sub_aborted(i).begin(), c.sub_aborted(i).end());
  }
  total.transactions_checked += seen.size();
}

void report(const char* what) {
  std::printf("%s: %d rounds, %d kills survived (%d crash points not reached), %zu transactions checked\n", what,
              total.rounds, total.kills, total.crash_points_missed, total.transactions_checked);
  std::fflush(stdout);
  total = {};
}

}  // namespace

TEST_CASE("a node killed at each step of the protocol restarts and every RM agrees on every transaction") {
  std::mt19937 rng(20261121);
  const int per = kills_per_kind();
  for (std::size_t s = 0; s < ktm::distributed::step_names.size(); ++s)
    for (int victim = 0; victim < cluster::nodes; ++victim)
      for (int k = 0; k < per; ++k) {
        // The superior passes each step about 10 times per transaction, a
        // subordinate about 3 times: n in the first few transactions.
        const int range = victim == 0 ? 30 : 10;
        const int n = 1 + static_cast<int>(rng() % static_cast<unsigned>(range));
        const std::string step(ktm::distributed::step_names[s]);
        round(step + "-node" + std::to_string(victim) + "-" + std::to_string(n), victim,
              "--crash-at=" + step + ":" + std::to_string(n), 0ms);
      }
  report("kills at protocol steps");
}

TEST_CASE("a node killed at a random time restarts and every RM agrees on every transaction") {
  std::mt19937 rng(7);
  const int per = kills_per_kind();
  for (int victim = 0; victim < cluster::nodes; ++victim)
    for (int k = 0; k < per; ++k) {
      const auto after = std::chrono::milliseconds(rng() % 600);
      round("random-node" + std::to_string(victim) + "-" + std::to_string(after.count()), victim, "", after);
    }
  report("kills at random times");
}
