// ktm/tm/inline_array_storage.hpp: RMs registered at run time, at most N
// enlistments per transaction, kept inline in the transaction (no
// allocation per transaction). Enlisting an (N+1)th RM fails with
// errc::capacity_exhausted. Handlers are called through a per-type function
// table.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "ktm/concepts/enlistment_storage.hpp"
#include "ktm/tm/detail/rm_registry.hpp"
#include "ktm/tm/resource_manager.hpp"

namespace ktm::tm {

template <std::size_t N>
class inline_array_storage {
  static_assert(N > 0, "inline_array_storage: capacity must be at least 1");

 public:
  static constexpr bool is_static = false;
  static constexpr bool may_hold_durable = true;
  static constexpr std::size_t capacity = N;

  struct set_type {
    std::array<enlistment, N> slots;
    std::uint32_t count = 0;
  };

  detail::rm_registry& registry() noexcept { return registry_; }
  std::size_t size(set_type& set) const noexcept { return set.count; }

  template <class R>
  result<enlistment*> add(set_type& set, R& rm, bool accept_durable) {
    if (!accept_durable && detail::is_durable_rm<R>) return errc::volatile_tm_durable_rm;
    if (!registry_.contains(&rm)) return errc::rm_not_found;
    for (std::uint32_t i = 0; i < set.count; ++i)
      if (detail::enlistment_access::rm(set.slots[i]) == &rm) return errc::already_enlisted;
    if (set.count == N) return errc::capacity_exhausted;
    enlistment& e = set.slots[set.count++];
    detail::enlistment_access::set_rm(e, &detail::vtable_for<R>, &rm);
    return &e;
  }

  template <class F>
  void for_each_slot(set_type& set, F&& f) {
    for (std::uint32_t i = 0; i < set.count; ++i) {
      enlistment& e = set.slots[i];
      f(e, detail::erased_invoker(detail::enlistment_access::vtable(e), detail::enlistment_access::rm(e)));
    }
  }

  template <class F>
  void for_each_rm(F&& f) {
    for (const auto& inv : registry_.snapshot()) f(inv);
  }

 private:
  detail::rm_registry registry_;
};

static_assert(check_enlistment_storage<inline_array_storage<1>>());

}  // namespace ktm::tm
