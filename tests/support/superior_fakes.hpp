// tests/support/superior_fakes.hpp: what the superior TM tests share.
//
// fault_transport   a superior_transport that queues every send (FIFO) and
//                   delivers only when the test pumps; it loses, duplicates,
//                   fails and delays messages on command (seeded), and
//                   loses what is in flight at a crash. Records every
//                   message it delivered.
// ledger            the durable state of test RMs, kept outside the TM
//                   objects so that it survives a simulated crash: per
//                   transaction prepared / committed / aborted, and a
//                   violation flag (an outcome contradicting an earlier one).
// ledger_rm<Tag>    a durable RM over a ledger: prepares (recorded at once,
//                   as if forced), commits, rolls back; at LAST_RECOVER it
//                   aborts what it holds prepared that recovery did not
//                   mention (presumed abort). Distinct Tags, distinct types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "ktm/tm.hpp"

namespace ktm::test {

namespace kt = ktm::tm;

class fault_transport {
 public:
  explicit fault_transport(std::uint64_t seed = 1) : rng_(seed) {}

  template <class R>
  void attach(const ktm::guid& id, R& r) {
    std::lock_guard l(m_);
    targets_[id] = target{&r, [](void* t, const kt::superior_message& m) { static_cast<R*>(t)->receive(m); }};
  }
  void detach(const ktm::guid& id) {
    std::lock_guard l(m_);
    targets_.erase(id);
  }

  std::error_code send(const kt::superior_message& m) {
    std::lock_guard l(m_);
    ++sends;
    if (fail_next > 0) {
      --fail_next;
      return ktm::make_error_code(ktm::errc::disconnected);
    }
    if (chance(drop_per_million)) return {};  // accepted, then lost on the way
    if (delay_next > 0) {
      --delay_next;
      delayed_.push_back(m);
      return {};
    }
    queue_.push_back(m);
    if (chance(duplicate_per_million)) queue_.push_back(m);
    return {};
  }

  // Delivers queued messages (and those they cause) until none is left or
  // `limit` were delivered. Returns how many were delivered.
  std::size_t pump(std::size_t limit = SIZE_MAX) {
    std::size_t n = 0;
    while (n < limit) {
      kt::superior_message m;
      target t{};
      {
        std::lock_guard l(m_);
        if (queue_.empty()) break;
        m = queue_.front();
        queue_.pop_front();
        auto it = targets_.find(m.to);
        if (it != targets_.end()) t = it->second;
        delivered.push_back(m);
      }
      ++n;
      if (t.obj) t.call(t.obj, m);
    }
    return n;
  }
  // Messages in flight are lost (the network or a peer went down).
  void lose_queued() {
    std::lock_guard l(m_);
    queue_.clear();
  }
  // The delayed messages arrive now, behind everything queued.
  void release_delayed() {
    std::lock_guard l(m_);
    for (auto& m : delayed_) queue_.push_back(m);
    delayed_.clear();
  }
  std::size_t queued() const {
    std::lock_guard l(m_);
    return queue_.size();
  }
  std::size_t count(kt::superior_message_kind k) const {
    std::lock_guard l(m_);
    std::size_t n = 0;
    for (const auto& m : delivered) n += m.kind == k;
    return n;
  }
  std::vector<kt::superior_message_kind> kinds() const {
    std::lock_guard l(m_);
    std::vector<kt::superior_message_kind> v;
    for (const auto& m : delivered) v.push_back(m.kind);
    return v;
  }

  // Knobs (set before use).
  std::uint32_t drop_per_million = 0;
  std::uint32_t duplicate_per_million = 0;
  std::size_t fail_next = 0;   // the next n sends fail (errc::disconnected)
  std::size_t delay_next = 0;  // the next n sends wait for release_delayed()
  std::size_t sends = 0;
  std::vector<kt::superior_message> delivered;

 private:
  struct target {
    void* obj = nullptr;
    void (*call)(void*, const kt::superior_message&) = nullptr;
  };
  bool chance(std::uint32_t per_million) { return per_million != 0 && rng_() % 1000000 < per_million; }

  mutable std::mutex m_;
  std::mt19937_64 rng_;
  std::unordered_map<ktm::guid, target> targets_;
  std::deque<kt::superior_message> queue_;
  std::vector<kt::superior_message> delayed_;
};
static_assert(kt::check_superior_transport<fault_transport>());

enum class ledger_state { prepared, committed, aborted };

struct ledger {
  std::mutex m;
  std::map<ktm::guid, ledger_state> txs;
  bool violation = false;  // an outcome contradicted an earlier one

  void set(const ktm::guid& t, ledger_state s) {
    std::lock_guard l(m);
    auto [it, fresh] = txs.try_emplace(t, s);
    if (fresh || s == ledger_state::prepared) return;
    if (it->second != ledger_state::prepared && it->second != s) violation = true;
    else it->second = s;
  }
  std::optional<ledger_state> get(const ktm::guid& t) {
    std::lock_guard l(m);
    auto it = txs.find(t);
    if (it == txs.end()) return std::nullopt;
    return it->second;
  }
};

template <int Tag = 0>
class ledger_rm : public kt::resource_manager_base<kt::rm_kind::durable_rm> {
 public:
  ledger_rm(ledger& l, ktm::guid id) : resource_manager_base(id), l_(&l) {}

  kt::reply on_prepare(kt::enlistment&, const kt::notification& n) {
    l_->set(n.transaction, ledger_state::prepared);
    return kt::reply::done();
  }
  kt::reply on_commit(kt::enlistment&, const kt::notification& n) {
    l_->set(n.transaction, ledger_state::committed);
    return kt::reply::done();
  }
  kt::reply on_rollback(kt::enlistment&, const kt::notification& n) {
    l_->set(n.transaction, ledger_state::aborted);
    return kt::reply::done();
  }
  kt::reply on_recover(kt::enlistment&, const kt::notification& n) {
    std::lock_guard g(m_);
    mentioned_.insert(n.transaction);
    return kt::reply::done();
  }
  void on_indoubt(kt::enlistment&, const kt::notification&) { ++indoubts; }
  void on_last_recover(const kt::notification&) {
    std::set<ktm::guid> mentioned;
    {
      std::lock_guard g(m_);
      mentioned.swap(mentioned_);
    }
    std::vector<ktm::guid> orphans;
    {
      std::lock_guard g(l_->m);
      for (auto& [t, s] : l_->txs)
        if (s == ledger_state::prepared && !mentioned.count(t)) orphans.push_back(t);
    }
    for (const auto& t : orphans) l_->set(t, ledger_state::aborted);
  }

  int indoubts = 0;

 private:
  ledger* l_;
  std::mutex m_;
  std::set<ktm::guid> mentioned_;
};

}  // namespace ktm::test
