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
// trio<TM, T>       a superior and two subordinates over one transport T,
//                   recovered, each with a recording RM (rm_a, rm_b, rm_c)
// linked_pair       a superior's transaction and a subordinate's for the
//                   same UOW, linked, each with its RM enlisted (or none)
// linked_trio       a superior's transaction linked to one on each of a
//                   trio's subordinates, every trio RM enlisted
// ledger_rm<Tag>    a durable RM over a ledger: prepares (recorded at once,
//                   as if forced), commits, rolls back; at LAST_RECOVER it
//                   aborts what it holds prepared that recovery did not
//                   mention (presumed abort). Distinct Tags, distinct types.
#pragma once

#include <atomic>
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
#include <thread>
#include <unordered_map>
#include <vector>

#include <catch2/catch.hpp>

#include "ktm/tm.hpp"
#include "tests/support/tm_fakes.hpp"

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
  void reseed(std::uint64_t seed) {
    std::lock_guard l(m_);
    rng_.seed(seed);
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

// A superior and two subordinates over one transport, each with one RM.
template <class TM, class Transport>
struct trio {
  Transport bus{};
  TM top{bus}, left{bus}, right{bus};
  rm_a top_rm;
  rm_b left_rm;
  rm_c right_rm;
  trio() {
    REQUIRE(top.recover());
    REQUIRE(left.recover());
    REQUIRE(right.recover());
    REQUIRE(top.add_resource_manager(top_rm));
    REQUIRE(left.add_resource_manager(left_rm));
    REQUIRE(right.add_resource_manager(right_rm));
  }
};

// A superior's transaction and one subordinate's for the same UOW, linked,
// with the given RMs enlisted (null: none). The handles go before the
// transactions.
template <class Sup, class Sub = Sup>
struct linked_pair {
  typename Sup::transaction top;
  typename Sub::transaction sub;
  std::optional<kt::enlistment_handle> top_e, sub_e;

  template <class RA, class RB>
  linked_pair(Sup& s, Sub& d, RA* top_rm, RB* sub_rm) : top(s.begin()), sub(d.begin(top.id())) {
    REQUIRE(kt::link_subordinate(s, top, d, sub));
    if (top_rm) top_e.emplace(take(top.enlist(*top_rm)));
    if (sub_rm) sub_e.emplace(take(sub.enlist(*sub_rm)));
  }
  static kt::enlistment_handle take(ktm::result<kt::enlistment_handle> r) {
    REQUIRE(r);
    return std::move(*r);
  }
};
// A transaction on each TM of a trio for the same UOW, the subordinates'
// linked to the superior's, then each TM's RM enlisted (the handles are not
// checked, and go before the transactions).
template <class TM, class Transport>
struct linked_trio {
  typename TM::transaction top, left, right;
  std::optional<ktm::result<kt::enlistment_handle>> top_e, left_e, right_e;

  explicit linked_trio(trio<TM, Transport>& w)
      : top(w.top.begin()), left(w.left.begin(top.id())), right(w.right.begin(top.id())) {
    REQUIRE(kt::link_subordinate(w.top, top, w.left, left));
    REQUIRE(kt::link_subordinate(w.top, top, w.right, right));
    top_e.emplace(top.enlist(w.top_rm));
    left_e.emplace(left.enlist(w.left_rm));
    right_e.emplace(right.enlist(w.right_rm));
  }
};
// "No RM" for linked_pair.
template <class R>
constexpr R* no_rm() noexcept {
  return nullptr;
}

enum class ledger_state { prepared, committed, aborted };

struct ledger {
  std::mutex m;
  std::map<ktm::guid, ledger_state> txs;
  bool violation = false;  // an outcome contradicted an earlier one
  ktm::guid violated;      // the first transaction that did

  void set(const ktm::guid& t, ledger_state s) {
    std::lock_guard l(m);
    auto [it, fresh] = txs.try_emplace(t, s);
    if (fresh || s == ledger_state::prepared) return;
    if (it->second != ledger_state::prepared && it->second != s) {
      if (!violation) violated = t;
      violation = true;
    } else {
      it->second = s;
    }
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
    commit_thread = std::this_thread::get_id();
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

  std::atomic<int> indoubts{0};
  std::atomic<std::thread::id> commit_thread{};  // where the last COMMIT ran

 private:
  ledger* l_;
  std::mutex m_;
  std::set<ktm::guid> mentioned_;
};

}  // namespace ktm::test
