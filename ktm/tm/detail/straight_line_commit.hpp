// ktm/tm/detail/straight_line_commit.hpp: the two-phase commit as straight
// code, for a TM whose storage is static and whose dispatcher is inline.
//
// straight_line_commit<Tx>::run(tx), with tx's lock held and tx about to send
// PREPREPARE (state prepreparing, the phase unsent, no rollback asked for),
// sends PREPREPARE, PREPARE and COMMIT in order, moving the state between them
// exactly as basic_transaction's general loop (drive_locked) would, as long
// as every phase completes at once (every reply the common `done`, nothing
// outstanding, no rollback asked for, nothing else to send). At the first
// phase that does not, it returns false with the transaction as the general
// loop would have left it after sending that phase, for the loop to carry
// on: the protocol and its outcomes are the general loop's, only the loop's
// re-examination of every flag between phases is gone. Returns true when the
// transaction committed and is finished.
//
// Applies (applies == true) only when every delivery is a direct call made
// in this thread (static_storage, inline_dispatcher): then a phase is
// complete when send returns with nothing pending.
#pragma once

#include <type_traits>

#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/inline_dispatcher.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/reply.hpp"
#include "ktm/tm/states.hpp"

namespace ktm::tm::detail {

template <class Tx>
struct straight_line_commit {
  static constexpr bool applies =
      Tx::storage_type::is_static && std::is_same_v<typename Tx::dispatcher_type, inline_dispatcher>;

  [[gnu::always_inline]] static bool run(Tx& tx) {
    if (!phase<tx_state::prepreparing>(tx)) return false;
    tx.set_state_locked(tx_state::preprepared);
    tx.set_state_locked(tx_state::preparing);
    if (!phase<tx_state::preparing>(tx)) return false;
    tx.set_state_locked(tx_state::prepared);
    if (!tx.log_commit_locked()) {
      (void)tx.commit_log_failed_locked();
      return false;
    }
    tx.set_state_locked(tx_state::committing);
    if (!phase<tx_state::committing>(tx)) return false;
    tx.set_state_locked(tx_state::committed);
    tx.log_end_locked();
    tx.finish_locked();
    return true;
  }

 private:
  // Sends phase P and merges the reply clocks into the TM's, as the general
  // loop does next; true when P completed at once and the next may follow.
  //
  // While no handler has reached the transaction (tx.entries_ unchanged: a
  // handler that answers, rolls back, drops its handle or calls the
  // transaction at all enters it through a nested guard), nothing but this
  // loop changed it: the state is still P, no rollback is asked for, nothing
  // is to be sent, and each enlistment is in the status this loop gave it.
  // So a `done` settles its enlistment without re-reading any of that, and
  // the phase is complete when the loop ends. From the first handler that
  // did reach it, the rest of the phase runs the general per-delivery code.
  template <tx_state P>
  [[gnu::always_inline]] static bool phase(Tx& tx) {
    static constexpr typename Tx::phase_info pi = Tx::info_of(P);
    tx.need_send_ = false;
    const std::uint32_t seen = tx.entries_;
    const std::uint64_t clock = tx.tm_->clock().now();
    // One notification for the phase; only the key differs per delivery.
    notification n{tx.id_, pi.kind, clock, {}};
    bool clean = true;
    // Unused slots too: pi.from is never `unused`, so the status test below
    // skips them (and the general code skips them when !clean).
    tx.tm_->storage().for_each_slot_unfiltered(tx.set_, [&](enlistment& e, const auto& inv) __attribute__((always_inline)) {
      if (!clean) {
        if (e.status() == enlistment_status::unused) return;
        tx.template send_one_locked<P>(e, inv, clock);
        return;
      }
      if (e.status() != pi.from) return;
      if (!e.mask().has(pi.kind)) {
        enlistment_access::set_status(e, pi.skipped);
        return;
      }
      enlistment_access::set_status(e, pi.awaiting);
      n.key = e.key();
      const reply r = tx.template deliver<pi.kind>(inv, e, n);
      if (tx.entries_ == seen && r.what() == reply::kind::done) [[likely]] {
        enlistment_access::set_status(e, pi.done);
        tx.note_clock_locked(r.clock());
        return;
      }
      // The outstanding reply is counted only now: nothing reads pending_
      // while a handler runs under the driver's lock (its readers are the
      // driver and outermost guards), and whatever the handler settled
      // through the enlistment counted down already, so the sum is the
      // general loop's.
      ++tx.pending_;
      clean = false;
      tx.template apply_delivered_locked<P>(e, r);
    });
    tx.progressed_ = true;
    if (tx.merge_clock_ != 0) {
      tx.tm_->clock().merge(tx.merge_clock_);
      tx.merge_clock_ = 0;
    }
    if (clean && tx.pending_ == 0) [[likely]] return true;
    return tx.pending_ == 0 && !tx.need_send_ && tx.rollback_requested_ == abort_reason::none &&
           tx.internal_state() == P;
  }
};

}  // namespace ktm::tm::detail
