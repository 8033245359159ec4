// ktm/tm/detail/rm_registry.hpp: the resource managers registered with a TM
// whose storage is type-erased (inline_array_storage, dynamic_storage).
//
// RMs come and go at run time: add() and remove() may be called from any
// thread. Removing an RM stops new enlistments; the RM object must outlive
// the enlistments it already has.
#pragma once

#include <algorithm>
#include <mutex>
#include <vector>

#include "ktm/result.hpp"
#include "ktm/tm/detail/rm_vtable.hpp"

namespace ktm::tm::detail {

class rm_registry {
 public:
  template <class R>
  result<void> add(R& rm, bool accept_durable) {
    if (!accept_durable && is_durable_rm<R>) return errc::volatile_tm_durable_rm;
    std::lock_guard l(m_);
    if (find_locked(&rm)) return errc::already_exists;
    entries_.push_back(erased_invoker(&vtable_for<R>, &rm));
    return {};
  }
  result<void> remove(void* rm) {
    std::lock_guard l(m_);
    auto it = std::find_if(entries_.begin(), entries_.end(), [&](const erased_invoker& i) { return i.rm() == rm; });
    if (it == entries_.end()) return errc::rm_not_found;
    entries_.erase(it);
    return {};
  }
  bool contains(void* rm) const {
    std::lock_guard l(m_);
    return find_locked(rm);
  }
  std::vector<erased_invoker> snapshot() const {
    std::lock_guard l(m_);
    return entries_;
  }
  std::size_t size() const {
    std::lock_guard l(m_);
    return entries_.size();
  }

 private:
  bool find_locked(void* rm) const {
    return std::any_of(entries_.begin(), entries_.end(), [&](const erased_invoker& i) { return i.rm() == rm; });
  }
  mutable std::mutex m_;
  std::vector<erased_invoker> entries_;
};

}  // namespace ktm::tm::detail
