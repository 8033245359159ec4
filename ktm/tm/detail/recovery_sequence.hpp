// ktm/tm/detail/recovery_sequence.hpp: the recovery notifications of one RM
// (one recover_resource_manager), sent through the TM's dispatcher.
//
// For each recovered enlistment of the RM, in commit order: RECOVER, then
// what recovered_transaction::take said follows (COMMIT, ROLLBACK once a
// superior decided, INDOUBT while it has not; an outcome the enlistment's
// logged mask lacks is skipped); then LAST_RECOVER
// (enlistment null). The handlers run one after
// the other, in that order, under every dispatcher:
//   - inline: all of them now, in the calling thread (a loop, no recursion);
//   - asynchronous (queued, thread pool): only the first is dispatched now;
//     each delivery, once its handler returned, dispatches the next (from
//     the thread that ran it). The dispatched invoker is this sequence (its
//     own rm_vtable), which calls the RM's handler and then moves on; the
//     returned reply is routed by the dispatcher as for any delivery.
// The sequence lives as long as the durable log (the TM); on destruction it
// drops what is still queued in the RM's queue for its transactions (an RM
// that never pulled them), so no queued delivery outlives it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/tm/detail/recovered_transaction.hpp"
#include "ktm/tm/detail/rm_vtable.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/notification_queue.hpp"

namespace ktm::tm::detail {

class recovery_sequence {
 public:
  struct item {
    recovered_transaction* tx;
    enlistment* e;
    notify then;  // after RECOVER: commit, rollback or indoubt
  };
  // Calls the TM's dispatcher `d` (type-erased).
  using dispatch_fn = recovered_transaction::dispatch_fn;

  recovery_sequence(void* dispatcher, dispatch_fn dispatch, bool is_inline, erased_invoker rm, std::uint64_t clock,
                    std::vector<item> items)
      : d_(dispatcher), dispatch_(dispatch), inline_(is_inline), rm_(rm), clock_(clock), items_(std::move(items)) {}
  recovery_sequence(const recovery_sequence&) = delete;
  recovery_sequence& operator=(const recovery_sequence&) = delete;
  ~recovery_sequence() {
    if (inline_) return;
    {
      std::lock_guard l(m_);
      if (step_ > 2 * items_.size()) return;  // LAST_RECOVER sent: nothing of ours is queued
    }
    if (notification_queue* q = rm_.queue())
      for (const item& it : items_) (void)q->cancel(*it.tx);
  }

  void start() {
    if (!inline_) return next();
    for (const item& it : items_) {
      send(it, notify::recover, rm_);
      send(it, it.then, rm_);
    }
    step_ = 2 * items_.size() + 1;
    last_recover();
  }

 private:
  static const rm_vtable vtable_;

  // False: nothing dispatched (an outcome the enlistment's mask lacks).
  bool send(const item& it, notify kind, const erased_invoker& inv) {
    return it.tx->send(*it.e, kind, clock_, !inline_,
                       [&](enlistment* e, const notification& n) { return dispatch_(d_, inv, e, n); });
  }
  void last_recover() { (void)dispatch_(d_, rm_, nullptr, notification{guid{}, notify::last_recover, clock_, {}}); }

  // Asynchronous: dispatches step s (RECOVER / the outcome or INDOUBT of
  // item s / 2, or LAST_RECOVER after the last one).
  // A step with nothing to dispatch moves on to the next at once.
  void next() {
    for (;;) {
      std::size_t s;
      {
        std::lock_guard l(m_);
        s = step_++;
      }
      if (s < 2 * items_.size()) {
        const item& it = items_[s / 2];
        if (send(it, s % 2 ? it.then : notify::recover, erased_invoker(&vtable_, this))) return;
        continue;
      }
      if (s == 2 * items_.size()) last_recover();
      return;
    }
  }
  // A delivery of this sequence: the RM's handler, then (INDOUBT) the
  // outcome if it arrived meanwhile, then the next step.
  reply run(enlistment* e, const notification& n) {
    const reply r = rm_(e, n);
    if (n.kind == notify::indoubt) static_cast<recovered_transaction&>(e->transaction()).indoubt_delivered(*e);
    next();
    return r;
  }

  void* d_;
  dispatch_fn dispatch_;
  bool inline_;
  erased_invoker rm_;
  std::uint64_t clock_;
  std::vector<item> items_;
  std::mutex m_;
  std::size_t step_ = 0;
};

inline const rm_vtable recovery_sequence::vtable_{
    [](void* s, enlistment* e, const notification& n) { return static_cast<recovery_sequence*>(s)->run(e, n); },
    [](void* s) { return static_cast<recovery_sequence*>(s)->rm_.queue(); },
    [](const void* s) { return static_cast<const recovery_sequence*>(s)->rm_.rm_id(); },
    true,
};

}  // namespace ktm::tm::detail
