// tests/distributed/cluster.hpp: four node processes (examples/distributed:
// node) on loopback, one superior and three subordinates, each in its own
// directory, driven by a test: started, killed (SIGKILL), restarted on the
// same directory and port, read line by line, and finally inspected offline
// (node --dump).
//
//   cluster c(dir, transactions, concurrency);
//   c.start(i, "--crash-at=send_after:3");   // extra arguments for this run of node i
//   c.pump(50ms);                            // reads lines; reaps and counts deaths
//   c.settled();                             // FINISHED seen, every node quiet
//   c.shut_down(10s);                        // stdin closed: each node exits cleanly
//   auto d = c.dump(i);                      // what node i's log holds
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

namespace ktm::distributed::test {

inline std::string runfile(const std::string& path) {
  const char* src = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return std::string(src ? src : ".") + "/" + (ws ? ws : "ktm") + "/" + path;
}

// A port nobody listens on now (the kernel's choice for port 0).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    std::abort();
  ::close(fd);
  return ntohs(a.sin_port);
}

// What `node --dump` printed.
struct node_dump {
  bool ok = false;
  std::size_t in_doubt = 0, unresolved = 0, map_in_doubt = 0;
  std::set<std::string> committed;
  std::string text;
};

class cluster {
 public:
  static constexpr int nodes = 4;

  cluster(std::filesystem::path dir, std::size_t transactions, int concurrency)
      : dir_(std::move(dir)), transactions_(transactions), concurrency_(concurrency) {
    std::filesystem::create_directories(dir_);
    for (int i = 0; i < nodes; ++i) ports_ += (i ? "," : "") + std::to_string(free_port());
  }
  cluster(const cluster&) = delete;
  cluster& operator=(const cluster&) = delete;
  ~cluster() { stop(); }

  // Starts node i (again, on its directory), with `extra` arguments.
  void start(int i, const std::string& extra = "") {
    proc& p = procs_[i];
    std::vector<std::string> args{"--dir=" + (dir_ / ("n" + std::to_string(i))).string(), "--index=" + std::to_string(i),
                                  "--ports=" + ports_, "--idle-abort-ms=1000"};
    if (i == 0)
      args.push_back("--transactions=" + std::to_string(transactions_)),
          args.push_back("--concurrency=" + std::to_string(concurrency_));
    if (!extra.empty()) args.push_back(extra);
    p.pid = spawn(args, &p.in, &p.out, dir_ / ("stderr" + std::to_string(i)));
    ::fcntl(p.out, F_SETFL, O_NONBLOCK);
    p.quiet = false;
    p.buffer.clear();
  }

  // Reads every node's lines for `d`; reaps nodes that died (deaths()).
  void pump(std::chrono::milliseconds d) {
    std::vector<pollfd> fds;
    for (auto& p : procs_)
      if (p.pid > 0) fds.push_back(pollfd{p.out, POLLIN, 0});
    ::poll(fds.data(), fds.size(), static_cast<int>(d.count()));
    for (int i = 0; i < nodes; ++i) read_lines(i);
    for (int i = 0; i < nodes; ++i) {
      proc& p = procs_[i];
      int status = 0;
      if (p.pid > 0 && ::waitpid(p.pid, &status, WNOHANG) == p.pid) {
        read_lines(i);
        close_fds(p);
        p.pid = -1;
        died_.push_back({i, WIFSIGNALED(status) ? WTERMSIG(status) : -1, WIFEXITED(status) ? WEXITSTATUS(status) : -1});
      }
    }
  }

  struct death {
    int node, signal, exit_code;
  };
  // Deaths since the last call.
  std::vector<death> deaths() { return std::exchange(died_, {}); }
  bool running(int i) const { return procs_[i].pid > 0; }
  void kill(int i) {
    if (procs_[i].pid > 0) ::kill(procs_[i].pid, SIGKILL);
  }

  // The superior finished its transactions and every node says it is quiet.
  bool settled() const {
    if (!finished_) return false;
    for (const auto& p : procs_)
      if (p.pid <= 0 || !p.quiet) return false;
    return true;
  }
  bool finished() const { return finished_; }

  // Closes every node's stdin (a node then shuts down: its log is flushed
  // and closed) and waits up to `limit` for them. Empty when each exited
  // with 0; else what went wrong, node by node.
  std::string shut_down(std::chrono::milliseconds limit) {
    for (auto& p : procs_)
      if (p.pid > 0) ::close(std::exchange(p.in, -1));
    const auto end = std::chrono::steady_clock::now() + limit;
    std::string problems;
    for (int i = 0; i < nodes; ++i) {
      proc& p = procs_[i];
      if (p.pid <= 0) continue;
      int status = 0;
      while (::waitpid(p.pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > end) {
          ::kill(p.pid, SIGKILL);
          ::waitpid(p.pid, &status, 0);
          problems += "node " + std::to_string(i) + " did not exit: killed; ";
          break;
        }
        read_lines(i);
        ::usleep(10000);
      }
      read_lines(i);
      if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        problems += "node " + std::to_string(i) + " exited with " + std::to_string(WEXITSTATUS(status)) + "; ";
      close_fds(p);
      p.pid = -1;
    }
    return problems;
  }

  // SIGKILL to every node, reaped.
  void stop() {
    for (int i = 0; i < nodes; ++i) {
      proc& p = procs_[i];
      if (p.pid <= 0) continue;
      ::kill(p.pid, SIGKILL);
      ::waitpid(p.pid, nullptr, 0);
      close_fds(p);
      p.pid = -1;
    }
  }

  // node --dump on node i's directory (the node must be stopped).
  node_dump dump(int i) {
    int in = -1, out = -1;
    const pid_t pid = spawn({"--dir=" + (dir_ / ("n" + std::to_string(i))).string(), "--index=" + std::to_string(i),
                             "--ports=" + ports_, "--dump"},
                            &in, &out, dir_ / ("dump-stderr" + std::to_string(i)));
    ::close(in);
    node_dump d;
    char buf[4096];
    for (ssize_t n; (n = ::read(out, buf, sizeof buf)) > 0;) d.text.append(buf, static_cast<std::size_t>(n));
    ::close(out);
    int status = 0;
    ::waitpid(pid, &status, 0);
    std::istringstream s(d.text);
    for (std::string line; std::getline(s, line);) {
      if (line.rfind("KEY ", 0) == 0) d.committed.insert(line.substr(4));
      if (line.rfind("DUMP ", 0) == 0)
        d.ok = std::sscanf(line.c_str(), "DUMP node=%*d in_doubt=%zu unresolved=%zu map_in_doubt=%zu", &d.in_doubt,
                           &d.unresolved, &d.map_in_doubt) == 3;
    }
    d.ok = d.ok && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    return d;
  }

  // What node i's runs wrote to stderr.
  std::string stderr_of(int i) const {
    std::string out;
    if (std::FILE* f = std::fopen((dir_ / ("stderr" + std::to_string(i))).c_str(), "r")) {
      char buf[4096];
      for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) out.append(buf, n);
      std::fclose(f);
    }
    return out;
  }

  // Lines the nodes printed, in order per node ("<i> <line>").
  const std::vector<std::string>& log() const { return lines_; }
  // Transactions the superior reported committed; subordinates' SUB lines.
  const std::set<std::string>& reported_committed() const { return reported_; }
  const std::set<std::string>& sub_committed(int i) const { return sub_committed_[i]; }
  const std::set<std::string>& sub_aborted(int i) const { return sub_aborted_[i]; }

 private:
  struct proc {
    pid_t pid = -1;
    int in = -1, out = -1;
    std::string buffer;
    bool quiet = false;
  };

  pid_t spawn(const std::vector<std::string>& args, int* in_fd, int* out_fd, const std::filesystem::path& err) {
    int in[2], out[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0) std::abort();
    const std::string bin = runfile("examples/distributed/node");
    const int errfd = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    std::vector<char*> argv{const_cast<char*>(bin.c_str())};
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) std::abort();
    if (pid == 0) {  // only async-signal-safe calls until exec
      ::dup2(in[0], STDIN_FILENO);
      ::dup2(out[1], STDOUT_FILENO);
      if (errfd >= 0) ::dup2(errfd, STDERR_FILENO);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    if (errfd >= 0) ::close(errfd);
    *in_fd = in[1];
    *out_fd = out[0];
    return pid;
  }

  static void close_fds(proc& p) {
    if (p.in >= 0) ::close(p.in);
    ::close(p.out);
    p.in = p.out = -1;
  }

  void read_lines(int i) {
    proc& p = procs_[i];
    if (p.out < 0) return;
    char buf[4096];
    for (ssize_t n; (n = ::read(p.out, buf, sizeof buf)) > 0;) p.buffer.append(buf, static_cast<std::size_t>(n));
    for (std::size_t nl; (nl = p.buffer.find('\n')) != std::string::npos;) {
      const std::string line = p.buffer.substr(0, nl);
      p.buffer.erase(0, nl + 1);
      lines_.push_back(std::to_string(i) + " " + line);
      if (line == "STATE quiet") p.quiet = true;
      else if (line == "STATE busy") p.quiet = false;
      else if (line.rfind("FINISHED", 0) == 0) finished_ = true;
      else if (line.rfind("OUTCOME ", 0) == 0 && line.size() > 45 && line.substr(45) == "committed")
        reported_.insert(line.substr(8, 36));
      else if (line.rfind("SUB ", 0) == 0 && line.size() > 41)
        (line.substr(41) == "committed" ? sub_committed_ : sub_aborted_)[i].insert(line.substr(4, 36));
    }
  }

  std::filesystem::path dir_;
  std::size_t transactions_;
  int concurrency_;
  std::string ports_;
  std::array<proc, nodes> procs_;
  std::vector<death> died_;
  std::vector<std::string> lines_;
  bool finished_ = false;
  std::set<std::string> reported_;
  std::array<std::set<std::string>, nodes> sub_committed_, sub_aborted_;
};

}  // namespace ktm::distributed::test
