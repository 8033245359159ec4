// tests/support/late_executor.hpp: runs tasks after a delay on threads of
// its own (the randomized tests' RMs answering late from other threads).
//
//   late_executor late{2};                       // two threads
//   late.post(std::chrono::microseconds(50), [] { ... });
//
// Tasks run in the order of their due times; the destructor waits until
// every task posted has run, then joins the threads.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace ktm::test {

class late_executor {
  using steady = std::chrono::steady_clock;

 public:
  explicit late_executor(int threads = 1) {
    for (int i = 0; i < threads; ++i) ts_.emplace_back([this] { run(); });
  }
  late_executor(const late_executor&) = delete;
  late_executor& operator=(const late_executor&) = delete;
  ~late_executor() {
    {
      std::lock_guard l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : ts_) t.join();
  }
  void post(std::chrono::microseconds delay, std::function<void()> f) {
    {
      std::lock_guard l(m_);
      q_.emplace(steady::now() + delay, std::move(f));
    }
    cv_.notify_one();
  }

 private:
  void run() {
    std::unique_lock l(m_);
    for (;;) {
      if (q_.empty()) {
        if (stop_) return;
        cv_.wait(l);
        continue;
      }
      const steady::time_point when = q_.begin()->first;
      if (when > steady::now()) {
        cv_.wait_until(l, when);
        continue;
      }
      std::function<void()> f = std::move(q_.begin()->second);
      q_.erase(q_.begin());
      l.unlock();
      f();
      l.lock();
    }
  }
  std::mutex m_;
  std::condition_variable cv_;
  std::multimap<steady::time_point, std::function<void()>> q_;
  bool stop_ = false;
  std::vector<std::thread> ts_;
};

}  // namespace ktm::test
