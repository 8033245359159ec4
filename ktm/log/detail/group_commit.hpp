// ktm/log/detail/group_commit.hpp: flush_to_locked, the leader/follower
// protocol by which forcers share device flushes (the sleeping half is
// flush_gate.hpp).
// Part of log_core's write path; included by log_core.hpp only.
#pragma once

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

// Group commit. A forcer whose record is durable returns. If no I/O is in
// flight it leads: seals the open block (so the flush takes every record
// appended so far), writes the sealed blocks, flushes once, wakes the
// waiters of its generation. If a flush (generation g) is in flight, a
// forcer whose record it covers sleeps until g completes; one whose record
// came later belongs to g + 1: the first of those sleeps on g too and then
// leads g + 1 (or finds it started), the others sleep until g + 1 completes.
// So the records that arrive during a flush all go into the next one, each
// forcer is woken once, and each batch costs one device flush. A durable
// call may return with `lk` released (a woken forcer does not retake it).
template <io_policy Io>
result<lsn> log_core<Io>::flush_to_locked(std::unique_lock<std::mutex>& lk, lsn target, bool durable) {
  for (;;) {
    KTM_TRY(usable());
    const lsn bound = durable ? durable_lsn_ : written_lsn_;
    // covered already, or nothing exists beyond what is covered
    if (target < bound || bound >= end_lsn_locked()) return bound;
    if (!io_busy_) {
      if (!durable) {
        KTM_TRY(run_io_locked(lk, open_ && target >= open_pos_, false, true));
        continue;
      }
      // leader: one write + flush covers every record appended so far
      KTM_TRY(run_io_locked(lk, true, true, true));  // returns unlocked
      const lsn d(gate_.durable());
      if (target < d) return d;
      lk.lock();
      continue;
    }
    if (!durable || !inflight_durable_) {  // a write-only I/O in flight: wait for it
      cv_.wait(lk);
      continue;
    }
    std::uint64_t g = flush_gen_;
    bool lead = false;
    if (!(target < inflight_end_)) {  // not in the flush in flight: in the next one
      if (!next_leader_) {
        next_leader_ = lead = true;
      } else {
        ++g;
      }
    }
    lk.unlock();
    gate_.wait(g, lead);
    if (!lead && !gate_.failed()) {
      const lsn d(gate_.durable());
      if (target < d) return d;
    }
    lk.lock();
  }
}

}  // namespace ktm::log::detail
