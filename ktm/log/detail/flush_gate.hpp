// ktm/log/detail/flush_gate.hpp: where forcers sleep until "their" device
// flush has completed (the waiting half of the log's group commit).
//
// Durable flushes are numbered (generations, 1, 2, ...; one at a time, in
// order). A forcer that finds flush g in flight and its record covered by g
// waits for g; one whose record came after g was sealed waits for g + 1.
// Waiters of one generation share a wake-up word (slot g % 4), so completing
// g wakes exactly its own waiters, and no one waiting for g + 1 (no
// thundering herd), and a woken waiter reads the outcome from atomics here
// without taking the log's mutex (no convoy on it).
//
// Completions can arrive out of order: a leader publishes its flush here
// after releasing the log's mutex, so flush g + 1 (the next leader's, or one
// run under the mutex by close or a base-file write) may complete before g
// does. The completed generation and the durable LSN therefore only move
// forward (a maximum); a late complete(g) wakes g's waiters and changes
// nothing else.
//
// The forcer that will lead g + 1 waits for g too, but on a word of its own
// (wait(g, true)), which complete(g) wakes before g's slot: woken with the
// others it would start g + 1 only when its turn in that wake-up came (on a
// 2-vCPU VM one FUTEX_WAKE of ~29 forcers took 34-117 us, as long as the
// flush or longer), and the device would idle meanwhile.
//
// On Linux the words are futexes; elsewhere std::atomic::wait/notify_all.
// Correctness rests on the atomics alone (seq_cst): complete() publishes the
// durable LSN, then the generation, then bumps the slot word, and wakes only
// if someone registered on the slot; a waiter registers, reads the word,
// re-checks the generation, and sleeps only if the word is unchanged.
#pragma once

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace ktm::log::detail {

class flush_gate {
 public:
  // Sleeps until generation g has completed or the gate failed. `leads`:
  // the caller will lead g + 1, and is woken first.
  void wait(std::uint64_t g, bool leads = false) noexcept {
    slot& s = leads ? lead_ : slots_[g % slot_count];
    s.waiters.fetch_add(1);
    for (;;) {
      const std::uint32_t seen = s.word.load();
      if (done_.load() >= g || failed_.load()) break;
      sleep_on(s.word, seen);
    }
    s.waiters.fetch_sub(1);
  }

  // Flush g completed: every record below `durable` (a raw LSN) is durable.
  void complete(std::uint64_t g, std::uint64_t durable) noexcept {
    raise_to(durable_, durable);
    raise_to(done_, g);
    wake(lead_);  // g + 1's leader first (a waiter of an older g rechecks and sleeps again)
    wake(slots_[g % slot_count]);
  }

  // A write or flush failed: wakes everyone, for good.
  void fail() noexcept {
    failed_.store(true);
    wake(lead_);
    for (auto& s : slots_) wake(s);
  }

  std::uint64_t durable() const noexcept { return durable_.load(); }
  std::uint64_t done() const noexcept { return done_.load(); }
  bool failed() const noexcept { return failed_.load(); }

 private:
  static constexpr std::size_t slot_count = 4;
  struct alignas(64) slot {
    std::atomic<std::uint32_t> word{0};
    std::atomic<std::uint32_t> waiters{0};
  };

  static void raise_to(std::atomic<std::uint64_t>& a, std::uint64_t v) noexcept {
    std::uint64_t cur = a.load();
    while (cur < v && !a.compare_exchange_weak(cur, v)) {
    }
  }

  static void wake(slot& s) noexcept {
    s.word.fetch_add(1);
    if (s.waiters.load() == 0) return;
#if defined(__linux__)
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&s.word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
              nullptr, 0);
#else
    s.word.notify_all();
#endif
  }
  static void sleep_on(std::atomic<std::uint32_t>& w, std::uint32_t seen) noexcept {
#if defined(__linux__)
    static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t));
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&w), FUTEX_WAIT_PRIVATE, seen, nullptr, nullptr, 0);
#else
    w.wait(seen);
#endif
  }

  std::atomic<std::uint64_t> done_{0}, durable_{0};
  std::atomic<bool> failed_{false};
  slot slots_[slot_count];
  slot lead_;  // where the next generation's leader waits
};

}  // namespace ktm::log::detail
