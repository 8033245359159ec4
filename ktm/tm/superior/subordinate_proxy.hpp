// ktm/tm/superior/subordinate_proxy.hpp: a superior TM's stand-in for one
// subordinate TM: a resource manager registered with the superior TM (its
// id is the subordinate TM's id) and enlisted in each superior transaction
// the subordinate joins (basic_superior_transaction_manager::
// enlist_subordinate).
//
// Handlers: PREPREPARE, PREPARE and COMMIT are forwarded as messages and
// answered later, when PREPREPARE_COMPLETE, PREPARE_COMPLETE or
// COMMIT_COMPLETE arrives (receive()); READ_ONLY or ABORTED from the
// subordinate before it prepared answer read_only or rollback. ROLLBACK is
// forwarded and answered done at once: the superior's transaction does not
// wait for a subordinate's rollback, but the proxy resends ROLLBACK until
// ROLLBACK_COMPLETE (or ABORTED) arrives, so a subordinate that has not
// prepared learns it too (a prepared one would also ask: presumed abort). So the superior's commit record
// (forced before any COMMIT is sent) names the subordinate, and the
// superior's recovery redelivers COMMIT to this proxy, which resends it
// until COMMIT_COMPLETE (resends()). The prepare sets the recovery
// information to `proxy_tag`, by which the superior's recovery finds the
// subordinates it must recover.
//
// Lifetimes: from its first notification in a transaction until settled,
// the proxy pins the transaction (transaction_core::pin), so a reply
// arriving on another thread never finds it destroyed. Messages are queued
// in the transaction's outbox (posted after its lock is released).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <mutex>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/resource_manager.hpp"
#include "ktm/tm/superior/message.hpp"
#include "ktm/tm/superior/sink.hpp"
#include "ktm/tm/transaction_core.hpp"

namespace ktm::tm {

// The recovery information of a subordinate's enlistment in its superior.
inline constexpr std::array<std::byte, 4> proxy_tag{std::byte{'K'}, std::byte{'S'}, std::byte{'U'}, std::byte{'B'}};

inline bool is_proxy_tag(std::span<const std::byte> info) noexcept {
  return info.size() == proxy_tag.size() && std::equal(info.begin(), info.end(), proxy_tag.begin());
}

class subordinate_proxy : public resource_manager_base<> {
  using kind = superior_message_kind;

 public:
  // Named in the superior's commit record (its identity is the subordinate
  // TM's), though as an RM it is volatile (a volatile superior takes it too).
  static constexpr bool logged_enlistments = true;

  subordinate_proxy(superior_sink& sink, const guid& subordinate) : resource_manager_base(subordinate), sink_(&sink) {}

  reply on_preprepare(enlistment& e, const notification& n) { return forward(e, n, kind::preprepare); }
  reply on_prepare(enlistment& e, const notification& n) {
    (void)e.set_recovery_information(proxy_tag);
    return forward(e, n, kind::prepare);
  }
  reply on_commit(enlistment& e, const notification& n) { return forward(e, n, kind::commit); }
  reply on_rollback(enlistment& e, const notification& n) {
    const bool release = settle(n.transaction);
    {
      std::lock_guard l(m_);
      rollbacks_[n.transaction] = n.virtual_clock;
    }
    e.transaction().post(*sink_, message(kind::rollback, n.transaction, n.virtual_clock));
    if (release) e.transaction().release_inflight();
    return reply::done();
  }
  reply on_recover(enlistment&, const notification&) { return reply::done(); }

  // Tracks a new enlistment at once, so that an ABORTED from the
  // subordinate before the first notification rolls the transaction back.
  void track(enlistment& e) {
    bool fresh;
    {
      std::lock_guard l(m_);
      auto [it, inserted] = entries_.try_emplace(e.transaction_id());
      it->second.e = &e;
      fresh = inserted;
    }
    if (fresh) e.transaction().pin();
  }

  // A message from the subordinate about one transaction (completions,
  // read_only, aborted); anything it does not wait for is dropped.
  void receive(const superior_message& m) {
    enlistment* e = nullptr;
    bool final = false;
    {
      std::lock_guard l(m_);
      if (m.kind == kind::rollback_complete || m.kind == kind::aborted) rollbacks_.erase(m.uow);
      auto it = entries_.find(m.uow);
      if (it == entries_.end()) return;
      entry& en = it->second;
      const enlistment_status st = en.e->status();
      const bool before_prepared = st == enlistment_status::active || st == enlistment_status::awaiting_preprepare ||
                                   st == enlistment_status::preprepared || st == enlistment_status::awaiting_prepare;
      switch (m.kind) {
        case kind::preprepare_complete:
        case kind::prepare_complete:
          if (en.awaiting != (m.kind == kind::preprepare_complete ? kind::preprepare : kind::prepare)) return;
          en.awaiting = {};
          break;
        case kind::commit_complete:
          if (en.awaiting != kind::commit) return;
          final = true;
          break;
        case kind::read_only:
        case kind::aborted:
          if (!before_prepared) return;
          final = true;
          break;
        default: return;
      }
      if (final) en.awaiting = {};
      ++en.busy;
      e = en.e;
    }
    switch (m.kind) {
      case kind::preprepare_complete: (void)e->preprepare_complete(m.clock); break;
      case kind::prepare_complete: (void)e->prepare_complete(m.clock); break;
      case kind::commit_complete: (void)e->commit_complete(m.clock); break;
      case kind::read_only: (void)e->read_only(m.clock); break;
      default: (void)e->rollback(m.clock); break;
    }
    bool release = false;
    {
      std::lock_guard l(m_);
      auto it = entries_.find(m.uow);
      entry& en = it->second;
      --en.busy;
      if (final) en.doomed = true;
      if (en.doomed && en.busy == 0) {
        entries_.erase(it);
        release = true;
      }
    }
    if (release) e->transaction().release_inflight();
  }

  // The superior's outcome for a transaction it still tracks with this
  // subordinate (nullopt: none here; the TM answers from its log).
  std::optional<transaction_outcome> outcome_of(const guid& uow) const {
    std::lock_guard l(m_);
    auto it = entries_.find(uow);
    if (it == entries_.end()) return std::nullopt;
    return public_outcome(it->second.e->transaction().internal_state());
  }

  // The messages still unanswered, to send again (a loss or a restart).
  void resends(std::vector<superior_message>& out) const {
    std::lock_guard l(m_);
    for (const auto& [uow, en] : entries_)
      if (en.awaiting != kind{}) out.push_back(message(en.awaiting, uow, en.clock));
    for (const auto& [uow, clock] : rollbacks_) out.push_back(message(kind::rollback, uow, clock));
  }
  std::size_t tracked() const {
    std::lock_guard l(m_);
    return entries_.size();
  }

 private:
  struct entry {
    enlistment* e = nullptr;
    kind awaiting{};         // the message sent, its answer not arrived (0: none)
    std::uint64_t clock = 0;
    unsigned busy = 0;       // receive() calls using e now
    bool doomed = false;     // settled: erase when not busy
  };

  superior_message message(kind k, const guid& uow, std::uint64_t clock) const {
    superior_message m;
    m.kind = k;
    m.to = id();
    m.uow = uow;
    m.clock = clock;
    return m;
  }

  reply forward(enlistment& e, const notification& n, kind k) {
    bool fresh;
    {
      std::lock_guard l(m_);
      auto [it, inserted] = entries_.try_emplace(n.transaction);
      it->second.e = &e;
      it->second.awaiting = k;
      it->second.clock = n.virtual_clock;
      it->second.doomed = false;
      fresh = inserted;
    }
    if (fresh) e.transaction().pin();
    e.transaction().post(*sink_, message(k, n.transaction, n.virtual_clock));
    return reply::later();
  }

  // Stops tracking uow; true when the caller must release the pin.
  bool settle(const guid& uow) {
    std::lock_guard l(m_);
    auto it = entries_.find(uow);
    if (it == entries_.end()) return false;
    it->second.awaiting = {};
    if (it->second.busy != 0) {
      it->second.doomed = true;
      return false;
    }
    entries_.erase(it);
    return true;
  }

  superior_sink* sink_;
  mutable std::mutex m_;
  std::unordered_map<guid, entry> entries_;
  std::unordered_map<guid, std::uint64_t> rollbacks_;  // ROLLBACK sent, not yet acknowledged
};

}  // namespace ktm::tm
