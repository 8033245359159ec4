// benchmarks/distributed_bench.cpp: distributed two-phase commits per second
// across one superior and three subordinate TMs talking through
// grpc_transport over loopback, against the same work committed by one
// durable TM with four RMs in one log: the cost of distribution.
//
//   bazel run --config=bench //benchmarks:distributed_bench [-- --short]
//
// Distributed: four nodes of examples/distributed/node.hpp, each a durable
// superior_transaction_manager over its own posix-file log with one
// transactional_map in the same log, each with its own grpc_transport on a
// loopback port. They are threads of this one process (no shared state but
// the network: every message crosses a TCP connection through gRPC); the
// kill test runs the same node as separate processes. A commit: node 0
// begins a transaction, enlists the three subordinates, writes one key
// ("tx/<uow>", 8 bytes) in its map; each subordinate joins at the first
// PREPREPARE and writes one key in its map; commit() returns after the
// superior's decision and every COMMIT_COMPLETE.
// Single TM: one durable TM over one posix-file log holding four
// transactional_maps' streams; a commit writes the same four keys, one per
// map, and commits.
// Both: C committing threads (1 and 32), for a fixed time; device flushes
// per commit summed over every log; messages per commit = messages every
// node handed to its transport over commits (resends included: every node
// calls tick() every --tick-ms, default 1000; a shorter tick resends what a
// loaded run has not answered yet). Options: --short (or KTM_BENCH_SHORT=1):
// 0.5 s per cell, else 3 s; --seconds=S; --threads=1,32; --tick-ms=T.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "benchmarks/support/bench_dir.hpp"
#include "benchmarks/support/commit_report.hpp"
#include "benchmarks/support/table.hpp"
#include "examples/distributed/node.hpp"
#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"

namespace {

using namespace ktm::bench;
namespace kd = ktm::distributed;
namespace kt = ktm::tm;
using io_t = ktm::io::posix_storage;

struct cost : flush_cost {
  double messages_per_commit = 0;
};

cost distributed_commits(const bench_dir& dir, int threads, run_length len, std::chrono::milliseconds tick) {
  kd::crash_points cp;  // never armed: counts nothing, crashes nothing
  std::vector<std::unique_ptr<kd::node>> nodes;
  for (int i = 0; i < 4; ++i) {
    kd::node_config c;
    c.dir = dir.fresh("node" + std::to_string(i));
    c.index = i;
    c.ports = {0, 0, 0, 0};
    c.print = false;
    c.tick = tick;
    nodes.push_back(std::make_unique<kd::node>(c, cp));
  }
  std::vector<int> ports;
  for (auto& n : nodes) ports.push_back(n->port());
  for (auto& n : nodes) n->connect(ports);
  for (auto& n : nodes) n->start();
  kd::node& top = *nodes[0];
  auto commit = [&](int, std::uint64_t) {
    auto r = top.commit_distributed({});
    if (!r) throw std::runtime_error("distributed commit: " + r.error().message());
  };
  for (int i = 0; i < 20; ++i) commit(0, 0);  // warm-up: connections, outside the window
  auto totals = [&](std::uint64_t& flushes, std::uint64_t& messages) {
    flushes = messages = 0;
    for (auto& n : nodes) flushes += n->log().device_flushes(), messages += n->transport().messages_sent();
  };
  std::uint64_t f0, m0, f1, m1;
  totals(f0, m0);
  cost out;
  out.rate = run_committers(threads, len, commit);
  totals(f1, m1);
  out.rate.syncs = f1 - f0;
  out.rate.syncs_known = true;
  out.flushes_per_commit = per(f1 - f0, out.rate.commits);
  out.messages_per_commit = per(m1 - m0, out.rate.commits);
  return out;
}

using map_t = ktm::rm::transactional_map<io_t>;
using single_tm = kt::durable_transaction_manager<io_t, kt::with_storage<kt::dynamic_storage>,
                                                  kt::with_recovery<kt::replay_recovery<1024>>>;

flush_cost single_tm_commits(const std::string& dir, int threads, run_length len) {
  io_t io(dir);
  auto lg = kd::must(ktm::log::log<io_t>::create(io, "txlog", growing_log_options(4u << 20, 2)), "create log");
  auto ts = kd::must(lg.create_stream("tm"), "tm stream");
  ktm::rm::transactional_map_options mo;
  mo.prepare = ktm::rm::durability::queue_only;  // as in the node: the TM's forced record covers it
  mo.checkpoint_every = 256;
  std::vector<std::unique_ptr<map_t>> maps;
  for (int i = 0; i < 4; ++i) {
    auto s = kd::must(lg.create_stream("map" + std::to_string(i)), "map stream");
    maps.push_back(std::make_unique<map_t>(s, kd::must(s.marshalling_area(), "map writer"), mo));
    kd::must(maps.back()->recover(), "map recovery");
  }
  single_tm tm{kt::log_arg, ts};
  for (auto& m : maps) kd::must(tm.add_resource_manager(*m), "add map");
  kd::must(tm.recover(), "recover");
  auto commit = [&](int, std::uint64_t) {
    auto tx = tm.begin();
    const std::string key = "tx/" + tx.id().to_string();
    for (auto& m : maps) kd::must(m->put(tx, key, "node"), "put");
    kd::must(tx.commit(), "commit");
  };
  return measure_flushes(lg, threads, len, commit);
}

}  // namespace

int main(int argc, char** argv) {
  std::chrono::milliseconds tick{1000};
  const commit_args args =
      parse_commit_args(argc, argv, {1, 32}, "[--short] [--seconds=S] [--threads=1,32] [--tick-ms=T]", [&](const char* a) {
        if (std::strncmp(a, "--tick-ms=", 10) != 0) return false;
        tick = std::chrono::milliseconds(std::atoi(a + 10));
        return true;
      });
  const run_length len = args.length();
  return report_errors("distributed_bench", [&] {
    bench_dir dir("distributed");
    std::printf("distributed_bench: %.2f s per measurement, resend tick %lld ms, directory %s\n", len.seconds,
                static_cast<long long>(tick.count()), dir.path().c_str());
    std::fflush(stdout);
    table t({"concurrent tx", "distributed commits/s", "messages/commit", "flushes/commit", "single-TM commits/s",
             "single-TM flushes/commit", "distributed / single"});
    for (int n : args.threads) {
      const std::string tag = std::to_string(n);
      const cost d = distributed_commits(dir, n, len, tick);
      std::printf("DISTRIBUTED threads=%d commits=%llu commits_per_s=%.1f messages_per_commit=%.2f "
                  "flushes_per_commit=%.3f\n",
                  n, static_cast<unsigned long long>(d.rate.commits), d.rate.per_second(), d.messages_per_commit,
                  d.flushes_per_commit);
      std::fflush(stdout);
      const flush_cost s = single_tm_commits(dir.fresh("single-" + tag), n, len);
      std::printf("SINGLE threads=%d commits=%llu commits_per_s=%.1f flushes_per_commit=%.3f\n", n,
                  static_cast<unsigned long long>(s.rate.commits), s.rate.per_second(), s.flushes_per_commit);
      std::fflush(stdout);
      t.row({tag, fmt(d.rate.per_second(), 0), fmt(d.messages_per_commit, 2), fmt(d.flushes_per_commit, 3),
             fmt(s.rate.per_second(), 0), fmt(s.flushes_per_commit, 3),
             s.rate.per_second() > 0 ? fmt(d.rate.per_second() / s.rate.per_second(), 3) : "-"});
    }
    t.print("Distributed commits (one superior, three subordinates, grpc_transport over loopback) against one "
            "durable TM with the same four RMs in one log (higher is better)");
  });
}
