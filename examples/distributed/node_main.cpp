// examples/distributed/node_main.cpp: one node of a distributed system on
// loopback (node.hpp): a durable TM and a transactional map in a directory.
//
//   node --dir=D --index=I --ports=P0,P1,P2,P3 [--transactions=K]
//        [--concurrency=C] [--crash-at=<step>:<n>] [--tick-ms=T]
//        [--idle-abort-ms=A] [--dump]
//
// Node 0, the superior, commits K distributed transactions over every other
// node, C at a time (each worker resumes after a restart where its
// committed counter "done/<w>" in the map says), printing
// "OUTCOME <uow> committed|<error>" as each is decided, then "FINISHED
// committed=<n>". Every node prints "ONLINE ...", "JOINED <uow>", "SUB <uow>
// committed|aborted" and "STATE quiet|busy", and runs until its stdin
// closes. --crash-at makes it SIGKILL itself at that step (crash_points.hpp).
// --dump recovers the directory offline (no network), prints "DUMP
// node=<i> in_doubt=<n> unresolved=<n> map_in_doubt=<n> committed=<n>" and
// one "KEY <uow>" per transaction its map committed, and exits.
//
//   bazel run //examples/distributed:node -- --dir=/tmp/n0 --index=0 --ports=7100,7101,7102,7103 --transactions=5
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "examples/distributed/node.hpp"

namespace kd = ktm::distributed;

namespace {

std::vector<int> parse_ports(const char* s) {
  std::vector<int> out;
  for (char* end = nullptr;; s = end + 1) {
    out.push_back(static_cast<int>(std::strtol(s, &end, 10)));
    if (*end != ',') break;
  }
  return out;
}

int usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s --dir=D --index=I --ports=P0,P1,... [--transactions=K] [--concurrency=C] "
               "[--crash-at=<step>:<n>] [--tick-ms=T] [--idle-abort-ms=A] [--dump]\n",
               argv0);
  return 2;
}

void dump(kd::node& n) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : n.map().snapshot())
    if (k.rfind("tx/", 0) == 0) keys.push_back(k.substr(3));
  std::printf("DUMP node=%d in_doubt=%zu unresolved=%zu map_in_doubt=%zu committed=%zu\n", n.config().index,
              n.tm().in_doubt_count(), static_cast<std::size_t>(n.tm().log().stats().unresolved),
              n.map().in_doubt().size(), keys.size());
  for (const auto& k : keys) std::printf("KEY %s\n", k.c_str());
}

// Node 0's workers: `quota` committed transactions each.
void run_superior(kd::node& n, std::size_t k, int workers) {
  const auto committed = n.map().snapshot();
  std::atomic<std::size_t> total{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < workers; ++w)
    ts.emplace_back([&, w] {
      const std::string key = "done/" + std::to_string(w);
      const std::size_t quota = k / static_cast<std::size_t>(workers) + (static_cast<std::size_t>(w) < k % static_cast<std::size_t>(workers));
      auto it = committed.find(key);
      std::size_t done = it == committed.end() ? 0 : std::stoul(it->second);
      for (std::size_t attempts = 0; done < quota && attempts < 20 * quota + 20; ++attempts) {
        ktm::guid uow;
        auto r = n.commit_distributed({{key, std::to_string(done + 1)}}, &uow);
        n.say("OUTCOME %s %s", uow.to_string().c_str(), r ? "committed" : r.error().message().c_str());
        if (r) ++done;
      }
      total += done;
    });
  for (auto& t : ts) t.join();
  n.say("FINISHED committed=%zu", total.load());
}

}  // namespace

int main(int argc, char** argv) {
  kd::node_config cfg;
  std::size_t transactions = 0;
  int concurrency = 1;
  bool dump_only = false;
  kd::crash_points cp;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    auto opt = [&](const char* name) -> const char* {
      const std::size_t n = std::strlen(name);
      return std::strncmp(a, name, n) == 0 ? a + n : nullptr;
    };
    if (const char* v = opt("--dir=")) cfg.dir = v;
    else if (const char* v = opt("--index=")) cfg.index = std::atoi(v);
    else if (const char* v = opt("--ports=")) cfg.ports = parse_ports(v);
    else if (const char* v = opt("--transactions=")) transactions = std::strtoul(v, nullptr, 10);
    else if (const char* v = opt("--concurrency=")) concurrency = std::max(1, std::atoi(v));
    else if (const char* v = opt("--tick-ms=")) cfg.tick = std::chrono::milliseconds(std::atoi(v));
    else if (const char* v = opt("--idle-abort-ms=")) cfg.idle_abort = std::chrono::milliseconds(std::atoi(v));
    else if (const char* v = opt("--crash-at=")) {
      if (!cp.arm(v)) return usage(argv[0]);
    } else if (std::strcmp(a, "--dump") == 0) dump_only = true;
    else return usage(argv[0]);
  }
  if (cfg.dir.empty() || cfg.index < 0 || static_cast<std::size_t>(cfg.index) >= cfg.ports.size()) return usage(argv[0]);
  cfg.listen = !dump_only;
  try {
    std::filesystem::create_directories(cfg.dir);
    kd::node n(cfg, cp);
    n.connect(cfg.ports);
    n.set_working(n.superior() && transactions > 0);
    n.start();
    if (dump_only) {
      dump(n);
      return 0;
    }
    if (n.superior() && transactions > 0) run_superior(n, transactions, concurrency);
    n.set_working(false);
    while (std::fgetc(stdin) != EOF) {
    }
    cp.disable();  // a clean shutdown: --crash-at covers the run only
    const auto st = n.wait_for_end_records(std::chrono::seconds(5));
    std::fprintf(stderr, "node %d: stdin closed, shutting down: %llu commit records, %llu end records, %zu pending, %zu unresolved\n",
                 cfg.index, static_cast<unsigned long long>(st.commit_records),
                 static_cast<unsigned long long>(st.end_records), st.pending, st.unresolved);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "node: %s\n", e.what());
    return 1;
  }
  return 0;
}
