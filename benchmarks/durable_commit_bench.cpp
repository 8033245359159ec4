// benchmarks/durable_commit_bench.cpp: durable two-phase commits per second
// of ktm's durable TM against RocksDB and Berkeley DB, in one run, in one
// directory.
//
//   bazel run --config=bench //benchmarks:durable_commit_bench [-- --short]
//
// ktm: a durable_transaction_manager over posix_storage whose stream shares
// one multiplexed log with one durable RM. Each commit is a transaction with
// that RM enlisted: PREPARE appends a 100-byte prepare record to the RM's
// stream (queue-only: the TM's forced commit record, a later LSN of the same
// log, covers it), the TM forces its commit record (group commit across
// threads), COMMIT, and the TM's end record is queued. A restart area every
// 1024 transactions. Flushes per commit: the device flushes the I/O policy
// saw in the window (posix_storage wrapped in counting_storage, support/
// counting_storage.hpp: every file of the log, so the base-file writes and
// the container files of a growing log count too) over the commits.
// Peers: rocksdb_sync_commits and berkeleydb_txn_commits (benchmarks/
// support/peers.hpp), the same thread counts, one durable 100-byte write
// each. Options: --short (or KTM_BENCH_SHORT=1): 0.5 s per cell, else 3 s;
// --seconds=S; --threads=1,4,16,64; --no-peers.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "benchmarks/support/bench_dir.hpp"
#include "benchmarks/support/commit_report.hpp"
#include "benchmarks/support/counting_storage.hpp"
#include "benchmarks/support/peers.hpp"
#include "benchmarks/support/table.hpp"
#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"

namespace {

using namespace ktm::bench;
namespace kt = ktm::tm;
// The log's files, each flush counted.
using io_t = counting_storage<ktm::io::posix_storage>;

// The minimal durable RM: a 100-byte prepare record in its own stream.
class prepare_rm : public kt::resource_manager_base<kt::rm_kind::durable_rm> {
 public:
  explicit prepare_rm(ktm::log::marshalling_area<io_t> w) : w_(std::move(w)) {}
  kt::reply on_prepare(kt::enlistment&, const kt::notification& n) {
    std::byte rec[peer_value_size] = {};
    for (std::size_t i = 0; i < 16; ++i) rec[i] = static_cast<std::byte>(n.transaction.bytes()[i]);
    auto l = w_.append(std::span<const std::byte>(rec, sizeof rec));  // queue-only: the TM's force covers it
    return l ? kt::reply::done() : kt::reply::rollback();
  }
  kt::reply on_commit(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_rollback(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }

 private:
  ktm::log::marshalling_area<io_t> w_;
};

using tm_t = kt::durable_transaction_manager<io_t, kt::with_storage<kt::static_storage<prepare_rm>>,
                                             kt::with_recovery<kt::replay_recovery<1024>>>;

template <class R>
auto must(R&& r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message());
  return std::move(*r);
}

// measure_flushes reads the count from device_flushes(): here the storage's.
struct storage_flushes {
  const io_t& io;
  std::uint64_t device_flushes() const { return io.flushes(); }
};

flush_cost ktm_durable_commits(const std::string& dir, int threads, run_length len) {
  io_t io{ktm::io::posix_storage(dir)};
  auto lg = must(ktm::log::log<io_t>::create(io, "txlog", growing_log_options(32u << 20, 4)), "create log");
  auto ts = must(lg.create_stream("tm"), "create tm stream");
  auto rs = must(lg.create_stream("rm"), "create rm stream");
  prepare_rm rm(must(rs.marshalling_area(), "rm writer"));
  tm_t tm{kt::log_arg, ts, rm};
  must(tm.recover(), "recover");
  auto commit = [&](int, std::uint64_t) {
    auto tx = tm.begin();
    auto e = tx.enlist(rm);
    if (!e) throw std::runtime_error("enlist: " + e.error().message());
    auto r = tx.commit();
    if (!r) throw std::runtime_error("commit: " + r.error().message());
  };
  storage_flushes flushes{io};
  return measure_flushes(flushes, threads, len, commit);
}

}  // namespace

int main(int argc, char** argv) {
  bool peers = true;
  const commit_args args = parse_commit_args(argc, argv, {1, 4, 16, 64},
                                             "[--short] [--seconds=S] [--threads=1,4,16,64] [--no-peers]",
                                             [&](const char* a) {
                                               if (std::strcmp(a, "--no-peers") != 0) return false;
                                               peers = false;
                                               return true;
                                             });
  const run_length len = args.length();
  return report_errors("durable_commit_bench", [&] {
    bench_dir dir("durable_commit");
    std::printf("durable_commit_bench: %.2f s per measurement, directory %s, prepare record %zu bytes\n",
                len.seconds, dir.path().c_str(), peer_value_size);
    std::fflush(stdout);
    table t({"threads", "ktm commits/s", "ktm flushes/commit", "rocksdb commits/s", "rocksdb syncs/commit",
             "bdb commits/s", "bdb syncs/commit", "ktm / rocksdb"});
    double ktm64 = 0, rocks64 = 0;
    for (int n : args.threads) {
      const std::string tag = std::to_string(n);
      const flush_cost k = ktm_durable_commits(dir.fresh("ktm-" + tag), n, len);
      std::printf("KTM threads=%d commits=%llu seconds=%.3f commits_per_s=%.1f flushes_per_commit=%.3f\n", n,
                  static_cast<unsigned long long>(k.rate.commits), k.rate.seconds, k.rate.per_second(),
                  k.flushes_per_commit);
      std::fflush(stdout);
      dir.fresh("ktm-" + tag);
      commit_rate rocks, bdb;
      if (peers) {
        rocks = rocksdb_sync_commits(dir.fresh("rocksdb-" + tag), n, len);
        dir.fresh("rocksdb-" + tag);
        bdb = berkeleydb_txn_commits(dir.fresh("bdb-" + tag), n, len);
        dir.fresh("bdb-" + tag);
        std::printf("PEER rocksdb threads=%d commits_per_s=%.1f; bdb commits_per_s=%.1f\n", n, rocks.per_second(),
                    bdb.per_second());
        std::fflush(stdout);
      }
      t.row({tag, fmt(k.rate.per_second(), 0), fmt(k.flushes_per_commit, 3),
             peers ? fmt(rocks.per_second(), 0) : "-", peers ? per_commit(rocks) : "-",
             peers ? fmt(bdb.per_second(), 0) : "-", peers ? per_commit(bdb) : "-",
             peers && rocks.per_second() > 0 ? fmt(k.rate.per_second() / rocks.per_second(), 2) : "-"});
      if (n == 64) {
        ktm64 = k.rate.per_second();
        rocks64 = rocks.per_second();
      }
    }
    t.print("Durable two-phase commits with one durable RM (100-byte prepare record), one multiplexed log "
            "(higher is better)");
    if (peers && rocks64 > 0)
      summary("durable commits at 64 threads vs RocksDB sync Put", ktm64 / rocks64, "x", true, 2.0);
  });
}
