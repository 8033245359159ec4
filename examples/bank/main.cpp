// examples/bank/main.cpp: `bank`, a bank over a ktm log: accounts sharded
// over transactional maps, one TM, two-phase commit, crash recovery.
//
//   bank init DIR --accounts N --balance B [--shards S]
//   bank run DIR [--threads T] [--transfers K] [--seed X]
//   bank verify DIR | bank ledger DIR | bank balances DIR
//   bank demo
//
// Every failure prints one line "bank: ..." on stderr and exits non-zero
// (2; verify exits 1 when the bank is readable but its checks fail).
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "examples/bank/cli.hpp"

int main(int argc, char** argv) {
  try {
    return bank::main(std::vector<std::string>(argv + 1, argv + argc));
  } catch (const bank::usage_error& e) {
    std::fprintf(stderr, "bank: %s\n%s", e.what(), bank::usage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bank: %s\n", e.what());
    return 2;
  }
}
