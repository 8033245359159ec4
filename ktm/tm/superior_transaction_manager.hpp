// ktm/tm/superior_transaction_manager.hpp: a transaction manager that can be
// the superior of transactions on other TMs, and the subordinate of another
// TM for its own transactions (doc/superior.md).
//
//   ktm::tm::in_process_transport bus;
//   using tm_type = ktm::tm::superior_transaction_manager<
//       ktm::tm::with_transport<ktm::tm::in_process_transport>,
//       ktm::tm::with_storage<ktm::tm::dynamic_storage>>;     // other options as usual
//   tm_type root{bus}, leaf{bus};                              // the transport, then the base's arguments
//   auto t = root.begin(); auto s = leaf.begin(t.id());        // the same UOW on both
//   ktm::tm::link_subordinate(root, t, leaf, s);               // root becomes s's superior
//   t.commit();                                                // drives s through both phases
//
// basic_superior_transaction_manager<Options...> is a
// basic_transaction_manager<Options...> (with_transport<T> required) plus
// the endpoint of the superior protocol (superior/message.hpp):
//   subordinate role  enlist_superior(tx, superior): the superior drives tx
//                     (transaction.hpp); the client's commit becomes
//                     COMMIT_REQUEST; after recovery each in-doubt
//                     transaction sends RECOVER_QUERY; the in-doubt policy of
//                     the recovery policy applies (tick()).
//   superior role     enlist_subordinate(tx, subordinate): a
//                     subordinate_proxy in tx stands for the subordinate TM;
//                     the commit record (durable) is forced before COMMIT is
//                     sent; recovery redelivers COMMIT until COMMIT_COMPLETE;
//                     RECOVER_QUERY / REQUEST_OUTCOME are answered from the
//                     live transaction, else the log (presumed abort).
// Resending (tick(now)): what is unanswered is sent again, and in-doubt
// transactions that waited past the policy's delay get their heuristic
// outcome, recorded (heuristics()), counted and reported (on_heuristic);
// the subordinate then keeps asking its superior until the superior's
// outcome is known, and reports it again (damage() when they differ).
// Call tick() periodically (a timer of the application) or after a restart.
//
// Thread-safe as the base TM; the transport may deliver on any thread. No
// lock of this class or of a transaction is held across transport.send().
// The superior role needs a registered storage (dynamic_storage or
// inline_array_storage): the proxies are registered RMs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ktm/tm/detail/recovered_transaction.hpp"
#include "ktm/tm/detail/tm_record.hpp"
#include "ktm/tm/queued_dispatcher.hpp"
#include "ktm/tm/superior/heuristic_report.hpp"
#include "ktm/tm/superior/in_process_transport.hpp"
#include "ktm/tm/superior/subordinate_proxy.hpp"
#include "ktm/tm/transaction_manager.hpp"

namespace ktm::tm {

template <class... Options>
class basic_superior_transaction_manager : public basic_transaction_manager<Options...>, public superior_sink {
  using base = basic_transaction_manager<Options...>;
  using kind = superior_message_kind;

 public:
  using typename base::transaction;
  using typename base::transport_type;
  using typename base::storage_type;
  using typename base::log_type;
  using indoubt = typename base::recovery_type::indoubt_policy;
  using time_point = std::chrono::steady_clock::time_point;
  static_assert(!std::is_same_v<transport_type, no_transport>,
                "superior_transaction_manager: needs with_transport<T> (e.g. in_process_transport)");
  static_assert(!std::is_same_v<typename base::dispatcher_type, queued_dispatcher>,
                "superior_transaction_manager: the subordinate proxies have no thread to pull a queue: use "
                "inline_dispatcher or thread_pool_dispatcher<N>");

  // The transport (outlives the TM), then the base TM's arguments.
  template <class... A>
  explicit basic_superior_transaction_manager(transport_type& t, A&&... args)
      : base(std::forward<A>(args)...), transport_(&t) {
    t.attach(this->id(), *this);
  }
  ~basic_superior_transaction_manager() {
    // A pool worker finishing a delivery may post to this TM's superior_sink
    // (a transaction's COMPLETE): stop the pool while this part still lives.
    if constexpr (requires { this->dispatcher().join(); }) this->dispatcher().join();
    transport_->detach(this->id());
  }

  // ---- subordinate role ----

  // Makes TM `superior` the superior of tx (same UOW on both TMs).
  // errc::superior_exists when tx has one; errc::invalid_state once tx left
  // active or its client committed or rolled back.
  result<void> enlist_superior(transaction& tx, const guid& superior) {
    KTM_TRY(tx.set_superior(*this, superior));
    std::lock_guard l(m_);
    subs_[tx.id()] = sub_entry{&tx, superior, 0, std::nullopt, false};
    return {};
  }

  // ---- superior role ----

  // Enlists the subordinate TM `subordinate` in tx (its proxy; the
  // subordinate's transaction must have this TM as its superior). Errors as
  // basic_transaction::enlist (already_enlisted for a second time).
  result<void> enlist_subordinate(transaction& tx, const guid& subordinate) {
    static_assert(!storage_type::is_static,
                  "superior_transaction_manager: enlist_subordinate needs a registered storage (dynamic_storage "
                  "or inline_array_storage): subordinates are enlisted through registered proxies");
    subordinate_proxy& p = proxy_for(subordinate);
    auto h = tx.enlist(p, default_mask);
    if (!h) return std::move(h).error();
    p.track(*h->release());
    return {};
  }

  // ---- recovery ----

  // The base TM's recover(), then: each in-doubt transaction (a prepared
  // record) is registered and asks its superior (RECOVER_QUERY); a decision
  // this TM took alone before (a heuristic record) is applied again and its
  // report rebuilt; each subordinate named by a recovered commit record
  // gets its proxy, which redelivers COMMIT.
  result<recovery_summary> recover(time_point now = std::chrono::steady_clock::now()) {
    auto r = base::recover();
    if (r) after_replay(*r, now);
    return r;
  }
  // The base TM's rollforward(clock) (records stamped <= clock; again with
  // a larger clock to go further), then the same as recover() for what the
  // replay found: a transaction registered once stays registered.
  result<recovery_summary> rollforward(std::uint64_t clock, time_point now = std::chrono::steady_clock::now()) {
    auto r = base::rollforward(clock);
    if (r) after_replay(*r, now);
    return r;
  }

  // Sends again what is unanswered (PREPREPARE / PREPARE / COMMIT to
  // subordinates; COMMIT_REQUEST, REQUEST_OUTCOME / RECOVER_QUERY to
  // superiors), then applies the in-doubt policy to transactions in doubt
  // since before now - indoubt::after. Returns the messages sent.
  std::size_t tick(time_point now = std::chrono::steady_clock::now()) {
    std::vector<superior_message> out;
    std::vector<std::pair<guid, sub_entry>> subs;
    {
      std::lock_guard l(m_);
      for (auto& [id, p] : proxies_) p->resends(out);
      // A decision taken alone stays open until the superior's outcome is known.
      for (const heuristic_report& rep : reports_)
        if (rep.superior_outcome == transaction_outcome::undetermined)
          out.push_back(message(kind::request_outcome, rep.superior, rep.uow));
      for (auto& [uow, en] : subs_) {
        ++en.pins;
        subs.emplace_back(uow, en);
      }
    }
    for (auto& [uow, en] : subs) {
      const kind w = en.tx->superior_wait();
      if (w == kind::commit_request || w == kind::preprepare_complete) out.push_back(message(w, en.superior, uow));
      if (w != kind::request_outcome) continue;
      out.push_back(message(en.recovered ? kind::recover_query : kind::request_outcome, en.superior, uow));
      if constexpr (indoubt::action != indoubt_action::wait) {
        if (en.since && now - *en.since >= indoubt::after) decide_alone(uow, en);
      }
    }
    {
      std::lock_guard l(m_);
      for (auto& [uow, en] : subs) unpin_locked(uow);
    }
    for (const auto& m : out) post(m);
    return out.size();
  }

  // ---- what happened ----

  // Every transaction this TM decided alone (heuristic), in order.
  std::vector<heuristic_report> heuristics() const {
    std::lock_guard l(m_);
    return reports_;
  }
  std::uint64_t heuristic_count() const noexcept { return heuristic_count_.load(std::memory_order_relaxed); }
  // Called (no lock held) when this TM decides a transaction alone, and
  // again when the superior's outcome for it arrives (see damage()).
  void on_heuristic(std::function<void(const heuristic_report&)> f) {
    std::lock_guard l(m_);
    on_heuristic_ = std::move(f);
  }
  // Called (no lock held) when a subordinate's client asks to commit uow:
  // the superior's application decides (typically: commit the transaction).
  void on_commit_request(std::function<void(const guid& uow, const guid& subordinate)> f) {
    std::lock_guard l(m_);
    on_commit_request_ = std::move(f);
  }
  std::uint64_t commit_requests() const noexcept { return commit_requests_.load(std::memory_order_relaxed); }
  // Subordinate transactions waiting in doubt (prepared, no outcome).
  std::size_t in_doubt_count() {
    std::size_t n = 0;
    std::lock_guard l(m_);
    for (auto& [uow, en] : subs_) n += en.tx->internal_state() == tx_state::prepared;
    return n;
  }
  transport_type& transport() noexcept { return *transport_; }

  // ---- the transport's receiver ----
  void receive(const superior_message& m) {
    if (m.to != this->id() || !is_known(m.kind)) return;
    this->clock().merge(m.clock);
    if (is_downward(m.kind)) from_superior(m);
    else from_subordinate(m);
  }

  // ---- superior_sink ----
  void post(const superior_message& m) override {
    superior_message out = m;
    out.from = this->id();
    if (out.clock == 0) out.clock = this->clock().now();
    if (m.kind == kind::prepare_complete) {  // in doubt from now until the outcome
      std::lock_guard l(m_);
      auto it = subs_.find(m.uow);
      if (it != subs_.end() && !it->second.since) it->second.since = std::chrono::steady_clock::now();
    }
    if (m.kind == kind::commit_complete || m.kind == kind::rollback_complete) {
      // Decided alone, the superior's outcome not yet known: no completion
      // before the superior's COMMIT / ROLLBACK asks for it (from_superior
      // notes that outcome first). Sent unasked, it could let the superior
      // end and forget the transaction, and then answer our REQUEST_OUTCOME
      // by presumed abort whatever it decided.
      std::lock_guard l(m_);
      auto it = report_index_.find(m.uow);
      if (it != report_index_.end() && reports_[it->second].superior_outcome == transaction_outcome::undetermined)
        return;
    }
    (void)transport_->send(out);  // a failure is repaired by resending (tick)
  }
  void forget(const guid& uow) noexcept override {
    std::unique_lock l(m_);
    auto it = subs_.find(uow);
    if (it == subs_.end()) return;
    unpinned_.wait(l, [&] { return it->second.pins == 0; });
    subs_.erase(it);
  }

 private:
  struct sub_entry {
    transaction_core* tx = nullptr;
    guid superior;
    unsigned pins = 0;                 // receive() / tick() calls using tx
    std::optional<time_point> since;   // in doubt since (prepared, or recovered)
    bool recovered = false;            // rebuilt from a prepared record
  };

  // After a replay (recover, rollforward): see recover().
  void after_replay(recovery_summary& r, time_point now) {
    (void)r, (void)now;  // a volatile TM replays nothing
    std::vector<superior_message> out;
    if constexpr (detail::durable_tm_log<log_type>) {
      std::vector<std::pair<detail::recovered_transaction*, transaction_outcome>> decided;
      {
        std::lock_guard l(m_);
        this->log().for_each_heuristic([&](const detail::tm_record_header& h) {
          const heuristic_report rep{h.id, h.superior, static_cast<transaction_outcome>(h.decided),
                                     static_cast<transaction_outcome>(h.superior_said)};
          auto [it, fresh] = report_index_.try_emplace(h.id, reports_.size());
          if (fresh) {
            reports_.push_back(rep);
            heuristic_count_.fetch_add(1, std::memory_order_relaxed);
          } else if (reports_[it->second].superior_outcome == transaction_outcome::undetermined) {
            reports_[it->second] = rep;  // never back to "unknown" (a rollforward sees less)
          }
        });
        this->log().for_each_in_doubt([&](detail::recovered_transaction& t) {
          if (!subs_.try_emplace(t.id(), sub_entry{&t, t.superior(), 0, now, true}).second) return;  // known
          t.set_sink(*this);
          out.push_back(message(kind::recover_query, t.superior(), t.id()));
          auto it = report_index_.find(t.id());
          if (it != report_index_.end()) decided.emplace_back(&t, reports_[it->second].decided);
        });
      }
      // a decision taken alone before the crash holds: its RMs get it again
      for (auto& [t, o] : decided) {
        superior_message m = message(kind::outcome, this->id(), t->id(), o);
        m.from = t->superior();
        t->superior_command(m);
      }
      if constexpr (!storage_type::is_static) {
        std::vector<guid> subs;
        this->log().for_each_recovered_enlistment([&](const guid& rm, std::span<const std::byte> info) {
          if (is_proxy_tag(info)) subs.push_back(rm);
        });
        for (const guid& s : subs) {
          auto n = this->recover_resource_manager(proxy_for(s));
          if (n) r.redelivered += *n;
        }
      }
    }
    for (const auto& m : out) post(m);
  }

  superior_message message(kind k, const guid& to, const guid& uow,
                           transaction_outcome o = transaction_outcome::undetermined) const {
    superior_message m;
    m.kind = k;
    m.to = to;
    m.uow = uow;
    m.outcome = o;
    return m;
  }

  subordinate_proxy& proxy_for(const guid& subordinate) {
    std::lock_guard l(m_);
    auto& p = proxies_[subordinate];
    if (!p) {
      p = std::make_unique<subordinate_proxy>(*this, subordinate);
      if constexpr (!storage_type::is_static) (void)this->add_resource_manager(*p);
    }
    return *p;
  }
  subordinate_proxy* find_proxy(const guid& subordinate) {
    std::lock_guard l(m_);
    auto it = proxies_.find(subordinate);
    return it == proxies_.end() ? nullptr : it->second.get();
  }

  void unpin_locked(const guid& uow) {
    auto it = subs_.find(uow);
    if (it != subs_.end() && --it->second.pins == 0) unpinned_.notify_all();
  }

  // A message of a superior for one of our transactions.
  void from_superior(const superior_message& m) {
    {
      std::lock_guard l(m_);
      // a decision alone whose record may be on disk: nothing contrary
      // until the restart (the TM is fail-stop)
      if (unsure_.count(m.uow)) return;
    }
    transaction_outcome said = transaction_outcome::undetermined;
    if (m.kind == kind::commit) said = transaction_outcome::committed;
    else if (m.kind == kind::rollback) said = transaction_outcome::aborted;
    else if (m.kind == kind::outcome) said = m.outcome;
    if (said != transaction_outcome::undetermined) {
      const noted n = note_superior_outcome(m.uow, said);
      if (n == noted::log_failed) return;  // unanswered: the superior asks again after our restart
      if (n == noted::damage) {
        // decided alone, differently: the damage is recorded; stop the resends
        post(message(said == transaction_outcome::committed ? kind::commit_complete : kind::rollback_complete,
                     m.from, m.uow));
        return;
      }
    }
    transaction_core* tx = nullptr;
    {
      std::lock_guard l(m_);
      auto it = subs_.find(m.uow);
      if (it != subs_.end() && it->second.superior == m.from) {
        ++it->second.pins;
        tx = it->second.tx;
      }
    }
    if (!tx) return answer_unknown(m);
    tx->superior_command(m);
    std::lock_guard l(m_);
    unpin_locked(m.uow);
  }

  // Nothing here for m.uow: it finished and was forgotten, or never
  // prepared here (presumed abort).
  void answer_unknown(const superior_message& m) {
    switch (m.kind) {
      case kind::preprepare:
      case kind::prepare: return post(message(kind::aborted, m.from, m.uow));
      case kind::commit: return post(message(kind::commit_complete, m.from, m.uow));
      case kind::rollback: return post(message(kind::rollback_complete, m.from, m.uow));
      default: return;
    }
  }

  // A message of a subordinate about one of our transactions.
  void from_subordinate(const superior_message& m) {
    switch (m.kind) {
      case kind::commit_request: {
        if (this->state() != tm_state::online) return;  // asked again later
        if (forgotten(m)) return post(message(kind::rollback, m.from, m.uow));
        commit_requests_.fetch_add(1, std::memory_order_relaxed);
        std::function<void(const guid&, const guid&)> f;
        {
          std::lock_guard l(m_);
          f = on_commit_request_;
        }
        if (f) f(m.uow, m.from);
        return;
      }
      case kind::request_outcome:
      case kind::recover_query: {
        if (this->state() != tm_state::online) return;  // ask again later
        std::optional<transaction_outcome> o;
        if (subordinate_proxy* p = find_proxy(m.from)) o = p->outcome_of(m.uow);
        if (!o) o = logged_outcome(m.uow);
        return post(message(kind::outcome, m.from, m.uow, *o));
      }
      case kind::preprepare_complete:
        if (this->state() == tm_state::online && forgotten(m)) return post(message(kind::rollback, m.from, m.uow));
        [[fallthrough]];
      default:
        if (subordinate_proxy* p = find_proxy(m.from)) p->receive(m);
        return;
    }
  }

  // A subordinate speaks of a transaction in which this TM has no live
  // enlistment of it and no logged commit: it ended and was forgotten, or a
  // crash lost it before its commit record (presumed abort). The answer is
  // ROLLBACK; the subordinate would otherwise wait for a superior that will
  // never ask (a transaction it still runs rolls back, one it ended
  // answers ROLLBACK_COMPLETE).
  bool forgotten(const superior_message& m) {
    subordinate_proxy* p = find_proxy(m.from);
    return (!p || !p->outcome_of(m.uow)) && logged_outcome(m.uow) == transaction_outcome::aborted;
  }

  transaction_outcome logged_outcome(const guid& uow) const {
    if constexpr (detail::durable_tm_log<log_type>) return this->recovered_outcome(uow);
    else return (void)uow, transaction_outcome::aborted;  // presumed abort
  }

  // Forces a heuristic record (tm_record.hpp) for a durable TM: the
  // decision, or the superior's outcome of one, survives a crash. False
  // when the log failed (the TM is fail-stop).
  bool log_heuristic(const heuristic_report& rep) {
    if constexpr (detail::durable_tm_log<log_type>) {
      detail::tm_record_writer w(detail::tm_record_type::heuristic, this->clock().now(), rep.uow);
      w.set_superior(rep.superior);
      w.set_outcomes(static_cast<std::uint8_t>(rep.decided), static_cast<std::uint8_t>(rep.superior_outcome));
      return this->log().append(w.bytes(), log_append_mode::force).has_value();
    } else {
      return (void)rep, true;
    }
  }

  // The in-doubt policy's heuristic decision for a pinned transaction:
  // logged (forced) before any RM hears it.
  void decide_alone(const guid& uow, const sub_entry& en) {
    const transaction_outcome o = indoubt::action == indoubt_action::heuristic_commit
                                      ? transaction_outcome::committed
                                      : transaction_outcome::aborted;
    heuristic_report rep{uow, en.superior, o, transaction_outcome::undetermined};
    {
      std::lock_guard l(m_);
      if (report_index_.count(uow) || unsure_.count(uow)) return;
    }
    if (!log_heuristic(rep)) {  // fail-stop: it stays in doubt, silent, until the restart
      std::lock_guard l(m_);
      unsure_.insert(uow);
      return;
    }
    std::function<void(const heuristic_report&)> f;
    {
      std::lock_guard l(m_);
      if (report_index_.count(uow)) return;
      report_index_[uow] = reports_.size();
      reports_.push_back(rep);
      f = on_heuristic_;
    }
    heuristic_count_.fetch_add(1, std::memory_order_relaxed);
    superior_message m = message(kind::outcome, this->id(), uow, o);
    m.from = en.superior;
    en.tx->superior_command(m);
    if (f) f(rep);
  }

  // Records the superior's outcome of a transaction decided alone (logged,
  // forced, before the superior hears an answer that lets it forget).
  enum class noted { not_alone, agree, damage, log_failed };
  noted note_superior_outcome(const guid& uow, transaction_outcome said) {
    heuristic_report rep;
    {
      std::lock_guard l(m_);
      auto it = report_index_.find(uow);
      if (it == report_index_.end()) return noted::not_alone;
      rep = reports_[it->second];
    }
    std::function<void(const heuristic_report&)> f;
    if (rep.superior_outcome == transaction_outcome::undetermined) {
      rep.superior_outcome = said;
      if (!log_heuristic(rep)) return noted::log_failed;
      std::lock_guard l(m_);
      heuristic_report& r = reports_[report_index_[uow]];
      if (r.superior_outcome == transaction_outcome::undetermined) {
        r.superior_outcome = said;
        f = on_heuristic_;
      }
      rep = r;
    }
    if (f) f(rep);
    return rep.damage() ? noted::damage : noted::agree;
  }

  transport_type* transport_;
  mutable std::mutex m_;
  std::condition_variable unpinned_;
  std::unordered_map<guid, sub_entry> subs_;  // transactions with a superior
  std::unordered_map<guid, std::unique_ptr<subordinate_proxy>> proxies_;  // by subordinate TM id
  std::vector<heuristic_report> reports_;
  std::unordered_map<guid, std::size_t> report_index_;
  std::unordered_set<guid> unsure_;  // a heuristic record whose force failed: it may be durable
  std::function<void(const heuristic_report&)> on_heuristic_;
  std::function<void(const guid&, const guid&)> on_commit_request_;
  std::atomic<std::uint64_t> heuristic_count_{0};
  std::atomic<std::uint64_t> commit_requests_{0};
};

// The friendly name: options as for basic_transaction_manager, with_transport<T> among them.
template <class... Options>
using superior_transaction_manager = basic_superior_transaction_manager<Options...>;

// In one process: makes superior_tm the superior of sub_tx and enlists
// sub_tm in sup_tx. The two transactions must have the same UOW
// (errc::invalid_argument otherwise); errors as enlist_superior /
// enlist_subordinate.
template <class Sup, class Sub>
result<void> link_subordinate(Sup& superior_tm, typename Sup::transaction& sup_tx, Sub& subordinate_tm,
                              typename Sub::transaction& sub_tx) {
  if (sup_tx.id() != sub_tx.id()) return errc::invalid_argument;
  KTM_TRY(subordinate_tm.enlist_superior(sub_tx, superior_tm.id()));
  return superior_tm.enlist_subordinate(sup_tx, subordinate_tm.id());
}

}  // namespace ktm::tm
