// ktm/tm/detail/timeout_service.hpp: the TM's timer thread for transaction
// timeouts.
//
// schedule(c, when) arms (or re-arms) c's timeout; when it expires the
// thread calls c.on_timeout(), which rolls c back if it has not prepared.
// cancel(c) disarms c and waits until a timeout already firing for c has
// returned, so that c may be destroyed after it. The thread starts at the
// first schedule() and is joined by the destructor.
//
// Lock order: the timer's mutex is never held while calling into a
// transaction, so a transaction may call schedule() with its lock held.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "ktm/tm/transaction_core.hpp"

namespace ktm::tm::detail {

class timeout_service {
 public:
  using clock = std::chrono::steady_clock;

  timeout_service() = default;
  timeout_service(const timeout_service&) = delete;
  timeout_service& operator=(const timeout_service&) = delete;
  ~timeout_service() {
    {
      std::lock_guard l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  void schedule(transaction_core& c, clock::time_point when) {
    {
      std::lock_guard l(m_);
      erase_locked(&c);
      q_.emplace(when, &c);
      if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    }
    cv_.notify_all();
  }

  void cancel(transaction_core& c) {
    std::unique_lock l(m_);
    erase_locked(&c);
    cv_.wait(l, [&] { return firing_ != &c; });
  }

  std::size_t armed() const {
    std::lock_guard l(m_);
    return q_.size();
  }

 private:
  void erase_locked(transaction_core* c) {
    for (auto it = q_.begin(); it != q_.end();) it = it->second == c ? q_.erase(it) : std::next(it);
  }

  void run() {
    std::unique_lock l(m_);
    while (!stop_) {
      if (q_.empty()) {
        cv_.wait(l);
        continue;
      }
      auto it = q_.begin();
      if (const clock::time_point when = it->first; when > clock::now()) {
        cv_.wait_until(l, when);  // a copy: the entry may go while we wait
        continue;
      }
      transaction_core* c = it->second;
      q_.erase(it);
      firing_ = c;
      l.unlock();
      c->on_timeout();
      l.lock();
      firing_ = nullptr;
      cv_.notify_all();
    }
  }

  mutable std::mutex m_;
  std::condition_variable cv_;
  std::multimap<clock::time_point, transaction_core*> q_;
  transaction_core* firing_ = nullptr;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace ktm::tm::detail
