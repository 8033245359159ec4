// ktm/tm/queued_dispatcher.hpp: each RM pulls its notifications from its own
// queue, on its own thread (KTM's GetNotificationResourceManager).
//
// dispatch() appends to the RM's notification_queue and returns
// reply::later(); the RM calls rm.get_notification(timeout) and either
// answers through the enlistment or calls run() on what it got (runs its
// handler and routes the returned reply). RMs must expose `notifications()`
// (derive from resource_manager_base).
#pragma once

#include <cassert>
#include <cstddef>

#include "ktm/concepts/notification_dispatcher.hpp"
#include "ktm/tm/notification_queue.hpp"

namespace ktm::tm {

struct queued_dispatcher {
  static constexpr bool is_inline = false;

  template <class Invoker>
  reply dispatch(const Invoker& inv, enlistment* e, const notification& n) {
    if constexpr (requires { typename Invoker::rm_type; }) {
      static_assert(detail::has_notification_queue<typename Invoker::rm_type>,
                    "queued_dispatcher: the RM has no `notification_queue& notifications()`; "
                    "derive it from resource_manager_base");
    }
    notification_queue* q = inv.queue();
    assert(q && "queued_dispatcher: the RM has no notification queue");
    q->push(queued_notification(inv.erase(), e, n));
    return reply::later();
  }

  template <class Invoker>
  std::size_t cancel(const Invoker& inv, const transaction_core& c) {
    notification_queue* q = inv.queue();
    return q ? q->cancel(c) : 0;
  }
};

static_assert(check_notification_dispatcher<queued_dispatcher>());

}  // namespace ktm::tm
