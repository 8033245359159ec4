// ktm/tm/virtual_clock.hpp: the TM's virtual clock as one atomic counter.
//
// Starts at 1; advance() when a commit begins; merge(v) adopts a larger
// value passed back by an RM (max-merge). Lock-free, safe from any thread.
#pragma once

#include <atomic>
#include <cstdint>

#include "ktm/concepts/tm_clock.hpp"

namespace ktm::tm {

class atomic_virtual_clock {
 public:
  std::uint64_t now() const noexcept { return v_.load(std::memory_order_acquire); }
  std::uint64_t advance() noexcept { return v_.fetch_add(1, std::memory_order_acq_rel) + 1; }
  std::uint64_t merge(std::uint64_t v) noexcept {
    std::uint64_t cur = v_.load(std::memory_order_relaxed);
    while (cur < v && !v_.compare_exchange_weak(cur, v, std::memory_order_acq_rel)) {
    }
    return cur < v ? v : cur;
  }

 private:
  std::atomic<std::uint64_t> v_{1};
};

static_assert(check_tm_clock<atomic_virtual_clock>());

}  // namespace ktm::tm
