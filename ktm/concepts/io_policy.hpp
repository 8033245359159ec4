// ktm/concepts/io_policy.hpp: the concept of an I/O policy.
//
// An I/O policy is a directory of named block devices: it opens, creates,
// renames and removes them. A log keeps its base file and containers in one
// I/O policy, so the same log code runs over memory, files, raw devices or a
// fault injector.
//
// Minimal complete definition (p a P&, name a std::string_view):
//   typename P::device_type                    a block_device
//   p.open(name, open_mode)  -> result<device_type>
//   p.exists(name)           -> bool
//   p.remove(name)           -> std::error_code
//   p.rename(from, to)       -> std::error_code
//
// Laws:
//   - open(name, create_new) fails with errc::already_exists when the name
//     exists, open(name, open_existing) with errc::not_found when it does
//     not; a created device has size() == 0.
//   - after open/create, rename or remove returns success, the change to the
//     directory is durable (a file policy fsyncs the parent directory).
//   - two devices opened on the same name see each other's writes.
#pragma once

#include <concepts>
#include <cstdint>
#include <string_view>
#include <system_error>

#include "ktm/concepts/block_device.hpp"
#include "ktm/result.hpp"

namespace ktm {

enum class open_mode : std::uint8_t {
  open_existing,  // fail with errc::not_found if absent
  create_new,     // fail with errc::already_exists if present
  open_or_create,
};

namespace detail {

template <class P>
concept has_device_type = requires { typename P::device_type; };
template <class P>
concept has_open = has_device_type<P> && requires(P& p, std::string_view n, open_mode m) {
  { p.open(n, m) } -> std::same_as<result<typename P::device_type>>;
};
template <class P>
concept has_exists = requires(P& p, std::string_view n) {
  { p.exists(n) } -> std::same_as<bool>;
};
template <class P>
concept has_remove = requires(P& p, std::string_view n) {
  { p.remove(n) } -> std::same_as<std::error_code>;
};
template <class P>
concept has_rename = requires(P& p, std::string_view a, std::string_view b) {
  { p.rename(a, b) } -> std::same_as<std::error_code>;
};

}  // namespace detail

template <class P>
concept io_policy = detail::has_device_type<P> && block_device<typename P::device_type> &&
                    detail::has_open<P> && detail::has_exists<P> && detail::has_remove<P> &&
                    detail::has_rename<P>;

template <class P>
consteval bool check_io_policy() {
  static_assert(detail::has_device_type<P>, "io_policy: missing member type `device_type`");
  if constexpr (detail::has_device_type<P>) {
    static_assert(check_block_device<typename P::device_type>());
  }
  static_assert(detail::has_open<P>,
                "io_policy: missing `result<device_type> open(std::string_view, open_mode)`");
  static_assert(detail::has_exists<P>, "io_policy: missing `bool exists(std::string_view)`");
  static_assert(detail::has_remove<P>, "io_policy: missing `std::error_code remove(std::string_view)`");
  static_assert(detail::has_rename<P>,
                "io_policy: missing `std::error_code rename(std::string_view, std::string_view)`");
  return io_policy<P>;
}

}  // namespace ktm
