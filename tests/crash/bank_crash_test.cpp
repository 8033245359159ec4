// tests/crash/bank_crash_test.cpp: crash torture of examples/bank. `bank run`
// is killed with SIGKILL after a random (seeded) delay, again and again; so
// are `verify` and `ledger` in the middle of their recovery. After every kill
// the ledger holds every acknowledged commit, the balances are the initial
// ones plus the ledger, and verify passes (reliability.md, row 1).
//
// KTM_CRASH_KILLS=N sets the number of kills (default 24; 1000+ for a long
// run), KTM_CRASH_SEED the seed (printed; a failure replays with it, up to
// the timing of the kills).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "tests/crash/bank_checks.hpp"
#include "tests/crash/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace ktm::crash;
using std::chrono::milliseconds;

namespace {

std::uint64_t seed_from_env() {
  const int s = env_int("KTM_CRASH_SEED", 0);
  return s ? static_cast<std::uint64_t>(s) : 20240611u;
}

process_result init_bank(const std::string& dir, const bank_shape& shape) {
  auto r = run_bank({"init", dir, "--accounts", std::to_string(shape.accounts), "--balance",
                     std::to_string(shape.balance), "--shards", "4"});
  INFO("init stderr: " << r.err);
  REQUIRE(r.exit_code() == 0);
  return r;
}

// One `bank run` killed after `delay`; adds what it acknowledged to acked.
void killed_run(const std::string& dir, std::mt19937_64& rng, milliseconds delay, transfers& acked, int& killed) {
  auto r = run_bank({"run", dir, "--threads", std::to_string(1 + rng() % 4), "--transfers", "100000000", "--seed",
                     std::to_string(rng() % 1000000)},
                    delay);
  INFO("run stderr: " << r.err);
  REQUIRE((r.died_by_sigkill() || r.exit_code() == 0));
  if (r.died_by_sigkill()) ++killed;
  for (const auto& [id, t] : acknowledged(r)) {
    REQUIRE(acked.count(id) == 0);  // TXIDs are never reused
    acked[id] = t;
  }
}

}  // namespace

TEST_CASE("every transfer acknowledged before a SIGKILL at a random moment survives; and no money is made or lost") {
  const std::uint64_t seed = seed_from_env();
  const int kills = env_int("KTM_CRASH_KILLS", 24);
  std::printf("bank crash torture: seed %llu, %d kills\n", static_cast<unsigned long long>(seed), kills);
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  ktm::test::temp_dir tmp;
  const std::string dir = tmp.path().string();
  const bank_shape shape{40, 1000};
  init_bank(dir, shape);
  transfers acked;
  int killed = 0;
  std::size_t ledger_size = 0;
  for (int i = 0; i < kills; ++i) {
    INFO("kill " << i);
    // mostly mid-run; one in five early, while the run is still recovering
    const milliseconds delay(rng() % 5 == 0 ? rng() % 40 : 40 + rng() % 400);
    killed_run(dir, rng, delay, acked, killed);
    ledger_size = check_bank(dir, shape, acked).size();
  }
  std::printf("bank crash torture: %d kills, %zu acknowledged commits, %zu in the ledger\n", killed, acked.size(),
              ledger_size);
  CHECK(killed >= kills * 9 / 10);
  CHECK(acked.size() > static_cast<std::size_t>(kills));
}

TEST_CASE("killing verify and ledger in the middle of recovery leaves a bank that the next command recovers") {
  const std::uint64_t seed = seed_from_env() + 1;
  const int kills = std::max(6, env_int("KTM_CRASH_KILLS", 24) / 2);
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  ktm::test::temp_dir tmp;
  const std::string dir = tmp.path().string();
  const bank_shape shape{40, 1000};
  init_bank(dir, shape);
  transfers acked;
  int killed = 0, recoveries_killed = 0;
  for (int i = 0; i < kills; ++i) {
    INFO("round " << i);
    killed_run(dir, rng, milliseconds(100 + rng() % 300), acked, killed);
    // kill recovery itself, at a few points, before anything checks it
    for (int j = 0; j < 3; ++j) {
      auto r = run_bank({rng() % 2 ? "verify" : "ledger", dir}, milliseconds(rng() % 60));
      INFO("stderr: " << r.err);
      REQUIRE((r.died_by_sigkill() || r.exit_code() == 0));
      if (r.died_by_sigkill()) ++recoveries_killed;
    }
    check_bank(dir, shape, acked);
  }
  std::printf("recovery kills: %d of %d (runs killed: %d, acknowledged commits: %zu)\n", recoveries_killed, 3 * kills,
              killed, acked.size());
  CHECK(recoveries_killed > 0);
}
