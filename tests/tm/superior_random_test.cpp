// tests/tm/superior_random_test.cpp: a seeded randomized hunt over the
// superior / subordinate protocol. From a seed: a durable superior TM and
// 1-3 durable subordinate TMs (each over its own fault-injecting memory log),
// each with a durable RM that answers PREPARE at random (done, read_only,
// rollback, or later() and answered by the test later), many transactions
// over random subsets of the subordinates, decided by a client at random
// (commit on the superior, rollback on the superior, commit requested from a
// subordinate, rollback on a subordinate then commit on the superior), over
// a transport that drops, duplicates, delays and loses messages, with
// crashes of the superior or a subordinate at random points (also inside a
// log force), and restarts.
//
// Then the world heals (no more faults, everything restarted, every late
// answer given, resends until quiet) and for every transaction:
//  * it is resolved: no RM prepared, nothing in doubt, every live
//    transaction object done (bounded: never waits forever);
//  * atomicity: never one RM committed and another rolled back;
//  * an acknowledged commit (the client's callback said success) is
//    committed at every RM that prepared; an acknowledged abort nowhere;
//  * presumed abort / redelivery: what the superior's log says was committed
//    is committed at every RM that prepared;
//  * a subordinate's own outcome agrees with the RMs';
//  * with a heuristic in-doubt policy: a disagreement is allowed only where
//    the subordinate reported a heuristic decision for the transaction.
//
// KTM_SUPERIOR_RANDOM_SEEDS=n runs seeds 1..n (default 24);
// KTM_SUPERIOR_RANDOM_SEED=s runs only seed s.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/tm/superior_fixtures.hpp"

using namespace ktm::test;
using ktm::guid;
using ktm::io::call_kind;
namespace kt = ktm::tm;

namespace {

// ---- the RMs -------------------------------------------------------------

struct late_answer {
  int side;  // -1 superior, else subordinate index
  kt::enlistment* e;
  guid uow;
  ledger* book;
};

struct rm_control {
  std::mt19937_64 rng{1};
  int read_only_pct = 10, rollback_pct = 4, late_pct = 15;
  std::map<guid, int> side_of;  // rm id -> side
  std::vector<late_answer> late;
  std::set<std::pair<guid, guid>> voted_read_only;  // (rm, uow)
  int protocol_violations = 0;                      // COMMIT/ROLLBACK to a read-only voter
  std::vector<std::string> notes;
};

inline rm_control*& control() {
  static rm_control* c = nullptr;
  return c;
}

// A durable RM over a ledger that votes at random (see rm_control).
template <int Tag>
class random_rm : public kt::resource_manager_base<kt::rm_kind::durable_rm> {
 public:
  random_rm(ledger& l, guid id) : resource_manager_base(id), l_(&l), id_(id) {}

  kt::reply on_prepare(kt::enlistment& e, const kt::notification& n) {
    rm_control& c = *control();
    const int r = static_cast<int>(c.rng() % 100);
    if (r < c.read_only_pct) {
      c.voted_read_only.insert({id_, n.transaction});
      return kt::reply::read_only();
    }
    if (r < c.read_only_pct + c.rollback_pct) {
      l_->set(n.transaction, ledger_state::aborted);
      return kt::reply::rollback();
    }
    if (r < c.read_only_pct + c.rollback_pct + c.late_pct) {
      c.late.push_back({c.side_of.at(id_), &e, n.transaction, l_});
      return kt::reply::later();
    }
    l_->set(n.transaction, ledger_state::prepared);
    return kt::reply::done();
  }
  kt::reply on_commit(kt::enlistment&, const kt::notification& n) {
    if (control()->voted_read_only.count({id_, n.transaction})) ++control()->protocol_violations;
    l_->set(n.transaction, ledger_state::committed);
    return kt::reply::done();
  }
  kt::reply on_rollback(kt::enlistment&, const kt::notification& n) {
    if (control()->voted_read_only.count({id_, n.transaction})) ++control()->protocol_violations;
    l_->set(n.transaction, ledger_state::aborted);
    return kt::reply::done();
  }
  kt::reply on_recover(kt::enlistment&, const kt::notification& n) {
    mentioned_.insert(n.transaction);
    return kt::reply::done();
  }
  void on_indoubt(kt::enlistment&, const kt::notification&) { ++indoubts; }
  void on_last_recover(const kt::notification&) {
    std::set<guid> mentioned;
    mentioned.swap(mentioned_);
    std::vector<guid> orphans;
    {
      std::lock_guard g(l_->m);
      for (auto& [t, s] : l_->txs)
        if (s == ledger_state::prepared && !mentioned.count(t)) orphans.push_back(t);
    }
    for (const auto& t : orphans) l_->set(t, ledger_state::aborted);  // presumed abort
  }
  int indoubts = 0;

 private:
  ledger* l_;
  guid id_;
  std::set<guid> mentioned_;
};

using sup_rm = random_rm<1>;
using sub_rm = random_rm<2>;
using sup_tm = durable_superior_tm<kt::wait_in_doubt, kt::with_storage<kt::dynamic_storage>>;
template <class InDoubt>
using sub_tm = durable_superior_tm<InDoubt, kt::with_storage<kt::static_storage<sub_rm>>>;

// ---- one transaction ------------------------------------------------------

enum class plan { commit_top, rollback_top, commit_from_sub, rollback_sub_then_commit };

struct client_box {
  std::optional<std::error_code> top;  // the superior client's commit result
  std::optional<std::error_code> sub;  // a subordinate client's commit result
};

template <class Leaf>
struct txn {
  guid uow;
  std::optional<owned_tx<sup_tm>> t;
  std::vector<std::optional<owned_tx<Leaf>>> l;  // per subordinate, if linked
  std::vector<bool> linked;
  plan p = plan::commit_top;
  int via = -1;  // the subordinate of commit_from_sub / rollback_sub_then_commit
  bool decided = false;
  bool top_lost = false;
  bool top_committing = false;  // commit_async called on the superior
  std::shared_ptr<client_box> box = std::make_shared<client_box>();
};

std::string show(const std::optional<ledger_state>& s) {
  if (!s) return "-";
  switch (*s) {
    case ledger_state::prepared: return "prepared";
    case ledger_state::committed: return "committed";
    default: return "aborted";
  }
}

// ---- the world -------------------------------------------------------------

template <class InDoubt>
struct world {
  using leaf_t = sub_tm<InDoubt>;
  using side_top = durable_side<sup_tm, sup_rm>;
  using side_sub = durable_side<leaf_t, sub_rm>;

  std::uint64_t seed;
  std::mt19937_64 rng;
  rm_control ctl;
  fault_transport bus;
  side_top top{bus};
  std::vector<std::unique_ptr<side_sub>> subs;
  bool top_up = false;
  std::vector<bool> sub_up;
  std::optional<std::uint64_t> top_armed;  // crashes() when a crash_at was armed
  std::vector<std::optional<std::uint64_t>> sub_armed;
  std::vector<std::unique_ptr<txn<leaf_t>>> txs;
  std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now();
  int crashes = 0, restarts = 0, heuristics_seen = 0;
  bool top_may_crash = true;
  std::vector<std::vector<kt::heuristic_report>> reports;  // per subordinate, across its incarnations

  explicit world(std::uint64_t s) : seed(s), rng(s), bus(s * 7919 + 1) {
    ctl.rng.seed(s * 104729 + 3);
    top_may_crash = rng() % 2 == 0;
    control() = &ctl;
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int i = 0; i < n; ++i) subs.push_back(std::make_unique<side_sub>(bus));
    sub_up.assign(n, false);
    sub_armed.assign(n, std::nullopt);
    reports.resize(n);
    ctl.side_of[top.rm_id] = -1;
    for (int i = 0; i < n; ++i) ctl.side_of[subs[i]->rm_id] = i;
    start_top();
    for (int i = 0; i < n; ++i) start_sub(i);
  }
  ~world() {
    // Transactions go before their TMs; those that cannot end are abandoned.
    for (auto& x : txs) {
      for (auto& l : x->l)
        if (l && l->tx) {
          if ((*l)->is_done()) l->tx.reset();
          else l->abandon();
        }
      if (x->t && x->t->tx) {
        if ((*x->t)->is_done()) x->t->tx.reset();
        else x->t->abandon();
      }
    }
    control() = nullptr;
  }

  void start_top() {
    top.restart();
    top_up = true;
    top.tm->on_commit_request([this](const guid& uow, const guid&) {
      for (auto& x : txs)
        if (x->uow == uow) commit_top(*x);
    });
  }
  void start_sub(int i) {
    subs[i]->restart();
    sub_up[i] = true;
    subs[i]->tm->on_heuristic([this, i](const kt::heuristic_report& r) {
      ++heuristics_seen;
      reports[i].push_back(r);
    });
  }

  void commit_top(txn<leaf_t>& x) {
    if (x.top_lost || !x.t || !x.t->tx || x.top_committing) return;
    x.top_committing = true;
    auto box = x.box;
    auto r = (*x.t)->commit_async([box](ktm::result<void> res) { box->top = res ? std::error_code{} : res.error().code; });
    if (!r) box->top = r.error().code;  // e.g. rolled back already
  }

  void crash_top() {
    for (auto& x : txs)
      if (x->t && x->t->tx) {
        x->t->abandon();
        x->top_lost = true;
      }
    std::erase_if(ctl.late, [](const late_answer& a) { return a.side == -1; });
    top.crash();
    top_up = false;
    top_armed.reset();
    ++crashes;
  }
  void crash_sub(int i) {
    for (auto& x : txs)
      if (x->l[i] && x->l[i]->tx) x->l[i]->abandon();
    std::erase_if(ctl.late, [i](const late_answer& a) { return a.side == i; });
    subs[i]->crash();
    sub_up[i] = false;
    sub_armed[i].reset();
    ++crashes;
  }
  // A crash_at that fired inside a force: the process dies now.
  void reap_armed() {
    if (top_up && top_armed && top.st.controller()->crashes() > *top_armed) crash_top();
    for (std::size_t i = 0; i < subs.size(); ++i)
      if (sub_up[i] && sub_armed[i] && subs[i]->st.controller()->crashes() > *sub_armed[i]) crash_sub(static_cast<int>(i));
  }

  std::size_t tick_all() {
    now += std::chrono::milliseconds(50);
    std::size_t n = 0;
    if (top_up) n += top.tm->tick(now);
    for (std::size_t i = 0; i < subs.size(); ++i)
      if (sub_up[i]) n += subs[i]->tm->tick(now);
    return n;
  }

  void begin_one() {
    std::vector<int> up;
    for (std::size_t i = 0; i < subs.size(); ++i)
      if (sub_up[i]) up.push_back(static_cast<int>(i));
    if (!top_up || up.empty()) return;
    auto x = std::make_unique<txn<leaf_t>>();
    x->l.resize(subs.size());
    x->linked.assign(subs.size(), false);
    x->t.emplace(*top.tm, guid::generate());
    x->uow = (*x->t)->id();
    bool any = false;
    for (int i : up)
      if (rng() % 3 != 0 || (!any && i == up.back())) {
        x->l[i].emplace(*subs[i]->tm, x->uow);
        REQUIRE(kt::link_subordinate(*top.tm, **x->t, *subs[i]->tm, **x->l[i]));
        x->linked[i] = true;
        any = true;
        if (rng() % 8 != 0) release((*x->l[i])->enlist(*subs[i]->rm));
      }
    if (rng() % 4 != 0) release((*x->t)->enlist(*top.rm));
    const int r = static_cast<int>(rng() % 10);
    x->p = r < 5 ? plan::commit_top : r < 7 ? plan::rollback_top : r < 9 ? plan::commit_from_sub : plan::rollback_sub_then_commit;
    std::vector<int> linked;
    for (std::size_t i = 0; i < subs.size(); ++i)
      if (x->linked[i]) linked.push_back(static_cast<int>(i));
    x->via = linked[rng() % linked.size()];
    txs.push_back(std::move(x));
  }
  static void release(ktm::result<kt::enlistment_handle> h) {
    REQUIRE(h);
    h->release();
  }

  // The client's decision for x (once).
  void decide(txn<leaf_t>& x) {
    if (x.decided) return;
    x.decided = true;
    auto* sub = x.via >= 0 && x.l[x.via] && x.l[x.via]->tx ? x.l[x.via]->tx.get() : nullptr;
    switch (x.p) {
      case plan::commit_top: commit_top(x); break;
      case plan::rollback_top:
        if (!x.top_lost && x.t && x.t->tx) (void)(*x.t)->rollback_async([](ktm::result<void>) {});
        break;
      case plan::commit_from_sub:
        if (sub) {
          auto box = x.box;
          auto r = sub->commit_async([box](ktm::result<void> res) { box->sub = res ? std::error_code{} : res.error().code; });
          if (!r) box->sub = r.error().code;
        } else {
          commit_top(x);
        }
        break;
      case plan::rollback_sub_then_commit:
        if (sub) (void)sub->rollback_async([](ktm::result<void>) {});
        commit_top(x);
        break;
    }
  }

  void answer_late(std::size_t k, bool yes) {
    late_answer a = ctl.late[k];
    ctl.late.erase(ctl.late.begin() + static_cast<std::ptrdiff_t>(k));
    if (yes) {
      a.book->set(a.uow, ledger_state::prepared);
      (void)a.e->prepare_complete();
    } else {
      a.book->set(a.uow, ledger_state::aborted);
      (void)a.e->rollback();
    }
  }

  void arm(int side) {
    auto& st = side < 0 ? top.st : subs[side]->st;
    const std::uint64_t before = st.controller()->crashes();
    // half of them after the flush reached the device (a failed fsync whose
    // bytes landed): the record may be durable though the force failed
    const bool after = rng() % 2 == 0;
    st.controller()->crash_at(call_kind::flush, 1 + rng() % 4, {}, after);
    (side < 0 ? top_armed : sub_armed[side]) = before;
  }

  // The random phase.
  void run(int steps, int max_tx, int max_crashes) {
    bus.drop_per_million = static_cast<std::uint32_t>(rng() % 200000);
    bus.duplicate_per_million = static_cast<std::uint32_t>(rng() % 200000);
    ctl.late_pct = static_cast<int>(rng() % 25);
    int begun = 0;
    for (int s = 0; s < steps; ++s) {
      const int r = static_cast<int>(rng() % 100);
      if (r < 10) {
        if (begun < max_tx) {
          begin_one();
          ++begun;
        }
      } else if (r < 22) {
        std::vector<txn<leaf_t>*> open;
        for (auto& x : txs)
          if (!x->decided) open.push_back(x.get());
        if (!open.empty()) decide(*open[rng() % open.size()]);
      } else if (r < 55) {
        bus.pump(1 + rng() % 4);
      } else if (r < 68) {
        now += std::chrono::milliseconds(50);
        const int who = static_cast<int>(rng() % (subs.size() + 1)) - 1;
        if (who < 0 && top_up) top.tm->tick(now);
        if (who >= 0 && sub_up[who]) subs[who]->tm->tick(now);
      } else if (r < 72) {
        bus.release_delayed();
      } else if (r < 75) {
        bus.delay_next = 1 + rng() % 3;
      } else if (r < 83) {
        if (!ctl.late.empty()) answer_late(rng() % ctl.late.size(), rng() % 5 != 0);
      } else if (r < 86) {
        if (crashes < max_crashes) {
          const int who = static_cast<int>(rng() % (subs.size() + 1)) - 1;
          if (who < 0 && top_up && top_may_crash) crash_top();
          if (who >= 0 && sub_up[who]) crash_sub(who);
          if (rng() % 2) bus.lose_queued();
        }
      } else if (r < 88) {
        if (crashes < max_crashes) {
          const int who = static_cast<int>(rng() % (subs.size() + 1)) - 1;
          if (who < 0 && top_up && !top_armed && top_may_crash) arm(-1);
          if (who >= 0 && sub_up[who] && !sub_armed[who]) arm(who);
        }
      } else if (r < 96) {
        const int who = static_cast<int>(rng() % (subs.size() + 1)) - 1;
        if (who < 0 && !top_up) {
          start_top();
          ++restarts;
        }
        if (who >= 0 && !sub_up[who]) {
          start_sub(who);
          ++restarts;
        }
      } else {
        bus.lose_queued();
      }
      reap_armed();
    }
  }

  // No more faults; everything restarted; resend until quiet. True if quiet.
  bool heal() {
    bus.drop_per_million = 0;
    bus.duplicate_per_million = 0;
    reap_armed();
    if (top_up) top.st.controller()->clear_faults();
    top_armed.reset();
    for (std::size_t i = 0; i < subs.size(); ++i) {
      if (sub_up[i]) subs[i]->st.controller()->clear_faults();
      sub_armed[i].reset();
    }
    if (!top_up) {
      start_top();
      ++restarts;
    }
    for (std::size_t i = 0; i < subs.size(); ++i)
      if (!sub_up[i]) {
        start_sub(static_cast<int>(i));
        ++restarts;
      }
    bus.release_delayed();
    for (int round = 0; round < 400; ++round) {
      while (!ctl.late.empty()) answer_late(0, true);
      for (auto& x : txs) decide(*x);
      // A subordinate's client whose transaction never prepared and whose
      // superior is finished with it (or lost it) gives up (presumed abort).
      if (round >= 20) {
        for (auto& x : txs) {
          const bool top_over = x->top_lost || !x->t || !x->t->tx || (*x->t)->is_done();
          if (!top_over) continue;
          for (auto& l : x->l)
            if (l && l->tx && !(*l)->is_done() && is_before_prepared((*l)->internal_state()))
              (void)(*l)->rollback_async([](ktm::result<void>) {});
        }
        // A superior's client waiting for a commit request that died with
        // its subordinate commits itself.
        for (auto& x : txs)
          if (!x->top_lost && x->t && x->t->tx && (*x->t)->internal_state() == kt::tx_state::active) commit_top(*x);
      }
      bus.release_delayed();
      const std::size_t sent = tick_all();
      const std::size_t moved = bus.pump(100000);
      if (sent == 0 && moved == 0 && ctl.late.empty() && all_done()) return true;
    }
    return false;
  }

  static bool is_before_prepared(kt::tx_state s) {
    return s == kt::tx_state::active || s == kt::tx_state::prepreparing || s == kt::tx_state::preprepared;
  }
  bool all_done() const {
    for (auto& x : txs) {
      if (x->t && x->t->tx && !(*x->t)->is_done()) return false;
      for (auto& l : x->l)
        if (l && l->tx && !(*l)->is_done()) return false;
    }
    return true;
  }

  std::string describe(const txn<leaf_t>& x) const {
    std::ostringstream o;
    o << "uow " << x.uow.to_string() << " plan " << static_cast<int>(x.p) << " via " << x.via << (x.top_lost ? " top-lost" : "")
      << " top-rm " << show(const_cast<ledger&>(top.book).get(x.uow));
    if (x.t && x.t->tx) o << " top-state " << static_cast<int>((*x.t)->internal_state());
    if (x.box->top) o << " top-ack " << x.box->top->message();
    if (x.box->sub) o << " sub-ack " << x.box->sub->message();
    for (std::size_t i = 0; i < subs.size(); ++i) {
      if (!x.linked[i]) continue;
      o << " | sub" << i << " rm " << show(const_cast<ledger&>(subs[i]->book).get(x.uow));
      if (x.l[i] && x.l[i]->tx) o << " state " << static_cast<int>((*x.l[i])->internal_state());
      else o << " (abandoned)";
    }
    if (std::getenv("KTM_SUPERIOR_RANDOM_TRACE")) {  // the messages of this UOW, in delivery order
      auto name = [&](const guid& g) -> std::string {
        if (g == top.tm_id) return "T";
        for (std::size_t i = 0; i < subs.size(); ++i)
          if (g == subs[i]->tm_id) return "S" + std::to_string(i);
        return "?";
      };
      o << " | msgs:";
      for (const auto& m : bus.delivered)
        if (m.uow == x.uow) o << " " << name(m.from) << ">" << name(m.to) << ":" << static_cast<int>(m.kind);
    }
    return o.str();
  }

  bool heuristic_for(int i, const guid& uow) const {
    for (const auto& r : reports[i])
      if (r.uow == uow) return true;
    return false;
  }

  // The invariants, after heal().
  void check(bool heuristic_mode) {
    CHECK(!top.book.violation);
    for (auto& s : subs) {
      CHECK(!s->book.violation);
      if (s->book.violation)
        for (auto& xp : txs)
          if (xp->uow == s->book.violated) FAIL_CHECK(describe(*xp));
    }
    CHECK(ctl.protocol_violations == 0);
    for (std::size_t i = 0; i < subs.size(); ++i) {
      if (!heuristic_mode) CHECK(subs[i]->tm->heuristic_count() == 0);
      CHECK(subs[i]->tm->in_doubt_count() == 0);
    }
    for (auto& xp : txs) {
      auto& x = *xp;
      const std::string d = describe(x);
      CAPTURE(d);
      std::vector<std::optional<ledger_state>> rms{top.book.get(x.uow)};
      std::vector<int> who{-1};
      for (std::size_t i = 0; i < subs.size(); ++i)
        if (x.linked[i]) {
          rms.push_back(subs[i]->book.get(x.uow));
          who.push_back(static_cast<int>(i));
        }
      bool any_commit = false, any_abort = false, any_prepared = false;
      for (auto& s : rms) {
        any_commit |= s == ledger_state::committed;
        any_abort |= s == ledger_state::aborted;
        any_prepared |= s == ledger_state::prepared;
      }
      CHECK_FALSE(any_prepared);  // resolved
      bool excused = false;       // a reported heuristic decision
      for (std::size_t i = 0; i < subs.size(); ++i) excused |= x.linked[i] && heuristic_for(static_cast<int>(i), x.uow);
      if (!(heuristic_mode && excused)) {
        CHECK_FALSE((any_commit && any_abort));  // atomicity
        if (x.box->top && !*x.box->top) {        // acknowledged commit
          for (auto& s : rms) CHECK(s != ledger_state::aborted);
        }
        if (x.box->top && *x.box->top == ktm::errc::transaction_aborted) {
          for (auto& s : rms) CHECK(s != ledger_state::committed);
        }
        // (a subordinate with nothing prepared drops out read-only and its
        // client's commit succeeds whatever the superior decides: see below)
        if (x.box->sub && !*x.box->sub && subs[static_cast<std::size_t>(x.via)]->book.get(x.uow)) {
          for (auto& s : rms) CHECK(s != ledger_state::aborted);
        }
        if (x.box->sub && *x.box->sub == ktm::errc::transaction_aborted) {
          for (auto& s : rms) CHECK(s != ledger_state::committed);
        }
        if (x.top_lost && top.tm->recovered_outcome(x.uow) == kt::transaction_outcome::committed) {
          for (auto& s : rms) CHECK(s != ledger_state::aborted);
        }
        if (x.t && x.t->tx && (*x.t)->is_done()) {
          const auto o = (*x.t)->outcome();
          if (o == kt::transaction_outcome::committed)
            for (auto& s : rms) CHECK(s != ledger_state::aborted);
          if (o == kt::transaction_outcome::aborted)
            for (auto& s : rms) CHECK(s != ledger_state::committed);
        }
        for (std::size_t i = 0; i < subs.size(); ++i) {
          if (!x.l[i] || !x.l[i]->tx || !(*x.l[i])->is_done()) continue;
          const auto o = (*x.l[i])->outcome();
          // A subordinate with nothing prepared (no RM, or read-only) drops
          // out with READ_ONLY and calls itself committed, whatever the
          // superior decides: only checked where its RM took part.
          if (o == kt::transaction_outcome::committed && subs[i]->book.get(x.uow))
            for (auto& s : rms) CHECK(s != ledger_state::aborted);
          if (o == kt::transaction_outcome::aborted)
            for (auto& s : rms) CHECK(s != ledger_state::committed);
        }
      }
      if (x.t && x.t->tx) CHECK((*x.t)->is_done());
      for (auto& l : x.l)
        if (l && l->tx) CHECK((*l)->is_done());
    }
  }
};

std::vector<std::uint64_t> seeds_from_env(std::uint64_t dflt) {
  if (const char* one = std::getenv("KTM_SUPERIOR_RANDOM_SEED")) return {std::strtoull(one, nullptr, 10)};
  std::uint64_t n = dflt;
  if (const char* s = std::getenv("KTM_SUPERIOR_RANDOM_SEEDS")) n = std::strtoull(s, nullptr, 10);
  std::vector<std::uint64_t> v;
  for (std::uint64_t i = 1; i <= n; ++i) v.push_back(i);
  return v;
}

template <class InDoubt>
void run_seeds(bool heuristic_mode, std::uint64_t dflt) {
  std::uint64_t txs = 0;
  int crashes = 0, restarts = 0, heuristics = 0, stuck = 0;
  for (std::uint64_t seed : seeds_from_env(dflt)) {
    CAPTURE(seed);
    world<InDoubt> w(seed);
    w.run(600, 12, 3);
    const bool quiet = w.heal();
    if (!quiet) ++stuck;
    CHECK(quiet);
    w.check(heuristic_mode);
    txs += w.txs.size();
    crashes += w.crashes;
    restarts += w.restarts;
    heuristics += w.heuristics_seen;
  }
  WARN("transactions " << txs << " crashes " << crashes << " restarts " << restarts << " heuristic reports "
                       << heuristics << " not quiet " << stuck);
}

}  // namespace

TEST_CASE("random faults and crashes leave every transaction of a superior and its subordinates with one outcome") {
  run_seeds<kt::wait_in_doubt>(false, 24);
}

// It found the two problems fixed below (seeds 3 and 8).
TEST_CASE("with a heuristic in-doubt policy every disagreement with the superior is a reported heuristic decision") {
  run_seeds<kt::heuristic_abort_after<1000>>(true, 12);
}

// ---- minimal reproductions of what the random test found -----------------
// Each was a bug, fixed.

// Found by seed 12 of the first test case. The superior's commit record is
// forced and reaches the device, but the force reports a failure (the
// storage crashes right after the flush; in life: an fsync error after the
// write). The superior rolled the transaction back, and after the restart
// recovery found the durable commit record and redelivered COMMIT to RMs
// that had rolled back. Now such a transaction is left in doubt
// (transaction.hpp, commit_log_failed_locked).
TEST_CASE("a superior whose commit record force fails after reaching the log never rolls back what recovery then commits") {
  for (std::uint64_t flush = 1; flush <= 3; ++flush) {
    CAPTURE(flush);
    durable_world<> w(flush);
    auto& [bus, top, leaf] = w;
    durable_link<> d(top, leaf, true);
    auto& [t, l, uow] = d;
    top.st.controller()->crash_at(call_kind::flush, flush, {}, /*after=*/true);
    auto told = std::make_shared<std::optional<std::error_code>>();
    REQUIRE(t->commit_async([told](ktm::result<void> r) { *told = r ? std::error_code{} : r.error().code; }));
    bus.pump();
    t.abandon();
    top.crash();
    bus.lose_queued();
    top.restart();
    for (int i = 0; i < 30; ++i) {
      const std::size_t sent = top.tm->tick() + leaf.tm->tick();
      if (bus.pump() == 0 && sent == 0) break;
    }
    const auto a = top.book.get(uow), b = leaf.book.get(uow);
    INFO("client told " << (*told ? (*told)->message() : std::string("nothing")) << "; top RM "
                        << show(a) << "; subordinate RM " << show(b));
    CHECK_FALSE(top.book.violation);  // the top RM: ROLLBACK, then COMMIT
    CHECK_FALSE(leaf.book.violation);
    CHECK((a == ledger_state::committed) == (b == ledger_state::committed));
    if (*told && **told == ktm::errc::transaction_aborted) {
      CHECK(a != ledger_state::committed);
      CHECK(b != ledger_state::committed);
    }
    if (l.tx && l->is_done()) l.tx.reset();
    else l.abandon();
  }
}

// Found by many seeds (plan "commit from a subordinate"), fixed: a
// subordinate's client asked its superior to commit (COMMIT_REQUEST) after
// the superior crashed and forgot the transaction (presumed abort); nothing
// answered, the subordinate resent COMMIT_REQUEST forever and its client
// could not roll back either (a subordinate waiting preprepared sent
// nothing at all). The superior now answers ROLLBACK for a transaction it
// has no enlistment of that subordinate in and no commit record of, and a
// preprepared subordinate says PREPREPARE_COMPLETE again at each tick().
TEST_CASE("a subordinate whose commit request reaches a superior that forgot the transaction is told to roll back") {
  durable_world<> w(77);
  auto& [bus, top, leaf] = w;
  durable_link<> d(top, leaf, true);
  auto& [t, l, uow] = d;
  top.tm->on_commit_request([](const guid&, const guid&) {});  // the superior's client is gone
  t.abandon();
  top.crash();  // forgets the transaction: nothing was logged
  top.restart();
  auto told = std::make_shared<std::optional<std::error_code>>();
  REQUIRE(l->commit_async([told](ktm::result<void> r) { *told = r ? std::error_code{} : r.error().code; }));
  for (int i = 0; i < 50 && !l->is_done(); ++i) {
    top.tm->tick();
    leaf.tm->tick();
    bus.pump();
  }
  CHECK(l->is_done());
  REQUIRE(told->has_value());
  CHECK(**told == ktm::errc::transaction_aborted);
  for (int i = 0; i < 5; ++i) {
    leaf.tm->tick();
    bus.pump();
  }
  CHECK(leaf.book.get(uow) != ledger_state::committed);
  if (l->is_done()) l.tx.reset();
  else l.abandon();
}

// Found by seed 8 of the heuristic test case, fixed. A durable subordinate
// with a heuristic in-doubt policy prepares; its PREPARE_COMPLETE is lost;
// it crashes and recovers the transaction in doubt; the superior is still
// preparing and answers its RECOVER_QUERY / REQUEST_OUTCOME `undetermined`;
// the policy's delay passes and the subordinate rolls back alone (reported).
// It answered the superior's resent PREPARE with nothing at all, so the
// superior's transaction never ended and the report never learnt the
// superior's outcome. It now answers ABORTED (PREPARE_COMPLETE after a
// commit alone: recovered_transaction.hpp). (Without the heuristic
// decision, wait_in_doubt, the same sequence resolves: checked below too.)
//
// Seed 3 of the same test case found the other: a subordinate that rolled
// back alone and crashed before its lazy end record reached the log came
// back in doubt, and the superior's COMMIT then reached RMs that had rolled
// back. The decision is now logged first (superior_heuristic_test.cpp).
template <class Leaf>
static void lost_prepare_complete_then_crash(bool decide_alone) {
  durable_world<Leaf> w(78);
  auto& [bus, top, leaf] = w;
  durable_link<Leaf> d(top, leaf, true);
  auto& [t, l, uow] = d;
  REQUIRE(t->commit_async([](ktm::result<void>) {}));
  bus.pump(3);  // PREPREPARE, PREPREPARE_COMPLETE, PREPARE: the subordinate prepared
  REQUIRE(leaf.book.get(uow) == ledger_state::prepared);
  bus.lose_queued();  // PREPARE_COMPLETE lost
  l.abandon();
  leaf.crash();
  leaf.restart();
  REQUIRE(leaf.tm->in_doubt_count() == 1);
  auto now = std::chrono::steady_clock::now();
  if (decide_alone) {
    now += std::chrono::seconds(5);
    leaf.tm->tick(now);  // RECOVER_QUERY, and the policy's decision
    bus.pump();
    CHECK(leaf.tm->heuristic_count() == 1);
  }
  for (int i = 0; i < 50 && !t->is_done(); ++i) {
    now += std::chrono::milliseconds(100);
    top.tm->tick(now);
    leaf.tm->tick(now);
    bus.pump();
  }
  CHECK(t->is_done());
  for (int i = 0; i < 5; ++i) {  // the subordinate asks for the superior's outcome
    now += std::chrono::milliseconds(100);
    top.tm->tick(now);
    leaf.tm->tick(now);
    bus.pump();
  }
  CHECK(leaf.tm->in_doubt_count() == 0);
  if (!decide_alone) CHECK(top.book.get(uow) == leaf.book.get(uow));
  if (decide_alone) {
    auto reps = leaf.tm->heuristics();
    REQUIRE(reps.size() == 1);
    CHECK(reps[0].superior_outcome != kt::transaction_outcome::undetermined);  // never learnt
  }
  if (!t->is_done()) t.abandon();
}

TEST_CASE("a subordinate recovered in doubt before its PREPARE_COMPLETE arrived answers the resent PREPARE") {
  lost_prepare_complete_then_crash<leaf_tm>(false);
}

TEST_CASE("a subordinate that decided alone after recovering in doubt answers the superior's resent PREPARE") {
  lost_prepare_complete_then_crash<leaf_tm_with<kt::heuristic_abort_after<1000>>>(true);
}
