// ktm/rm/lock_table.hpp: per-key exclusive locks owned by transactions
// (strict two-phase locking: a transaction keeps every lock it took until
// its outcome, then release_all drops them at once).
//
//   lock(key, tx, deadline)  takes key's lock for tx, waiting until deadline
//                            for its owner to finish; errc::timed_out then.
//                            Succeeds at once when tx holds it already.
//   try_lock(key, tx)        the same without waiting
//   release_all(tx)          drops tx's locks and wakes the waiters
//   owner(key)               who holds key, if anyone
//
// A waiter that times out holds nothing new, so a deadlock between two
// transactions ends when the first of them times out and rolls back.
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/result.hpp"

namespace ktm::rm {

class lock_table {
 public:
  using clock = std::chrono::steady_clock;

  result<void> lock(std::string_view key, const guid& tx, clock::time_point deadline) {
    std::unique_lock l(m_);
    for (;;) {
      auto it = owners_.find(key);
      if (it == owners_.end()) {
        owners_.emplace(std::string(key), tx);
        held_[tx].emplace_back(key);
        return {};
      }
      if (it->second == tx) return {};
      if (clock::now() >= deadline) return errc::timed_out;
      cv_.wait_until(l, deadline);
    }
  }
  result<void> try_lock(std::string_view key, const guid& tx) { return lock(key, tx, clock::time_point::min()); }

  void release_all(const guid& tx) {
    {
      std::lock_guard l(m_);
      auto h = held_.find(tx);
      if (h == held_.end()) return;
      for (const auto& k : h->second) owners_.erase(k);
      held_.erase(h);
    }
    cv_.notify_all();
  }

  std::optional<guid> owner(std::string_view key) const {
    std::lock_guard l(m_);
    auto it = owners_.find(key);
    if (it == owners_.end()) return std::nullopt;
    return it->second;
  }
  std::size_t size() const {
    std::lock_guard l(m_);
    return owners_.size();
  }

 private:
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::map<std::string, guid, std::less<>> owners_;
  std::map<guid, std::vector<std::string>> held_;
};

}  // namespace ktm::rm
