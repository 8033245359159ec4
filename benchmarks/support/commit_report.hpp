// benchmarks/support/commit_report.hpp: what the durable-commit benchmarks
// share on their command line and in their tables.
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "benchmarks/support/peer_common.hpp"
#include "benchmarks/support/table.hpp"

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

// Device syncs per commit for a table cell: "n/a" where they were not counted.
inline std::string per_commit(const commit_rate& r) {
  const double v = r.syncs_per_commit();
  return std::isnan(v) ? "n/a" : fmt(v, 3);
}

}  // namespace ktm::bench
