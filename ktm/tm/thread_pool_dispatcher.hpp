// ktm/tm/thread_pool_dispatcher.hpp: handlers run on a pool of worker
// threads owned by the TM; their returned replies flow back to the
// transaction from the worker.
//
// Threads workers are started with the TM and joined when it is destroyed;
// deliveries still queued then are run first. Handlers for different
// enlistments of one transaction may run at the same time; one
// enlistment's handlers run one at a time, in the order they were
// dispatched (notification_queue::pop_unclaimed).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <thread>

#include "ktm/concepts/notification_dispatcher.hpp"
#include "ktm/tm/notification_queue.hpp"

namespace ktm::tm {

template <std::size_t Threads = 2>
class thread_pool_dispatcher {
  static_assert(Threads > 0, "thread_pool_dispatcher: needs at least one thread");

 public:
  static constexpr bool is_inline = false;

  thread_pool_dispatcher() {
    for (auto& t : workers_) t = std::thread([this] { run(); });
  }
  thread_pool_dispatcher(const thread_pool_dispatcher&) = delete;
  thread_pool_dispatcher& operator=(const thread_pool_dispatcher&) = delete;
  ~thread_pool_dispatcher() { join(); }

  // Runs what is queued, then stops the workers and joins them (the
  // destructor does it; a TM whose handlers' replies reach parts of it
  // destroyed before its dispatcher calls it first). Idempotent; nothing is
  // run after it.
  void join() noexcept {
    stopping_.store(true, std::memory_order_release);
    queue_.close();
    for (auto& t : workers_)
      if (t.joinable()) t.join();
  }

  template <class Invoker>
  reply dispatch(const Invoker& inv, enlistment* e, const notification& n) {
    queue_.push(queued_notification(inv.erase(), e, n));
    return reply::later();
  }
  template <class Invoker>
  std::size_t cancel(const Invoker&, const transaction_core& c) {
    return queue_.cancel(c);
  }

  static constexpr std::size_t threads() noexcept { return Threads; }

 private:
  void run() {
    for (;;) {
      if (auto q = queue_.pop_unclaimed(std::chrono::milliseconds(100))) {
        const enlistment* e = q->target();
        q->run();
        queue_.done(e);
      } else if (stopping_.load(std::memory_order_acquire) && queue_.size() == 0) {
        return;
      }
    }
  }

  notification_queue queue_;
  std::atomic<bool> stopping_{false};
  std::array<std::thread, Threads> workers_;
};

static_assert(check_notification_dispatcher<thread_pool_dispatcher<1>>());

}  // namespace ktm::tm
