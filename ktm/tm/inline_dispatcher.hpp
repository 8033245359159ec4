// ktm/tm/inline_dispatcher.hpp: handlers run in the thread that drives the
// transaction (usually the committing thread), called directly.
//
// With static_storage the call is a direct, inlinable call of the RM's
// handler: no virtual call, no queue, no allocation. Contract for RM
// handlers under this dispatcher: they run with the transaction's lock held;
// they may reply through the enlistment from the same thread, or return
// reply::later() and answer from another thread, but must not wait for
// another thread that touches the same transaction.
#pragma once

#include <cstddef>

#include "ktm/concepts/notification_dispatcher.hpp"

namespace ktm::tm {

struct inline_dispatcher {
  static constexpr bool is_inline = true;

  template <class Invoker>
  reply dispatch(const Invoker& inv, enlistment* e, const notification& n) {
    return inv(e, n);
  }
  // The same when n.kind == K is known at compile time: a typed invoker
  // (static_storage) then calls that one handler directly, no switch.
  template <notify K, class Invoker>
  reply dispatch_as(const Invoker& inv, enlistment* e, const notification& n) {
    if constexpr (requires { inv.template call<K>(e, n); }) return inv.template call<K>(e, n);
    else return inv(e, n);
  }
  template <class Invoker>
  std::size_t cancel(const Invoker&, const transaction_core&) noexcept {
    return 0;
  }
};

static_assert(check_notification_dispatcher<inline_dispatcher>());

}  // namespace ktm::tm
