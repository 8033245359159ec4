// examples/bank/commands.hpp: the subcommands that work on a bank directory:
// init, run, verify, ledger, balances. Output formats are fixed (tests
// outside the project parse them); errors are bank_errors.
#pragma once

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "examples/bank/bank.hpp"

namespace bank {

struct run_options {
  int threads = 4;
  std::uint64_t transfers = 1000;
  std::uint64_t seed = 0;
};

// Transfers at random; prints "committed TXID FROM TO AMOUNT" (flushed)
// after each commit returned durable. Returns the number committed.
inline std::uint64_t cmd_run(const std::string& dir, const run_options& o) {
  bank b(dir);
  const std::uint64_t run = b.begin_run();
  const auto n = b.meta().accounts;
  const std::int64_t max_amount = std::max<std::int64_t>(1, b.meta().balance / 2);
  std::atomic<std::uint64_t> next{0}, committed{0}, insufficient{0}, conflicts{0};
  std::atomic<bool> stop{false};
  std::mutex out_mu;
  std::string first_error;
  auto worker = [&](int t) {
    std::mt19937_64 rng(o.seed * 1000003u + static_cast<std::uint64_t>(t));
    try {
      for (;;) {
        const std::uint64_t seq = next++;
        if (seq >= o.transfers || stop) break;
        const auto from = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n));
        auto to = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(n - 1));
        if (to >= from) ++to;
        const auto amount = 1 + static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(max_amount));
        std::string txid;
        bank::status st = bank::status::conflict;
        for (int attempt = 0; attempt < 20 && st == bank::status::conflict; ++attempt)
          st = b.transfer(run, seq, from, to, amount, txid);
        if (st == bank::status::committed) {
          ++committed;
          std::lock_guard l(out_mu);
          std::printf("committed %s %lld %lld %lld\n", txid.c_str(), static_cast<long long>(from),
                      static_cast<long long>(to), static_cast<long long>(amount));
          std::fflush(stdout);
        } else if (st == bank::status::insufficient) {
          ++insufficient;
        } else {
          ++conflicts;
        }
      }
    } catch (const std::exception& e) {
      std::lock_guard l(out_mu);
      if (first_error.empty()) first_error = e.what();
      stop = true;
    }
  };
  std::vector<std::thread> ts;
  for (int t = 0; t < std::max(1, o.threads); ++t) ts.emplace_back(worker, t);
  for (auto& t : ts) t.join();
  if (!first_error.empty()) throw bank_error(first_error);
  b.maintenance();
  std::fprintf(stderr, "run %llu: %llu committed, %llu refused (insufficient funds), %llu given up (lock conflicts)\n",
               static_cast<unsigned long long>(run), static_cast<unsigned long long>(committed.load()),
               static_cast<unsigned long long>(insufficient.load()), static_cast<unsigned long long>(conflicts.load()));
  return committed;
}

struct verdict {
  std::size_t accounts = 0;
  long long total = 0;
  std::size_t transfers = 0;
  std::string problem;  // empty: every check holds
};

inline verdict check(bank& b) {
  verdict v;
  const auto bal = b.balances();
  v.accounts = bal.size();
  v.transfers = b.ledger().size();
  for (const auto& [a, x] : bal) {
    v.total += x;
    if (x < 0 && v.problem.empty()) v.problem = "account " + std::to_string(a) + " is negative: " + std::to_string(x);
    if ((a < 0 || a >= b.meta().accounts) && v.problem.empty()) v.problem = "unknown account " + std::to_string(a);
  }
  const long long expected = static_cast<long long>(b.meta().accounts * b.meta().balance);
  if (v.problem.empty() && v.accounts != static_cast<std::size_t>(b.meta().accounts))
    v.problem = "expected " + std::to_string(b.meta().accounts) + " accounts";
  if (v.problem.empty() && v.total != expected) v.problem = "expected a total of " + std::to_string(expected);
  return v;
}

inline int cmd_verify(const std::string& dir) {
  bank b(dir);
  const verdict v = check(b);
  std::printf("accounts=%zu total=%lld transfers=%zu\n", v.accounts, v.total, v.transfers);
  std::fflush(stdout);
  if (!v.problem.empty()) {
    std::fprintf(stderr, "bank: verify failed in %s: %s\n", dir.c_str(), v.problem.c_str());
    return 1;
  }
  return 0;
}

inline int cmd_ledger(const std::string& dir) {
  bank b(dir);
  for (const auto& e : b.ledger())
    std::printf("%s %lld %lld %lld\n", e.txid.c_str(), static_cast<long long>(e.from), static_cast<long long>(e.to),
                static_cast<long long>(e.amount));
  std::fflush(stdout);
  return 0;
}

inline int cmd_balances(const std::string& dir) {
  bank b(dir);
  for (const auto& [a, x] : b.balances()) std::printf("%lld %lld\n", static_cast<long long>(a), static_cast<long long>(x));
  std::fflush(stdout);
  return 0;
}

}  // namespace bank
