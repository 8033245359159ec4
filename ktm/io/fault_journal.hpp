// ktm/io/fault_journal.hpp: internals of fault injection (not public).
//
// The journal of unflushed writes and what it needs: type-erased access to an
// inner device (so a crash can revert writes after the handle that made them
// is gone), one record per file shared by all its handles, and the seeded
// generator behind every random choice (splitmix64: fully specified, so a
// seed replays the same on every platform).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "ktm/io/aligned_buffer.hpp"
#include "ktm/io/fault_spec.hpp"

namespace ktm::io {

namespace detail {

struct splitmix64 {
  std::uint64_t state;
  std::uint64_t next() noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
};

// Type-erased access to an inner device, kept by journal entries so a crash
// can revert writes after the handle that made them is gone.
class device_access {
 public:
  virtual ~device_access() = default;
  virtual std::size_t block() const = 0;
  virtual std::uint64_t size() const = 0;
  virtual std::error_code read(std::uint64_t off, std::span<std::byte> out) = 0;
  virtual std::error_code write(std::uint64_t off, std::span<const std::byte> in) = 0;
  virtual std::error_code flush() = 0;
};

template <class Inner>
class access_to final : public device_access {
 public:
  explicit access_to(std::shared_ptr<Inner> d) : d_(std::move(d)) {}
  std::size_t block() const override { return d_->logical_block_size(); }
  std::uint64_t size() const override { return d_->size(); }
  std::error_code read(std::uint64_t o, std::span<std::byte> b) override { return d_->read(o, b); }
  std::error_code write(std::uint64_t o, std::span<const std::byte> b) override {
    return d_->write(o, b);
  }
  std::error_code flush() override { return d_->flush(); }

 private:
  std::shared_ptr<Inner> d_;
};

struct journal_entry {
  std::shared_ptr<device_access> dev;
  std::uint64_t offset;
  aligned_buffer before;
  aligned_buffer after;
};

// One file as the controller sees it (shared by every handle on it).
struct file_state {
  std::string name;
  call_counts counts{};
  std::vector<journal_entry> unflushed{};
  std::weak_ptr<device_access> last_access{};
};

}  // namespace detail

}  // namespace ktm::io
