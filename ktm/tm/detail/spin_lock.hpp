// ktm/tm/detail/spin_lock.hpp: the lock of one transaction.
//
// Critical sections are short (no blocking call is made while it is held,
// except RM handlers run inline, see inline_dispatcher.hpp), so a spin lock
// that backs off to yield is cheaper than a mutex: one atomic exchange to
// lock and a plain release store to unlock.
#pragma once

#include <atomic>
#include <thread>

namespace ktm::tm::detail {

class spin_lock {
 public:
  void lock() noexcept {
    for (int spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) std::this_thread::yield();
      }
    }
  }
  bool try_lock() noexcept { return !locked_.exchange(true, std::memory_order_acquire); }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace ktm::tm::detail
