// ktm/tm/transaction_core.hpp: the policy-independent part of a transaction.
//
// Holds the state machine (states.hpp), the lock, the count of outstanding
// replies, the client's completion and the rules for applying a reply. The
// policy-dependent part (sending notifications, logging, the clock) is in
// basic_transaction<TM> (transaction.hpp), which derives from this class and
// is reached from here only through hooks_->drive, on the paths where a reply
// arrives from outside the driving thread.
//
// Concurrency: every field below the lock is guarded by lock_. state_ and
// done_ are atomics so that queries need no lock. "Driving" means: holding
// the lock and running the protocol forward (sending the next phase). The
// thread holding the lock is recorded per thread (detail::tl_holder) so that
// an RM handler running inline may reply through the enlistment, or the
// client's completion may query the transaction, without relocking.
//
// Superior TMs (ktm/tm/superior): a transaction with a superior, or with
// subordinates, queues its messages in an outbox while it holds the lock;
// the outermost guard posts them to the TM's superior_sink after unlocking
// (never a lock across a send). Transactions of a TM without a transport
// never fill the outbox and pay one emptiness test per release.
//
// The reply rules (applying an RM's reply to its enlistment) are defined in
// detail/transaction_replies.hpp, the superior side in
// detail/transaction_superior.hpp; both are included at the end of this header.
#pragma once

#include <atomic>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ktm/error.hpp"
#include "ktm/guid.hpp"
#include "ktm/result.hpp"
#include "ktm/tm/detail/inplace_function.hpp"
#include "ktm/tm/detail/spin_lock.hpp"
#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/reply.hpp"
#include "ktm/tm/states.hpp"
#include "ktm/tm/superior/sink.hpp"

namespace ktm::tm {

class transaction_core;
namespace detail {
inline thread_local transaction_core* tl_holder = nullptr;
class timeout_service;
}  // namespace detail

// The longest description a transaction takes, in characters.
inline constexpr std::size_t max_description = 64;

using completion_callback = detail::inplace_function<void(result<void>), 48>;

class transaction_core {
 public:
  transaction_core(const transaction_core&) = delete;
  transaction_core& operator=(const transaction_core&) = delete;

  const guid& id() const noexcept { return id_; }
  tx_state internal_state() const noexcept { return state_.load(std::memory_order_acquire); }
  transaction_state state() const noexcept { return public_state(internal_state()); }
  transaction_outcome outcome() const noexcept { return public_outcome(internal_state()); }
  // The outcome is known and the client's completion has been released.
  bool is_done() const noexcept { return done_.load(std::memory_order_acquire); }

  abort_reason reason() const {
    guard g(*this);
    return reason_;
  }
  std::string description() const {
    guard g(*this);
    return std::string(desc_, desc_len_);
  }
  // The virtual clock stamped on the commit: the TM's clock when commit
  // began, max-merged with the clock values the RMs passed back.
  std::uint64_t commit_clock() const {
    guard g(*this);
    return clock_;
  }
  // Replies that were illegal for the notification they answered (reply.hpp).
  std::uint32_t protocol_errors() const {
    guard g(*this);
    return protocol_errors_;
  }

  // Sets the description; at most max_description characters else
  // errc::too_large; only while active, else errc::invalid_state.
  result<void> set_description(std::string_view d) {
    if (d.size() > max_description) return errc::too_large;
    guard g(*this);
    if (internal_state() != tx_state::active) return errc::invalid_state;
    std::memcpy(desc_, d.data(), d.size());
    desc_len_ = static_cast<std::uint8_t>(d.size());
    return {};
  }

  // For asynchronous dispatchers (notification_queue.hpp): a handler ran
  // elsewhere and returned r for notification `kind`; a stale reply is
  // dropped, an illegal one counted and read safely (reply.hpp).
  void route_returned(enlistment& e, notify kind, reply r) {
    guard g(*this);
    apply_returned_locked(e, kind, r);
    if (!g.nested() && needs_drive_locked()) hooks_->drive(*this);
  }
  // An asynchronous delivery for this transaction is finished with.
  void release_inflight() noexcept {
    guard g(*this);
    assert(inflight_ > 0);
    --inflight_;
    progressed_ = true;
  }
  // Keeps the transaction from being destroyed until release_inflight():
  // a superior endpoint that holds an enlistment across threads.
  void pin() noexcept {
    guard g(*this);
    hand_off_locked();
  }

  // ---- superior TMs (ktm/tm/superior) ----
  // The superior TM this transaction is subordinate to (nil: none).
  bool has_superior() const noexcept { return has_superior_; }
  const guid& superior() const noexcept { return superior_; }
  // What this subordinate transaction waits for from its superior, to ask
  // again when a message may have been lost: commit_request (the client
  // committed, the superior has not started), request_outcome (prepared, no
  // outcome yet), or kind 0 (nothing).
  superior_message_kind superior_wait() const;
  // A message of the superior for this transaction (the TM's endpoint calls it).
  void superior_command(const superior_message& m) { hooks_->command(*this, m); }
  // Queues m for the TM's sink s: posted once this thread's outermost guard
  // releases the lock; posted at once when no lock is held.
  void post(superior_sink& s, const superior_message& m);

 protected:
  struct hooks {
    void (*drive)(transaction_core&);  // lock held: run the protocol forward
    // a message from the superior (no lock held); null: it has none
    void (*command)(transaction_core&, const superior_message&) = nullptr;
    // lock held: the RMs' clock values (merge_clock_) into the TM's clock;
    // null: nothing to merge into
    void (*merge)(transaction_core&) = nullptr;
  };

  // How a guard knows the transaction's threading policy (threading.hpp):
  // from the transaction at run time (calls that come through an enlistment
  // or the timer), or at compile time (basic_transaction's own calls).
  enum class lock_mode : std::uint8_t { runtime, concurrent, single };

  // RAII lock that does nothing when this thread holds the lock already, and
  // on the outermost release wakes waiters and runs the client's completion
  // (outside the lock, from a local copy: the transaction may be gone then).
  // Under single_threaded there is no lock: nesting is a flag in the
  // transaction, and nobody can be waiting.
  template <lock_mode M>
  class basic_guard {
    bool concurrent() const noexcept {
      if constexpr (M == lock_mode::runtime) return c_.concurrent_;
      else return M == lock_mode::concurrent;
    }

   public:
    [[gnu::always_inline]] explicit basic_guard(const transaction_core& c) noexcept : c_(const_cast<transaction_core&>(c)) {
      if (!concurrent()) {
        nested_ = c_.held_;
        c_.held_ = true;
        if (nested_) ++c_.entries_;
        return;
      }
      nested_ = detail::tl_holder == &c;
      if (nested_) {
        ++c_.entries_;
        return;
      }
      c_.lock_.lock();
      if (c_.creator_ != &detail::tl_holder) c_.foreign_.store(true, std::memory_order_relaxed);
      prev_ = detail::tl_holder;
      detail::tl_holder = &c_;
    }
    basic_guard(const basic_guard&) = delete;
    basic_guard& operator=(const basic_guard&) = delete;
    [[gnu::always_inline]] ~basic_guard() {
      if (nested_) return;
      const bool conc = concurrent();
      if (conc) {
        detail::tl_holder = prev_;
        if (c_.waiters_ != 0 && c_.progressed_) {
          c_.progress_.fetch_add(1, std::memory_order_release);
          c_.progress_.notify_all();
        }
      } else {
        c_.held_ = false;
      }
      c_.progressed_ = false;
      if (!c_.has_fire_ && c_.outbox_.empty()) [[likely]] {
        if (conc) c_.lock_.unlock();
        return;
      }
      c_.fire_and_unlock(conc);
    }
    bool nested() const noexcept { return nested_; }

   private:
    transaction_core& c_;
    transaction_core* prev_ = nullptr;
    bool nested_;
  };
  using guard = basic_guard<lock_mode::runtime>;

  // A guard's outermost release with a completion or superior messages due:
  // runs the completion and posts the messages outside the lock, from local
  // copies. Out of line: the common release stays small.
  [[gnu::noinline]] void fire_and_unlock(bool conc) {
    const bool has_fire = has_fire_;
    completion_callback fire = std::move(fire_);
    has_fire_ = false;
    result<void> r = !has_fire || client_rolled_back_ ? result<void>{} : outcome_result();
    std::vector<superior_message> out;
    if (!outbox_.empty()) [[unlikely]] out.swap(outbox_);
    superior_sink* sink = sink_;
    if (conc) lock_.unlock();
    // The transaction may be gone from here on.
    if (sink) [[likely]]  // none: a recovered in-doubt transaction of a TM without transport
      for (const superior_message& m : out) sink->post(m);
    if (has_fire) fire(std::move(r));
  }

  transaction_core(const hooks* h, const guid& id, bool concurrent = true) noexcept
      : hooks_(h), id_(id), concurrent_(concurrent) {}

  // Nothing can still refer to this transaction: it is done, nothing is
  // outstanding, and no thread but this one (its creator) ever locked it, so
  // the destructor needs no lock. done_ is read first: a foreign thread sets
  // foreign_ before it can set done_.
  //
  // A delivery or pin another thread holds (inflight_) is released under the
  // lock by that thread, possibly after done_: so taking one marks the
  // transaction foreign at once (hand_off_locked), or the creator could read
  // foreign_ just before that thread's guard sets it and inflight_ just
  // after it is decremented, and destroy the transaction under the guard.
  bool settled_on_creator_thread() const noexcept {
    return is_done() && !foreign_.load(std::memory_order_acquire) && creator_ == &detail::tl_holder &&
           pending_ == 0 && inflight_ == 0 && !timer_armed_;
  }
  ~transaction_core() = default;

  // Another thread will hold and release this transaction (an asynchronous
  // delivery, a pin): see settled_on_creator_thread.
  void hand_off_locked() noexcept {
    ++inflight_;
    foreign_.store(true, std::memory_order_relaxed);
  }

  void set_state_locked(tx_state to) noexcept {
    assert(is_legal_transition(internal_state(), to));
    state_.store(to, std::memory_order_release);
  }

  bool needs_drive_locked() const noexcept {
    return pending_ == 0 || need_send_ || rollback_requested_ != abort_reason::none;
  }

  void request_rollback_locked(abort_reason why) noexcept {
    if (rollback_requested_ == abort_reason::none) rollback_requested_ = why;
  }

  // The client's result for a final state.
  result<void> outcome_result() const noexcept {
    switch (internal_state()) {
      case tx_state::committed: return {};
      case tx_state::in_doubt: return errc::in_doubt;
      default: return errc::transaction_aborted;
    }
  }

  // An RM's clock value, max-merged into the transaction's (and later the TM's).
  void note_clock_locked(std::uint64_t clock) noexcept {
    if (clock > clock_) clock_ = clock;
    if (clock > merge_clock_) merge_clock_ = clock;
  }

  [[gnu::always_inline]] void finish_locked() noexcept {
    progressed_ = true;
    if (done_.load(std::memory_order_relaxed)) return;
    // the TM's clock has the RMs' values before anyone sees the outcome
    if (merge_clock_ != 0 && hooks_->merge) [[unlikely]] hooks_->merge(*this);
    done_.store(true, std::memory_order_release);
    if (completion_) [[unlikely]] arm_completion_locked();
  }
  // The client's completion is due: the guard's release runs it.
  [[gnu::noinline]] void arm_completion_locked() noexcept {
    fire_ = std::move(completion_);
    has_fire_ = true;
  }

  // Waits, without the lock, until pred() (evaluated under the lock) holds.
  // Under single_threaded nothing else can make pred() true: returns
  // whether it holds.
  template <class Pred>
  bool wait_until(Pred pred) {
    if (!concurrent_) {
      guard g(*this);
      return pred();
    }
    for (;;) {
      std::uint32_t seen;
      {
        guard g(*this);
        if (pred()) return true;
        assert(!g.nested() && "a transaction cannot wait for itself from a handler");
        ++waiters_;
        seen = progress_.load(std::memory_order_acquire);
      }
      progress_.wait(seen, std::memory_order_acquire);
      guard g(*this);
      --waiters_;
    }
  }

  // Applies an RM's reply to enlistment e. Lock held.
  std::error_code apply_reply_locked(enlistment& e, reply_kind k, std::uint64_t clock) noexcept;
  // Maps a handler's returned reply onto a reply call, then applies it.
  void apply_returned_locked(enlistment& e, notify kind, reply r) noexcept;

  void on_timeout() {
    guard g(*this);
    // During a single-phase commit the RM decides; if it rejects, the
    // transaction is unprepared again and rolls back (transaction_replies.hpp).
    if (internal_state() == tx_state::single_phase_committing) timed_out_ = true;
    if (!is_before_prepared(internal_state())) return;
    request_rollback_locked(abort_reason::timeout);
    if (!g.nested()) hooks_->drive(*this);
  }

  // The RM dropped its handle to e (enlistment_handle.hpp).
  void on_handle_dropped(enlistment& e);
  result<void> set_recovery_information(enlistment& e, std::span<const std::byte> info);
  result<void> answer(enlistment& e, reply_kind k, std::uint64_t clock);

  // Queues a message for this TM's sink (lock held).
  void post_locked(superior_message_kind k, transaction_outcome o = transaction_outcome::undetermined);

  // A prepared RM asks the superior for the outcome (REQUEST_OUTCOME).
  result<void> request_outcome();

  friend class enlistment;
  friend class enlistment_handle;
  friend class detail::timeout_service;

  const hooks* hooks_;
  guid id_;
  const bool concurrent_;       // thread_safe policy (else single_threaded)
  bool held_ = false;           // single_threaded: a guard is active
  bool exposed_ = false;        // another thread may reach it: an enlistment or a timer exists
  mutable detail::spin_lock lock_;
  std::atomic<tx_state> state_{tx_state::active};
  std::atomic<bool> done_{false};
  std::atomic<bool> foreign_{false};  // a thread other than the creator locked it, or holds it (inflight_)
  const void* creator_ = &detail::tl_holder;  // identifies the creating thread
  std::atomic<std::uint32_t> progress_{0};  // bumped when waiters_ != 0
  std::uint32_t pending_ = 0;     // replies outstanding in the current phase
  std::uint32_t inflight_ = 0;    // deliveries held by asynchronous dispatchers
  std::uint32_t waiters_ = 0;
  std::uint32_t protocol_errors_ = 0;
  // Nested guard entries: every call that reaches the transaction from a
  // handler running under the driver's lock. Unchanged across a handler
  // means the handler touched nothing (detail/straight_line_commit.hpp).
  std::uint32_t entries_ = 0;
  bool need_send_ = false;        // the current phase's notifications are unsent
  bool client_decided_ = false;   // commit or rollback was called
  bool client_rolled_back_ = false;  // ... and it was rollback
  bool has_fire_ = false;
  bool progressed_ = false;       // something a waiter may wait for changed
  bool timer_armed_ = false;
  bool logged_ = false;           // a commit record was written
  abort_reason rollback_requested_ = abort_reason::none;
  bool timed_out_ = false;  // the timeout expired during a single-phase commit
  abort_reason reason_ = abort_reason::none;
  std::uint64_t clock_ = 0;
  std::uint64_t merge_clock_ = 0;  // largest reply clock not yet given to the TM
  enlistment* single_phase_ = nullptr;
  // superior TMs
  bool has_superior_ = false;     // a superior enlisted (superior_ names it)
  bool superior_prepare_ = false; // the superior skipped PREPREPARE: go on to prepare
  bool dropped_out_ = false;      // nothing prepared: left the superior's transaction read-only
  superior_sink* sink_ = nullptr; // the TM's endpoint, once a message was queued
  guid superior_{};
  std::vector<superior_message> outbox_;  // posted after the lock is released
  completion_callback completion_;
  completion_callback fire_;
  std::uint8_t desc_len_ = 0;
  char desc_[max_description];
};

}  // namespace ktm::tm

#include "ktm/tm/detail/transaction_replies.hpp"   // the reply rules
#include "ktm/tm/detail/transaction_superior.hpp"  // the superior side
