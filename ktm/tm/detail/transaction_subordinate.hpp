// ktm/tm/detail/transaction_subordinate.hpp: a transaction driven by its
// superior TM (doc/superior.md).
//
// The definitions of basic_transaction's subordinate side (its class is in
// ktm/tm/transaction.hpp, which includes this header at its end):
//   on_superior                   a message of the superior (no lock held):
//                                 PREPREPARE, PREPARE, COMMIT, ROLLBACK or an
//                                 outcome; repeats are answered again
//                                 (a prepared one forces its end record
//                                 before its RMs hear ROLLBACK)
//   prepared_for_superior_locked  prepared under a superior: the prepared
//                                 record (forced), PREPARE_COMPLETE, then wait
//                                 for the superior's decision; READ_ONLY when
//                                 no enlistment prepared
#pragma once

#include "ktm/tm/detail/tm_record.hpp"
#include "ktm/tm/states.hpp"
#include "ktm/tm/superior/sink.hpp"
#include "ktm/tm/transaction.hpp"

namespace ktm::tm {

template <class TM>
inline void basic_transaction<TM>::on_superior(const superior_message& m) {
  using k = superior_message_kind;
  tguard g(*this);
  note_clock_locked(m.clock);
  const tx_state s = internal_state();
  k what = m.kind;
  if (what == k::outcome) {
    if (m.outcome == transaction_outcome::committed) what = k::commit;
    else if (m.outcome == transaction_outcome::aborted) what = k::rollback;
    else return;
  }
  switch (what) {
    case k::preprepare:
    case k::prepare:
      if (s == tx_state::active) {
        clock_ = tm_->clock().advance();
        superior_prepare_ = what == k::prepare;
        set_state_locked(tx_state::prepreparing);
        need_send_ = true;
      } else if (s == tx_state::preprepared && what == k::prepare) {
        set_state_locked(tx_state::preparing);
        need_send_ = true;
      } else if (s == tx_state::preprepared) {
        post_locked(k::preprepare_complete);
      } else if (s == tx_state::prepared && !record_in_doubt_) {  // its prepared record is durable
        post_locked(k::prepare_complete);
      } else if (s == tx_state::aborted || s == tx_state::rolling_back) {
        post_locked(k::aborted);
      } else if (s == tx_state::committed || s == tx_state::committing) {
        // dropped out read-only (its READ_ONLY lost), or prepared and then
        // committed alone (heuristic): its commit is durable, and READ_ONLY
        // would let the superior forget it before it learnt the outcome
        post_locked(dropped_out_ ? k::read_only : k::prepare_complete);
      }
      break;
    case k::commit:
      if (s == tx_state::prepared) {
        // The superior's decision: forced before any RM commits, so that
        // COMMIT_COMPLETE never leaves the transaction to presumed abort.
        // A log failure makes the TM fail-stop: it stays prepared, and the
        // superior redelivers the outcome after the restart.
        if (!log_commit_locked()) break;
        set_state_locked(tx_state::committing);
        need_send_ = true;
      } else if (s == tx_state::committed) {
        post_locked(k::commit_complete);
      }
      break;
    case k::rollback:
      if (is_before_prepared(s) || s == tx_state::prepared) {
        // Prepared (its record durable): the end record is forced before
        // any RM rolls back. Lost with a crash, the restart would find the
        // transaction in doubt again, and an in-doubt policy that commits
        // alone would then commit what the RMs rolled back. A log failure
        // makes the TM fail-stop: it stays prepared.
        if (s == tx_state::prepared && !log_abort_locked()) break;
        request_rollback_locked(abort_reason::superior);
      } else if (s == tx_state::aborted) {
        post_locked(k::rollback_complete);
      } else if (s == tx_state::committed) {
        // dropped out read-only (its READ_ONLY lost): nothing to roll back,
        // but the superior resends ROLLBACK until it is answered
        post_locked(k::rollback_complete);
      }
      break;
    default: break;
  }
  if (!g.nested()) drive_locked();
}

template <class TM>
inline bool basic_transaction<TM>::prepared_for_superior_locked() {
  bool any = false;
  tm_->storage().for_each_slot(set_, [&](enlistment& e, const auto&) {
    any = any || e.status() == enlistment_status::prepared;
  });
  if (!any) {  // nothing to commit here: drop out of the superior's transaction
    dropped_out_ = true;
    set_state_locked(tx_state::committing);
    set_state_locked(tx_state::committed);
    finish_locked();
    post_locked(superior_message_kind::read_only);
    return false;
  }
  if (!log_record_locked(detail::tm_record_type::prepared)) {
    // Never written: roll back (the superior hears ABORTED). Written but its
    // force failed: it may be durable, and a restart would then recover the
    // transaction prepared and answer PREPARE_COMPLETE, so its RMs must not
    // roll back now: it stays prepared without answering (the TM is
    // fail-stop) until the superior's ROLLBACK or the restart.
    if (record_in_doubt_) return false;
    request_rollback_locked(abort_reason::log_failure);
    return true;
  }
  post_locked(superior_message_kind::prepare_complete);
  return false;
}

}  // namespace ktm::tm
