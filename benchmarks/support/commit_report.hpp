// benchmarks/support/commit_report.hpp: what the durable-commit benchmarks
// share on their command line, in their measurements and in their tables.
//
// parse_threads(list)      a --threads list such as "1,4,16,64"
// commit_args / parse_commit_args(argc, argv, threads, usage, extra)
//                          --short (or KTM_BENCH_SHORT=1), --seconds=S and
//                          --threads=list; `extra(arg)` takes any other
//                          argument, false: usage on stderr, exit status 2
// growing_log_options(container_size, containers)   a log that grows to 64
//                          containers, for committers that fill it
// per(n, commits)          n per commit (0 without commits)
// flush_cost / measure_flushes(log, threads, len, commit)   20 warm-up
//                          commits, then `threads` committers for `len`;
//                          the log's device flushes in the window are the
//                          rate's syncs
// per_commit(rate)         syncs per commit for a table cell ("n/a")
// report_errors(name, body)  runs the body; an exception is printed as
//                          "<name>: <what>" on stderr, status 1
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "benchmarks/support/bench_dir.hpp"
#include "benchmarks/support/peer_common.hpp"
#include "benchmarks/support/table.hpp"
#include "ktm/log/log_options.hpp"

namespace ktm::bench {

// Parses a --threads list such as "1,4,16,64"; exits with status 2 on a bad one.
inline std::vector<int> parse_threads(const char* s) {
  std::vector<int> out;
  while (*s) {
    char* end = nullptr;
    long v = std::strtol(s, &end, 10);
    if (end == s || v < 1 || v > 4096) {
      std::fprintf(stderr, "bad --threads list\n");
      std::exit(2);
    }
    out.push_back(static_cast<int>(v));
    s = *end == ',' ? end + 1 : end;
  }
  return out;
}

struct commit_args {
  bool short_run = short_mode();
  double seconds = -1;
  std::vector<int> threads;
  run_length length() const { return seconds > 0 ? run_length::for_seconds(seconds) : run_length::standard(short_run); }
};

// `threads`: the default list. `usage`: the options, after the program's name.
template <class Extra>
commit_args parse_commit_args(int argc, char** argv, std::vector<int> threads, const char* usage, Extra&& extra) {
  commit_args a;
  a.threads = std::move(threads);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--short") == 0) a.short_run = true;
    else if (std::strncmp(argv[i], "--seconds=", 10) == 0) a.seconds = std::atof(argv[i] + 10);
    else if (std::strncmp(argv[i], "--threads=", 10) == 0) a.threads = parse_threads(argv[i] + 10);
    else if (!extra(argv[i])) {
      std::fprintf(stderr, "usage: %s %s\n", argv[0], usage);
      std::exit(2);
    }
  }
  return a;
}

inline ktm::log::log_options growing_log_options(std::uint32_t container_size, std::uint32_t containers) {
  ktm::log::log_options o;
  o.container_size = container_size;
  o.containers = containers;
  o.grow = true;
  o.max_containers = 64;
  return o;
}

inline double per(std::uint64_t n, std::uint64_t commits) {
  return commits ? static_cast<double>(n) / static_cast<double>(commits) : 0;
}

struct flush_cost {
  commit_rate rate;
  double flushes_per_commit = 0;
};

// `commit(int thread, std::uint64_t i)` throws on failure; the warm-up runs
// outside the window.
template <class Log, class Commit>
flush_cost measure_flushes(Log& lg, int threads, run_length len, Commit& commit) {
  for (int i = 0; i < 20; ++i) commit(0, 0);
  const std::uint64_t f0 = lg.device_flushes();
  flush_cost out;
  out.rate = run_committers(threads, len, commit);
  out.rate.syncs = lg.device_flushes() - f0;
  out.rate.syncs_known = true;
  out.flushes_per_commit = per(out.rate.syncs, out.rate.commits);
  return out;
}

// Device syncs per commit for a table cell: "n/a" where they were not counted.
inline std::string per_commit(const commit_rate& r) {
  const double v = r.syncs_per_commit();
  return std::isnan(v) ? "n/a" : fmt(v, 3);
}

template <class Body>
int report_errors(const char* name, Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
  return 0;
}

}  // namespace ktm::bench
