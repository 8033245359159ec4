// ktm/concepts/notification_dispatcher.hpp: the concept of a notification
// dispatcher, the policy that decides where and when an RM's handler runs.
//
// Minimal complete definition (d a D&, inv an invoker (rm_vtable.hpp), e an
// enlistment* (null for TM-wide notifications), n a const notification&,
// c a const transaction_core&):
//   D::is_inline                 constexpr bool: dispatch() runs the handler
//   d.dispatch(inv, e, n) -> reply
//       inline: runs inv(e, n) now and returns its reply;
//       otherwise: arranges for inv(e, n) to run later, routes the reply to
//       the transaction (queued_notification::run) and returns reply::later()
//   d.cancel(inv, c) -> std::size_t
//       drops deliveries for c that have not started; returns how many
//
// Laws (tests/tm/dispatcher_laws.hpp checks them for every model):
//   - every notification sent is delivered exactly once, unless cancelled;
//   - deliveries to one RM for one transaction arrive in the order sent;
//   - a handler's returned reply reaches the transaction exactly once;
//   - the full protocol (commit, rollback, read-only, single-phase) gives the
//     same outcome and the same per-RM notification sequence as inline.
// Models: inline_dispatcher, queued_dispatcher, thread_pool_dispatcher.
#pragma once

#include <concepts>
#include <cstddef>

#include "ktm/tm/detail/rm_vtable.hpp"
#include "ktm/tm/transaction_core.hpp"

namespace ktm::tm {
namespace detail {

template <class D>
concept has_is_inline = requires {
  { D::is_inline } -> std::convertible_to<bool>;
};
template <class D>
concept has_dispatch = requires(D& d, const erased_invoker& inv, enlistment* e, const notification& n) {
  { d.dispatch(inv, e, n) } -> std::same_as<reply>;
};
template <class D>
concept has_cancel = requires(D& d, const erased_invoker& inv, const transaction_core& c) {
  { d.cancel(inv, c) } -> std::same_as<std::size_t>;
};

}  // namespace detail

template <class D>
concept notification_dispatcher =
    detail::has_is_inline<D> && detail::has_dispatch<D> && detail::has_cancel<D>;

template <class D>
consteval bool check_notification_dispatcher() {
  static_assert(detail::has_is_inline<D>,
                "notification_dispatcher: missing `static constexpr bool is_inline`");
  static_assert(detail::has_dispatch<D>,
                "notification_dispatcher: missing `reply dispatch(const Invoker&, enlistment*, const notification&)`");
  static_assert(detail::has_cancel<D>,
                "notification_dispatcher: missing `std::size_t cancel(const Invoker&, const transaction_core&)`");
  return notification_dispatcher<D>;
}

}  // namespace ktm::tm
