// ktm/tm/detail/transaction_replies.hpp: how a transaction applies what its
// resource managers tell it.
//
// The definitions of transaction_core's reply side (its class is in
// ktm/tm/transaction_core.hpp, which includes this header at its end):
//   apply_reply_locked     an RM's reply (enlistment.hpp's reply functions)
//                          checked against the enlistment's status and
//                          applied: the status, the count of outstanding
//                          replies, the state for the single-phase outcomes,
//                          a rollback request; errc::invalid_state, changing
//                          nothing, when the enlistment does not wait for it
//   apply_returned_locked  a handler's returned reply mapped onto the reply
//                          it stands for; illegal ones counted, stale ones
//                          dropped
//   answer, on_handle_dropped, set_recovery_information  the same under the
//                          transaction's guard, driving the protocol on
//                          when this call holds the outermost guard
// and the enlistment's reply functions, which forward to them.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>

#include "ktm/result.hpp"
#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/reply.hpp"
#include "ktm/tm/states.hpp"
#include "ktm/tm/transaction_core.hpp"

namespace ktm::tm {

// The RM dropped its handle to e (enlistment_handle.hpp).
inline void transaction_core::on_handle_dropped(enlistment& e) {
  using st = enlistment_status;
  guard g(*this);
  progressed_ = true;
  switch (e.status()) {
    case st::awaiting_preprepare:
    case st::awaiting_prepare: --pending_; [[fallthrough]];
    case st::active:
    case st::preprepared:
      e.set_status(st::rolled_back);
      request_rollback_locked(abort_reason::enlistment_dropped);
      break;
    case st::awaiting_single_phase:  // RM_DISCONNECTED: outcome unknown
      --pending_;
      e.set_status(st::rolled_back);
      set_state_locked(tx_state::in_doubt);
      need_send_ = true;
      break;
    default: return;
  }
  if (!g.nested()) hooks_->drive(*this);
}

inline result<void> transaction_core::set_recovery_information(enlistment& e,
                                                             std::span<const std::byte> info) {
  if (info.size() > max_recovery_information) return errc::too_large;
  guard g(*this);
  switch (e.status()) {
    case enlistment_status::active:
    case enlistment_status::awaiting_preprepare:
    case enlistment_status::preprepared:
    case enlistment_status::awaiting_prepare: break;
    default: return errc::invalid_state;
  }
  if (!info.empty()) std::memcpy(e.recovery_.data(), info.data(), info.size());
  e.recovery_size_ = static_cast<std::uint16_t>(info.size());
  return {};
}

inline result<void> transaction_core::answer(enlistment& e, reply_kind k, std::uint64_t clock) {
  guard g(*this);
  if (std::error_code ec = apply_reply_locked(e, k, clock)) return ec;
  if (!g.nested() && needs_drive_locked()) hooks_->drive(*this);
  return {};
}

inline std::error_code transaction_core::apply_reply_locked(enlistment& e, reply_kind k,
                                                            std::uint64_t clock) noexcept {
  using st = enlistment_status;
  const st s = e.status();
  auto settle = [&](st to) {
    e.set_status(to);
    --pending_;
  };
  progressed_ = true;
  switch (k) {
    case reply_kind::preprepare_complete:
      if (s != st::awaiting_preprepare) return errc::invalid_state;
      settle(st::preprepared);
      break;
    case reply_kind::prepare_complete:
      if (s != st::awaiting_prepare) return errc::invalid_state;
      settle(st::prepared);
      break;
    case reply_kind::commit_complete:
      if (s == st::awaiting_commit) {
        settle(st::committed);
      } else if (s == st::awaiting_single_phase) {
        settle(st::committed);
        set_state_locked(tx_state::committed);
        note_clock_locked(clock);  // before the outcome shows
        finish_locked();
      } else {
        return errc::invalid_state;
      }
      break;
    case reply_kind::rollback_complete:
      if (s != st::awaiting_rollback) return errc::invalid_state;
      settle(st::rolled_back);
      break;
    case reply_kind::read_only:
      switch (s) {
        case st::active:
        case st::preprepared: e.set_status(st::read_only); break;
        case st::awaiting_preprepare:
        case st::awaiting_prepare: settle(st::read_only); break;
        case st::awaiting_single_phase:  // changed nothing: the commit stands
          settle(st::read_only);
          set_state_locked(tx_state::committed);
          note_clock_locked(clock);  // before the outcome shows
          finish_locked();
          break;
        default: return errc::invalid_state;
      }
      break;
    case reply_kind::single_phase_reject:
      if (s != st::awaiting_single_phase) return errc::invalid_state;
      settle(st::active);
      single_phase_ = nullptr;
      set_state_locked(tx_state::prepreparing);
      need_send_ = true;
      if (timed_out_) request_rollback_locked(abort_reason::timeout);
      break;
    case reply_kind::rollback_enlistment:
      switch (s) {
        case st::active:
        case st::preprepared: e.set_status(st::rolled_back); break;
        case st::awaiting_preprepare:
        case st::awaiting_prepare: settle(st::rolled_back); break;
        case st::awaiting_single_phase:
          settle(st::rolled_back);
          reason_ = abort_reason::resource_manager;
          set_state_locked(tx_state::aborted);
          note_clock_locked(clock);  // before the outcome shows
          finish_locked();
          break;
        default: return errc::invalid_state;
      }
      if (is_before_prepared(internal_state())) request_rollback_locked(abort_reason::resource_manager);
      break;
  }
  note_clock_locked(clock);
  return {};
}

inline void transaction_core::apply_returned_locked(enlistment& e, notify kind, reply r) noexcept {
  using rk = reply::kind;
  reply_kind k;
  bool illegal = false;
  switch (kind) {
    case notify::preprepare:
    case notify::prepare:
      switch (r.what()) {
        case rk::done:
          k = kind == notify::preprepare ? reply_kind::preprepare_complete : reply_kind::prepare_complete;
          break;
        case rk::read_only: k = reply_kind::read_only; break;
        case rk::reject: illegal = true; [[fallthrough]];
        default: k = reply_kind::rollback_enlistment; break;
      }
      break;
    case notify::single_phase_commit:
      switch (r.what()) {
        case rk::done: k = reply_kind::commit_complete; break;
        case rk::read_only: k = reply_kind::read_only; break;
        case rk::reject: k = reply_kind::single_phase_reject; break;
        default: k = reply_kind::rollback_enlistment; break;
      }
      break;
    case notify::commit:
      illegal = r.what() != rk::done;
      k = reply_kind::commit_complete;
      break;
    case notify::rollback:
      illegal = r.what() != rk::done;
      k = reply_kind::rollback_complete;
      break;
    default: return;  // informational notifications need no answer
  }
  if (illegal) ++protocol_errors_;
  // A failure here is a stale reply (the phase moved on: a rollback
  // overtook a delivery in flight) or the RM answered both through the
  // enlistment and by returning: either way the reply is dropped.
  (void)apply_reply_locked(e, k, r.clock());
}

inline const guid& detail::enlistment_access::core_id(const transaction_core& c) noexcept { return c.id(); }

inline result<void> enlistment::answer(reply_kind k, std::uint64_t clock) {
  if (!core_) return errc::invalid_state;
  return core_->answer(*this, k, clock);
}

inline result<void> enlistment::request_outcome() {
  if (!core_) return errc::invalid_state;
  return core_->request_outcome();
}

inline result<void> enlistment::set_recovery_information(std::span<const std::byte> info) {
  if (!core_) return errc::invalid_state;
  return core_->set_recovery_information(*this, info);
}

}  // namespace ktm::tm
