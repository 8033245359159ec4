// benchmarks/support/peer_common.hpp: what every durable-commit peer shares.
//
// A "durable commit" here is one single-key write of a 100-byte value under a
// key no other commit uses, acknowledged only once it is on stable storage.
// `run_committers` runs T threads that each commit in a loop, either for a
// fixed time or for a fixed count per thread, and reports how many commits
// finished and how long the run took. The peers (peer_rocksdb.hpp,
// peer_berkeleydb.hpp) and the raw group-commit baseline
// (raw_group_commit.hpp) all use it, so they are timed the same way.
#pragma once

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "benchmarks/support/bench_dir.hpp"
#include "benchmarks/support/raw_io.hpp"

namespace ktm::bench {

// Size of the value every commit writes.
inline constexpr std::size_t peer_value_size = 100;

// How long one measurement runs: `seconds` of wall time, or, when
// `commits_per_thread` is nonzero, exactly that many commits on each thread.
struct run_length {
  double seconds = 3.0;
  std::uint64_t commits_per_thread = 0;

  static run_length for_seconds(double s) { return run_length{s, 0}; }
  static run_length for_commits(std::uint64_t n) { return run_length{0.0, n}; }
  // 0.5 s when $KTM_BENCH_SHORT is set, else 3 s.
  static run_length standard(bool short_run = short_mode()) {
    return for_seconds(short_run ? 0.5 : 3.0);
  }
};

// The outcome of one measurement.
struct commit_rate {
  int threads = 0;
  std::uint64_t commits = 0;  // durable commits acknowledged in the window
  double seconds = 0.0;       // wall time of the window
  // Flushes (fsync/fdatasync of the log) the engine reported in the window;
  // meaningful only when `syncs_known`.
  std::uint64_t syncs = 0;
  bool syncs_known = false;
  // Commits that had to be retried (Berkeley DB deadlocks); not counted in
  // `commits` until they succeed.
  std::uint64_t retries = 0;

  double per_second() const { return seconds > 0 ? static_cast<double>(commits) / seconds : 0.0; }
  // NaN when the engine does not say how often it flushed.
  double syncs_per_commit() const {
    if (!syncs_known || commits == 0) return std::numeric_limits<double>::quiet_NaN();
    return static_cast<double>(syncs) / static_cast<double>(commits);
  }
};

// A key no other (thread, i) pair produces. The thread number comes first so
// each thread appends to its own range of an ordered index (for B-trees this
// keeps threads mostly off each other's leaf pages once the tree has split).
inline std::string peer_key(int thread, std::uint64_t i) {
  char b[40];
  std::snprintf(b, sizeof b, "t%03d:%016llx", thread, static_cast<unsigned long long>(i));
  return b;
}

// The 100-byte value a thread writes (content is irrelevant; not all zero).
inline std::string peer_value(int thread) {
  return std::string(peer_value_size, static_cast<char>('a' + thread % 26));
}

// Runs `threads` threads; thread t calls `commit(t, i)` for i = 0, 1, ...
// Each call must perform one durable commit and return only once it is
// durable. All threads start together; in timed mode, main sleeps for the
// duration, raises a stop flag, and the commits in flight when it is raised
// still count (the window ends when the last thread has returned). An
// exception on any thread stops the others and is rethrown here.
template <class Commit>
commit_rate run_committers(int threads, run_length len, Commit&& commit) {
  if (threads < 1) throw std::invalid_argument("run_committers: threads < 1");
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> stop{false};
  std::vector<std::uint64_t> done(static_cast<std::size_t>(threads), 0);
  std::exception_ptr failure;
  std::mutex failure_mu;

  std::vector<std::thread> pool;
  pool.reserve(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) std::this_thread::yield();
      std::uint64_t n = 0;
      try {
        while (!stop.load(std::memory_order_relaxed) &&
               (len.commits_per_thread == 0 || n < len.commits_per_thread)) {
          commit(t, n);
          ++n;
        }
      } catch (...) {
        std::lock_guard<std::mutex> g(failure_mu);
        if (!failure) failure = std::current_exception();
        stop.store(true);
      }
      done[static_cast<std::size_t>(t)] = n;
    });
  }
  while (ready.load() < threads) std::this_thread::yield();
  auto t0 = clock_type::now();
  go.store(true, std::memory_order_release);
  if (len.commits_per_thread == 0) {
    auto until = t0 + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(len.seconds));
    while (!stop.load() && clock_type::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    stop.store(true);
  }
  for (auto& th : pool) th.join();
  commit_rate r;
  r.seconds = seconds_since(t0);
  if (failure) std::rethrow_exception(failure);
  r.threads = threads;
  for (auto n : done) r.commits += n;
  return r;
}

}  // namespace ktm::bench
