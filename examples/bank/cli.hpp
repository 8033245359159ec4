// examples/bank/cli.hpp: the bank's command line (main.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "examples/bank/commands.hpp"
#include "examples/bank/demo.hpp"

namespace bank {

inline const char* const usage =
    "usage: bank init DIR --accounts N --balance B [--shards S]\n"
    "       bank run DIR [--threads T] [--transfers K] [--seed X]\n"
    "       bank verify DIR | bank ledger DIR | bank balances DIR\n"
    "       bank demo\n";

struct usage_error : bank_error {
  using bank_error::bank_error;
};

// DIR and --name value pairs; only the names in `allowed`.
struct parsed_args {
  std::string dir;
  std::map<std::string, std::int64_t> opts;

  std::int64_t get(const std::string& k, std::int64_t def) const {
    auto it = opts.find(k);
    return it == opts.end() ? def : it->second;
  }
};

inline parsed_args parse(const std::vector<std::string>& a, const std::set<std::string>& allowed) {
  parsed_args p;
  for (std::size_t i = 1; i < a.size(); ++i) {
    if (a[i].rfind("--", 0) == 0) {
      if (!allowed.count(a[i])) throw usage_error("unknown option " + a[i] + " for " + a[0]);
      if (i + 1 >= a.size()) throw usage_error(a[i] + " needs a value");
      auto v = parse_int(a[i + 1]);
      if (!v) throw usage_error(a[i] + " needs a number, not " + a[i + 1]);
      p.opts[a[i]] = *v;
      ++i;
    } else if (p.dir.empty()) {
      p.dir = a[i];
    } else {
      throw usage_error("unexpected argument " + a[i]);
    }
  }
  if (p.dir.empty()) throw usage_error(a[0] + " needs a directory");
  return p;
}

inline int main(const std::vector<std::string>& a) {
  if (a.empty()) throw usage_error("no command");
  const std::string& cmd = a[0];
  if (cmd == "demo") {
    if (a.size() != 1) throw usage_error("demo takes no arguments");
    return cmd_demo();
  }
  if (cmd == "init") {
    auto p = parse(a, {"--accounts", "--balance", "--shards"});
    if (!p.opts.count("--accounts") || !p.opts.count("--balance"))
      throw usage_error("init needs --accounts and --balance");
    bank::init(p.dir, p.get("--accounts", 0), p.get("--balance", 0), static_cast<int>(p.get("--shards", 4)));
    return 0;
  }
  if (cmd == "run") {
    auto p = parse(a, {"--threads", "--transfers", "--seed"});
    run_options o;
    o.threads = static_cast<int>(p.get("--threads", 4));
    if (o.threads < 1 || o.threads > 256) throw usage_error("--threads must be between 1 and 256");
    const auto k = p.get("--transfers", 1000);
    if (k < 0) throw usage_error("--transfers must not be negative");
    o.transfers = static_cast<std::uint64_t>(k);
    o.seed = p.opts.count("--seed") ? static_cast<std::uint64_t>(p.get("--seed", 0)) : std::random_device{}();
    cmd_run(p.dir, o);
    return 0;
  }
  if (cmd == "verify") return cmd_verify(parse(a, {}).dir);
  if (cmd == "ledger") return cmd_ledger(parse(a, {}).dir);
  if (cmd == "balances") return cmd_balances(parse(a, {}).dir);
  throw usage_error("unknown command " + cmd);
}

}  // namespace bank
