// ktm/tm/virtual_clock.hpp: the TM's virtual clock as one atomic counter.
//
// Starts at 1; advance() when a commit begins; merge(v) adopts a larger
// value passed back by an RM (max-merge). Lock-free, safe from any thread.
//
// plain_virtual_clock: the same for a TM used from one thread at a time
// (with_threading<single_threaded>): advance and merge are a relaxed load and
// a store, no read-modify-write. Reading it from another thread is still
// data-race free; changing it from two threads at once is not allowed.
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

class plain_virtual_clock {
 public:
  std::uint64_t now() const noexcept { return v_.load(std::memory_order_relaxed); }
  std::uint64_t advance() noexcept {
    const std::uint64_t next = v_.load(std::memory_order_relaxed) + 1;
    v_.store(next, std::memory_order_relaxed);
    return next;
  }
  std::uint64_t merge(std::uint64_t v) noexcept {
    const std::uint64_t cur = v_.load(std::memory_order_relaxed);
    if (cur >= v) return cur;
    v_.store(v, std::memory_order_relaxed);
    return v;
  }

 private:
  std::atomic<std::uint64_t> v_{1};
};

static_assert(check_tm_clock<plain_virtual_clock>());

}  // namespace ktm::tm
