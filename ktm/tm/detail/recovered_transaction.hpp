// ktm/tm/detail/recovered_transaction.hpp: a transaction rebuilt by a
// durable TM's recovery from a commit record that has no end record, or
// (a subordinate of a superior TM) from a prepared record that has neither
// a commit nor an end record: in doubt.
//
// Committed: state committing, one enlistment per logged enlistment (RM id,
// key, recovery information), each `prepared` until its RM is recovered
// (durable_log::redeliver): then the RM gets RECOVER (if it has
// `on_recover`) and COMMIT, and answers as usual, by returning `done` or
// later through the enlistment (commit_complete). When every enlistment has
// committed, the end callback runs once (the durable log appends the end
// record). Enlistments stay valid while the TM lives.
//
// In doubt: state prepared, superior() names the superior TM. A recovered
// RM gets RECOVER then INDOUBT (optional handler `on_indoubt`) and keeps its
// prepared state. The outcome arrives through superior_command() (COMMIT,
// ROLLBACK or OUTCOME from the superior, or a heuristic decision of the
// subordinate TM): a commit first forces a commit record (the force
// callback), then COMMIT goes to every recovered RM, ROLLBACK for an
// abort; RMs recovered later get RECOVER and the outcome. When all answered,
// the end record, and COMMIT_COMPLETE / ROLLBACK_COMPLETE to the superior
// (through the sink set with set_sink). Repeats are answered again.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <deque>
#include <span>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/tm/detail/rm_vtable.hpp"
#include "ktm/tm/detail/tm_record.hpp"
#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/transaction_core.hpp"

namespace ktm::tm::detail {

template <class R>
concept has_on_recover = requires(R& r, enlistment& e, const notification& n) {
  { r.on_recover(e, n) } -> std::same_as<reply>;
};
template <class R>
concept has_on_last_recover = requires(R& r, const notification& n) { r.on_last_recover(n); };
template <class R>
concept has_on_indoubt = requires(R& r, enlistment& e, const notification& n) { r.on_indoubt(e, n); };

class recovered_transaction final : public transaction_core {
  static void drive_thunk(transaction_core& c) { static_cast<recovered_transaction&>(c).check_done_locked(); }
  static void command_thunk(transaction_core& c, const superior_message& m) {
    static_cast<recovered_transaction&>(c).on_superior(m);
  }
  static constexpr hooks recovery_hooks_{&drive_thunk, &command_thunk};

 public:
  using end_callback = void (*)(void* ctx, const guid& uow, std::uint64_t clock);
  // Appends bytes forced; false when the log failed.
  using force_callback = bool (*)(void* ctx, std::span<const std::byte> bytes);

  recovered_transaction(const guid& uow, std::uint64_t clock, const std::vector<tm_record_enlistment>& logged,
                        end_callback on_end, void* ctx)
      : transaction_core(&recovery_hooks_, uow), on_end_(on_end), ctx_(ctx) {
    bind_all(logged);
    guard g(*this);
    clock_ = clock;
    state_.store(tx_state::committing, std::memory_order_release);
  }
  // In doubt, from a prepared record.
  recovered_transaction(const tm_record& prepared, end_callback on_end, force_callback force, void* ctx)
      : transaction_core(&recovery_hooks_, prepared.id), on_end_(on_end), force_(force), ctx_(ctx) {
    bind_all(prepared.enlistments);
    guard g(*this);
    clock_ = prepared.clock;
    has_superior_ = true;
    superior_ = prepared.superior;
    std::memcpy(desc_, prepared.description.data(), std::min(prepared.description.size(), max_description));
    desc_len_ = static_cast<std::uint8_t>(std::min(prepared.description.size(), max_description));
    state_.store(tx_state::prepared, std::memory_order_release);
  }
  recovered_transaction(const recovered_transaction&) = delete;
  recovered_transaction& operator=(const recovered_transaction&) = delete;

  // Where messages for the superior go (the subordinate TM's endpoint).
  void set_sink(superior_sink& s) {
    guard g(*this);
    sink_ = &s;
  }

  // RECOVER then the outcome (COMMIT, ROLLBACK, or INDOUBT while unknown) to
  // every enlistment of `rm` not yet redelivered. Returns how many.
  template <class R>
  std::size_t redeliver(R& rm, std::uint64_t clock) {
    const guid rid = detail::rm_id(rm);
    std::size_t n = 0;
    guard g(*this);
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      enlistment& e = slots_[i];
      if (rms_[i] != rid || reached_[i]) continue;
      reached_[i] = true;
      invokers_[i] = static_invoker<R>(&rm).erase();
      if constexpr (has_on_recover<R>) (void)rm.on_recover(e, notification{id_, notify::recover, clock, e.key()});
      if (internal_state() == tx_state::prepared) {
        if constexpr (has_on_indoubt<R>) rm.on_indoubt(e, notification{id_, notify::indoubt, clock, e.key()});
      } else {
        deliver_outcome(i, clock);
      }
      ++n;
    }
    check_done_locked();
    return n;
  }

  // Every enlistment answered its outcome (the end record was asked for).
  bool ended() const {
    guard g(*this);
    return ended_;
  }
  // Prepared with its outcome unknown (a subordinate waiting for its superior).
  bool in_doubt() const noexcept { return internal_state() == tx_state::prepared; }
  bool mentions(const guid& rm) const {
    for (const guid& g : rms_)
      if (g == rm) return true;
    return false;
  }
  // f(rm id, recovery information) for every logged enlistment.
  template <class F>
  void for_each_enlistment(F&& f) const {
    for (std::size_t i = 0; i < slots_.size(); ++i) f(rms_[i], slots_[i].recovery_information());
  }

 private:
  void bind_all(const std::vector<tm_record_enlistment>& logged) {
    for (const auto& l : logged) {
      enlistment& e = slots_.emplace_back();
      enlistment_access::bind(e, *this, default_mask, enlistment_key(l.key));
      (void)set_recovery_information(e, l.recovery_information);
      enlistment_access::set_status(e, enlistment_status::prepared);
      rms_.push_back(l.rm);
      reached_.push_back(false);
      invokers_.emplace_back();
    }
  }

  // Lock held, outcome decided: COMMIT or ROLLBACK to slot i's RM.
  void deliver_outcome(std::size_t i, std::uint64_t clock) {
    enlistment& e = slots_[i];
    const bool commit = internal_state() == tx_state::committing;
    enlistment_access::set_status(e, commit ? enlistment_status::awaiting_commit : enlistment_status::awaiting_rollback);
    ++pending_;
    const notify kind = commit ? notify::commit : notify::rollback;
    const reply r = invokers_[i](&e, notification{id_, kind, clock, e.key()});
    if (!r.is_later()) apply_returned_locked(e, kind, r);
  }

  void on_superior(const superior_message& m) {
    using k = superior_message_kind;
    guard g(*this);
    note_clock_locked(m.clock);
    k what = m.kind;
    if (what == k::outcome) {
      if (m.outcome == transaction_outcome::committed) what = k::commit;
      else if (m.outcome == transaction_outcome::aborted) what = k::rollback;
      else return;
    }
    const tx_state s = internal_state();
    switch (what) {
      case k::prepare:
        if (s == tx_state::prepared) post_locked(k::prepare_complete);
        return;
      case k::commit:
      case k::rollback: break;
      default: return;
    }
    const bool commit = what == k::commit;
    if (s != tx_state::prepared) {  // decided already: answer a repeat
      if (ended_ && (s == tx_state::committed) == commit)
        post_locked(commit ? k::commit_complete : k::rollback_complete);
      return;
    }
    if (commit) {
      tm_record_writer w(tm_record_type::commit, clock_, id_);
      for (std::size_t i = 0; i < slots_.size(); ++i)
        w.add_enlistment(rms_[i], slots_[i].key().value(), slots_[i].recovery_information());
      w.set_description(std::string_view(desc_, desc_len_));
      if (!force_ || !force_(ctx_, w.bytes())) return;  // fail-stop: stays in doubt
    }
    state_.store(commit ? tx_state::committing : tx_state::rolling_back, std::memory_order_release);
    reason_ = commit ? abort_reason::none : abort_reason::superior;
    progressed_ = true;
    // RMs recovered already get the outcome now; the others when they are.
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (reached_[i] && slots_[i].status() == enlistment_status::prepared) deliver_outcome(i, clock_);
    check_done_locked();
  }

  void check_done_locked() {
    if (ended_) return;
    const tx_state s = internal_state();
    if (s == tx_state::prepared) return;
    const enlistment_status want =
        s == tx_state::committing ? enlistment_status::committed : enlistment_status::rolled_back;
    for (const enlistment& e : slots_)
      if (e.status() != want) return;
    ended_ = true;
    state_.store(s == tx_state::committing ? tx_state::committed : tx_state::aborted, std::memory_order_release);
    on_end_(ctx_, id_, clock_);
    finish_locked();
    if (has_superior_)
      post_locked(s == tx_state::committing ? superior_message_kind::commit_complete
                                            : superior_message_kind::rollback_complete);
  }

 private:
  std::deque<enlistment> slots_;  // deque: addresses stay put
  std::vector<guid> rms_;
  std::vector<bool> reached_;     // its RM was recovered (RECOVER sent)
  std::vector<erased_invoker> invokers_;  // ... and its handlers
  end_callback on_end_;
  force_callback force_ = nullptr;
  void* ctx_;
  bool ended_ = false;
};

}  // namespace ktm::tm::detail
