// ktm/rm/vocabulary.hpp: the small types shared by change_log and the
// resource managers built on it.
//
//   durability            how prepare() leaves its record: forced to stable
//                         storage, or queued for a flush someone else does
//   outcome               what resolve() is told: commit or abort
//   change                one logged change: key, before- and after-image and
//                         the LSNs of their records
//   in_doubt_transaction  a transaction recovery found prepared without an
//                         outcome: held (locks and all) until resolved
//   recovery_report       what change_log::recover() found
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/log/lsn.hpp"
#include "ktm/rm/record.hpp"

namespace ktm::rm {

enum class durability : std::uint8_t {
  force,       // durable when the call returns (the RM's own device flush)
  queue_only,  // buffered: durable with the next flush of the log. Use it when
               // the TM's stream is in the same multiplexed log: the TM's
               // forced commit record (a later LSN) flushes it too, so one
               // device flush covers the whole two-phase commit
};

enum class outcome : std::uint8_t { commit, abort };

struct change {
  std::string key;
  image before;
  image after;
  log::lsn before_at;  // the before-image record
  log::lsn after_at;   // the after-image record; null if it was never appended
};

struct in_doubt_transaction {
  guid uow;
  log::lsn prepare_at;  // its prepare record
  std::vector<change> changes;
};

struct recovery_report {
  std::vector<in_doubt_transaction> in_doubt;  // prepared, no outcome: held until resolve()
  std::size_t redone = 0;            // committed after the restart area: after-images applied again
  std::size_t discarded = 0;         // no prepare record: presumed abort
  std::size_t snapshot_entries = 0;  // objects loaded from the restart area's snapshot
  std::size_t records_scanned = 0;   // records read forward (bounded by checkpoints)
  log::lsn restart_at;               // the restart area used (null: none, scanned from the base)
  log::lsn scan_from;                // where the forward scan began
};

}  // namespace ktm::rm
