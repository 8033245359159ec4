// tests/tm/superior_heuristic_test.cpp: the in-doubt policy of the recovery
// policy. A subordinate left in doubt waits (wait_in_doubt), or after the
// policy's delay commits or rolls back alone; every such heuristic outcome
// is reported by callback, counter and query, and compared with the
// superior's outcome once that arrives (damage when they differ).
#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "tests/support/tm_fakes.hpp"
#include "tests/tm/superior_fixtures.hpp"

using namespace ktm::test;
using ktm::guid;
namespace kt = ktm::tm;
using namespace std::chrono_literals;

namespace {

// A user's recovery policy for a volatile subordinate that gives up on a
// silent superior: roll back alone after half a second in doubt.
struct abort_when_silent {
  static constexpr bool needs_log = false;
  using indoubt_policy = kt::heuristic_abort_after<500>;
  template <class Log>
  ktm::result<kt::recovery_summary> recover(Log&) {
    return kt::recovery_summary{};
  }
};
// The same without an in-doubt policy.
struct no_indoubt_policy {
  static constexpr bool needs_log = false;
  template <class Log>
  ktm::result<kt::recovery_summary> recover(Log&) {
    return kt::recovery_summary{};
  }
};

using volatile_tm = kt::superior_transaction_manager<kt::with_transport<fault_transport>>;
using giving_up_tm =
    kt::superior_transaction_manager<kt::with_transport<fault_transport>, kt::with_recovery<abort_when_silent>>;

}  // namespace

TEST_CASE("a TM with a superior transport needs an in-doubt policy in its recovery policy") {
  STATIC_REQUIRE(kt::can_compose<kt::with_transport<kt::in_process_transport>>);
  STATIC_REQUIRE(kt::can_compose<kt::with_transport<kt::in_process_transport>, kt::with_recovery<abort_when_silent>>);
  STATIC_REQUIRE(!kt::can_compose<kt::with_transport<kt::in_process_transport>, kt::with_recovery<no_indoubt_policy>>);
  STATIC_REQUIRE(kt::can_compose<kt::with_recovery<no_indoubt_policy>>);  // no transport: no in-doubt
  STATIC_REQUIRE(!kt::can_compose<kt::with_transport<int>>);               // not a transport
  STATIC_REQUIRE(std::is_same_v<kt::replay_recovery<>::indoubt_policy, kt::wait_in_doubt>);
}

TEST_CASE("a durable subordinate in doubt commits alone after the policy's delay; callback; counter and query report it") {
  using leaf_t = leaf_tm_with<kt::heuristic_commit_after<1000>>;
  durable_world<leaf_t> w(11);
  auto& [bus, top, leaf] = w;
  std::vector<kt::heuristic_report> called;
  durable_link<leaf_t> d(top, leaf, false);
  const guid uow = d.uow;
  REQUIRE(d.t->commit_async([](ktm::result<void>) {}));
  bus.pump(3);  // the subordinate prepared; the superior crashes before it decides
  d.t.abandon();
  top.crash();
  d.l.abandon();
  leaf.crash();
  bus.lose_queued();
  const auto t0 = std::chrono::steady_clock::now();
  leaf.restart();
  leaf.tm->on_heuristic([&](const kt::heuristic_report& r) { called.push_back(r); });
  bus.pump();  // the superior is down: RECOVER_QUERY lost
  leaf.tm->tick(t0 + 10ms);
  bus.pump();
  CHECK(leaf.tm->heuristic_count() == 0);
  CHECK(leaf.book.get(uow) == ledger_state::prepared);
  leaf.tm->tick(t0 + 2s);  // past the delay: commit alone
  bus.pump();
  CHECK(leaf.book.get(uow) == ledger_state::committed);
  CHECK(leaf.tm->in_doubt_count() == 0);
  CHECK(leaf.tm->heuristic_count() == 1);
  REQUIRE(leaf.tm->heuristics().size() == 1);
  const kt::heuristic_report first = leaf.tm->heuristics()[0];
  CHECK(first.uow == uow);
  CHECK(first.superior == top.tm_id);
  CHECK(first.decided == kt::transaction_outcome::committed);
  CHECK(first.superior_outcome == kt::transaction_outcome::undetermined);
  CHECK(!first.damage());
  REQUIRE(called.size() == 1);
  CHECK(called[0] == first);
  // The superior comes back: it never logged a decision (presumed abort).
  // The subordinate asks until it knows, and reports the damage.
  top.restart();
  leaf.tm->tick(t0 + 3s);
  bus.pump();
  REQUIRE(called.size() == 2);
  CHECK(called[1].superior_outcome == kt::transaction_outcome::aborted);
  CHECK(called[1].damage());
  CHECK(leaf.tm->heuristics()[0].damage());
  CHECK(leaf.tm->heuristic_count() == 1);
  leaf.tm->tick(t0 + 4s);
  CHECK(bus.pump() == 0);  // nothing more to ask
}

TEST_CASE("a live subordinate whose superior's COMMIT is late rolls back alone and reports the damage when it arrives") {
  fault_transport bus(12);
  volatile_tm top{bus};
  giving_up_tm leaf{bus};
  rm_a top_rm;
  rm_b leaf_rm;
  REQUIRE(top.recover());
  REQUIRE(leaf.recover());
  REQUIRE(top.add_resource_manager(top_rm));
  REQUIRE(leaf.add_resource_manager(leaf_rm));
  int reports = 0;
  leaf.on_heuristic([&](const kt::heuristic_report&) { ++reports; });
  auto t = top.begin();
  auto l = leaf.begin(t.id());
  REQUIRE(kt::link_subordinate(top, t, leaf, l));
  auto e1 = t.enlist(top_rm);
  auto e2 = leaf.enlist_superior(l, top.id());
  CHECK(e2.code() == ktm::make_error_code(ktm::errc::superior_exists));
  auto e3 = l.enlist(leaf_rm);
  REQUIRE(t.commit_async([](ktm::result<void>) {}));
  bus.pump(3);
  bus.delay_next = 1;  // the COMMIT the next message makes the superior send is late
  bus.pump();
  REQUIRE(l.internal_state() == kt::tx_state::prepared);
  leaf.tick(std::chrono::steady_clock::now() + 1s);
  bus.pump();
  CHECK(l.outcome() == kt::transaction_outcome::aborted);
  CHECK(leaf_rm.rollbacks == 1);
  CHECK(leaf.heuristic_count() == 1);
  bus.release_delayed();
  bus.pump();
  CHECK(reports == 2);
  REQUIRE(leaf.heuristics().size() == 1);
  CHECK(leaf.heuristics()[0].decided == kt::transaction_outcome::aborted);
  CHECK(leaf.heuristics()[0].superior_outcome == kt::transaction_outcome::committed);
  CHECK(leaf.heuristics()[0].damage());
  CHECK(t.outcome() == kt::transaction_outcome::committed);  // the superior got its COMMIT_COMPLETE
  CHECK(top.tick() == 0);
}

TEST_CASE("with wait_in_doubt a subordinate never decides alone; however long it waits") {
  fault_transport bus(13);
  volatile_tm top{bus}, leaf{bus};
  rm_b leaf_rm;
  REQUIRE(top.recover());
  REQUIRE(leaf.recover());
  REQUIRE(leaf.add_resource_manager(leaf_rm));
  auto t = top.begin();
  auto l = leaf.begin(t.id());
  REQUIRE(kt::link_subordinate(top, t, leaf, l));
  auto e = l.enlist(leaf_rm);
  REQUIRE(t.commit_async([](ktm::result<void>) {}));
  bus.pump(4);
  bus.lose_queued();
  bus.detach(top.id());  // the superior is unreachable
  leaf.tick(std::chrono::steady_clock::now() + std::chrono::hours(24 * 365));
  bus.pump();
  CHECK(l.internal_state() == kt::tx_state::prepared);
  CHECK(leaf.heuristic_count() == 0);
  CHECK(leaf.in_doubt_count() == 1);
  bus.attach(top.id(), top);
  leaf.tick();
  bus.pump();  // it answers again (from its live transaction)
  CHECK(l.outcome() == kt::transaction_outcome::committed);
}

// The decision is logged (a heuristic record, forced) before any RM hears
// it. Without that record a crash lost the rollback's lazy end record, the
// restart found the prepared record in doubt, and the superior's COMMIT
// then reached an RM that had rolled back.
TEST_CASE("a durable subordinate that rolled back alone keeps its decision and its report across a crash") {
  using leaf_t = leaf_tm_with<kt::heuristic_abort_after<1000>>;
  durable_world<leaf_t> w(13);
  auto& [bus, top, leaf] = w;
  durable_link<leaf_t> d(top, leaf, true);
  const guid uow = d.uow;
  REQUIRE(d.t->commit_async([](ktm::result<void>) {}));
  bus.pump(4);  // PREPREPARE, PREPREPARE_COMPLETE, PREPARE, PREPARE_COMPLETE: the superior commits
  REQUIRE(top.book.get(uow) == ledger_state::committed);
  bus.lose_queued();  // its COMMIT is lost
  auto now = std::chrono::steady_clock::now() + 2s;
  leaf.tm->tick(now);  // past the delay: roll back alone
  bus.lose_queued();
  REQUIRE(leaf.book.get(uow) == ledger_state::aborted);
  REQUIRE(leaf.tm->heuristic_count() == 1);
  d.l.abandon();
  leaf.crash();  // loses what was not forced: the end record of the rollback
  leaf.restart();
  REQUIRE(leaf.tm->heuristics().size() == 1);
  const kt::heuristic_report rebuilt = leaf.tm->heuristics()[0];
  CHECK(rebuilt.uow == uow);
  CHECK(rebuilt.superior == top.tm_id);
  CHECK(rebuilt.decided == kt::transaction_outcome::aborted);
  CHECK(rebuilt.superior_outcome == kt::transaction_outcome::undetermined);
  CHECK(leaf.tm->heuristic_count() == 1);
  CHECK(leaf.tm->in_doubt_count() == 0);  // the decision applied again: not in doubt
  std::vector<kt::heuristic_report> called;
  leaf.tm->on_heuristic([&](const kt::heuristic_report& r) { called.push_back(r); });
  for (int i = 0; i < 20 && !d.t->is_done(); ++i) {
    now += 100ms;
    top.tm->tick(now);
    leaf.tm->tick(now);
    bus.pump();
  }
  CHECK(d.t->is_done());
  CHECK_FALSE(leaf.book.violation);  // never COMMIT after its ROLLBACK
  CHECK(leaf.book.get(uow) == ledger_state::aborted);
  REQUIRE(called.size() == 1);
  CHECK(called[0].superior_outcome == kt::transaction_outcome::committed);
  CHECK(called[0].damage());
  CHECK(leaf.tm->heuristics()[0].damage());
  // the superior's outcome is logged too: a second restart still knows it
  leaf.crash();
  leaf.restart();
  REQUIRE(leaf.tm->heuristics().size() == 1);
  CHECK(leaf.tm->heuristics()[0].superior_outcome == kt::transaction_outcome::committed);
  CHECK(leaf.tm->tick(now + 1s) == 0);  // nothing left to ask
}

TEST_CASE("a durable subordinate that commits alone and crashes before its commit record commits at the restart") {
  using leaf_t = leaf_tm_with<kt::heuristic_commit_after<1000>>;
  durable_world<leaf_t> w(14);
  auto& [bus, top, leaf] = w;
  durable_link<leaf_t> d(top, leaf, true);
  const guid uow = d.uow;
  REQUIRE(d.t->commit_async([](ktm::result<void>) {}));
  bus.pump(3);  // the subordinate prepared
  bus.lose_queued();
  // the first device flush from now forces the heuristic record; the
  // second, the commit record's, crashes
  leaf.st.controller()->crash_at(ktm::io::call_kind::flush, 2, {});
  leaf.tm->tick(std::chrono::steady_clock::now() + 2s);
  bus.lose_queued();
  CHECK(leaf.book.get(uow) == ledger_state::prepared);  // its RM never heard the decision
  d.l.abandon();
  leaf.crash();
  leaf.restart();
  CHECK(leaf.book.get(uow) == ledger_state::committed);  // the logged decision, applied again
  REQUIRE(leaf.tm->heuristics().size() == 1);
  CHECK(leaf.tm->heuristics()[0].decided == kt::transaction_outcome::committed);
  CHECK(leaf.tm->in_doubt_count() == 0);
  d.t.abandon();
}
