// ktm/tm/transaction.hpp: a transaction of a basic_transaction_manager TM.
//
// The caller owns the object (usually on its stack): `auto tx = tm.begin();`.
// It cannot move (enlistments and queued notifications point into it). Its
// destructor rolls back a transaction that has not prepared (RAII), then
// waits until every notification it sent has been answered; the TM must
// outlive it.
//
// The protocol (presumed abort), driven by whichever thread completes a
// phase: commit() -> PREPREPARE to each live enlistment -> PREPARE -> commit
// point (log: commit record, forced) -> COMMIT -> committed (log: end
// record, queued). With exactly one live enlistment whose mask has
// SINGLE_PHASE_COMMIT, that RM alone gets SINGLE_PHASE_COMMIT instead; a
// reject switches to the full protocol at once. A rollback (client, RM,
// timeout, dropped handle, log failure) sends ROLLBACK to every live
// enlistment that has not itself rolled back. Enlistments whose mask lacks a
// notification skip that phase as if they had answered done.
//
// With a superior (set_superior; doc/superior.md) the client's commit is a
// COMMIT_REQUEST to the superior, which drives the phases one message at a
// time: PREPREPARE runs the preprepare phase and answers
// PREPREPARE_COMPLETE; PREPARE the prepare phase, then (durable TM) a
// prepared record naming the superior, forced, and PREPARE_COMPLETE (or
// READ_ONLY when no enlistment prepared); COMMIT forces the commit record and
// runs the commit phase, then COMMIT_COMPLETE; ROLLBACK rolls back, then
// ROLLBACK_COMPLETE. A rollback of its own (RM, client, timeout) before it
// prepared is reported as ABORTED. Never single-phase.
//
// The class declares everything; the longer member definitions are in
// detail/ headers included at the end of this one, by concern:
// transaction_client.hpp (commit, rollback, destruction), transaction_phases.hpp
// (sending the phases, moving between them), transaction_commit_log.hpp (the
// log records), transaction_subordinate.hpp (driven by a superior TM), and
// straight_line_commit.hpp (the fully static fast path).
#pragma once

#include <cassert>
#include <chrono>
#include <cstddef>
#include <future>
#include <system_error>
#include <utility>

#include "ktm/result.hpp"
#include "ktm/concepts/log_backend.hpp"
#include "ktm/tm/detail/tm_record.hpp"
#include "ktm/tm/detail/straight_line_commit.hpp"
#include "ktm/tm/enlistment_handle.hpp"
#include "ktm/tm/resource_manager.hpp"
#include "ktm/tm/transaction_core.hpp"

namespace ktm::tm {

template <class TM>
class basic_transaction : public transaction_core {
  static void drive_thunk(transaction_core& c) { static_cast<basic_transaction&>(c).drive_locked(); }
  static void command_thunk(transaction_core& c, const superior_message& m) {
    static_cast<basic_transaction&>(c).on_superior(m);
  }
  static void merge_thunk(transaction_core& c) {
    auto& t = static_cast<basic_transaction&>(c);
    t.tm_->clock().merge(t.merge_clock_);
    t.merge_clock_ = 0;
  }
  static constexpr hooks hooks_{&drive_thunk, &command_thunk, &merge_thunk};
  // Its own calls know the threading policy at compile time.
  using tguard = basic_guard<TM::concurrent ? lock_mode::concurrent : lock_mode::single>;
  friend struct detail::straight_line_commit<basic_transaction>;

 public:
  using manager_type = TM;
  using storage_type = typename TM::storage_type;
  using dispatcher_type = typename TM::dispatcher_type;
  using log_type = typename TM::log_type;

  basic_transaction(TM& tm, const guid& uow) noexcept : transaction_core(&hooks_, uow, TM::concurrent), tm_(&tm) {}
  basic_transaction(const basic_transaction&) = delete;
  basic_transaction& operator=(const basic_transaction&) = delete;

  ~basic_transaction() {
    if (!settled()) [[unlikely]] wind_down();
    if (has_superior_) [[unlikely]] sink_->forget(id_);
  }

  TM& manager() const noexcept { return *tm_; }

  // Makes the TM `superior` (through the TM's endpoint s) this transaction's
  // superior: only while active and before the client's commit or rollback
  // (else errc::invalid_state); errc::superior_exists when it has one.
  // Called by the superior endpoint (basic_superior_transaction_manager).
  result<void> set_superior(superior_sink& s, const guid& superior) {
    tguard g(*this);
    if (has_superior_) return errc::superior_exists;
    if (internal_state() != tx_state::active || client_decided_) return errc::invalid_state;
    has_superior_ = true;
    superior_ = superior;
    sink_ = &s;
    exposed_ = true;
    return {};
  }

 private:
  // Nothing can refer to the transaction any more: destroying it needs no wind-down.
  bool settled() const noexcept {
    // single_threaded: one thread, inline handlers, no timer: finished means settled.
    if constexpr (!TM::concurrent) return is_done() && pending_ == 0;
    else return settled_on_creator_thread();
  }

  // Rolls back if not prepared, then waits until nothing is outstanding.
  [[gnu::noinline]] void wind_down();

 public:

  // Enlists rm, which must be one of the TM's RMs (static storage) or
  // registered with it (tm.add_resource_manager). Only while active:
  // errc::invalid_state once commit started, errc::transaction_aborted after
  // a rollback; also already_enlisted, rm_not_found, capacity_exhausted,
  // volatile_tm_durable_rm, tm_not_online.
  template <class R>
  [[gnu::always_inline]] result<enlistment_handle> enlist(R& rm, notification_mask mask = default_mask, enlistment_key key = {}) {
    static_assert(check_resource_manager<R>());
    // single_threaded: the guard would only mark the transaction held, and
    // nothing enlist_locked calls looks at that or completes anything.
    if constexpr (!TM::concurrent) return enlist_locked(rm, mask, key);
    if constexpr (TM::concurrent) {
      // Until the first enlistment is handed out (or a timer armed) only the
      // client can reach the transaction, and client calls on one
      // transaction are not concurrent: no lock is needed. A later locker
      // synchronises with this thread through whatever handed it the
      // enlistment (or through the next client call's lock).
      if (!exposed_ && creator_ == &detail::tl_holder && detail::tl_holder != this)
        return enlist_locked(rm, mask, key);
    }
    tguard g(*this);
    return enlist_locked(rm, mask, key);
  }

  std::size_t enlistment_count() const {
    tguard g(*this);
    return tm_->storage().size(const_cast<typename storage_type::set_type&>(set_));
  }

  // Rolls back unless prepared within d (from now). Only while active.
  template <class Rep, class Period>
  result<void> set_timeout(std::chrono::duration<Rep, Period> d) {
    static_assert(TM::concurrent,
                  "set_timeout needs the TM's timer thread: not available with with_threading<single_threaded>");
    tguard g(*this);
    if (internal_state() != tx_state::active) return errc::invalid_state;
    timer_armed_ = true;
    exposed_ = true;
    tm_->timer().schedule(*this, std::chrono::steady_clock::now() +
                                     std::chrono::duration_cast<std::chrono::steady_clock::duration>(d));
    return {};
  }

  // Commits and waits for the outcome: success, errc::transaction_aborted
  // (see reason()), errc::in_doubt, or errc::invalid_state when commit or
  // rollback was called before. With a superior: sends COMMIT_REQUEST and
  // waits for the outcome the superior decides (single_threaded:
  // errc::commit_requested when it was not decided during the call). Under single_threaded, errc::invalid_state
  // too when an RM answered later(): nothing could answer while this waits
  // (use commit_async()).
  [[gnu::always_inline]] result<void> commit() {
    {
      tguard g(*this);
      if (std::error_code ec = start_commit_locked()) return ec;
      drive_commit_locked();
    }
    if (!is_done() && !wait_until([&] { return is_done(); }))
      return has_superior_ ? errc::commit_requested : errc::invalid_state;
    return outcome_result();
  }

  // Starts the commit; on_done(result<void>) runs once with the outcome, in
  // the thread that decides it (possibly this one, before returning). A
  // failure to start is returned and on_done is not called.
  template <class F>
  result<void> commit_async(F&& on_done) {
    tguard g(*this);
    if (std::error_code ec = start_commit_locked()) return ec;
    completion_ = completion_callback(std::forward<F>(on_done));
    drive_locked();
    return {};
  }
  std::future<result<void>> commit_async() {
    return as_future([this](auto&& f) { return this->commit_async(std::forward<decltype(f)>(f)); });
  }

  // Rolls back and waits until every ROLLBACK is answered. Succeeds too when
  // an RM or a timeout rolled the transaction back already.
  result<void> rollback() {
    {
      tguard g(*this);
      if (std::error_code ec = start_rollback_locked()) return ec;
      drive_locked();
    }
    if (!is_done() && !wait_until([&] { return is_done(); })) return errc::invalid_state;
    return {};
  }
  template <class F>
  result<void> rollback_async(F&& on_done) {
    tguard g(*this);
    if (std::error_code ec = start_rollback_locked()) return ec;
    if (is_done()) {
      fire_ = completion_callback(std::forward<F>(on_done));
      has_fire_ = true;
    } else {
      completion_ = completion_callback(std::forward<F>(on_done));
    }
    drive_locked();
    return {};
  }
  std::future<result<void>> rollback_async() {
    return as_future([this](auto&& f) { return this->rollback_async(std::forward<decltype(f)>(f)); });
  }

 private:
  template <class R>
  [[gnu::always_inline]] result<enlistment_handle> enlist_locked(R& rm, notification_mask mask, enlistment_key key) {
    if (tm_->state() == tm_state::offline) return tm_->offline_error();
    const tx_state s = internal_state();
    if (s == tx_state::rolling_back || s == tx_state::aborted) return errc::transaction_aborted;
    if (s != tx_state::active || client_decided_) return errc::invalid_state;
    result<enlistment*> slot = tm_->storage().add(set_, rm, log_type::durable);
    if (!slot) return std::move(slot).error();
    detail::enlistment_access::bind(**slot, *this, mask, key);
    exposed_ = true;
    return enlistment_handle(**slot);
  }

  template <class Start>
  static std::future<result<void>> as_future(Start start) {
    std::promise<result<void>> p;
    std::future<result<void>> f = p.get_future();
    result<void> started = start([p = std::move(p)](result<void> r) mutable { p.set_value(std::move(r)); });
    if (!started) {
      std::promise<result<void>> failed;
      failed.set_value(std::move(started));
      return failed.get_future();
    }
    return f;
  }

  [[gnu::always_inline]] std::error_code start_commit_locked();

  std::error_code start_rollback_locked();

  // drive_locked() right after start_commit_locked(): its first round, the
  // straight-line commit, inline in commit() (no call, no register saves).
  [[gnu::always_inline]] void drive_commit_locked() {
    if constexpr (detail::straight_line_commit<basic_transaction>::applies) {
      if (merge_clock_ != 0) {
        tm_->clock().merge(merge_clock_);
        merge_clock_ = 0;
      }
      if (straight_line_ready_locked() && detail::straight_line_commit<basic_transaction>::run(*this)) return;
    }
    drive_locked();
  }

  // The straight-line commit may start: PREPREPARE is to be sent, nothing
  // else is due. Not for a subordinate: its superior paces the phases.
  bool straight_line_ready_locked() const noexcept {
    return need_send_ && rollback_requested_ == abort_reason::none && !has_superior_ &&
           internal_state() == tx_state::prepreparing;
  }

  // Runs the protocol forward as far as it goes without waiting. Lock held.
  void drive_locked() {
    for (;;) {
      if (merge_clock_ != 0) {
        tm_->clock().merge(merge_clock_);
        merge_clock_ = 0;
      }
      if constexpr (detail::straight_line_commit<basic_transaction>::applies) {
        if (straight_line_ready_locked() && detail::straight_line_commit<basic_transaction>::run(*this)) return;
      }
      if (rollback_requested_ != abort_reason::none) {
        begin_rollback_locked();
        continue;
      }
      if (need_send_) {
        need_send_ = false;
        send_phase_locked();
        continue;
      }
      if (pending_ != 0 || !advance_locked()) return;
    }
  }

  void begin_rollback_locked();

  // What each phase sends: the notification, the status an enlistment must
  // have to get it, the status while it is outstanding, the status when its
  // mask skips it, and the status a `done` answer settles it in.
  struct phase_info {
    notify kind;
    enlistment_status from, awaiting, skipped, done;
  };
  static constexpr phase_info info_of(tx_state phase) noexcept {
    using st = enlistment_status;
    switch (phase) {
      case tx_state::prepreparing: return {notify::preprepare, st::active, st::awaiting_preprepare, st::preprepared, st::preprepared};
      case tx_state::preparing: return {notify::prepare, st::preprepared, st::awaiting_prepare, st::prepared, st::prepared};
      case tx_state::single_phase_committing: return {notify::single_phase_commit, st::active, st::awaiting_single_phase, st::active, st::committed};
      case tx_state::committing: return {notify::commit, st::prepared, st::awaiting_commit, st::committed, st::committed};
      case tx_state::rolling_back: return {notify::rollback, st::needs_rollback, st::awaiting_rollback, st::rolled_back, st::rolled_back};
      default: return {notify::rm_disconnected, st::unused, st::unused, st::unused, st::unused};  // in_doubt
    }
  }

  // Sends the current phase's notification to every enlistment due one.
  void send_phase_locked();

  // One phase, specialised at compile time: with static_storage and the
  // inline dispatcher each delivery is a direct call of the handler.
  template <tx_state Phase>
  [[gnu::always_inline]] void send_phase_locked();

  // Phase's notification to e, if e is due one, and its returned reply applied.
  template <tx_state Phase, class Invoker>
  [[gnu::always_inline]] void send_one_locked(enlistment& e, const Invoker& inv, std::uint64_t clock);

  // Applies the reply r that e's handler returned for Phase's notification.
  template <tx_state Phase>
  [[gnu::always_inline]] void apply_delivered_locked(enlistment& e, reply r);

  template <notify K, class Invoker>
  reply deliver(const Invoker& inv, enlistment& e, const notification& n);

  // The current phase is complete (nothing pending): move to the next.
  // Returns false when there is nothing more to do now.
  bool advance_locked();

  // ---- with a superior ----

  // A message of the superior (no lock held). Repeats are answered again.
  void on_superior(const superior_message& m);

  // Prepared under a superior: log it, tell the superior, wait for its decision.
  bool prepared_for_superior_locked();

  // The commit point: force a commit record naming every prepared
  // enlistment. Compiles to nothing for a volatile TM.
  bool log_commit_locked() { return log_record_locked(detail::tm_record_type::commit); }
  // The commit record could not be forced (log_record_locked false). Never
  // written (the append refused it): roll back, as presumed abort has it.
  // Written but its force failed (errc::in_doubt from the log): it may be
  // durable, so the outcome is what recovery finds after the restart (the
  // TM is fail-stop): in doubt, the RMs stay prepared, and the client gets
  // errc::in_doubt. Rolling back then could contradict a commit that
  // recovery redelivers. True when the rollback is to be sent.
  bool commit_log_failed_locked() {
    if (!record_in_doubt_) {
      request_rollback_locked(abort_reason::log_failure);
      return true;
    }
    set_state_locked(tx_state::in_doubt);
    finish_locked();
    return false;
  }

  // A commit record, or (with a superior) a prepared record that also names
  // the superior TM; forced. False on failure; record_in_doubt_ then says
  // whether the record was written (its force failed).
  bool log_record_locked(detail::tm_record_type type);

  // Every COMMIT answered: the end record, queued (lazy). A lost end record
  // only means COMMIT is redelivered at recovery, which RMs tolerate.
  void log_end_locked();
  bool log_abort_locked();
  bool append_end_locked(log_append_mode mode);  // the end record; false: the log failed

  TM* tm_;
  typename storage_type::set_type set_{};
  bool record_in_doubt_ = false;  // see commit_log_failed_locked and prepared_for_superior_locked
};

}  // namespace ktm::tm

// The member definitions, by concern.
#include "ktm/tm/detail/transaction_client.hpp"
#include "ktm/tm/detail/transaction_commit_log.hpp"
#include "ktm/tm/detail/transaction_phases.hpp"
#include "ktm/tm/detail/transaction_subordinate.hpp"
