// ktm/io/memory_device.hpp: block devices in process memory.
//
// `memory_device` is a handle on a shared byte buffer: copies and devices
// reopened by name through `memory_storage` see the same bytes, so a test can
// "close" a log and open it again. Nothing survives the process. flush() is a
// no-op that only counts calls (tests count device flushes through it).
//
// Thread safety: a device may be used from many threads at once; each call
// holds the buffer's mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ktm/concepts/block_device.hpp"
#include "ktm/concepts/io_policy.hpp"
#include "ktm/error.hpp"
#include "ktm/result.hpp"

namespace ktm::io {

class memory_device {
 public:
  struct buffer {
    std::mutex mutex;
    std::vector<std::byte> bytes;
    std::uint64_t flushes = 0;
  };

  // A new, empty device. `logical_block_size` must be a power of two.
  explicit memory_device(std::size_t logical_block_size = 1)
      : buf_(std::make_shared<buffer>()), lbs_(logical_block_size) {}
  memory_device(std::shared_ptr<buffer> b, std::size_t logical_block_size)
      : buf_(std::move(b)), lbs_(logical_block_size) {}

  std::uint64_t size() const {
    std::lock_guard g(buf_->mutex);
    return buf_->bytes.size();
  }
  std::size_t logical_block_size() const { return lbs_; }

  std::error_code read(std::uint64_t off, std::span<std::byte> out) {
    if (auto ec = check(off, out.size(), out.data())) return ec;
    std::lock_guard g(buf_->mutex);
    if (!within(off, out.size())) return make_error_code(errc::out_of_range);
    if (!out.empty()) std::memcpy(out.data(), buf_->bytes.data() + off, out.size());
    return {};
  }

  std::error_code write(std::uint64_t off, std::span<const std::byte> in) {
    if (auto ec = check(off, in.size(), in.data())) return ec;
    std::lock_guard g(buf_->mutex);
    if (!within(off, in.size())) return make_error_code(errc::out_of_range);
    if (!in.empty()) std::memcpy(buf_->bytes.data() + off, in.data(), in.size());
    return {};
  }

  std::error_code flush() {
    std::lock_guard g(buf_->mutex);
    ++buf_->flushes;
    return {};
  }

  std::error_code grow(std::uint64_t n) {
    if (n % lbs_ != 0) return make_error_code(errc::misaligned);
    std::lock_guard g(buf_->mutex);
    if (n > buf_->bytes.size()) buf_->bytes.resize(n, std::byte{0});
    return {};
  }

  // Test hooks: how many flushes this buffer has seen; direct byte access.
  std::uint64_t flush_count() const {
    std::lock_guard g(buf_->mutex);
    return buf_->flushes;
  }
  const std::shared_ptr<buffer>& shared_buffer() const { return buf_; }

 private:
  std::error_code check(std::uint64_t off, std::size_t len, const void* p) const {
    if (lbs_ > 1 && (off % lbs_ != 0 || len % lbs_ != 0 ||
                     reinterpret_cast<std::uintptr_t>(p) % lbs_ != 0))
      return make_error_code(errc::misaligned);
    return {};
  }
  bool within(std::uint64_t off, std::size_t len) const {
    const auto n = buf_->bytes.size();
    return off <= n && len <= n - off;
  }

  std::shared_ptr<buffer> buf_;
  std::size_t lbs_;
};

static_assert(check_block_device<memory_device>());

// A directory of named memory devices. Copies share the directory.
class memory_storage {
 public:
  using device_type = memory_device;

  explicit memory_storage(std::size_t logical_block_size = 1)
      : dir_(std::make_shared<directory>()), lbs_(logical_block_size) {}

  result<memory_device> open(std::string_view name, open_mode m) {
    std::lock_guard g(dir_->mutex);
    auto it = dir_->files.find(std::string(name));
    if (it == dir_->files.end()) {
      if (m == open_mode::open_existing) return failure(errc::not_found, {}, std::string(name));
      it = dir_->files.emplace(std::string(name), std::make_shared<memory_device::buffer>()).first;
    } else if (m == open_mode::create_new) {
      return failure(errc::already_exists, {}, std::string(name));
    }
    return memory_device(it->second, lbs_);
  }

  bool exists(std::string_view name) {
    std::lock_guard g(dir_->mutex);
    return dir_->files.count(std::string(name)) != 0;
  }

  std::error_code remove(std::string_view name) {
    std::lock_guard g(dir_->mutex);
    if (dir_->files.erase(std::string(name)) == 0) return make_error_code(errc::not_found);
    return {};
  }

  std::error_code rename(std::string_view from, std::string_view to) {
    std::lock_guard g(dir_->mutex);
    auto it = dir_->files.find(std::string(from));
    if (it == dir_->files.end()) return make_error_code(errc::not_found);
    auto b = it->second;
    dir_->files.erase(it);
    dir_->files[std::string(to)] = std::move(b);
    return {};
  }

  // Test hook: the names in the directory, sorted.
  std::vector<std::string> names() const {
    std::lock_guard g(dir_->mutex);
    std::vector<std::string> v;
    for (auto& [k, _] : dir_->files) v.push_back(k);
    return v;
  }

 private:
  struct directory {
    mutable std::mutex mutex;
    std::map<std::string, std::shared_ptr<memory_device::buffer>> files;
  };
  std::shared_ptr<directory> dir_;
  std::size_t lbs_;
};

static_assert(check_io_policy<memory_storage>());

}  // namespace ktm::io
