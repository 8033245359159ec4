// ktm/tm/notification_queue.hpp: a resource manager's own queue of
// notifications, for the pull model (KTM's GetNotificationResourceManager)
// and for the worker threads of thread_pool_dispatcher.
//
// A queued_notification is one delivery. The puller either handles it by
// hand (reads get(), answers through target()) or calls run(), which runs
// the RM's handler for it and routes the returned reply back. While a
// queued_notification is alive its transaction stays alive (the transaction's
// destructor waits for it), so destroy it promptly after answering.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "ktm/tm/detail/rm_vtable.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/transaction_core.hpp"

namespace ktm::tm {

class queued_notification {
 public:
  queued_notification(detail::erased_invoker inv, enlistment* e, const notification& n) noexcept
      : inv_(inv), e_(e), n_(n) {}
  queued_notification(queued_notification&& o) noexcept
      : inv_(o.inv_), e_(std::exchange(o.e_, nullptr)), n_(o.n_) {}
  queued_notification& operator=(queued_notification&& o) noexcept {
    if (this != &o) {
      release();
      inv_ = o.inv_;
      e_ = std::exchange(o.e_, nullptr);
      n_ = o.n_;
    }
    return *this;
  }
  ~queued_notification() { release(); }

  const notification& get() const noexcept { return n_; }
  // The enlistment to answer through; nullptr for TM-wide notifications.
  enlistment* target() const noexcept { return e_; }

  // Runs the RM's handler and routes its reply (unless reply::later()).
  reply run() {
    const reply r = inv_(e_, n_);
    if (e_ && !r.is_later()) e_->transaction().route_returned(*e_, n_.kind, r);
    return r;
  }

 private:
  friend class notification_queue;
  void release() noexcept {
    if (e_) std::exchange(e_, nullptr)->transaction().release_inflight();
  }
  void disarm() noexcept { e_ = nullptr; }

  detail::erased_invoker inv_;
  enlistment* e_;
  notification n_;
};

class notification_queue {
 public:
  void push(queued_notification q) {
    {
      std::lock_guard l(m_);
      q_.push_back(std::move(q));
    }
    cv_.notify_one();
  }

  // The oldest notification, waiting up to `timeout`; nullopt on timeout or
  // after close().
  template <class Rep, class Period>
  std::optional<queued_notification> pop(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock l(m_);
    if (!cv_.wait_for(l, timeout, [&] { return !q_.empty() || closed_; })) return std::nullopt;
    if (q_.empty()) return std::nullopt;
    queued_notification q = std::move(q_.front());
    q_.pop_front();
    return q;
  }

  // For several pullers that run what they pull (thread_pool_dispatcher):
  // the oldest notification whose enlistment has no delivery being run,
  // which claims that enlistment until done(target()). So one enlistment's
  // handlers run one at a time and in order (a ROLLBACK queued while its
  // PREPARE runs waits for it); TM-wide notifications are not held.
  template <class Rep, class Period>
  std::optional<queued_notification> pop_unclaimed(std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock l(m_);
    std::optional<queued_notification> out;
    cv_.wait_for(l, timeout, [&] {
      for (auto it = q_.begin(); it != q_.end(); ++it) {
        if (it->e_ && std::find(claimed_.begin(), claimed_.end(), it->e_) != claimed_.end()) continue;
        if (it->e_) claimed_.push_back(it->e_);
        out.emplace(std::move(*it));
        q_.erase(it);
        return true;
      }
      return closed_;
    });
    return out;
  }
  // The delivery pop_unclaimed gave for e has run: e's next one may.
  void done(const enlistment* e) {
    if (!e) return;
    {
      std::lock_guard l(m_);
      claimed_.erase(std::find(claimed_.begin(), claimed_.end(), e));
    }
    cv_.notify_all();
  }

  // Drops the queued (not yet pulled) deliveries of transaction c, without
  // releasing them; returns how many (the caller accounts for them).
  std::size_t cancel(const transaction_core& c) {
    std::lock_guard l(m_);
    std::size_t n = 0;
    for (auto it = q_.begin(); it != q_.end();) {
      if (it->e_ && &it->e_->transaction() == &c) {
        it->disarm();
        it = q_.erase(it);
        ++n;
      } else {
        ++it;
      }
    }
    return n;
  }

  // Wakes every puller; pop() returns nullopt from now on when empty.
  void close() {
    {
      std::lock_guard l(m_);
      closed_ = true;
    }
    cv_.notify_all();
  }

  std::size_t size() const {
    std::lock_guard l(m_);
    return q_.size();
  }

 private:
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::deque<queued_notification> q_;
  std::vector<const enlistment*> claimed_;  // pop_unclaimed: being run
  bool closed_ = false;
};

}  // namespace ktm::tm
