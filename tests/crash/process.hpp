// tests/crash/process.hpp: runs the bank binary as a child process, reads
// its stdout and stderr, and kills it with SIGKILL after a delay.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace ktm::crash {

struct process_result {
  int status = 0;  // waitpid's
  std::string out, err;
  bool killed_by_us = false;

  bool exited() const { return WIFEXITED(status); }
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
  bool died_by_sigkill() const { return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL; }
  std::vector<std::string> out_lines() const {
    std::vector<std::string> v;
    std::size_t at = 0;
    for (std::size_t nl; (nl = out.find('\n', at)) != std::string::npos; at = nl + 1) v.push_back(out.substr(at, nl - at));
    return v;  // a last line without '\n' was cut by the kill: not counted
  }
};

// The bank binary: $BANK_BIN, else the runfiles path of //examples/bank.
inline std::string bank_binary() {
  if (const char* b = std::getenv("BANK_BIN")) return b;
  const char* src = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return std::string(src ? src : ".") + "/" + (ws ? ws : "ktm") + "/examples/bank/bank";
}

// Runs `bank args...`; with kill_after, sends SIGKILL that long after the
// start (if it is still running).
inline process_result run_bank(const std::vector<std::string>& args,
                               std::optional<std::chrono::milliseconds> kill_after = std::nullopt) {
  const std::string bin = bank_binary();
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) std::abort();
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(bin.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) std::abort();
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    ::execv(bin.c_str(), argv.data());
    std::_Exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  process_result r;
  const auto start = std::chrono::steady_clock::now();
  bool out_open = true, err_open = true;
  while (out_open || err_open) {
    int timeout = -1;
    if (kill_after && !r.killed_by_us) {
      const auto left = *kill_after - std::chrono::duration_cast<std::chrono::milliseconds>(
                                          std::chrono::steady_clock::now() - start);
      if (left.count() <= 0) {
        ::kill(pid, SIGKILL);
        r.killed_by_us = true;
        continue;
      }
      timeout = static_cast<int>(left.count());
    }
    pollfd p[2] = {{out_open ? out[0] : -1, POLLIN, 0}, {err_open ? err[0] : -1, POLLIN, 0}};
    if (::poll(p, 2, timeout) <= 0) continue;
    char buf[8192];
    for (int i = 0; i < 2; ++i) {
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      if (n > 0) (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      else (i == 0 ? out_open : err_open) = false;
    }
  }
  ::close(out[0]);
  ::close(err[0]);
  ::waitpid(pid, &r.status, 0);
  return r;
}

}  // namespace ktm::crash
