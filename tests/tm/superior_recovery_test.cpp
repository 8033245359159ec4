// tests/tm/superior_recovery_test.cpp: durable superior and subordinate TMs
// crashed at every step of the protocol (after each message, and at each
// log force) and recovered: the superior redelivers its logged decision
// until the completion arrives, an in-doubt subordinate asks
// (RECOVER_QUERY) and its RMs stay in doubt (INDOUBT) until the answer, and
// the two-phase commit invariant holds: never one RM committed and another
// rolled back for one transaction, and every transaction resolved.
#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

#include "tests/tm/superior_fixtures.hpp"

using namespace ktm::test;
using ktm::guid;
using ktm::io::call_kind;
namespace kt = ktm::tm;
using k = kt::superior_message_kind;

namespace {

enum class victim { top, leaf, both };

std::string name(victim v) {
  switch (v) {
    case victim::top: return "superior";
    case victim::leaf: return "subordinate";
    default: return "both";
  }
}

// Resends and delivers until nothing moves.
template <class A, class B>
void settle(fault_transport& bus, A& a, B& b) {
  for (int i = 0; i < 30; ++i) {
    const std::size_t sent = a.tm->tick() + b.tm->tick();
    if (bus.pump() == 0 && sent == 0) return;
  }
}

// One transaction with an RM on each side, committed by the superior; the
// victim crashes after `step` delivered messages, or (flush > 0) at the
// victim's flush number `flush`; it restarts and both resend until quiet.
void crash_scenario(victim v, std::size_t step, int flush) {
  INFO("crash of the " << name(v) << (flush ? " at its flush " : " after message ") << (flush ? flush : step));
  fault_transport bus(step * 10 + static_cast<std::uint64_t>(flush));
  durable_side<top_tm, top_rm> top(bus);
  durable_side<leaf_tm, leaf_rm> leaf(bus);
  top.restart();
  leaf.restart();
  owned_tx<top_tm> t(*top.tm, guid::generate());
  owned_tx<leaf_tm> l(*leaf.tm, t->id());
  const guid uow = t->id();
  REQUIRE(kt::link_subordinate(*top.tm, *t, *leaf.tm, *l));
  auto e1 = t->enlist(*top.rm);
  auto e2 = l->enlist(*leaf.rm);
  REQUIRE((e1 && e2));
  e1->release();
  e2->release();
  const bool crash_top = v != victim::leaf, crash_leaf = v != victim::top;
  if (flush > 0) {
    if (crash_top) top.st.controller()->crash_at(call_kind::flush, static_cast<std::uint64_t>(flush));
    if (crash_leaf) leaf.st.controller()->crash_at(call_kind::flush, static_cast<std::uint64_t>(flush));
  }
  REQUIRE(t->commit_async([](ktm::result<void>) {}));
  bus.pump(flush > 0 ? SIZE_MAX : step);
  if (crash_top) {
    t.abandon();
    top.crash();
  }
  if (crash_leaf) {
    l.abandon();
    leaf.crash();
  }
  bus.lose_queued();
  if (crash_top) top.restart();
  if (crash_leaf) leaf.restart();
  settle(bus, top, leaf);
  // A survivor that never prepared waits for its client (presumed abort).
  if (l.tx && !l->is_done()) {
    CHECK(l->internal_state() != kt::tx_state::prepared);
    if (l->internal_state() != kt::tx_state::prepared) (void)l->rollback();
  }
  if (t.tx) CHECK(t->is_done());
  settle(bus, top, leaf);

  const auto a = top.book.get(uow), b = leaf.book.get(uow);
  CHECK(!top.book.violation);
  CHECK(!leaf.book.violation);
  CHECK(a != ledger_state::prepared);  // resolved
  CHECK(b != ledger_state::prepared);
  CHECK((a == ledger_state::committed) == (b == ledger_state::committed));
  CHECK(leaf.tm->in_doubt_count() == 0);
  if (t.tx && t->outcome() == kt::transaction_outcome::committed) CHECK(b == ledger_state::committed);
  if (t.tx && t->outcome() == kt::transaction_outcome::aborted) CHECK(b != ledger_state::committed);
  if (t.tx) t.tx.reset();
  if (l.tx) l.tx.reset();
}

}  // namespace

TEST_CASE("a durable superior and subordinate crashed after each message recover with one outcome for all RMs") {
  for (victim v : {victim::top, victim::leaf, victim::both})
    for (std::size_t step = 0; step <= 6; ++step) crash_scenario(v, step, 0);
}

TEST_CASE("a durable superior or subordinate crashed at each of its log forces recovers with one outcome") {
  for (victim v : {victim::top, victim::leaf, victim::both})
    for (int flush = 1; flush <= 3; ++flush) crash_scenario(v, 0, flush);
}

TEST_CASE("a durable subordinate prepared at a crash stays in doubt (INDOUBT to its RM) until its superior answers") {
  fault_transport bus(5);
  durable_side<top_tm, top_rm> top(bus);
  durable_side<leaf_tm, leaf_rm> leaf(bus);
  top.restart();
  leaf.restart();
  owned_tx<top_tm> t(*top.tm, guid::generate());
  owned_tx<leaf_tm> l(*leaf.tm, t->id());
  const guid uow = t->id();
  REQUIRE(kt::link_subordinate(*top.tm, *t, *leaf.tm, *l));
  auto e1 = t->enlist(*top.rm);
  auto e2 = l->enlist(*leaf.rm);
  e1->release();
  e2->release();
  REQUIRE(t->commit_async([](ktm::result<void>) {}));
  bus.pump(4);  // through PREPARE_COMPLETE: the superior's commit record is forced
  REQUIRE(t->internal_state() == kt::tx_state::committing);
  bus.lose_queued();  // COMMIT lost
  l.abandon();
  leaf.crash();
  leaf.start();
  auto r = leaf.tm->recover();
  REQUIRE(r);
  CHECK(r->in_doubt == 1);
  CHECK(leaf.tm->in_doubt_count() == 1);
  CHECK(leaf.rm->indoubts == 1);  // RECOVER, then INDOUBT
  CHECK(leaf.tm->recovered_outcome(uow) == kt::transaction_outcome::undetermined);
  CHECK(leaf.book.get(uow) == ledger_state::prepared);
  bus.pump();  // RECOVER_QUERY, the superior's answer, COMMIT_COMPLETE
  CHECK(bus.count(k::recover_query) == 1);
  CHECK(leaf.book.get(uow) == ledger_state::committed);
  CHECK(leaf.tm->in_doubt_count() == 0);
  CHECK(leaf.tm->recovered_outcome(uow) != kt::transaction_outcome::undetermined);
  settle(bus, top, leaf);
  CHECK(t->outcome() == kt::transaction_outcome::committed);
  CHECK(top.book.get(uow) == ledger_state::committed);
  CHECK(top.tm->tick() == 0);
}

TEST_CASE("a durable superior that crashed after its decision redelivers COMMIT after recovery until COMMIT_COMPLETE") {
  fault_transport bus(6);
  durable_side<top_tm, top_rm> top(bus);
  durable_side<leaf_tm, leaf_rm> leaf(bus);
  top.restart();
  leaf.restart();
  owned_tx<top_tm> t(*top.tm, guid::generate());
  owned_tx<leaf_tm> l(*leaf.tm, t->id());
  const guid uow = t->id();
  REQUIRE(kt::link_subordinate(*top.tm, *t, *leaf.tm, *l));
  auto e2 = l->enlist(*leaf.rm);
  e2->release();
  REQUIRE(t->commit_async([](ktm::result<void>) {}));
  bus.pump(4);
  t.abandon();
  top.crash();
  bus.lose_queued();
  top.start();
  bus.fail_next = 1;  // the first redelivery is lost too
  REQUIRE(top.tm->recover());
  CHECK(top.tm->log().stats().unresolved == 1);
  bus.pump();
  CHECK(l->internal_state() == kt::tx_state::prepared);
  top.tm->tick();  // resent
  bus.pump();
  CHECK(l->outcome() == kt::transaction_outcome::committed);
  CHECK(leaf.book.get(uow) == ledger_state::committed);
  CHECK(top.tm->log().stats().unresolved == 0);  // the end record once COMMIT_COMPLETE arrived
  CHECK(top.tm->tick() == 0);
}

TEST_CASE("a superior that crashed before its decision answers an in-doubt subordinate with aborted (presumed abort)") {
  fault_transport bus(8);
  durable_side<top_tm, top_rm> top(bus);
  durable_side<leaf_tm, leaf_rm> leaf(bus);
  top.restart();
  leaf.restart();
  owned_tx<top_tm> t(*top.tm, guid::generate());
  owned_tx<leaf_tm> l(*leaf.tm, t->id());
  const guid uow = t->id();
  REQUIRE(kt::link_subordinate(*top.tm, *t, *leaf.tm, *l));
  auto e2 = l->enlist(*leaf.rm);
  e2->release();
  REQUIRE(t->commit_async([](ktm::result<void>) {}));
  bus.pump(3);  // through PREPARE: the subordinate prepared, its PREPARE_COMPLETE in flight
  t.abandon();
  top.crash();
  l.abandon();
  leaf.crash();
  bus.lose_queued();
  leaf.restart();
  bus.pump();  // RECOVER_QUERY to a superior that is down: lost
  CHECK(leaf.tm->in_doubt_count() == 1);
  top.restart();
  leaf.tm->tick();
  bus.pump();
  CHECK(leaf.book.get(uow) == ledger_state::aborted);
  CHECK(leaf.tm->in_doubt_count() == 0);
}
