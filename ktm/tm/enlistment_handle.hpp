// ktm/tm/enlistment_handle.hpp: the RM's owning handle to an enlistment,
// returned by basic_transaction::enlist().
//
// Dropping the handle is the RM going away: before the enlistment has
// prepared, the transaction rolls back (abort_reason::enlistment_dropped);
// while a SINGLE_PHASE_COMMIT is unanswered the outcome becomes unknown
// (state indoubt, RM_DISCONNECTED to the other enlistments); afterwards it
// does nothing. release() gives up ownership without any of that (the RM
// then answers from its handlers only). The handle must not outlive its
// transaction.
#pragma once

#include <utility>

#include "ktm/tm/enlistment.hpp"

namespace ktm::tm {

class enlistment_handle {
 public:
  enlistment_handle() noexcept = default;
  explicit enlistment_handle(enlistment& e) noexcept : e_(&e) {}
  enlistment_handle(enlistment_handle&& o) noexcept : e_(std::exchange(o.e_, nullptr)) {}
  enlistment_handle& operator=(enlistment_handle&& o) noexcept {
    if (this != &o) {
      reset();
      e_ = std::exchange(o.e_, nullptr);
    }
    return *this;
  }
  enlistment_handle(const enlistment_handle&) = delete;
  enlistment_handle& operator=(const enlistment_handle&) = delete;
  ~enlistment_handle() { reset(); }

  enlistment& get() const noexcept { return *e_; }
  enlistment* operator->() const noexcept { return e_; }
  enlistment& operator*() const noexcept { return *e_; }
  explicit operator bool() const noexcept { return e_ != nullptr; }

  enlistment* release() noexcept { return std::exchange(e_, nullptr); }

  // Drops the enlistment now (see above).
  void reset() {
    enlistment* e = std::exchange(e_, nullptr);
    if (!e) return;
    switch (e->status()) {  // settled enlistments need no lock
      case enlistment_status::committed:
      case enlistment_status::rolled_back:
      case enlistment_status::read_only:
      case enlistment_status::prepared:
      case enlistment_status::awaiting_commit:
      case enlistment_status::awaiting_rollback:
      case enlistment_status::needs_rollback: return;
      default: drop(*e);
    }
  }

 private:
  // Out of line: dropping a settled handle (the common case) stays small.
  // An enlistment of a static transaction has no transaction to tell.
  [[gnu::noinline]] static void drop(enlistment& e) {
    if (e.has_transaction()) e.transaction().on_handle_dropped(e);
  }

  enlistment* e_ = nullptr;
};

}  // namespace ktm::tm
