// benchmarks/support/raw_group_commit.hpp: the "each committer syncs on its
// own" baseline for durable commits.
//
// T threads share one file. Each commit takes the next 100-byte slot (a
// shared append cursor, as a log would), pwrites 100 bytes there, and calls
// fdatasync itself; nobody batches anything. Whatever sharing happens is the
// kernel's: one fdatasync may write back pages other threads dirtied, and
// concurrent fdatasyncs may share a device cache flush / journal commit.
//
// The file is written with zeros and synced before the window opens
// (prealloc_mode::write_zeros: with fallocate's unwritten extents, the first
// write to each would make fdatasync also commit extent metadata).
// The cursor wraps inside that region, so every fdatasync is of data only.
// Flushes per commit are 1 by construction.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "benchmarks/support/peer_common.hpp"
#include "benchmarks/support/raw_io.hpp"

namespace ktm::bench {

// Bytes of the file the cursor cycles through (written before timing).
inline constexpr std::uint64_t raw_group_commit_region = 64ull << 20;

// Measures `threads` threads doing pwrite(100 bytes) + fdatasync on the one
// file `path` (created/truncated; left for the caller to remove) for `len`.
inline commit_rate raw_group_commits(const std::string& path, int threads, run_length len) {
  const std::uint64_t slots = raw_group_commit_region / peer_value_size;
  raw_file f(path, raw_group_commit_region, prealloc_mode::write_zeros);
  std::vector<std::vector<std::byte>> values;
  for (int t = 0; t < threads; ++t) {
    auto v = peer_value(t);
    values.emplace_back(reinterpret_cast<const std::byte*>(v.data()),
                        reinterpret_cast<const std::byte*>(v.data()) + v.size());
  }
  std::atomic<std::uint64_t> cursor{0};
  commit_rate r = run_committers(threads, len, [&](int t, std::uint64_t) {
    const std::uint64_t slot = cursor.fetch_add(1, std::memory_order_relaxed) % slots;
    f.pwrite_all(values[static_cast<std::size_t>(t)].data(), peer_value_size, slot * peer_value_size);
    f.sync();
  });
  r.syncs = r.commits;
  r.syncs_known = true;
  return r;
}

// Commits per second of `threads` threads for `seconds` of wall time.
inline double raw_group_commits_per_second(const std::string& path, int threads, double seconds) {
  return raw_group_commits(path, threads, run_length::for_seconds(seconds)).per_second();
}

}  // namespace ktm::bench
