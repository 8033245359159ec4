// ktm/tm/resource_manager.hpp: what a resource manager type provides.
//
// An RM is any class with handlers for the notifications it subscribes to.
// Handlers run on the dispatcher's thread (inline: the committing thread)
// and answer by returning a reply (reply.hpp), or reply::later() and then a
// reply call on the enlistment from any thread.
//
// Minimal complete definition (r an R&, e an enlistment&, n a const notification&):
//   r.on_prepare(e, n)  -> reply
//   r.on_commit(e, n)   -> reply
//   r.on_rollback(e, n) -> reply
// Optional:
//   r.on_preprepare(e, n)          -> reply   default: done
//   r.on_single_phase_commit(e, n) -> reply   default: reject (use 2PC)
//   r.on_rm_disconnected(e, n)                informational
//   r.on_tm_online(n)                         informational, e absent
//   r.on_recover(e, n)             -> reply   durable TM recovery: done (the outcome follows)
//   r.on_indoubt(e, n)                        recovered prepared enlistment, outcome unknown
//                                             (a subordinate TM's): keep it prepared
//   r.on_last_recover(n)                      recovery of this RM finished, e absent
//   R::kind  (rm_kind)                        default: volatile_rm
//   r.id()   -> ktm::guid                     identity
//   r.notifications() -> notification_queue&  needed by queued_dispatcher
//
// resource_manager_base<Kind> supplies the last three: derive from it.
//
// Laws: COMMIT and ROLLBACK handlers are idempotent (recovery may deliver
// them again); a handler never blocks waiting for another thread that uses
// the same transaction (under inline_dispatcher it runs with the
// transaction's lock held).
#pragma once

#include <chrono>
#include <optional>

#include "ktm/guid.hpp"
#include "ktm/tm/detail/rm_vtable.hpp"
#include "ktm/tm/notification_queue.hpp"

namespace ktm::tm {

template <rm_kind Kind = rm_kind::volatile_rm>
class resource_manager_base {
 public:
  static constexpr rm_kind kind = Kind;

  explicit resource_manager_base(guid id = guid::generate()) : id_(id) {}
  resource_manager_base(const resource_manager_base&) = delete;
  resource_manager_base& operator=(const resource_manager_base&) = delete;

  const guid& id() const noexcept { return id_; }
  static constexpr bool durable() noexcept { return Kind == rm_kind::durable_rm; }

  notification_queue& notifications() noexcept { return queue_; }

  // Pull model (queued_dispatcher): the next notification for this RM,
  // waiting up to `timeout`.
  template <class Rep, class Period>
  std::optional<queued_notification> get_notification(std::chrono::duration<Rep, Period> timeout) {
    return queue_.pop(timeout);
  }
  // Pulls one notification and runs this RM's handler for it. False on timeout.
  template <class Rep, class Period>
  bool serve_one(std::chrono::duration<Rep, Period> timeout) {
    auto q = queue_.pop(timeout);
    if (!q) return false;
    q->run();
    return true;
  }

 private:
  guid id_;
  notification_queue queue_;
};

template <class R>
concept resource_manager =
    detail::has_on_prepare<R> && detail::has_on_commit<R> && detail::has_on_rollback<R>;

template <class R>
consteval bool check_resource_manager() {
  static_assert(detail::has_on_prepare<R>,
                "resource_manager: missing `reply on_prepare(enlistment&, const notification&)`");
  static_assert(detail::has_on_commit<R>,
                "resource_manager: missing `reply on_commit(enlistment&, const notification&)`");
  static_assert(detail::has_on_rollback<R>,
                "resource_manager: missing `reply on_rollback(enlistment&, const notification&)`");
  return resource_manager<R>;
}

}  // namespace ktm::tm
