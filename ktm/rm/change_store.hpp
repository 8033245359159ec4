// ktm/rm/change_store.hpp: the concept of a permanent store, where a
// change_log applies after-images when a transaction commits.
//
// The permanent store holds committed objects only (the change log keeps
// uncommitted changes in private copies, never here). change_log makes it
// durable with restart areas: checkpoint() writes a snapshot of it, and
// recovery rebuilds it from the latest snapshot plus the after-images of
// the transactions that committed later.
//
// Minimal complete definition (s an S&, cs a const S&, key a std::string_view,
// value a const ktm::rm::image&, f a callable (std::string_view key,
// std::string_view value)):
//   s.apply(key, value)   sets the object (value present) or erases it
//                         (nullopt). Idempotent: applying the same image
//                         twice leaves the same state.
//   s.clear()             removes every object (recovery starts from empty)
//   cs.for_each(f)        calls f once per object (a snapshot; the store
//                         must not change meanwhile: change_log calls it
//                         with its own lock held and applies nothing then)
//
// Laws: apply never fails (a store that can fail must fail-stop on its
// own); for_each after any sequence of apply reflects the last image
// applied per key.
// Models: map_store (ktm/rm/map_store.hpp).
#pragma once

#include <string_view>

#include "ktm/rm/record.hpp"

namespace ktm::rm {

namespace detail {
struct snapshot_visitor_archetype {
  void operator()(std::string_view, std::string_view) const {}
};
template <class S>
concept has_apply = requires(S& s, std::string_view k, const image& v) { s.apply(k, v); };
template <class S>
concept has_clear = requires(S& s) { s.clear(); };
template <class S>
concept has_for_each = requires(const S& s, snapshot_visitor_archetype f) { s.for_each(f); };
}  // namespace detail

template <class S>
concept change_store = detail::has_apply<S> && detail::has_clear<S> && detail::has_for_each<S>;

template <class S>
consteval bool check_change_store() {
  static_assert(detail::has_apply<S>, "change_store: missing `void apply(std::string_view key, const ktm::rm::image&)`");
  static_assert(detail::has_clear<S>, "change_store: missing `void clear()`");
  static_assert(detail::has_for_each<S>,
                "change_store: missing `void for_each(F f) const` calling f(std::string_view key, std::string_view value)");
  return change_store<S>;
}

}  // namespace ktm::rm
