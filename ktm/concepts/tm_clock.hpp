// ktm/concepts/tm_clock.hpp: the concept of a TM virtual clock.
//
// Minimal complete definition (c a C&, cc a const C&, v a std::uint64_t):
//   cc.now() -> std::uint64_t      the current value
//   c.advance() -> std::uint64_t   a commit begins: the clock moves forward
//                                  by one and the new value is returned
//   c.merge(v) -> std::uint64_t    adopt v if larger (max-merge); returns the
//                                  value after the merge
//
// Laws: a fresh clock reads 1; advance() returns values strictly larger than
// any now() before it; after merge(v), now() >= v; now() never decreases;
// all three are safe to call from many threads at once.
// Models: atomic_virtual_clock.
#pragma once

#include <concepts>
#include <cstdint>

namespace ktm::tm {
namespace detail {

template <class C>
concept has_now = requires(const C& c) {
  { c.now() } -> std::same_as<std::uint64_t>;
};
template <class C>
concept has_advance = requires(C& c) {
  { c.advance() } -> std::same_as<std::uint64_t>;
};
template <class C>
concept has_merge = requires(C& c, std::uint64_t v) {
  { c.merge(v) } -> std::same_as<std::uint64_t>;
};

}  // namespace detail

template <class C>
concept tm_clock = std::default_initializable<C> && detail::has_now<C> && detail::has_advance<C> &&
                   detail::has_merge<C>;

template <class C>
consteval bool check_tm_clock() {
  static_assert(std::default_initializable<C>, "tm_clock: the clock must be default-constructible (reads 1)");
  static_assert(detail::has_now<C>, "tm_clock: missing `std::uint64_t now() const`");
  static_assert(detail::has_advance<C>, "tm_clock: missing `std::uint64_t advance()`");
  static_assert(detail::has_merge<C>, "tm_clock: missing `std::uint64_t merge(std::uint64_t)`");
  return tm_clock<C>;
}

}  // namespace ktm::tm
