// benchmarks/peers_bench.cpp: durable commits per second of the peers ktm is
// compared with, measured in one run on one machine and directory.
//
//   bazel run --config=bench //benchmarks:peers_bench [-- --short]
//
// For 1, 4, 16 and 64 threads, each doing single-key writes of a 100-byte
// value under distinct keys, every write durable before it is acknowledged:
//   rocksdb  DB::Put with WriteOptions::sync = true       (peer_rocksdb.hpp)
//   bdb      Berkeley DB txn_begin + put + commit(0)       (peer_berkeleydb.hpp)
//   raw      pwrite(100 B) + fdatasync per commit, one file (raw_group_commit.hpp)
// Each configuration gets a fresh directory under $KTM_BENCH_DIR (default
// /var/tmp/ktm-bench)/peers, removed at exit.
//
// Options: --short (or KTM_BENCH_SHORT=1): 0.5 s per measurement, else 3 s;
// --seconds=S overrides the duration; --commits=N runs N commits per thread
// instead of a fixed time; --threads=1,4,16,64 picks the counts;
// --repeat=R measures each cell R times, the three systems interleaved
// (rocksdb, bdb, raw, rocksdb, ...) so drift in the machine hits all alike,
// and the table shows the run with the median commits/s (default 1).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "benchmarks/support/bench_dir.hpp"
#include "benchmarks/support/commit_report.hpp"
#include "benchmarks/support/peers.hpp"
#include "benchmarks/support/table.hpp"

namespace {

using namespace ktm::bench;

// The run with the median commits/s (the upper median for an even count).
commit_rate median(std::vector<commit_rate> runs) {
  std::sort(runs.begin(), runs.end(),
            [](const commit_rate& a, const commit_rate& b) { return a.per_second() < b.per_second(); });
  return runs[runs.size() / 2];
}

void report(const char* peer, const commit_rate& r) {
  std::printf("PEER %s threads=%d commits=%llu seconds=%.3f commits_per_s=%.1f syncs_per_commit=%s retries=%llu\n",
              peer, r.threads, static_cast<unsigned long long>(r.commits), r.seconds, r.per_second(),
              per_commit(r).c_str(), static_cast<unsigned long long>(r.retries));
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  bool short_run = short_mode();
  double seconds = -1;
  long long commits = 0;
  int repeat = 1;
  std::vector<int> thread_counts{1, 4, 16, 64};
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--short") == 0) {
      short_run = true;
    } else if (std::strncmp(argv[i], "--seconds=", 10) == 0) {
      seconds = std::atof(argv[i] + 10);
    } else if (std::strncmp(argv[i], "--commits=", 10) == 0) {
      commits = std::atoll(argv[i] + 10);
    } else if (std::strncmp(argv[i], "--repeat=", 9) == 0) {
      repeat = std::max(1, std::atoi(argv[i] + 9));
    } else if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      thread_counts = parse_threads(argv[i] + 10);
    } else {
      std::fprintf(stderr, "usage: %s [--short] [--seconds=S | --commits=N] [--threads=1,4,16,64] [--repeat=R]\n", argv[0]);
      return 2;
    }
  }
  run_length len = seconds > 0 ? run_length::for_seconds(seconds) : run_length::standard(short_run);
  if (commits > 0) len = run_length::for_commits(static_cast<std::uint64_t>(commits));

  try {
    bench_dir dir("peers");
    if (len.commits_per_thread)
      std::printf("peers_bench: %llu commits per thread per measurement",
                  static_cast<unsigned long long>(len.commits_per_thread));
    else
      std::printf("peers_bench: %.2f s per measurement", len.seconds);
    std::printf(", directory %s, value %zu bytes\n", dir.path().c_str(), peer_value_size);
    std::fflush(stdout);

    table t({"threads", "rocksdb commits/s", "rocksdb syncs/commit", "bdb commits/s", "bdb syncs/commit",
             "raw commits/s", "bdb deadlock retries"});
    for (int n : thread_counts) {
      const std::string tag = std::to_string(n);
      std::vector<commit_rate> rocks_runs, bdb_runs, raw_runs;
      for (int r = 0; r < repeat; ++r) {
        rocks_runs.push_back(rocksdb_sync_commits(dir.fresh("rocksdb-" + tag), n, len));
        report("rocksdb", rocks_runs.back());
        bdb_runs.push_back(berkeleydb_txn_commits(dir.fresh("bdb-" + tag), n, len));
        report("bdb", bdb_runs.back());
        raw_runs.push_back(raw_group_commits(dir.fresh("raw-" + tag) + "/raw.log", n, len));
        report("raw", raw_runs.back());
      }
      const commit_rate rocks = median(rocks_runs), bdb = median(bdb_runs), raw = median(raw_runs);
      t.row({tag, fmt(rocks.per_second(), 0), per_commit(rocks), fmt(bdb.per_second(), 0), per_commit(bdb),
             fmt(raw.per_second(), 0), std::to_string(bdb.retries)});
      // Each peer's files are removed before the next thread count.
      dir.fresh("rocksdb-" + tag);
      dir.fresh("bdb-" + tag);
      dir.fresh("raw-" + tag);
    }
    t.print(repeat > 1 ? "Durable single-key commits of 100-byte values, median of " + std::to_string(repeat) +
                             " runs (higher is better)"
                       : std::string("Durable single-key commits of 100-byte values (higher is better)"));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "peers_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
