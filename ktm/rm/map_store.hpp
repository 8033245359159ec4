// ktm/rm/map_store.hpp: a change_store over std::map<std::string,
// std::string>, safe to read from many threads while a change_log applies.
//
// Readers (get, copy, size) take a shared lock; apply and clear an exclusive
// one; for_each a shared one for the whole walk.
#pragma once

#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>

#include "ktm/rm/change_store.hpp"

namespace ktm::rm {

class map_store {
 public:
  using map_type = std::map<std::string, std::string, std::less<>>;

  void apply(std::string_view key, const image& value) {
    std::unique_lock l(m_);
    if (value) {
      auto it = map_.find(key);
      if (it == map_.end()) map_.emplace(std::string(key), *value);
      else it->second = *value;
    } else if (auto it = map_.find(key); it != map_.end()) {
      map_.erase(it);
    }
  }
  void clear() {
    std::unique_lock l(m_);
    map_.clear();
  }
  template <class F>
  void for_each(F&& f) const {
    std::shared_lock l(m_);
    for (const auto& [k, v] : map_) f(std::string_view(k), std::string_view(v));
  }

  image get(std::string_view key) const {
    std::shared_lock l(m_);
    auto it = map_.find(key);
    if (it == map_.end()) return std::nullopt;
    return it->second;
  }
  std::map<std::string, std::string> copy() const {
    std::shared_lock l(m_);
    return {map_.begin(), map_.end()};
  }
  std::size_t size() const {
    std::shared_lock l(m_);
    return map_.size();
  }

 private:
  mutable std::shared_mutex m_;
  map_type map_;
};

static_assert(check_change_store<map_store>());

}  // namespace ktm::rm
