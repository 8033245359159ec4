// benchmarks/support/counting_storage.hpp: an I/O policy that counts device
// flushes without serialising anything.
//
// Wraps any io_policy; every device it opens shares one atomic counter, so a
// benchmark (or a test: tests/support/counting_storage.hpp) can report the
// device flushes per commit across all files of a log: the containers, the
// base file, the containers a growing log creates. It counts every flush
// call, one that fails included. Put one log on each counting_storage to
// count that log's flushes alone. It does not forward an inner
// sync_directory (ktm/io/directory_sync.hpp): wrap policies without one
// (posix_storage, memory_storage).
//
// An optional flush delay makes each flush sleep first: over memory_storage
// it simulates a device whose flush costs that long, a regime a shared,
// noisy machine's disk cannot hold steady. An optional hook runs before
// each flush (before the delay), on the thread that flushes; a test can
// hold a flush there. It must not call into the log being flushed, which
// may hold its mutex during the flush.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>
#include <thread>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/result.hpp"

namespace ktm::bench {

template <io_policy Inner>
class counting_storage {
  struct shared {
    std::atomic<std::uint64_t> flushes{0};
    std::chrono::microseconds delay{};
    std::function<void()> before_flush;  // set at construction only
  };

 public:
  class device {
   public:
    device(typename Inner::device_type d, std::shared_ptr<shared> s) : d_(std::move(d)), s_(std::move(s)) {}
    std::uint64_t size() const { return d_.size(); }
    std::size_t logical_block_size() const { return d_.logical_block_size(); }
    std::error_code read(std::uint64_t off, std::span<std::byte> out) { return d_.read(off, out); }
    std::error_code write(std::uint64_t off, std::span<const std::byte> in) { return d_.write(off, in); }
    std::error_code flush() {
      s_->flushes.fetch_add(1, std::memory_order_relaxed);
      if (s_->before_flush) s_->before_flush();
      if (s_->delay.count() > 0) std::this_thread::sleep_for(s_->delay);
      return d_.flush();
    }
    std::error_code grow(std::uint64_t n) { return d_.grow(n); }

   private:
    typename Inner::device_type d_;
    std::shared_ptr<shared> s_;
  };
  using device_type = device;
  static constexpr bool write_behind = requires { requires Inner::write_behind; };

  explicit counting_storage(Inner inner, std::chrono::microseconds flush_delay = {},
                            std::function<void()> before_flush = {})
      : inner_(std::move(inner)), s_(std::make_shared<shared>()) {
    s_->delay = flush_delay;
    s_->before_flush = std::move(before_flush);
  }

  result<device> open(std::string_view name, open_mode m) {
    auto d = inner_.open(name, m);
    if (!d) return std::move(d).error();
    return device(std::move(*d), s_);
  }
  bool exists(std::string_view name) { return inner_.exists(name); }
  std::error_code remove(std::string_view name) { return inner_.remove(name); }
  std::error_code rename(std::string_view a, std::string_view b) { return inner_.rename(a, b); }

  // Flush calls on every device this storage (or a copy of it) opened.
  std::uint64_t flushes() const { return s_->flushes.load(std::memory_order_relaxed); }

 private:
  Inner inner_;
  std::shared_ptr<shared> s_;
};

}  // namespace ktm::bench
