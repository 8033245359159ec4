// benchmarks/support/peer_rocksdb.hpp: RocksDB durable commits, the peer.
//
// Each commit is one `DB::Put` of a 100-byte value under a fresh key with
// `WriteOptions::sync = true`, so Put returns only after the WAL has been
// flushed (fdatasync; `Options::use_fsync` is left false).
//
// Configuration, chosen to be RocksDB as shipped, not tuned either way:
//   * `Options` default-constructed, plus `create_if_missing = true` and a
//     `Statistics` object (needed to read WAL_FILE_SYNCED; ticker counting
//     costs a few atomic increments a write).
//   * WAL enabled (`WriteOptions::disableWAL = false`, default), one column
//     family, `manual_wal_flush = false` (default).
//   * Write path left default: `enable_pipelined_write = false`,
//     `two_write_queues = false`, `unordered_write = false`. RocksDB still
//     group-commits: concurrent writers queue behind a leader that writes the
//     whole group to the WAL and syncs it once, so syncs/commit can fall
//     below 1 as threads are added.
//   * Memtable defaults (64 MiB write buffer): a run never fills it, so no
//     flush or compaction competes with the commits.
//
// Flushes per commit: the delta of the WAL_FILE_SYNCED ticker across the
// timed window (opening the database and a short warm-up are excluded).
#pragma once

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/statistics.h>

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

#include "benchmarks/support/peer_common.hpp"

namespace ktm::bench {

// Opens (creating) a RocksDB database in `dir` — which should be empty; it
// is left on disk for the caller to remove — and measures `threads` threads
// doing synchronous single-key Puts for `len`.
inline commit_rate rocksdb_sync_commits(const std::string& dir, int threads, run_length len) {
  std::filesystem::create_directories(dir);
  rocksdb::Options options;
  options.create_if_missing = true;
  options.statistics = rocksdb::CreateDBStatistics();

  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(options, dir, &raw);
  if (!s.ok()) throw std::runtime_error("rocksdb open " + dir + ": " + s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);

  rocksdb::WriteOptions wo;
  wo.sync = true;  // durable: the WAL is synced before Put returns

  // Warm-up: the first synced writes pay for creating/syncing the WAL file.
  for (int i = 0; i < 8; ++i) {
    s = db->Put(wo, "warmup:" + std::to_string(i), peer_value(0));
    if (!s.ok()) throw std::runtime_error("rocksdb warm-up put: " + s.ToString());
  }

  std::vector<std::string> values;
  for (int t = 0; t < threads; ++t) values.push_back(peer_value(t));

  const auto syncs0 = options.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED);
  commit_rate r = run_committers(threads, len, [&](int t, std::uint64_t i) {
    rocksdb::Status st = db->Put(wo, peer_key(t, i), values[static_cast<std::size_t>(t)]);
    if (!st.ok()) throw std::runtime_error("rocksdb put: " + st.ToString());
  });
  r.syncs = options.statistics->getTickerCount(rocksdb::WAL_FILE_SYNCED) - syncs0;
  r.syncs_known = true;

  s = db->Close();
  if (!s.ok()) throw std::runtime_error("rocksdb close: " + s.ToString());
  return r;
}

// Commits per second of `threads` threads for `seconds` of wall time.
inline double rocksdb_sync_commits_per_second(const std::string& dir, int threads, double seconds) {
  return rocksdb_sync_commits(dir, threads, run_length::for_seconds(seconds)).per_second();
}

}  // namespace ktm::bench
