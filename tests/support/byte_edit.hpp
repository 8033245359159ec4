// tests/support/byte_edit.hpp: edit the bytes of a named memory_storage file.
//
// Damage on demand for corruption tests: flip a bit, truncate, overwrite,
// zero or read a whole file. These bypass the device interface (no alignment,
// no flush counting) and work on the shared buffer every handle sees. Misuse
// (a missing name, a range past the end) throws std::out_of_range, so a test
// that edits the wrong file fails loudly.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ktm/io/memory_device.hpp"

namespace ktm::test {

namespace detail {
inline std::shared_ptr<io::memory_device::buffer> buffer_of(io::memory_storage& s,
                                                            std::string_view name) {
  auto d = s.open(name, open_mode::open_existing);
  if (!d) throw std::out_of_range("byte_edit: no file named " + std::string(name));
  return d->shared_buffer();
}
inline void check_range(const std::vector<std::byte>& b, std::uint64_t off, std::size_t len) {
  if (off > b.size() || len > b.size() - off)
    throw std::out_of_range("byte_edit: range beyond the end of the file");
}
}  // namespace detail

// The whole file.
inline std::vector<std::byte> read_all(io::memory_storage& s, std::string_view name) {
  auto b = detail::buffer_of(s, name);
  std::lock_guard g(b->mutex);
  return b->bytes;
}

inline std::uint64_t file_size(io::memory_storage& s, std::string_view name) {
  auto b = detail::buffer_of(s, name);
  std::lock_guard g(b->mutex);
  return b->bytes.size();
}

// Flips bit `bit` (0..7) of the byte at `offset`.
inline void flip_bit(io::memory_storage& s, std::string_view name, std::uint64_t offset,
                     unsigned bit) {
  auto b = detail::buffer_of(s, name);
  std::lock_guard g(b->mutex);
  detail::check_range(b->bytes, offset, 1);
  b->bytes[offset] ^= std::byte(1u << (bit & 7u));
}

// Cuts the file to `new_size` bytes (must not be larger than now).
inline void truncate(io::memory_storage& s, std::string_view name, std::uint64_t new_size) {
  auto b = detail::buffer_of(s, name);
  std::lock_guard g(b->mutex);
  detail::check_range(b->bytes, new_size, 0);
  b->bytes.resize(new_size);
}

// Replaces bytes at `offset` with `bytes`.
inline void overwrite(io::memory_storage& s, std::string_view name, std::uint64_t offset,
                      std::span<const std::byte> bytes) {
  auto b = detail::buffer_of(s, name);
  std::lock_guard g(b->mutex);
  detail::check_range(b->bytes, offset, bytes.size());
  if (!bytes.empty()) std::memcpy(b->bytes.data() + offset, bytes.data(), bytes.size());
}

// Sets `length` bytes at `offset` to `value`.
inline void fill(io::memory_storage& s, std::string_view name, std::uint64_t offset,
                 std::size_t length, std::byte value) {
  auto b = detail::buffer_of(s, name);
  std::lock_guard g(b->mutex);
  detail::check_range(b->bytes, offset, length);
  std::memset(b->bytes.data() + offset, static_cast<int>(value), length);
}

// The bytes of a string, for building expected contents.
inline std::vector<std::byte> bytes_of(std::string_view s) {
  std::vector<std::byte> v(s.size());
  if (!s.empty()) std::memcpy(v.data(), s.data(), s.size());
  return v;
}

}  // namespace ktm::test
