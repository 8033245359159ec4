// ktm/tm/dynamic_storage.hpp: RMs registered at run time, any number of
// enlistments per transaction (allocated as they come, addresses stable).
// Handlers are called through a per-type function table.
#pragma once

#include <cstddef>
#include <deque>

#include "ktm/concepts/enlistment_storage.hpp"
#include "ktm/tm/detail/rm_registry.hpp"
#include "ktm/tm/resource_manager.hpp"

namespace ktm::tm {

class dynamic_storage {
 public:
  static constexpr bool is_static = false;
  static constexpr bool may_hold_durable = true;

  struct set_type {
    std::deque<enlistment> slots;  // deque: emplace_back keeps addresses
  };

  detail::rm_registry& registry() noexcept { return registry_; }
  std::size_t size(set_type& set) const noexcept { return set.slots.size(); }

  template <class R>
  result<enlistment*> add(set_type& set, R& rm, bool accept_durable) {
    if (!accept_durable && detail::is_durable_rm<R>) return errc::volatile_tm_durable_rm;
    if (!registry_.contains(&rm)) return errc::rm_not_found;
    for (const enlistment& e : set.slots)
      if (detail::enlistment_access::rm(e) == &rm) return errc::already_enlisted;
    enlistment& e = set.slots.emplace_back();
    detail::enlistment_access::set_rm(e, &detail::vtable_for<R>, &rm);
    return &e;
  }

  template <class F>
  void for_each_slot(set_type& set, F&& f) {
    for (enlistment& e : set.slots)
      f(e, detail::erased_invoker(detail::enlistment_access::vtable(e), detail::enlistment_access::rm(e)));
  }

  template <class F>
  void for_each_rm(F&& f) {
    for (const auto& inv : registry_.snapshot()) f(inv);
  }

 private:
  detail::rm_registry registry_;
};

static_assert(check_enlistment_storage<dynamic_storage>());

}  // namespace ktm::tm
