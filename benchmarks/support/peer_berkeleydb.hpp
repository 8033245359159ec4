// benchmarks/support/peer_berkeleydb.hpp: Berkeley DB 5.3 durable commits,
// the peer.
//
// Each commit is an explicit transaction: `txn_begin`, one `Db::put` of a
// 100-byte value under a fresh key, `DbTxn::commit(0)`. Commit flags are 0
// and the environment has neither DB_TXN_NOSYNC nor DB_TXN_WRITE_NOSYNC, so
// every commit returns only after the log has been written and flushed
// (Berkeley DB's log flush uses fdatasync where available). Concurrent
// committers may share one flush: a thread that finds a flush in progress
// waits for it and returns without flushing if it covered its record.
//
// Configuration:
//   * Environment flags DB_CREATE | DB_INIT_TXN | DB_INIT_LOG | DB_INIT_LOCK
//     | DB_INIT_MPOOL | DB_THREAD | DB_RECOVER (recovery on an empty
//     directory is a no-op; it is what a durable application opens with).
//   * Log: on disk, default log buffer (32 KiB) and file size (10 MiB).
//   * Cache 64 MiB (the default is 256 KiB): every page a run touches stays
//     in memory, so, as with RocksDB's memtable, the only forced I/O is the
//     log. No checkpoints during the run.
//   * Room for the concurrency: tx_max and the lock tables sized for 64+
//     concurrent transactions; deadlock detection on every conflict
//     (DB_LOCK_DEFAULT).
//   * One B-tree database, opened with DB_AUTO_COMMIT | DB_THREAD. Page
//     locks are held to commit, so threads whose keys share a leaf page (or a
//     split) serialise; a DB_LOCK_DEADLOCK (or DB_LOCK_NOTGRANTED) aborts
//     the transaction and it is retried (counted in `retries`).
//
// Flushes per commit: the delta of DbEnv::log_stat's st_scount (syncs of the
// log) across the timed window; opening and a short warm-up are excluded.
#pragma once

#include <db_cxx.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "benchmarks/support/peer_common.hpp"

namespace ktm::bench {

namespace detail_bdb {

inline void check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string("berkeleydb ") + what + ": " + db_strerror(rc));
}

inline std::uint64_t log_syncs(DbEnv& env) {
  DB_LOG_STAT* st = nullptr;
  check(env.log_stat(&st, 0), "log_stat");
  std::uint64_t n = static_cast<std::uint64_t>(st->st_scount);
  std::free(st);  // allocated by Berkeley DB with malloc
  return n;
}

// Environment and database, closed in the right order on every path.
struct handles {
  DbEnv env{DB_CXX_NO_EXCEPTIONS};
  std::unique_ptr<Db> db;
  bool env_open = false;
  ~handles() {
    if (db) db->close(0);
    db.reset();
    if (env_open) env.close(0);
  }
};

}  // namespace detail_bdb

// Opens (creating) a Berkeley DB environment and B-tree database in `dir` —
// which should be empty; it is left on disk for the caller to remove — and
// measures `threads` threads doing one-put transactions for `len`.
inline commit_rate berkeleydb_txn_commits(const std::string& dir, int threads, run_length len) {
  using detail_bdb::check;
  std::filesystem::create_directories(dir);
  detail_bdb::handles h;
  check(h.env.set_cachesize(0, 64u << 20, 1), "set_cachesize");
  const auto room = static_cast<u_int32_t>(threads < 64 ? 256 : 4 * threads);
  check(h.env.set_tx_max(room), "set_tx_max");
  check(h.env.set_lk_max_lockers(4 * room), "set_lk_max_lockers");
  check(h.env.set_lk_max_locks(16 * room), "set_lk_max_locks");
  check(h.env.set_lk_max_objects(16 * room), "set_lk_max_objects");
  check(h.env.set_lk_detect(DB_LOCK_DEFAULT), "set_lk_detect");
  check(h.env.open(dir.c_str(),
                   DB_CREATE | DB_INIT_TXN | DB_INIT_LOG | DB_INIT_LOCK | DB_INIT_MPOOL | DB_THREAD |
                       DB_RECOVER,
                   0644),
        "env open");
  h.env_open = true;

  h.db = std::make_unique<Db>(&h.env, DB_CXX_NO_EXCEPTIONS);
  check(h.db->open(nullptr, "peer.db", nullptr, DB_BTREE, DB_CREATE | DB_AUTO_COMMIT | DB_THREAD, 0644),
        "db open");
  Db& db = *h.db;
  DbEnv& env = h.env;

  std::uint64_t retries_total = 0;
  std::mutex retries_mu;

  // One durable single-put transaction, retried on deadlock.
  auto commit_one = [&](const std::string& k, const std::string& v) -> std::uint64_t {
    std::uint64_t retries = 0;
    for (;;) {
      DbTxn* txn = nullptr;
      check(env.txn_begin(nullptr, &txn, 0), "txn_begin");
      Dbt key(const_cast<char*>(k.data()), static_cast<u_int32_t>(k.size()));
      Dbt val(const_cast<char*>(v.data()), static_cast<u_int32_t>(v.size()));
      int rc = db.put(txn, &key, &val, 0);
      if (rc == DB_LOCK_DEADLOCK || rc == DB_LOCK_NOTGRANTED) {
        txn->abort();
        ++retries;
        continue;
      }
      if (rc != 0) {
        txn->abort();
        check(rc, "put");
      }
      check(txn->commit(0), "commit");  // 0: synchronous, flushed before returning
      return retries;
    }
  };

  for (int i = 0; i < 8; ++i) commit_one("warmup:" + std::to_string(i), peer_value(0));

  std::vector<std::string> values;
  for (int t = 0; t < threads; ++t) values.push_back(peer_value(t));

  const auto syncs0 = detail_bdb::log_syncs(env);
  commit_rate r = run_committers(threads, len, [&](int t, std::uint64_t i) {
    auto n = commit_one(peer_key(t, i), values[static_cast<std::size_t>(t)]);
    if (n) {
      std::lock_guard<std::mutex> g(retries_mu);
      retries_total += n;
    }
  });
  r.syncs = detail_bdb::log_syncs(env) - syncs0;
  r.syncs_known = true;
  r.retries = retries_total;
  return r;
}

// Commits per second of `threads` threads for `seconds` of wall time.
inline double berkeleydb_txn_commits_per_second(const std::string& dir, int threads, double seconds) {
  return berkeleydb_txn_commits(dir, threads, run_length::for_seconds(seconds)).per_second();
}

}  // namespace ktm::bench
