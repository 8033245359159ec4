// ktm/tm/detail/open_commits.hpp: the commit records a replay has found and
// whose end record it has not found (yet).
//
// add(uow, lsn, seq) for a commit record, end(uow) for an end record, take()
// at the end of the scan: what is still open (one entry per UOW, the latest
// commit record winning), in no particular order (seq gives commit order).
// An end record follows its commit record closely (a few records later: the
// committers of one group commit), so the newest entries live in a window
// found through a small direct-mapped index (or, failing that, searched
// linearly from the newest), without allocating; entries that stay open long
// move to a hash map. Cost per record: a few comparisons.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <utility>
#include <vector>

#include "ktm/guid.hpp"

namespace ktm::tm::detail {

template <class Lsn>
struct open_commit {
  Lsn at;
  std::uint64_t seq;  // commit order
};

template <class Lsn>
class open_commits {
 public:
  void add(const guid& uow, Lsn at, std::uint64_t seq) {
    if (window_.size() == window_limit) spill();
    const key k = key_of(uow);
    // filled in place: a temporary copied in would be built by narrow
    // stores and read back by wide loads (a store-forwarding stall per record)
    entry& e = window_.emplace_back();
    index_[slot_of(k)] = static_cast<std::uint32_t>(window_.size());
    e.a = k.a;
    e.b = k.b;
    e.uow = uow;
    e.c.at = at;
    e.c.seq = seq;
    e.open = true;
  }
  void end(const guid& uow) {
    const key k = key_of(uow);
    const std::size_t n = window_.size();
    if (const std::uint32_t p = index_[slot_of(k)]; p != 0 && p <= n && close(p - 1, k)) return;
    const std::size_t near = std::min(n, near_limit);
    for (std::size_t i = 0; i < near; ++i)
      if (close(n - 1 - i, k)) return;
    if (!old_.empty() && old_.erase(uow)) return;
    for (std::size_t i = near; i < n; ++i)
      if (close(n - 1 - i, k)) return;
  }
  std::vector<std::pair<guid, open_commit<Lsn>>> take() {
    for (const entry& e : window_)
      if (e.open) old_.insert_or_assign(e.uow, e.c);
    std::vector<std::pair<guid, open_commit<Lsn>>> out(old_.begin(), old_.end());
    window_.clear();
    old_.clear();
    std::fill(std::begin(index_), std::end(index_), 0);
    return out;
  }

 private:
  struct key {
    std::uint64_t a, b;
  };
  static key key_of(const guid& g) {
    key k;
    std::memcpy(&k.a, g.bytes().data(), 8);
    std::memcpy(&k.b, g.bytes().data() + 8, 8);
    return k;
  }
  struct entry {
    std::uint64_t a, b;  // the UOW's bytes, compared as two words
    guid uow;
    open_commit<Lsn> c;
    bool open;
  };
  static constexpr std::size_t window_limit = 4096, near_limit = 256, index_size = 1024;
  // The window position (+ 1) of the UOW added last whose key hashes here:
  // an end record finds its commit at once unless a newer one took the slot.
  static std::size_t slot_of(const key& k) {
    return static_cast<std::size_t>(((k.a ^ k.b) * 0x9e3779b97f4a7c15ull) >> 54);  // 10 bits
  }

  bool close(std::size_t i, const key& k) {
    entry& e = window_[i];
    if (e.a != k.a || e.b != k.b || !e.open) return false;
    e.open = false;
    return true;
  }
  // Drops ended entries; if the window is still more than half full, its
  // older half moves to the map.
  void compact() {
    std::erase_if(window_, [](const entry& e) { return !e.open; });
    if (window_.size() <= window_limit / 2) return;
    const std::size_t k = window_.size() - window_limit / 2;
    for (std::size_t i = 0; i < k; ++i) old_.insert_or_assign(window_[i].uow, window_[i].c);
    window_.erase(window_.begin(), window_.begin() + static_cast<std::ptrdiff_t>(k));
  }
  void spill() {
    compact();
    std::fill(std::begin(index_), std::end(index_), 0);  // positions moved
  }

  std::vector<entry> window_;
  std::unordered_map<guid, open_commit<Lsn>> old_;
  std::uint32_t index_[index_size] = {};
};

}  // namespace ktm::tm::detail
