// ktm/concepts/block_device.hpp: the concept of a block device.
//
// A block device is a fixed-size, byte-addressed region of storage: a memory
// buffer, a file, or a raw disk. The log keeps its base file and each of its
// containers on one block device.
//
// Minimal complete definition (d a D&, cd a const D&):
//   cd.size()               -> std::uint64_t   bytes addressable now
//   cd.logical_block_size() -> std::size_t     alignment that read/write need
//                                              (a power of two; 1 = none)
//   d.read(offset, span<std::byte>)        -> std::error_code
//   d.write(offset, span<const std::byte>) -> std::error_code
//   d.flush()               -> std::error_code
//   d.grow(new_size)        -> std::error_code
//
// Laws (tests/io/block_device_laws.hpp checks them for every model):
//   - read and write move exactly the bytes asked for or fail; a range that
//     is not within [0, size()) fails with errc::out_of_range and moves none.
//   - a read returns the bytes of the latest write to each byte, or zero
//     for bytes never written (grow zero-fills).
//   - offsets, lengths and buffer addresses must be multiples of
//     logical_block_size(); otherwise errc::misaligned.
//   - flush() makes every write that completed before it durable. When
//     flush() fails, the device is failed for good: every later call returns
//     errc::device_failed (fail-stop; a retried fsync proves nothing).
//   - grow(n) with n <= size() does nothing; otherwise size() becomes n.
// Errors are ktm codes (ktm/error.hpp); errno values go through from_errno.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

namespace ktm {
namespace detail {

template <class D>
concept has_size = requires(const D& cd) {
  { cd.size() } -> std::same_as<std::uint64_t>;
};
template <class D>
concept has_logical_block_size = requires(const D& cd) {
  { cd.logical_block_size() } -> std::same_as<std::size_t>;
};
template <class D>
concept has_read = requires(D& d, std::uint64_t off, std::span<std::byte> out) {
  { d.read(off, out) } -> std::same_as<std::error_code>;
};
template <class D>
concept has_write = requires(D& d, std::uint64_t off, std::span<const std::byte> in) {
  { d.write(off, in) } -> std::same_as<std::error_code>;
};
template <class D>
concept has_flush = requires(D& d) {
  { d.flush() } -> std::same_as<std::error_code>;
};
template <class D>
concept has_grow = requires(D& d, std::uint64_t n) {
  { d.grow(n) } -> std::same_as<std::error_code>;
};

}  // namespace detail

template <class D>
concept block_device =
    std::movable<D> && detail::has_size<D> && detail::has_logical_block_size<D> &&
    detail::has_read<D> && detail::has_write<D> && detail::has_flush<D> && detail::has_grow<D>;

// Use at a public entry point, or after a model, to get a message that names
// the missing operation instead of a wall of template errors:
//   static_assert(ktm::check_block_device<my_device>());
template <class D>
consteval bool check_block_device() {
  static_assert(std::movable<D>, "block_device: the device type must be movable");
  static_assert(detail::has_size<D>, "block_device: missing `std::uint64_t size() const`");
  static_assert(detail::has_logical_block_size<D>,
                "block_device: missing `std::size_t logical_block_size() const`");
  static_assert(detail::has_read<D>,
                "block_device: missing `std::error_code read(std::uint64_t, std::span<std::byte>)`");
  static_assert(detail::has_write<D>,
                "block_device: missing `std::error_code write(std::uint64_t, std::span<const std::byte>)`");
  static_assert(detail::has_flush<D>, "block_device: missing `std::error_code flush()`");
  static_assert(detail::has_grow<D>, "block_device: missing `std::error_code grow(std::uint64_t)`");
  return block_device<D>;
}

}  // namespace ktm
