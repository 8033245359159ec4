// ktm/tm/detail/recovered_transaction.hpp: a transaction rebuilt by a
// durable TM's recovery from a commit record that has no end record.
//
// It is committed (state committing) and holds one enlistment per logged
// enlistment (RM id, key, recovery information), each `prepared` until its
// RM is recovered: take(rm) hands that RM's enlistments to a
// recovery_sequence (recovery_sequence.hpp), which sends each RECOVER then
// COMMIT through the TM's dispatcher (send()); the RM answers as usual, by
// returning `done` (routed here by the dispatcher) or later through the
// enlistment (commit_complete). When every enlistment has committed, the end
// callback runs once (the durable log appends the end record). Enlistments
// stay valid while the TM lives.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/tm/detail/rm_vtable.hpp"
#include "ktm/tm/detail/tm_record.hpp"
#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/transaction_core.hpp"

namespace ktm::tm::detail {

class recovered_transaction final : public transaction_core {
  static void drive_thunk(transaction_core& c) { static_cast<recovered_transaction&>(c).check_done_locked(); }
  static constexpr hooks recovery_hooks_{&drive_thunk};

 public:
  using end_callback = void (*)(void* ctx, const guid& uow, std::uint64_t clock);

  recovered_transaction(const guid& uow, std::uint64_t clock, const std::vector<tm_record_enlistment>& logged,
                        end_callback on_end, void* ctx)
      : transaction_core(&recovery_hooks_, uow), on_end_(on_end), ctx_(ctx) {
    for (const auto& l : logged) {
      enlistment& e = slots_.emplace_back();
      enlistment_access::bind(e, *this, default_mask, enlistment_key(l.key));
      (void)set_recovery_information(e, l.recovery_information);
      enlistment_access::set_status(e, enlistment_status::prepared);
      rms_.push_back(l.rm);
    }
    guard g(*this);
    clock_ = clock;
    state_.store(tx_state::committing, std::memory_order_release);
  }
  recovered_transaction(const recovered_transaction&) = delete;
  recovered_transaction& operator=(const recovered_transaction&) = delete;

  // The enlistments of RM `rm` not yet handed out, now awaiting COMMIT.
  std::vector<enlistment*> take(const guid& rm) {
    std::vector<enlistment*> out;
    guard g(*this);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      enlistment& e = slots_[i];
      if (rms_[i] != rm || e.status() != enlistment_status::prepared) continue;
      enlistment_access::set_status(e, enlistment_status::awaiting_commit);
      ++pending_;
      out.push_back(&e);
    }
    return out;
  }

  // Sends `kind` (recover or commit) for e through dispatch(e*, n), under
  // the lock as the protocol's own deliveries are; a returned reply is
  // applied (RECOVER's is informational), `async` ones come back through
  // route_returned.
  template <class Dispatch>
  void send(enlistment& e, notify kind, std::uint64_t clock, bool async, Dispatch&& dispatch) {
    guard g(*this);
    if (async) ++inflight_;
    const reply r = dispatch(&e, notification{id_, kind, clock, e.key()});
    if (!r.is_later()) apply_returned_locked(e, kind, r);
    check_done_locked();
  }

  // Every enlistment answered COMMIT (the end record was asked for).
  bool ended() const {
    guard g(*this);
    return ended_;
  }
  bool mentions(const guid& rm) const {
    for (const guid& g : rms_)
      if (g == rm) return true;
    return false;
  }

 private:
  void check_done_locked() {
    if (ended_) return;
    for (const enlistment& e : slots_)
      if (e.status() != enlistment_status::committed) return;
    ended_ = true;
    state_.store(tx_state::committed, std::memory_order_release);
    on_end_(ctx_, id_, clock_);
    finish_locked();
  }

  std::deque<enlistment> slots_;  // deque: addresses stay put
  std::vector<guid> rms_;
  end_callback on_end_;
  void* ctx_;
  bool ended_ = false;
};

}  // namespace ktm::tm::detail
