// examples/bank/demo.hpp: `bank demo`: a bank in a temporary directory, a
// child `bank run` killed with SIGKILL mid-run, recovery, and the check that
// every commit the child acknowledged survived and no money was made or lost.
#pragma once

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <tuple>

#include "examples/bank/commands.hpp"

namespace bank {

inline int cmd_demo() {
  char tmpl[] = "/tmp/ktm-bank-XXXXXX";
  if (!::mkdtemp(tmpl)) throw bank_error(std::string("mkdtemp: ") + std::strerror(errno));
  const std::string dir = tmpl;
  struct cleanup {
    std::string d;
    ~cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  } c{dir};
  const std::int64_t accounts = 100, balance = 1000;
  bank::init(dir, accounts, balance, 4);
  std::printf("1. bank init %s --accounts %lld --balance %lld --shards 4\n", dir.c_str(),
              static_cast<long long>(accounts), static_cast<long long>(balance));
  std::printf("   one log, six streams: tm, shard0..shard3, ledger\n");

  int fds[2];
  if (::pipe(fds) != 0) throw bank_error(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) throw bank_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    ::dup2(fds[1], STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    ::execl("/proc/self/exe", "bank", "run", dir.c_str(), "--threads", "4", "--transfers", "1000000000", "--seed",
            "2024", static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(fds[1]);
  std::printf("2. bank run (pid %d, 4 threads) transfers money; SIGKILL after 300 acknowledged commits\n", pid);
  std::fflush(stdout);
  std::map<std::string, std::tuple<long long, long long, long long>> acked;
  std::string buf;
  bool killed = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  for (;;) {
    if (!killed && (acked.size() >= 300 || std::chrono::steady_clock::now() > deadline)) {
      ::kill(pid, SIGKILL);
      killed = true;
    }
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    char chunk[4096];
    const ssize_t n = ::read(fds[0], chunk, sizeof chunk);
    if (n <= 0) break;  // the child is gone
    buf.append(chunk, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos; buf.erase(0, nl + 1)) {
      std::istringstream s(buf.substr(0, nl));
      std::string word, id;
      long long f, t, a;
      if (s >> word >> id >> f >> t >> a && word == "committed") acked[id] = {f, t, a};
    }
  }
  ::close(fds[0]);
  int wstatus = 0;
  ::waitpid(pid, &wstatus, 0);
  const bool by_kill = WIFSIGNALED(wstatus) && WTERMSIG(wstatus) == SIGKILL;
  std::printf("3. the child %s; it had acknowledged %zu commits\n", by_kill ? "died by SIGKILL" : "ended on its own",
              acked.size());

  bank b(dir);
  std::printf("4. recovered: log opened, TM stream replayed, shards and ledger recovered, in-doubt ones resolved\n");
  std::size_t found = 0, mismatched = 0;
  std::map<std::string, std::tuple<long long, long long, long long>> ledger;
  for (const auto& e : b.ledger()) ledger[e.txid] = {e.from, e.to, e.amount};
  for (const auto& [id, v] : acked) {
    auto it = ledger.find(id);
    if (it == ledger.end() || it->second != v) ++mismatched;
    else ++found;
  }
  const verdict v = check(b);
  std::printf("5. ledger: %zu transfers; all %zu acknowledged commits are in it%s\n", ledger.size(), found,
              mismatched ? " -- BUT SOME ARE MISSING" : "");
  std::printf("   (%zu more committed but were not acknowledged before the kill)\n", ledger.size() - found);
  std::printf("6. verify: accounts=%zu total=%lld transfers=%zu: %s\n", v.accounts, v.total, v.transfers,
              v.problem.empty() ? "total preserved, no account negative" : v.problem.c_str());
  const bool ok = by_kill && mismatched == 0 && v.problem.empty();
  std::printf("%s\n", ok ? "demo: every acknowledged commit survived SIGKILL" : "demo: FAILED");
  return ok ? 0 : 1;
}

}  // namespace bank
