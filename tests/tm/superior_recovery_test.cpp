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
#include <thread>

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

// settle() until the superior has nothing left to resend, for TMs whose RMs
// answer from other threads (a completion may be sent after a settle).
template <class A, class B>
bool settle_until_quiet(fault_transport& bus, A& a, B& b) {
  for (int i = 0; i < 100000; ++i) {
    settle(bus, a, b);
    if (a.tm->tick() == 0 && bus.pump() == 0) return true;
    std::this_thread::yield();
  }
  return false;
}

// One transaction with an RM on each side, committed by the superior; the
// victim crashes after `step` delivered messages, or (flush > 0) at the
// victim's flush number `flush`; it restarts and both resend until quiet.
void crash_scenario(victim v, std::size_t step, int flush) {
  INFO("crash of the " << name(v) << (flush ? " at its flush " : " after message ") << (flush ? flush : step));
  durable_world<> w(step * 10 + static_cast<std::uint64_t>(flush));
  auto& [bus, top, leaf] = w;
  durable_link<> d(top, leaf, true);
  auto& [t, l, uow] = d;
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
  durable_world<> w(5);
  auto& [bus, top, leaf] = w;
  durable_link<> d(top, leaf, true);
  auto& [t, l, uow] = d;
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

TEST_CASE("a durable subordinate rolled forward past its prepared record is in doubt as after recover and resolves") {
  // (rollforward used to replay without registering the in-doubt transaction)
  durable_world<> w(15);
  auto& [bus, top, leaf] = w;
  durable_link<> d(top, leaf, true);
  auto& [t, l, uow] = d;
  REQUIRE(t->commit_async([](ktm::result<void>) {}));
  bus.pump(4);  // the superior decided; its COMMIT is lost with the crash
  bus.lose_queued();
  l.abandon();
  leaf.crash();
  leaf.start();
  auto all = leaf.tm->rollforward(1000);  // every record stamped <= 1000: all of them
  REQUIRE(all);
  CHECK(all->in_doubt == 1);
  CHECK(leaf.tm->in_doubt_count() == 1);
  CHECK(leaf.tm->recovered_outcome(uow) == kt::transaction_outcome::undetermined);
  bus.pump();  // RECOVER_QUERY, the superior's answer, COMMIT_COMPLETE
  CHECK(bus.count(k::recover_query) == 1);
  CHECK(leaf.book.get(uow) == ledger_state::committed);
  CHECK(leaf.tm->in_doubt_count() == 0);
  settle(bus, top, leaf);
  CHECK(t->outcome() == kt::transaction_outcome::committed);
  CHECK(top.tm->tick() == 0);
}

TEST_CASE("a durable superior that crashed after its decision redelivers COMMIT after recovery until COMMIT_COMPLETE") {
  durable_world<> w(6);
  auto& [bus, top, leaf] = w;
  durable_link<> d(top, leaf, false);
  auto& [t, l, uow] = d;
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
  durable_world<> w(8);
  auto& [bus, top, leaf] = w;
  durable_link<> d(top, leaf, false);
  auto& [t, l, uow] = d;
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

// A subordinate under a thread pool, prepared; its superior's COMMIT is
// lost; it crashes and recovers in doubt, then the answer to its
// RECOVER_QUERY commits it. answer_after_indoubt: the answer comes only once
// the INDOUBT handler has run, so the COMMIT is a late outcome.
static void pool_subordinate_in_doubt(std::uint64_t seed, bool answer_after_indoubt) {
  using pool_leaf = durable_superior_tm<kt::wait_in_doubt, kt::with_storage<kt::static_storage<leaf_rm>>,
                                       kt::with_dispatcher<kt::thread_pool_dispatcher<2>>>;
  durable_world<pool_leaf> w(seed);
  auto& [bus, top, leaf] = w;
  durable_link<pool_leaf> d(top, leaf, true);
  auto& [t, l, uow] = d;
  REQUIRE(t->commit_async([](ktm::result<void>) {}));
  // through PREPARE_COMPLETE (the pool answers PREPARE from its workers)
  for (int i = 0; i < 100000 && t->internal_state() != kt::tx_state::committing; ++i) {
    bus.pump(1);
    std::this_thread::yield();
  }
  REQUIRE(t->internal_state() == kt::tx_state::committing);
  bus.lose_queued();  // COMMIT lost
  l.abandon();
  leaf.crash();
  leaf.start();
  auto r = leaf.tm->recover();  // RECOVER and INDOUBT queued on the pool
  REQUIRE(r);
  CHECK(r->in_doubt == 1);
  CHECK(leaf.tm->recovered_outcome(uow) == kt::transaction_outcome::undetermined);
  if (answer_after_indoubt) {
    for (int i = 0; i < 100000 && leaf.rm->indoubts == 0; ++i) std::this_thread::yield();
    REQUIRE(leaf.rm->indoubts == 1);
    leaf.rm->commit_thread = std::thread::id{};
  }
  // RECOVER_QUERY and the answer, delivered by this thread: otherwise maybe
  // before the workers reached INDOUBT (then COMMIT replaces it) or while it
  // is queued (COMMIT follows it)
  for (int i = 0; i < 100000 && leaf.book.get(uow) != ledger_state::committed; ++i) {
    bus.pump();
    std::this_thread::yield();
  }
  REQUIRE(leaf.book.get(uow) == ledger_state::committed);
  CHECK(leaf.rm->indoubts <= 1);  // INDOUBT (before the COMMIT), or none when the answer came first
  if (answer_after_indoubt) {  // the late COMMIT ran on a worker, not here
    CHECK(leaf.rm->commit_thread.load() != std::thread::id{});
    CHECK(leaf.rm->commit_thread.load() != std::this_thread::get_id());
  }
  CHECK(!leaf.book.violation);
  for (int i = 0; i < 100000 && leaf.tm->in_doubt_count() != 0; ++i) std::this_thread::yield();
  CHECK(leaf.tm->in_doubt_count() == 0);
  // a worker's reply ends the transaction, which then sends COMMIT_COMPLETE
  CHECK(settle_until_quiet(bus, top, leaf));
  CHECK(t->outcome() == kt::transaction_outcome::committed);
  CHECK(top.book.get(uow) == ledger_state::committed);
}

TEST_CASE("an in-doubt subordinate recovered under a thread pool gets its superior's COMMIT; after INDOUBT if it was sent") {
  pool_subordinate_in_doubt(9, false);
}

TEST_CASE("an outcome that reaches a recovered in-doubt subordinate after INDOUBT runs its RM's COMMIT through the thread pool; not in the thread that brought it") {
  pool_subordinate_in_doubt(10, true);
}
