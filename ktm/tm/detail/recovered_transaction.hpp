// ktm/tm/detail/recovered_transaction.hpp: a transaction rebuilt by a
// durable TM's recovery from a commit record that has no end record, or
// (a subordinate of a superior TM) from a prepared record that has neither
// a commit nor an end record: in doubt.
//
// Committed: state committing, one enlistment per logged enlistment (RM id,
// key, recovery information), each `prepared` until its RM is recovered:
// take(rm) hands that RM's enlistments to a recovery_sequence
// (recovery_sequence.hpp), which sends each RECOVER then COMMIT through the
// TM's dispatcher (send()); the RM answers as usual, by returning `done`
// (routed here by the dispatcher) or later through the enlistment
// (commit_complete). When every enlistment has committed, the end callback
// runs once (the durable log appends the end record). Enlistments stay
// valid while the TM lives.
//
// In doubt: state prepared, superior() names the superior TM. take(rm)
// hands the RM's enlistments out for RECOVER then INDOUBT (optional handler
// `on_indoubt`), through the dispatcher the same way; they keep their
// prepared state. The outcome arrives through superior_command() (COMMIT,
// ROLLBACK or OUTCOME from the superior, or a heuristic decision of the
// subordinate TM): a commit first forces a commit record (the force
// callback), a rollback its end record, then COMMIT (ROLLBACK for an abort) goes to every RM whose
// INDOUBT handler has returned (its invoker, under this
// transaction's lock, through the TM's dispatcher given to take(): inline,
// the handler runs in the thread that brought the outcome; queued or thread
// pool, it is posted like any delivery and its reply routed back); an RM
// whose INDOUBT is still in the dispatcher gets it as soon as that handler
// returns (indoubt_delivered), and RMs recovered later get RECOVER and the
// outcome through their sequence. When all answered, the end record, and
// COMMIT_COMPLETE / ROLLBACK_COMPLETE to the superior (through the sink set
// with set_sink). Repeats are answered again.
#pragma once

#include <algorithm>
#include <atomic>
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

class recovered_transaction final : public transaction_core {
  static void drive_thunk(transaction_core& c) { static_cast<recovered_transaction&>(c).check_done_locked(); }
  static void command_thunk(transaction_core& c, const superior_message& m) {
    static_cast<recovered_transaction&>(c).on_superior(m);
  }
  static constexpr hooks recovery_hooks_{&drive_thunk, &command_thunk};

 public:
  using end_callback = void (*)(void* ctx, const guid& uow, std::uint64_t clock);
  // The TM's dispatcher, type-erased: d's dispatch(inv, e, n).
  using dispatch_fn = reply (*)(void* d, const erased_invoker& inv, enlistment* e, const notification& n);
  struct dispatcher_ref {
    void* d = nullptr;
    dispatch_fn fn = nullptr;  // null: call the RM's invoker directly
    bool is_inline = true;
  };
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

  // An enlistment handed out by take() and what follows its RECOVER.
  struct taken {
    enlistment* e;
    notify then;  // commit or rollback (awaited from now on), or indoubt
  };
  // The enlistments of the RM behind `rm` not yet handed out: each awaits
  // its outcome from now on, or, in doubt, gets INDOUBT. The RM's invoker
  // and the TM's dispatcher `via` are kept for an outcome that arrives
  // later.
  std::vector<taken> take(const erased_invoker& rm, const dispatcher_ref& via) {
    const guid rid = rm.rm_id();
    std::vector<taken> out;
    guard g(*this);
    if (via.fn) via_ = via;
    for (std::size_t i = 0; i < slots_.size(); ++i) {
      if (rms_[i] != rid || phase_[i] != phase::untaken) continue;
      phase_[i] = phase::taken;
      invokers_[i] = rm;
      out.push_back({&slots_[i], in_doubt() ? notify::indoubt : hand_out_locked(i)});
    }
    return out;
  }

  // Sends `kind` (recover, or what take() said follows it) for e through
  // dispatch(e*, n), under the lock as the protocol's own deliveries are; a
  // returned reply is applied (RECOVER's and INDOUBT's are informational),
  // `async` ones come back through route_returned. An INDOUBT whose outcome
  // has arrived since take() becomes that outcome.
  //
  // An outcome the enlistment's logged mask lacks is not sent (settled as
  // if answered, as the live protocol skips it): returns false, nothing
  // dispatched.
  template <class Dispatch>
  bool send(enlistment& e, notify kind, std::uint64_t clock, bool async, Dispatch&& dispatch) {
    guard g(*this);
    const std::size_t i = slot_of(e);
    if (kind == notify::indoubt && !in_doubt()) kind = hand_out_locked(i);
    if ((kind == notify::commit || kind == notify::rollback) && !e.mask().has(kind)) {
      check_done_locked();
      return false;
    }
    if (async) ++inflight_;
    const reply r = dispatch(&e, notification{id_, kind, clock, e.key()});
    if (!r.is_later()) apply_returned_locked(e, kind, r);
    if (kind == notify::indoubt && !async) indoubt_delivered_locked(i);
    check_done_locked();
    return true;
  }
  // An asynchronous INDOUBT for e: its handler has returned (the outcome, if
  // it arrived meanwhile, follows now).
  void indoubt_delivered(enlistment& e) {
    guard g(*this);
    indoubt_delivered_locked(slot_of(e));
    check_done_locked();
  }

  // Every enlistment answered its outcome (the end record was asked for).
  // Lock-free: callers (durable_log::stats) may ask while a handler runs
  // under the transaction's lock.
  bool ended() const noexcept { return ended_.load(std::memory_order_acquire); }
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
      enlistment_access::bind(e, *this, notification_mask(l.mask), enlistment_key(l.key));
      (void)set_recovery_information(e, l.recovery_information);
      enlistment_access::set_status(e, enlistment_status::prepared);
      rms_.push_back(l.rm);
      phase_.push_back(phase::untaken);
      invokers_.emplace_back();
    }
  }
  std::size_t slot_of(const enlistment& e) const {
    std::size_t i = 0;
    while (&slots_[i] != &e) ++i;
    return i;
  }

  // Lock held, outcome decided: slot i awaits it from now on; returns the
  // notification (COMMIT or ROLLBACK).
  // An enlistment whose mask lacks it is settled at once, as if it answered.
  notify hand_out_locked(std::size_t i) {
    const bool commit = internal_state() == tx_state::committing;
    const notify kind = commit ? notify::commit : notify::rollback;
    if (!slots_[i].mask().has(kind)) {
      enlistment_access::set_status(slots_[i], commit ? enlistment_status::committed : enlistment_status::rolled_back);
      return kind;
    }
    enlistment_access::set_status(slots_[i],
                                  commit ? enlistment_status::awaiting_commit : enlistment_status::awaiting_rollback);
    ++pending_;
    return kind;
  }
  // Lock held, outcome decided: COMMIT or ROLLBACK to slot i's RM, through
  // the TM's dispatcher (an asynchronous one routes the reply back later).
  void deliver_outcome(std::size_t i) {
    enlistment& e = slots_[i];
    const notify kind = hand_out_locked(i);
    if (!e.mask().has(kind)) return;  // settled: nothing to send
    const notification n{id_, kind, clock_, e.key()};
    if (via_.fn && !via_.is_inline) ++inflight_;
    const reply r = via_.fn ? via_.fn(via_.d, invokers_[i], &e, n) : invokers_[i](&e, n);
    if (!r.is_later()) apply_returned_locked(e, kind, r);
  }
  void indoubt_delivered_locked(std::size_t i) {
    phase_[i] = phase::reached;
    if (!in_doubt() && slots_[i].status() == enlistment_status::prepared) deliver_outcome(i);
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
        // A repeat (its PREPARE_COMPLETE was lost), or, after this TM
        // decided alone (heuristic), the superior still asking: a commit is
        // durable here (PREPARE_COMPLETE), an abort is said as ABORTED.
        if (s == tx_state::prepared || s == tx_state::committing || s == tx_state::committed)
          post_locked(k::prepare_complete);
        else post_locked(k::aborted);
        return;
      case k::commit:
      case k::rollback: break;
      default: return;
    }
    const bool commit = what == k::commit;
    if (s != tx_state::prepared) {  // decided already: answer a repeat
      if (ended_.load(std::memory_order_relaxed) && (s == tx_state::committed) == commit)
        post_locked(commit ? k::commit_complete : k::rollback_complete);
      return;
    }
    // The decision first, forced: a commit record before any RM commits,
    // the end record before any rolls back (lost with a crash, the restart
    // would find the transaction in doubt again, and an in-doubt policy that
    // commits alone would commit what the RMs rolled back).
    tm_record_writer w(commit ? tm_record_type::commit : tm_record_type::end, clock_, id_);
    if (commit) {
      for (std::size_t i = 0; i < slots_.size(); ++i)
        w.add_enlistment(rms_[i], slots_[i].key().value(), slots_[i].mask().bits(), slots_[i].recovery_information());
      w.set_description(std::string_view(desc_, desc_len_));
    }
    if (!force_ || !force_(ctx_, w.bytes())) return;  // fail-stop: stays in doubt
    end_logged_ = !commit;
    state_.store(commit ? tx_state::committing : tx_state::rolling_back, std::memory_order_release);
    reason_ = commit ? abort_reason::none : abort_reason::superior;
    progressed_ = true;
    // RMs past INDOUBT get the outcome now; the others when they are.
    for (std::size_t i = 0; i < slots_.size(); ++i)
      if (phase_[i] == phase::reached && slots_[i].status() == enlistment_status::prepared) deliver_outcome(i);
    check_done_locked();
  }

  void check_done_locked() {
    if (ended_.load(std::memory_order_relaxed)) return;
    const tx_state s = internal_state();
    if (s == tx_state::prepared) return;
    const enlistment_status want =
        s == tx_state::committing ? enlistment_status::committed : enlistment_status::rolled_back;
    for (const enlistment& e : slots_)
      if (e.status() != want) return;
    // the end record before ended(): a caller that sees it ended (stats:
    // unresolved) and then flushes has the end record
    if (!end_logged_) on_end_(ctx_, id_, clock_);
    ended_.store(true, std::memory_order_release);
    state_.store(s == tx_state::committing ? tx_state::committed : tx_state::aborted, std::memory_order_release);
    finish_locked();
    if (has_superior_)
      post_locked(s == tx_state::committing ? superior_message_kind::commit_complete
                                            : superior_message_kind::rollback_complete);
  }

 private:
  std::deque<enlistment> slots_;  // deque: addresses stay put
  std::vector<guid> rms_;
  // untaken: its RM not recovered yet; taken: handed to a recovery
  // sequence; reached: in doubt, and its INDOUBT handler has returned.
  enum class phase : std::uint8_t { untaken, taken, reached };
  std::vector<phase> phase_;
  std::vector<erased_invoker> invokers_;  // the RM's handlers (from take)
  dispatcher_ref via_;                    // the TM's dispatcher (from take)
  end_callback on_end_;
  force_callback force_ = nullptr;
  void* ctx_;
  std::atomic<bool> ended_{false};  // written under the lock
  bool end_logged_ = false;         // a rollback's end record, forced before the RMs heard it
};

}  // namespace ktm::tm::detail
