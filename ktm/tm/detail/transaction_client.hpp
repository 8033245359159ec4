// ktm/tm/detail/transaction_client.hpp: what a transaction's client
// starts: commit, rollback, and the wind-down of its destructor.
//
// The definitions of basic_transaction's client side (its class is in
// ktm/tm/transaction.hpp, which includes this header at its end):
//   start_commit_locked    the client's commit: errc::invalid_state after
//                          commit or rollback, errc::transaction_aborted
//                          after a rollback, the TM's offline error (and a
//                          rollback) when it is offline; with a superior, a
//                          COMMIT_REQUEST; else the commit clock and the
//                          first phase: SINGLE_PHASE_COMMIT for one live
//                          enlistment that asks for it, else PREPREPARE
//   start_rollback_locked  the client's rollback: succeeds too when the
//                          transaction rolled back already; errc::invalid_state
//                          once prepared or after commit or rollback
//   wind_down              a transaction destroyed before it settled: rolls
//                          back if not prepared, then waits until every
//                          notification sent has been answered and every
//                          delivery held by a dispatcher is released
#pragma once

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <system_error>

#include "ktm/tm/states.hpp"
#include "ktm/tm/transaction.hpp"

namespace ktm::tm {

template <class TM>
void basic_transaction<TM>::wind_down() {
  bool timer;
  {
    tguard g(*this);
    if (is_before_prepared(internal_state())) {
      request_rollback_locked(abort_reason::destroyed);
      drive_locked();
    }
    if (is_done() && pending_ == 0 && inflight_ == 0 && !timer_armed_) return;
    timer = timer_armed_;
  }
  if (timer) tm_->timer().cancel(*this);
  if constexpr (!TM::concurrent) {
    // Only this thread could answer what is still outstanding.
    [[maybe_unused]] const bool settled = wait_until([&] { return is_done() && pending_ == 0; });
    assert(settled && "single_threaded: a transaction was destroyed with replies outstanding");
    return;
  }
  wait_until([&] { return is_done() && pending_ == 0; });
  if constexpr (!dispatcher_type::is_inline) {
    std::size_t dropped = 0;
    tm_->storage().for_each_slot(set_, [&](enlistment&, const auto& inv) {
      dropped += tm_->dispatcher().cancel(inv, *this);
    });
    tguard g(*this);
    inflight_ -= static_cast<std::uint32_t>(dropped);
  }
  wait_until([&] { return inflight_ == 0; });
}

template <class TM>
inline std::error_code basic_transaction<TM>::start_commit_locked() {
  if (client_decided_) return errc::invalid_state;
  const tx_state s = internal_state();
  if (s == tx_state::rolling_back || s == tx_state::aborted) {
    client_decided_ = true;
    return errc::transaction_aborted;
  }
  if (has_superior_) [[unlikely]] {  // the superior decides
    client_decided_ = true;
    if (!is_done()) post_locked(superior_message_kind::commit_request);
    return {};
  }
  if (s != tx_state::active) return errc::invalid_state;
  client_decided_ = true;
  if (tm_->state() == tm_state::offline) {
    request_rollback_locked(abort_reason::tm_offline);
    drive_locked();
    return tm_->offline_error();
  }
  clock_ = tm_->clock().advance();
  enlistment* candidate = nullptr;
  unsigned live = 0;
  tm_->storage().for_each_slot(set_, [&](enlistment& e, const auto&) {
    if (e.status() != enlistment_status::active) return;
    ++live;
    if (e.mask().has(notify::single_phase_commit)) candidate = &e;
  });
  if (live == 1 && candidate) {
    single_phase_ = candidate;
    set_state_locked(tx_state::single_phase_committing);
  } else {
    set_state_locked(tx_state::prepreparing);
  }
  need_send_ = true;
  return {};
}

template <class TM>
inline std::error_code basic_transaction<TM>::start_rollback_locked() {
  if (client_decided_) return errc::invalid_state;
  const tx_state s = internal_state();
  if (s == tx_state::rolling_back || s == tx_state::aborted) {
    client_decided_ = client_rolled_back_ = true;
    return {};
  }
  if (!is_before_prepared(s)) return errc::invalid_state;
  client_decided_ = client_rolled_back_ = true;
  request_rollback_locked(abort_reason::client);
  return {};
}

}  // namespace ktm::tm
