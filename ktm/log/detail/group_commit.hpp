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
//
// Gathering: a leader that starts right after a flush completed which woke
// other forcers first lets them come back (see gather_locked), so one flush
// takes them too instead of leaving them for the next.
template <io_policy Io>
result<lsn> log_core<Io>::flush_to_locked(std::unique_lock<std::mutex>& lk, lsn target, bool durable) {
  if (durable && ++forcers_ == gather_target_) gather_cv_.notify_one();
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
      gather_locked(lk);
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
    gate_.wait(g);
    if (!lead && !gate_.failed()) {
      const lsn d(gate_.durable());
      if (target < d) return d;
    }
    lk.lock();
  }
}

// The leader of the next flush, before it seals: if the last completed
// flush woke k other forcers (they will append again soon, e.g. the next
// record of a busy committer) and device flushes are costly, it claims the
// generation at once (io_busy_, so forcers arriving meanwhile sleep on it as
// covered) and waits on gather_cv_ until k of them came (the k-th wakes it)
// or a budget ran out: a fraction of the last flush's duration, halved after
// each gathering that ran out and doubled back (up to half) after each that
// did not. So gathering costs at most part of the flush it saves, adapts to
// forcers that do not come back at once, and never delays a cheap flush (a
// memory device) or a lone forcer. It holds only the I/O ownership while it
// waits.
template <io_policy Io>
void log_core<Io>::gather_locked(std::unique_lock<std::mutex>& lk) {
  const std::uint32_t woken = gate_.take_woken();
  if (woken < 2 || last_flush_time_ < min_gather_flush) return;
  const auto until = std::chrono::steady_clock::now() + last_flush_time_ / (1 << gather_shift_);
  io_busy_ = true;
  inflight_durable_ = true;
  inflight_end_ = lsn::invalid();  // covers every record appended before the seal
  ++flush_gen_;
  gen_claimed_ = true;
  next_leader_ = false;
  gather_target_ = forcers_ + woken - 1;
  const bool full = gather_cv_.wait_until(lk, until, [&] { return forcers_ >= gather_target_; });
  gather_target_ = 0;
  gather_shift_ = full ? std::max(gather_shift_ - 1, 1) : std::min(gather_shift_ + 1, 8);
  io_busy_ = false;  // run_io_locked takes it back at once, under the same lock
}

}  // namespace ktm::log::detail
