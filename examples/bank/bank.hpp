// examples/bank/bank.hpp: a bank over a directory.
//
// DIR holds bank.meta (meta.hpp) and one multiplexed ktm log "bank"
// (bank.blf, bank.c<N>) on ktm::io::posix_storage with these streams:
//   tm          the TM's commit/end records and restart areas
//   shard<i>    a transactional_map: account number -> balance, for the
//               accounts a with a % shards == i
//   ledger      a transactional_map: TXID -> "FROM TO AMOUNT" for every
//               committed transfer, and "~run" -> runs started so far
// A transfer is one transaction: both accounts' maps and the ledger enlist;
// the maps' prepare records are queued and the TM's forced commit record
// flushes them, so a transfer costs one device flush (shared by concurrent
// committers: group commit).
//
// Opening = recovery: read bank.meta, lock DIR (flock bank.lock), open the
// log, recover the durable TM (replay of its stream), open each map with its
// persisted id, recover it, let the TM redeliver its outcomes, resolve what
// is still in doubt with the TM's recovered outcome (presumed abort), then
// checkpoint what needs it and write a TM restart area. Every failure is a bank_error with one line.
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "examples/bank/meta.hpp"
#include "examples/bank/tm_glue.hpp"
#include "ktm/rm.hpp"

namespace bank {

using map_type = ktm::rm::transactional_map<io_type>;
using log_type = ktm::log::log<io_type>;

inline ktm::log::log_options log_options() {
  ktm::log::log_options o;
  o.block_size = 64 * 1024;
  o.container_size = 4 * 1024 * 1024;
  o.containers = 2;
  o.grow = true;
  o.max_containers = 1024;
  return o;
}

inline std::string account_key(std::int64_t a) {
  char b[24];
  std::snprintf(b, sizeof b, "%08lld", static_cast<long long>(a));
  return b;
}

inline std::optional<std::int64_t> parse_int(std::string_view s) {
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

inline const char* const run_key = "~run";

struct ledger_entry {
  std::string txid;
  std::int64_t from = 0, to = 0, amount = 0;
};

// flock on DIR/bank.lock for the bank's lifetime (released by the kernel
// when the process dies, even by SIGKILL).
struct dir_lock {
  int fd = -1;
  explicit dir_lock(const std::string& dir);
  ~dir_lock();
  dir_lock(const dir_lock&) = delete;
  dir_lock& operator=(const dir_lock&) = delete;
};

class bank {
 public:
  enum class status { committed, insufficient, conflict };

  // Creates DIR's log and accounts; DIR must exist and hold no bank.
  static void init(const std::string& dir, std::int64_t accounts, std::int64_t balance, int shards);

  // Opens and recovers (see the top of this file).
  explicit bank(const std::string& dir);
  ~bank();
  bank(const bank&) = delete;
  bank& operator=(const bank&) = delete;

  const bank_meta& meta() const { return meta_; }
  // Counts a new run in the ledger (committed); TXIDs are "RUN-SEQ".
  std::uint64_t begin_run();
  // One transfer; the TXID is set when it committed durably.
  status transfer(std::uint64_t run, std::uint64_t seq, std::int64_t from, std::int64_t to, std::int64_t amount,
                  std::string& txid);
  std::map<std::int64_t, std::int64_t> balances() const;
  std::vector<ledger_entry> ledger() const;
  // Every committed transfer is durable; checkpoints where due.
  void maintenance();

 private:
  bank(const std::string& dir, bank_meta m, bool create);
  map_type& shard_of(std::int64_t a) { return *shards_[static_cast<std::size_t>(a % meta_.shards)]; }
  void after_commit();

  std::string dir_;
  bank_meta meta_;
  dir_lock lock_;  // before the log: released after it closed
  std::optional<io_type> io_;
  std::optional<log_type> lg_;
  std::vector<std::unique_ptr<map_type>> shards_;
  std::unique_ptr<map_type> ledger_;
  std::unique_ptr<tm_type> tm_;  // after the maps: destroyed first
  std::atomic<std::uint64_t> commits_{0};
  std::atomic<std::uint64_t> ledger_size_{0};
  std::atomic<std::uint64_t> ledger_since_checkpoint_{0};
};

}  // namespace bank

#include "examples/bank/bank_impl.hpp"
