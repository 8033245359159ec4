// ktm/tm/static_transaction.hpp: a transaction over a TM's static RM set
// whose handlers answer by returning: no enlistment handles, no lock, no
// heap, nothing between the client and the handlers but the protocol.
//
//   auto tx = tm.begin_static();        // or tm.begin_static(uow)
//   a.write(...); b.write(...);         // the client's work
//   tx.enlist(a, mask, key);            // result<void>: no handle
//   tx.enlist(b);
//   ktm::result<void> r = tx.commit();  // PREPREPARE, PREPARE, COMMIT
//
// For a volatile TM (with_log<no_log>) with with_storage<static_storage<...>>
// of at most 32 RM types and with_dispatcher<inline_dispatcher>, under either
// threading policy (checked at compile time; TM::has_static_transactions;
// tm.begin() serves every other TM). The protocol
// is basic_transaction's (transaction.hpp): presumed abort; SINGLE_PHASE_COMMIT
// alone when the one enlistment asks for it (a reject falls back to two
// phases at once); a read_only reply drops the enlistment out; a mask without
// a notification skips that phase as if answered done; each reply's clock is
// max-merged into the TM's clock, which advances when the commit begins; a
// rollback (client, RM, offline TM, destruction undecided) sends ROLLBACK to
// every enlistment that has not settled, except one that rolled back itself.
//
// What it gives up for its speed, and the contract that follows:
//   * Handlers answer only by returning a reply. The enlistment they get has
//     no transaction_core (has_transaction() is false): its reply functions,
//     set_recovery_information and request_outcome return
//     errc::invalid_state; key(), mask() and transaction_id() work, and
//     dropping an enlistment_handle made from it does nothing. The
//     enlistments' statuses are kept by the transaction (status_of(rm));
//     the enlistment's own status() reads `active` throughout. An RM that
//     acts on its enlistment's transaction() (the superior's
//     subordinate_proxy) cannot take part.
//   * Replies other than those basic_transaction takes by return are
//     protocol errors (protocol_errors()): reply::later() to PREPREPARE or
//     PREPARE reads as rollback (that enlistment is sent ROLLBACK too),
//     reject to them as rollback (the RM rolled back itself); later() to
//     SINGLE_PHASE_COMMIT rolls the transaction back and sends that RM
//     ROLLBACK; any reply but done to COMMIT or ROLLBACK reads as done.
//   * The object belongs to the thread that made it (no lock). On a
//     thread_safe TM any number of threads may each run their own at once
//     (the TM's clock and state are the only shared parts; the RMs' handlers
//     are then called from those threads concurrently). A single_threaded
//     TM's clock is not safe for that: one thread at a time, as for tm.begin().
//   * During the commit, until the COMMIT phase, state() reads normal and
//     outcome() undetermined (one state, prepreparing, for PREPREPARE and
//     PREPARE); during COMMIT, committed_notify and committed.
//   * Other differences from tm.begin(): enlist after a rollback fails with
//     errc::invalid_state (not transaction_aborted); enlist does not look at
//     the TM's state (commit does); no timeout, no description, no
//     asynchronous commit, no superior. Handlers must not throw.
//
// The enlistments live in the object, built on enlist; a reference to one is
// valid while the object lives. The object cannot move.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

#include "ktm/guid.hpp"
#include "ktm/result.hpp"
#include "ktm/tm/detail/rm_vtable.hpp"
#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/inline_dispatcher.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/reply.hpp"
#include "ktm/tm/resource_manager.hpp"
#include "ktm/tm/states.hpp"

namespace ktm::tm {

template <class TM>
class basic_static_transaction {
  using storage_type = typename TM::storage_type;
  static_assert(TM::is_volatile,
                "static transaction: needs a volatile TM (with_log<no_log>); a durable TM's commit record "
                "needs basic_transaction (tm.begin())");
  static_assert(storage_type::is_static && requires(storage_type& s) { s.template at<0>(); },
                "static transaction: needs with_storage<static_storage<RMs...>>");
  static_assert(std::is_same_v<typename TM::dispatcher_type, inline_dispatcher>,
                "static transaction: needs with_dispatcher<inline_dispatcher> (handlers answer by returning)");
  static constexpr std::size_t n_rms = storage_type::rm_count;
  static constexpr std::uint32_t clean_kinds = (notify::preprepare | notify::prepare | notify::commit).bits();
  static constexpr std::uint32_t all_rms = n_rms == 32 ? ~0u : (1u << n_rms) - 1;
  static_assert(n_rms <= 32, "static transaction: at most 32 RM types");

 public:
  using manager_type = TM;

  basic_static_transaction(TM& tm, const guid& uow) noexcept : tm_(&tm), id_(uow) {}
  basic_static_transaction(const basic_static_transaction&) = delete;
  basic_static_transaction& operator=(const basic_static_transaction&) = delete;

  // RAII: a transaction destroyed before commit() or rollback() rolls back.
  ~basic_static_transaction() {
    if (state_ == tx_state::active) [[unlikely]] roll_back(abort_reason::destroyed);
  }

  TM& manager() const noexcept { return *tm_; }
  const guid& id() const noexcept { return id_; }
  tx_state internal_state() const noexcept { return state_; }
  transaction_state state() const noexcept { return public_state(state_); }
  transaction_outcome outcome() const noexcept { return public_outcome(state_); }
  abort_reason reason() const noexcept { return reason_; }
  // The virtual clock stamped on the commit: the TM's clock when the commit
  // began, max-merged with the clock values the RMs passed back (0 before
  // the commit, and after a rollback that no commit began).
  std::uint64_t commit_clock() const noexcept { return state_ == tx_state::active ? 0 : clock_; }
  // Replies that broke the protocol (see the contract above).
  std::uint32_t protocol_errors() const noexcept { return protocol_errors_; }
  std::size_t enlistment_count() const noexcept { return static_cast<std::size_t>(std::popcount(enlisted_)); }

  // rm's enlistment in this transaction, or null when rm is not enlisted.
  template <class R>
  const enlistment* enlistment_of(const R& rm) const noexcept {
    constexpr std::size_t i = storage_type::template index_of<R>();
    static_assert(i < n_rms, "static transaction: this RM type is not one of the TM's static_storage RMs");
    if (!(enlisted_ & (1u << i)) || &tm_->storage().template at<i>() != &rm) return nullptr;
    return &slot<i>();
  }
  // rm's enlistment status in this transaction (unused when not enlisted).
  template <class R>
  enlistment_status status_of(const R& rm) const noexcept {
    constexpr std::size_t i = storage_type::template index_of<R>();
    static_assert(i < n_rms, "static transaction: this RM type is not one of the TM's static_storage RMs");
    if (!(enlisted_ & (1u << i)) || &tm_->storage().template at<i>() != &rm) return enlistment_status::unused;
    if (!kept_) return state_ == tx_state::committed ? enlistment_status::committed : enlistment_status::active;
    return st_[i];
  }

  // Enlists rm, one of the TM's RMs, with a mask and a key. Only while
  // active (errc::invalid_state after commit or rollback); also
  // errc::rm_not_found (an RM of the right type that is not the TM's) and
  // errc::already_enlisted. The TM's state is looked at by commit(), not
  // here: on an offline TM the commit rolls back.
  template <class R>
  [[gnu::always_inline]] result<void> enlist(R& rm, notification_mask mask = default_mask,
                                              enlistment_key key = {}) {
    static_assert(check_resource_manager<R>());
    constexpr std::size_t i = storage_type::template index_of<R>();
    static_assert(i < n_rms, "static transaction: this RM type is not one of the TM's static_storage RMs");
    if (state_ != tx_state::active) [[unlikely]] return errc::invalid_state;
    if (&tm_->storage().template at<i>() != &rm) [[unlikely]] return errc::rm_not_found;
    if (enlisted_ & (1u << i)) [[unlikely]] return errc::already_enlisted;
    detail::enlistment_access::construct(raw_ + i * sizeof(enlistment), &id_, mask, key);
    enlisted_ |= 1u << i;
    masks_ &= mask.bits();
    return {};
  }

  // Commits: success, or errc::transaction_aborted (see reason()); the TM's
  // offline error (and a rollback) when the TM is offline;
  // errc::invalid_state after commit or rollback.
  [[gnu::always_inline]] result<void> commit() {
    if (state_ != tx_state::active) [[unlikely]] return errc::invalid_state;
    if (tm_->state() == tm_state::offline) [[unlikely]] {
      roll_back(abort_reason::tm_offline);
      return tm_->offline_error();
    }
    clock_ = tm_->clock().advance();
    // The clean path: every RM enlisted for PREPREPARE, PREPARE and COMMIT
    // (and, for a lone RM, not for SINGLE_PHASE_COMMIT) and every reply
    // `done`, so the enlistments move through the phases together and no
    // status needs keeping. Otherwise, or from the first other reply, the
    // statuses are kept and the rest runs status-driven.
    constexpr std::uint32_t spc = static_cast<std::uint32_t>(notify::single_phase_commit);
    if (!every_rm_in_clean_phases() || (n_rms == 1 && (masks_ & spc) != 0)) [[unlikely]]
      return commit_with_statuses();
    return clean_commit(std::make_index_sequence<n_rms>{});
  }

  // Rolls back: ROLLBACK to every enlistment. errc::invalid_state after
  // commit or rollback.
  result<void> rollback() {
    if (state_ != tx_state::active) return errc::invalid_state;
    roll_back(abort_reason::client);
    return {};
  }

 private:
  struct phase_info {
    notify kind;
    enlistment_status from, awaiting, done;
  };
  static constexpr phase_info info_of(tx_state p) noexcept {
    using st = enlistment_status;
    switch (p) {
      case tx_state::prepreparing: return {notify::preprepare, st::active, st::awaiting_preprepare, st::preprepared};
      case tx_state::preparing: return {notify::prepare, st::preprepared, st::awaiting_prepare, st::prepared};
      case tx_state::committing: return {notify::commit, st::prepared, st::awaiting_commit, st::committed};
      default: return {notify::rollback, st::needs_rollback, st::awaiting_rollback, st::rolled_back};
    }
  }

  template <std::size_t I>
  enlistment& slot() const noexcept {
    return *std::launder(reinterpret_cast<enlistment*>(const_cast<std::byte*>(raw_) + I * sizeof(enlistment)));
  }

  // f.template operator()<I>(slot, rm) for each enlisted RM, unrolled.
  template <class F>
  [[gnu::always_inline]] void for_each_enlisted_at(F&& f) {
    [&]<std::size_t... I>(std::index_sequence<I...>) __attribute__((always_inline)) {
      ((enlisted_ & (1u << I) ? f.template operator()<I>(slot<I>(), tm_->storage().template at<I>()) : void()), ...);
    }(std::make_index_sequence<n_rms>{});
  }

  // f(slot, its status, rm) for each enlisted RM, in the storage's order,
  // unrolled.
  template <class F>
  [[gnu::always_inline]] void for_each_enlisted(F&& f) {
    for_each_enlisted_at([&]<std::size_t I>(enlistment& e, auto& rm) __attribute__((always_inline)) {
      f(e, st_[I], rm);
    });
  }

  // Every RM is enlisted, each for PREPREPARE, PREPARE and COMMIT: the
  // clean path's phases reach every RM.
  bool every_rm_in_clean_phases() const noexcept {
    return enlisted_ == all_rms && (masks_ & clean_kinds) == clean_kinds;
  }

  void merge_clock(std::uint64_t c) noexcept {
    if (c != 0) [[unlikely]] {
      tm_->clock().merge(c);
      if (c > clock_) clock_ = c;
    }
  }

  // The clean path's three phases, each a delivery to every RM in order.
  // A phase whose replies are all done leaves nothing to record; at the
  // first other reply (index `at`, reply `odd`) commit_slowly takes over.
  template <std::size_t... I>
  [[gnu::always_inline]] result<void> clean_commit(std::index_sequence<I...>) {
    notification n{id_, notify::none, 0, {}};
    // the RMs, looked up once for the three phases
    const std::tuple<typename storage_type::template rm_at<I>*...> rms{&tm_->storage().template at<I>()...};
    std::size_t at = 0;
    reply odd = reply::done();
    // One state for the three phases: only a handler that reaches the
    // transaction by a way of its own could look (enlist, commit and
    // rollback then fail with errc::invalid_state); commit_slowly sets the
    // exact one.
    state_ = tx_state::prepreparing;
    const auto phase_of = [&]<tx_state P>() __attribute__((always_inline)) {
      static constexpr notify kind = info_of(P).kind;
      n.kind = kind;
      n.virtual_clock = tm_->clock().now();
      bool clean = true;
      const auto one = [&]<std::size_t J>() __attribute__((always_inline)) {
        if (!clean) return;
        enlistment& e = slot<J>();
        n.key = e.key();
        const reply r = detail::deliver_as<kind>(*std::get<J>(rms), &e, n);
        if (r.what() == reply::kind::done) [[likely]] {
          merge_clock(r.clock());
          return;
        }
        clean = false;
        at = J;
        odd = r;
      };
      (one.template operator()<I>(), ...);
      return clean;
    };
    if (!phase_of.template operator()<tx_state::prepreparing>()) [[unlikely]]
      return commit_slowly(tx_state::prepreparing, at, odd, n.virtual_clock);
    if (!phase_of.template operator()<tx_state::preparing>()) [[unlikely]]
      return commit_slowly(tx_state::preparing, at, odd, n.virtual_clock);
    state_ = tx_state::committing;  // prepared; the commit point (a volatile TM logs nothing)
    if (!phase_of.template operator()<tx_state::committing>()) [[unlikely]]
      return commit_slowly(tx_state::committing, at, odd, n.virtual_clock);
    state_ = tx_state::committed;
    return {};
  }

  // The commit with every status kept, from the start: single-phase for
  // a lone enlistment that asks for it, else two phases.
  [[gnu::noinline]] result<void> commit_with_statuses() {
    // Exactly one enlistment (no popcount: without -mpopcnt it is a call).
    if (enlisted_ != 0 && (enlisted_ & (enlisted_ - 1)) == 0) {
      if (!single_phase()) return outcome_error();
      if (every_rm_in_clean_phases())
        return clean_commit(std::make_index_sequence<n_rms>{});  // rejected: two phases, the clean path
    }
    kept_ = true;
    for_each_enlisted([](enlistment&, enlistment_status& st, auto&) { st = enlistment_status::active; });
    state_ = tx_state::prepreparing;
    return continue_by_status(tx_state::prepreparing, true, tm_->clock().now());
  }

  // The commit after phase p's clean path met reply `odd` from the
  // enlistment at index `at`: the statuses written out, the reply applied,
  // the rest of the protocol status-driven.
  [[gnu::noinline]] result<void> commit_slowly(tx_state p, std::size_t at, reply odd, std::uint64_t clock) {
    const phase_info pi = info_of(p);
    state_ = p;
    kept_ = true;
    for_each_enlisted_at([&]<std::size_t I>(enlistment&, auto&) {
      st_[I] = I < at ? pi.done : I == at ? pi.awaiting : pi.from;
    });
    return continue_by_status(p, other_reply(st_[at], p, odd), clock);
  }

  // The rest of the commit from phase p (its deliveries so far recorded in
  // the statuses; go_on false: a reply asked for a rollback), status-driven.
  // clock: phase p's notification clock (one per phase, as the clean path's).
  result<void> continue_by_status(tx_state p, bool go_on, std::uint64_t clock) {
    if (p == tx_state::prepreparing) {
      if (!(go_on && phase<tx_state::prepreparing>(clock))) return roll_back_from_rm();
      state_ = p = tx_state::preparing;
      go_on = true;
      clock = tm_->clock().now();
    }
    if (p == tx_state::preparing) {
      if (!(go_on && phase<tx_state::preparing>(clock))) return roll_back_from_rm();
      state_ = tx_state::committing;
      clock = tm_->clock().now();
    }
    (void)phase<tx_state::committing>(clock);  // past the commit point: every reply counts as done
    state_ = tx_state::committed;
    return {};
  }

  // Sends phase P to every enlistment due it. False when a reply asked for
  // a rollback (the rest of the phase is not sent; P is before the commit
  // point then).
  template <tx_state P>
  [[gnu::always_inline]] bool phase(std::uint64_t clock) {
    static constexpr phase_info pi = info_of(P);
    notification n{id_, pi.kind, clock, {}};
    bool go_on = true;
    for_each_enlisted([&](enlistment& e, enlistment_status& st, auto& rm) __attribute__((always_inline)) {
      if (!go_on || st != pi.from) return;
      if (!e.mask().has(pi.kind)) {
        st = pi.done;
        return;
      }
      st = pi.awaiting;
      n.key = e.key();
      const reply r = detail::deliver_as<pi.kind>(rm, &e, n);
      if (r.what() == reply::kind::done) [[likely]] {
        st = pi.done;
        merge_clock(r.clock());
        return;
      }
      go_on = other_reply(st, P, r);
    });
    return go_on;
  }

  // A reply other than done to a phase's notification; false when it asks
  // for a rollback.
  [[gnu::noinline]] bool other_reply(enlistment_status& st, tx_state p, reply r) {
    merge_clock(r.clock());
    const bool before_commit_point = p == tx_state::prepreparing || p == tx_state::preparing;
    if (!before_commit_point) {  // COMMIT, ROLLBACK: only done is legal; the outcome stands
      ++protocol_errors_;
      st = info_of(p).done;
      return true;
    }
    switch (r.what()) {
      case reply::kind::read_only: st = enlistment_status::read_only; return true;
      case reply::kind::rollback: st = enlistment_status::rolled_back; break;
      case reply::kind::reject: ++protocol_errors_; st = enlistment_status::rolled_back; break;
      default: ++protocol_errors_; st = enlistment_status::needs_rollback; break;  // later
    }
    return false;
  }

  // SINGLE_PHASE_COMMIT to the one enlistment if it asks for it. True when
  // the commit goes on in two phases (not asked for, or rejected).
  bool single_phase() {
    bool two_phase = true;
    for_each_enlisted([&](enlistment& e, enlistment_status& st, auto& rm) {
      if (!e.mask().has(notify::single_phase_commit)) return;
      state_ = tx_state::single_phase_committing;
      kept_ = true;
      st = enlistment_status::awaiting_single_phase;
      const notification n{id_, notify::single_phase_commit, tm_->clock().now(), e.key()};
      const reply r = detail::deliver_as<notify::single_phase_commit>(rm, &e, n);
      merge_clock(r.clock());
      switch (r.what()) {
        case reply::kind::done:
        case reply::kind::read_only:  // changed nothing: the transaction commits
          st = r.what() == reply::kind::read_only ? enlistment_status::read_only : enlistment_status::committed;
          state_ = tx_state::committed;
          two_phase = false;
          return;
        case reply::kind::rollback:
          st = enlistment_status::rolled_back;
          state_ = tx_state::aborted;
          reason_ = abort_reason::resource_manager;
          two_phase = false;
          return;
        case reply::kind::reject:  // two phases from the start: statuses follow the state again
          kept_ = false;
          return;
        default:  // later: a protocol error; the RM gets ROLLBACK
          ++protocol_errors_;
          st = enlistment_status::needs_rollback;
          state_ = tx_state::prepreparing;  // rolling_back is reached from here
          roll_back(abort_reason::resource_manager);
          two_phase = false;
          return;
      }
    });
    return two_phase;
  }

  result<void> outcome_error() const {
    if (state_ == tx_state::committed) return {};
    return errc::transaction_aborted;
  }

  [[gnu::noinline]] result<void> roll_back_from_rm() {
    roll_back(abort_reason::resource_manager);
    return errc::transaction_aborted;
  }

  // ROLLBACK to every enlistment that has not settled (not read-only, not
  // rolled back by itself), then aborted.
  [[gnu::noinline]] void roll_back(abort_reason why) {
    if (state_ == tx_state::active) clock_ = 0;  // no commit began
    const bool all_active = !kept_;  // not kept: rolled back while active, so all are
    kept_ = true;
    state_ = tx_state::rolling_back;
    reason_ = why;
    for_each_enlisted([&](enlistment&, enlistment_status& st, auto&) {
      if (all_active) st = enlistment_status::active;
      switch (st) {
        case enlistment_status::active:
        case enlistment_status::preprepared:
        case enlistment_status::prepared: st = enlistment_status::needs_rollback; break;
        default: break;
      }
    });
    (void)phase<tx_state::rolling_back>(tm_->clock().now());
    state_ = tx_state::aborted;
  }

  TM* tm_;
  guid id_;
  // Adjacent and zero at construction: set by as few stores as possible.
  std::uint32_t enlisted_ = 0;  // bit I: the storage's I-th RM is enlisted (slot I built)
  std::uint32_t protocol_errors_ = 0;
  tx_state state_ = tx_state::active;
  bool kept_ = false;  // st_ is kept (else every enlistment's status follows state_: the clean path)
  abort_reason reason_ = abort_reason::none;
  std::uint64_t clock_;  // set when the commit begins (or the rollback)
  std::uint32_t masks_ = ~0u;  // the enlisted masks' intersection
  enlistment_status st_[n_rms];  // st_[I]: the I-th enlistment's status (bit I of enlisted_ set)
  alignas(enlistment) std::byte raw_[n_rms * sizeof(enlistment)];
};

}  // namespace ktm::tm
