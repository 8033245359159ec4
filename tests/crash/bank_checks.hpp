// tests/crash/bank_checks.hpp: what the crash tests check after every kill,
// by running the bank's read commands: every acknowledged commit is in the
// ledger (same TXID FROM TO AMOUNT), the balances are the initial ones plus
// the ledger's transfers, and verify passes.
#pragma once

#include <catch2/catch.hpp>

#include <map>
#include <sstream>
#include <string>
#include <tuple>

#include "tests/crash/process.hpp"

namespace ktm::crash {

using transfer = std::tuple<long long, long long, long long>;  // from, to, amount
using transfers = std::map<std::string, transfer>;             // by TXID

// The `committed TXID FROM TO AMOUNT` lines of a run's output.
inline transfers acknowledged(const process_result& r) {
  transfers t;
  for (const auto& line : r.out_lines()) {
    std::istringstream s(line);
    std::string word, id;
    long long f, to, a;
    if (s >> word >> id >> f >> to >> a && word == "committed") t[id] = {f, to, a};
    else FAIL("unexpected output line of bank run: " << line);
  }
  return t;
}

struct bank_shape {
  long long accounts, balance;
};

// The full check; returns the ledger. `acked` holds every commit any run
// acknowledged so far.
inline transfers check_bank(const std::string& dir, const bank_shape& shape, const transfers& acked) {
  const auto lr = run_bank({"ledger", dir});
  INFO("ledger stderr: " << lr.err);
  REQUIRE(lr.exit_code() == 0);
  transfers ledger;
  for (const auto& line : lr.out_lines()) {
    std::istringstream s(line);
    std::string id;
    long long f, t, a;
    REQUIRE(static_cast<bool>(s >> id >> f >> t >> a));
    ledger[id] = {f, t, a};
  }
  for (const auto& [id, t] : acked) {
    INFO("acknowledged commit " << id);
    auto it = ledger.find(id);
    REQUIRE(it != ledger.end());
    REQUIRE(it->second == t);
  }

  std::map<long long, long long> expected;
  for (long long a = 0; a < shape.accounts; ++a) expected[a] = shape.balance;
  for (const auto& [id, t] : ledger) {
    expected[std::get<0>(t)] -= std::get<2>(t);
    expected[std::get<1>(t)] += std::get<2>(t);
  }
  const auto br = run_bank({"balances", dir});
  INFO("balances stderr: " << br.err);
  REQUIRE(br.exit_code() == 0);
  std::map<long long, long long> balances;
  for (const auto& line : br.out_lines()) {
    std::istringstream s(line);
    long long a, b;
    REQUIRE(static_cast<bool>(s >> a >> b));
    balances[a] = b;
  }
  REQUIRE(balances == expected);

  const auto vr = run_bank({"verify", dir});
  INFO("verify stderr: " << vr.err);
  REQUIRE(vr.exit_code() == 0);
  std::ostringstream want;
  want << "accounts=" << shape.accounts << " total=" << shape.accounts * shape.balance
       << " transfers=" << ledger.size() << "\n";
  REQUIRE(vr.out == want.str());
  return ledger;
}

inline int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : def;
}

}  // namespace ktm::crash
