// ktm/tm/detail/transaction_phases.hpp: how a transaction sends its phases
// and moves between them.
//
// The definitions of basic_transaction's phase machinery (its class is in
// ktm/tm/transaction.hpp, which includes this header at its end). All run
// with the transaction's lock held:
//   begin_rollback_locked   a requested rollback starts: every enlistment
//                           that has not settled needs ROLLBACK
//   send_phase_locked       the current phase's notification to every
//                           enlistment due one (an enlistment whose mask
//                           lacks it skips the phase as if it answered done),
//                           specialised per phase at compile time
//   send_one_locked         one enlistment's delivery, stopping once a reply
//                           moved the protocol on or asked for a rollback
//   apply_delivered_locked  a handler's returned reply applied (the common
//                           `done` directly, the rest by the reply rules)
//   deliver                 the call through the TM's dispatcher
//   advance_locked          the phase is complete: the next state (the
//                           commit point and its log record between PREPARE
//                           and COMMIT; the superior's pace for a subordinate)
#pragma once

#include <cstdint>
#include <utility>

#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/reply.hpp"
#include "ktm/tm/states.hpp"
#include "ktm/tm/transaction.hpp"

namespace ktm::tm {

template <class TM>
inline void basic_transaction<TM>::begin_rollback_locked() {
  const abort_reason why = std::exchange(rollback_requested_, abort_reason::none);
  const tx_state s = internal_state();
  if (!is_before_prepared(s) && s != tx_state::prepared) return;  // too late
  set_state_locked(tx_state::rolling_back);
  reason_ = why;
  pending_ = 0;
  progressed_ = true;
  tm_->storage().for_each_slot(set_, [&](enlistment& e, const auto&) {
    switch (e.status()) {
      case enlistment_status::active:
      case enlistment_status::awaiting_preprepare:
      case enlistment_status::preprepared:
      case enlistment_status::awaiting_prepare:
      case enlistment_status::prepared:
        detail::enlistment_access::set_status(e, enlistment_status::needs_rollback);
        break;
      default: break;
    }
  });
  need_send_ = true;
}

template <class TM>
inline void basic_transaction<TM>::send_phase_locked() {
  switch (internal_state()) {
    case tx_state::prepreparing: return send_phase_locked<tx_state::prepreparing>();
    case tx_state::preparing: return send_phase_locked<tx_state::preparing>();
    case tx_state::single_phase_committing: return send_phase_locked<tx_state::single_phase_committing>();
    case tx_state::committing: return send_phase_locked<tx_state::committing>();
    case tx_state::rolling_back: return send_phase_locked<tx_state::rolling_back>();
    case tx_state::in_doubt: return send_phase_locked<tx_state::in_doubt>();
    default: return;
  }
}

template <class TM>
template <tx_state Phase>
inline void basic_transaction<TM>::send_phase_locked() {
  const std::uint64_t clock = tm_->clock().now();
  tm_->storage().for_each_slot(set_, [&](enlistment& e, const auto& inv) __attribute__((always_inline)) {
    send_one_locked<Phase>(e, inv, clock);
  });
}

template <class TM>
template <tx_state Phase, class Invoker>
inline void basic_transaction<TM>::send_one_locked(enlistment& e, const Invoker& inv, std::uint64_t clock) {
  static constexpr phase_info pi = info_of(Phase);
  // A reply moved the protocol on (or asked for a rollback): stop.
  if (internal_state() != Phase || rollback_requested_ != abort_reason::none) return;
  // const: the handler cannot change it, so the kind stays a constant.
  const notification n{id_, pi.kind, clock, e.key()};
  if constexpr (Phase == tx_state::in_doubt) {  // informational, no answer
    if (&e == single_phase_ || !e.mask().has(pi.kind)) return;
    deliver<pi.kind>(inv, e, n);
    return;
  } else {
    if constexpr (Phase == tx_state::single_phase_committing) {
      if (&e != single_phase_) return;
    }
    if (e.status() != pi.from) return;
    if (!e.mask().has(pi.kind)) {
      detail::enlistment_access::set_status(e, pi.skipped);
      return;
    }
    detail::enlistment_access::set_status(e, pi.awaiting);
    ++pending_;
    apply_delivered_locked<Phase>(e, deliver<pi.kind>(inv, e, n));
  }
}

template <class TM>
template <tx_state Phase>
inline void basic_transaction<TM>::apply_delivered_locked(enlistment& e, reply r) {
  static constexpr phase_info pi = info_of(Phase);
  if constexpr (Phase != tx_state::single_phase_committing) {
    // The common answer, applied as apply_reply_locked would.
    if (r.what() == reply::kind::done && e.status() == pi.awaiting) {
      detail::enlistment_access::set_status(e, pi.done);
      --pending_;
      progressed_ = true;
      note_clock_locked(r.clock());
      return;
    }
  }
  if (!r.is_later()) apply_returned_locked(e, pi.kind, r);
}

template <class TM>
template <notify K, class Invoker>
inline reply basic_transaction<TM>::deliver(const Invoker& inv, enlistment& e, const notification& n) {
  if constexpr (!dispatcher_type::is_inline) hand_off_locked();
  if constexpr (requires { tm_->dispatcher().template dispatch_as<K>(inv, &e, n); })
    return tm_->dispatcher().template dispatch_as<K>(inv, &e, n);
  else return tm_->dispatcher().dispatch(inv, &e, n);
}

template <class TM>
inline bool basic_transaction<TM>::advance_locked() {
  switch (internal_state()) {
    case tx_state::prepreparing:
      set_state_locked(tx_state::preprepared);
      if (has_superior_ && !superior_prepare_) [[unlikely]] {
        post_locked(superior_message_kind::preprepare_complete);
        return false;
      }
      set_state_locked(tx_state::preparing);
      need_send_ = true;
      return true;
    case tx_state::preparing:
      set_state_locked(tx_state::prepared);
      if (has_superior_) [[unlikely]] return prepared_for_superior_locked();
      if (!log_commit_locked()) return commit_log_failed_locked();
      set_state_locked(tx_state::committing);
      need_send_ = true;
      return true;
    case tx_state::committing:
      set_state_locked(tx_state::committed);
      log_end_locked();
      finish_locked();
      if (has_superior_) [[unlikely]] post_locked(superior_message_kind::commit_complete);
      return false;
    case tx_state::rolling_back:
      set_state_locked(tx_state::aborted);
      if (has_superior_) [[unlikely]] {
        log_end_locked();  // closes a prepared record
        post_locked(reason_ == abort_reason::superior ? superior_message_kind::rollback_complete
                                                      : superior_message_kind::aborted);
      }
      [[fallthrough]];
    case tx_state::committed:
    case tx_state::aborted:
    case tx_state::in_doubt: finish_locked(); return false;
    default: return false;
  }
}

}  // namespace ktm::tm
