// ktm/tm/superior/in_process_transport.hpp: the superior_transport of TMs
// in one process: send() calls the receiver's receive() directly, in the
// sending thread (inline, re-entrant: a receiver may send from receive()).
//
//   ktm::tm::in_process_transport bus;             // shared by the TMs
//   superior_tm_type a{bus, ...}, b{bus, ...};     // each attaches itself
//
// A receiver is kept as an object pointer and a function pointer made for
// its type (no virtual call, no allocation per message). A message to an id
// nobody attached is dropped (send still succeeds: the peer may restart and
// the protocol resends). messages_sent() counts successful sends, for
// benchmarks (messages per commit). Thread-safe: sends to one receiver may
// run concurrently; detach(id) waits until no receive() for id runs (do not
// call it from inside that receiver's receive()).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <system_error>
#include <unordered_map>

#include "ktm/concepts/superior_transport.hpp"
#include "ktm/guid.hpp"
#include "ktm/tm/superior/message.hpp"

namespace ktm::tm {

class in_process_transport {
 public:
  in_process_transport() = default;
  in_process_transport(const in_process_transport&) = delete;
  in_process_transport& operator=(const in_process_transport&) = delete;

  template <class R>
    requires superior_receiver<R>
  void attach(const guid& id, R& r) {
    std::lock_guard l(m_);
    auto& s = slots_[id];
    if (!s) s = std::make_unique<slot>();
    s->target = &r;
    s->call = [](void* t, const superior_message& m) { static_cast<R*>(t)->receive(m); };
  }

  void detach(const guid& id) {
    std::unique_lock l(m_);
    auto it = slots_.find(id);
    if (it == slots_.end()) return;
    slot& s = *it->second;
    s.target = nullptr;
    idle_.wait(l, [&] { return s.active == 0; });
  }

  std::error_code send(const superior_message& m) {
    sent_.fetch_add(1, std::memory_order_relaxed);
    slot* s;
    void* target;
    {
      std::lock_guard l(m_);
      auto it = slots_.find(m.to);
      if (it == slots_.end() || !it->second->target) return {};  // nobody there: lost
      s = it->second.get();
      target = s->target;
      ++s->active;
    }
    s->call(target, m);
    std::lock_guard l(m_);
    if (--s->active == 0 && !s->target) idle_.notify_all();
    return {};
  }

  std::uint64_t messages_sent() const noexcept { return sent_.load(std::memory_order_relaxed); }

 private:
  struct slot {
    void* target = nullptr;
    void (*call)(void*, const superior_message&) = nullptr;
    std::size_t active = 0;
  };

  std::mutex m_;
  std::condition_variable idle_;
  std::unordered_map<guid, std::unique_ptr<slot>> slots_;  // slots stay put once made
  std::atomic<std::uint64_t> sent_{0};
};

static_assert(check_superior_transport<in_process_transport>());

}  // namespace ktm::tm
