// tests/net/net_fixtures.hpp: a receiver that collects what arrives, and
// messages to send, for the transport tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/tm/superior/message.hpp"

namespace ktm::net::test {

using tm::superior_message;
using tm::superior_message_kind;

inline superior_message message(superior_message_kind kind, const guid& from, const guid& to,
                                std::uint64_t clock = 0, guid uow = guid::generate()) {
  superior_message m;
  m.kind = kind;
  m.from = from;
  m.to = to;
  m.uow = uow;
  m.clock = clock;
  return m;
}

// Keeps every message it receives; waits (with a safety deadline, never a
// measured one) for what a test expects.
class collector {
 public:
  void receive(const superior_message& m) {
    std::lock_guard lock(mutex_);
    got_.push_back(m);
    arrived_.notify_all();
  }

  // Waits until pred(messages) holds or `limit` passes; returns pred's last value.
  bool wait_until(const std::function<bool(const std::vector<superior_message>&)>& pred,
                  std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    std::unique_lock lock(mutex_);
    return arrived_.wait_for(lock, limit, [&] { return pred(got_); });
  }
  bool wait_for_count(std::size_t n, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    return wait_until([n](const auto& v) { return v.size() >= n; }, limit);
  }
  bool wait_for_uow(const guid& uow, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    return wait_until(
        [&](const auto& v) {
          for (const auto& m : v)
            if (m.uow == uow) return true;
          return false;
        },
        limit);
  }

  std::vector<superior_message> messages() const {
    std::lock_guard lock(mutex_);
    return got_;
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::vector<superior_message> got_;
};

// Answers every message it receives through `send` (a transport's send):
// the reply goes back to the sender, same transaction and clock, kind
// prepare_complete.
template <class Transport>
class echo {
 public:
  explicit echo(Transport& t) : t_(t) {}
  void receive(const superior_message& m) {
    superior_message r = m;
    r.kind = superior_message_kind::prepare_complete;
    r.from = m.to;
    r.to = m.from;
    (void)t_.send(r);
  }

 private:
  Transport& t_;
};

}  // namespace ktm::net::test
