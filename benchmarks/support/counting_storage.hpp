// benchmarks/support/counting_storage.hpp: an I/O policy that counts device
// flushes without serialising anything.
//
// Wraps any io_policy; every device it opens shares one atomic counter, so a
// benchmark can report device flushes per commit across all files of a log.
// An optional flush delay makes each flush sleep first: over memory_storage
// it simulates a device whose flush costs that long, a regime a shared,
// noisy machine's disk cannot hold steady.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
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
 public:
  class device {
   public:
    device(typename Inner::device_type d, std::shared_ptr<std::atomic<std::uint64_t>> n,
           std::chrono::microseconds delay)
        : d_(std::move(d)), n_(std::move(n)), delay_(delay) {}
    std::uint64_t size() const { return d_.size(); }
    std::size_t logical_block_size() const { return d_.logical_block_size(); }
    std::error_code read(std::uint64_t off, std::span<std::byte> out) { return d_.read(off, out); }
    std::error_code write(std::uint64_t off, std::span<const std::byte> in) { return d_.write(off, in); }
    std::error_code flush() {
      n_->fetch_add(1, std::memory_order_relaxed);
      if (delay_.count() > 0) std::this_thread::sleep_for(delay_);
      return d_.flush();
    }
    std::error_code grow(std::uint64_t n) { return d_.grow(n); }

   private:
    typename Inner::device_type d_;
    std::shared_ptr<std::atomic<std::uint64_t>> n_;
    std::chrono::microseconds delay_;
  };
  using device_type = device;
  static constexpr bool write_behind = requires { requires Inner::write_behind; };

  explicit counting_storage(Inner inner, std::chrono::microseconds flush_delay = {})
      : inner_(std::move(inner)),
        flushes_(std::make_shared<std::atomic<std::uint64_t>>(0)),
        delay_(flush_delay) {}

  result<device> open(std::string_view name, open_mode m) {
    auto d = inner_.open(name, m);
    if (!d) return std::move(d).error();
    return device(std::move(*d), flushes_, delay_);
  }
  bool exists(std::string_view name) { return inner_.exists(name); }
  std::error_code remove(std::string_view name) { return inner_.remove(name); }
  std::error_code rename(std::string_view a, std::string_view b) { return inner_.rename(a, b); }

  std::uint64_t flushes() const { return flushes_->load(std::memory_order_relaxed); }

 private:
  Inner inner_;
  std::shared_ptr<std::atomic<std::uint64_t>> flushes_;
  std::chrono::microseconds delay_;
};

}  // namespace ktm::bench
