// ktm/concepts/enlistment_storage.hpp: the concept of an enlistment storage,
// the policy that knows a TM's resource managers and keeps each
// transaction's enlistments.
//
// Minimal complete definition (s an S&, set an S::set_type&, f a callable
// f(enlistment&, const Invoker&), g a callable g(const Invoker&), rm an R&):
//   S::is_static          constexpr bool: the set of RM types is fixed
//   S::may_hold_durable   constexpr bool: a durable RM can be enlisted
//   typename S::set_type  one transaction's enlistments; default-constructed
//                         empty; enlistment addresses stable for its lifetime
//   s.size(set) -> std::size_t          enlistments in use
//   s.for_each_slot(set, f)             each enlistment in use, in enlistment
//                                       order, with an invoker for its RM
//   s.for_each_rm(g)                    each RM known to the TM
//   s.for_each_slot_unfiltered(set, f)  when S::is_static: every slot, used
//                                       or not, in order
//   s.add(set, rm, accept_durable) -> result<enlistment*>
//       a fresh slot for rm: errc::already_enlisted, errc::rm_not_found,
//       errc::capacity_exhausted, errc::volatile_tm_durable_rm (the concept
//       checks the call with a probe RM type: a storage that holds only
//       some RM types rejects the others inside add, as static_storage's
//       static_assert does, not in its signature)
//   s.registry() -> a registry r with                  when !S::is_static
//       r.add(rm, accept_durable) -> result<void>      (add_resource_manager)
//       r.remove(&rm) -> result<void>                  (remove_resource_manager)
//
// Laws (tests/tm/storage_laws.hpp checks them for every model, under every
// dispatcher):
//   - add then for_each_slot visits the new slot exactly once;
//   - adding the same RM twice to one set fails with errc::already_enlisted;
//   - a static model allocates nothing per transaction (a synchronous
//     commit or rollback under the inline dispatcher; the allocations of a
//     queueing dispatcher are the dispatcher's).
// Models: static_storage<RMs...>, inline_array_storage<N>, dynamic_storage.
#pragma once

#include <concepts>
#include <cstddef>

#include "ktm/result.hpp"
#include "ktm/tm/detail/rm_vtable.hpp"

namespace ktm::tm {
namespace detail {

struct probe_slot_fn {
  template <class Inv>
  void operator()(enlistment&, const Inv&) const {}
};
struct probe_rm_fn {
  template <class Inv>
  void operator()(const Inv&) const {}
};

template <class S>
concept has_storage_flags = requires {
  { S::is_static } -> std::convertible_to<bool>;
  { S::may_hold_durable } -> std::convertible_to<bool>;
};
template <class S>
concept has_set_type = requires { typename S::set_type; } && std::default_initializable<typename S::set_type>;
template <class S>
concept has_size = has_set_type<S> && requires(S& s, typename S::set_type& set) {
  { s.size(set) } -> std::same_as<std::size_t>;
};
template <class S>
concept has_for_each_slot = has_set_type<S> && requires(S& s, typename S::set_type& set) {
  s.for_each_slot(set, probe_slot_fn{});
};
template <class S>
concept has_for_each_rm = requires(S& s) { s.for_each_rm(probe_rm_fn{}); };
// A static storage also visits every slot, used or not (the straight-line
// commit of detail/straight_line_commit.hpp: the statuses rule unused ones out).
template <class S>
concept has_unfiltered_if_static =
    has_storage_flags<S> && has_set_type<S> &&
    (!bool(S::is_static) || requires(S& s, typename S::set_type& set) {
      s.for_each_slot_unfiltered(set, probe_slot_fn{});
    });

// An RM type to probe add and the registry with: the minimal complete
// definition of resource_manager, declared only (never called).
struct probe_rm {
  reply on_prepare(enlistment&, const notification&);
  reply on_commit(enlistment&, const notification&);
  reply on_rollback(enlistment&, const notification&);
};

template <class S>
concept has_add = has_set_type<S> && requires(S& s, typename S::set_type& set, probe_rm& rm, bool accept_durable) {
  { s.add(set, rm, accept_durable) } -> std::same_as<result<enlistment*>>;
};
template <class S>
concept has_registry = requires(S& s, probe_rm& rm, bool accept_durable) {
  { s.registry().add(rm, accept_durable) } -> std::same_as<result<void>>;
  { s.registry().remove(&rm) } -> std::same_as<result<void>>;
};
// A static storage's RMs are fixed at construction; any other one is
// registered at run time through its registry.
template <class S>
concept has_registry_unless_static = has_storage_flags<S> && (bool(S::is_static) || has_registry<S>);

}  // namespace detail

template <class S>
concept enlistment_storage = detail::has_storage_flags<S> && detail::has_set_type<S> &&
                             detail::has_size<S> && detail::has_for_each_slot<S> &&
                             detail::has_for_each_rm<S> && detail::has_add<S> &&
                             detail::has_registry_unless_static<S> && detail::has_unfiltered_if_static<S>;

template <class S>
consteval bool check_enlistment_storage() {
  static_assert(detail::has_storage_flags<S>,
                "enlistment_storage: missing `static constexpr bool is_static` or `may_hold_durable`");
  static_assert(detail::has_set_type<S>,
                "enlistment_storage: missing default-constructible member type `set_type`");
  static_assert(detail::has_size<S>, "enlistment_storage: missing `std::size_t size(set_type&)`");
  static_assert(detail::has_for_each_slot<S>,
                "enlistment_storage: missing `void for_each_slot(set_type&, F)`");
  static_assert(detail::has_for_each_rm<S>, "enlistment_storage: missing `void for_each_rm(F)`");
  static_assert(detail::has_add<S>,
                "enlistment_storage: missing `result<enlistment*> add(set_type&, R& rm, bool accept_durable)`");
  static_assert(detail::has_registry_unless_static<S>,
                "enlistment_storage: a storage with is_static == false is missing `registry()` "
                "(with `result<void> add(R& rm, bool accept_durable)` and `result<void> remove(void* rm)`)");
  static_assert(detail::has_unfiltered_if_static<S>,
                "enlistment_storage: a storage with is_static == true is missing "
                "`void for_each_slot_unfiltered(set_type&, F)` (every slot, used or not)");
  return enlistment_storage<S>;
}

}  // namespace ktm::tm
