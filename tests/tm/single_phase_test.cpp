// tests/tm/single_phase_test.cpp: single-phase commit, its rejection and the
// RM that goes away in the middle of it.
#include <catch2/catch.hpp>

#include <vector>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using kinds = std::vector<notify>;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;

namespace {
const notification_mask spc_mask = default_mask | notify::single_phase_commit;
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "the only live enlistment that asked for it gets SINGLE_PHASE_COMMIT") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a, spc_mask);
  REQUIRE(tx.commit());
  CHECK(a.kinds() == kinds{notify::single_phase_commit});
  CHECK(tx.internal_state() == tx_state::committed);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "single-phase commit is used when every other enlistment is read-only") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a, spc_mask);
  auto eb = tx.enlist(b);
  REQUIRE((*eb)->read_only());
  REQUIRE(tx.commit());
  CHECK(a.kinds() == kinds{notify::single_phase_commit});
  CHECK(b.kinds().empty());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "two live enlistments use two phases even if one asked for single-phase") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a, spc_mask);
  auto eb = tx.enlist(b);
  REQUIRE(tx.commit());
  CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare, notify::commit});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a single_phase_reject falls back to two phases at once") {
  SECTION("returned") { a.answer(notify::single_phase_commit, reply::reject()); }
  SECTION("through the enlistment; later") { a.answer(notify::single_phase_commit, reply::later()); }
  auto tx = tm.begin();
  auto ea = tx.enlist(a, spc_mask);
  auto fut = tx.commit_async();
  for (auto* e : a.deferred()) REQUIRE(e->single_phase_reject());
  REQUIRE(fut.get());
  CHECK(a.kinds() == kinds{notify::single_phase_commit, notify::preprepare, notify::prepare, notify::commit});
}

TEST_CASE("an RM without a single-phase handler rejects single-phase commit") {
  struct two_phase_only : resource_manager_base<> {
    reply on_prepare(enlistment&, const notification&) { return reply::done(); }
    reply on_commit(enlistment&, const notification&) { ++commits; return reply::done(); }
    reply on_rollback(enlistment&, const notification&) { return reply::done(); }
    int commits = 0;
  } r;
  volatile_transaction_manager<with_storage<static_storage<two_phase_only>>> tm{r};
  auto tx = tm.begin();
  auto e = tx.enlist(r, spc_mask);
  REQUIRE(tx.commit());
  CHECK(r.commits == 1);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a single-phase RM that rolls back aborts the transaction") {
  a.answer(notify::single_phase_commit, reply::rollback());
  auto tx = tm.begin();
  auto ea = tx.enlist(a, spc_mask);
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
  CHECK(tx.reason() == abort_reason::resource_manager);
  CHECK(a.kinds() == kinds{notify::single_phase_commit});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a single-phase RM that answers read-only commits the transaction") {
  a.answer(notify::single_phase_commit, reply::read_only());
  auto tx = tm.begin();
  auto ea = tx.enlist(a, spc_mask);
  CHECK(tx.commit());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a single-phase RM that goes away leaves the outcome in doubt and tells the others") {
  a.answer(notify::single_phase_commit, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a, spc_mask);
  auto eb = tx.enlist(b, default_mask | notify::rm_disconnected);
  REQUIRE((*eb)->read_only());
  auto fut = tx.commit_async();
  REQUIRE(a.deferred().size() == 1);
  ea->reset();  // the RM drops its enlistment without answering
  CHECK(fut.get().code() == ktm::errc::in_doubt);
  CHECK(tx.state() == transaction_state::indoubt);
  CHECK(tx.outcome() == transaction_outcome::undetermined);
  CHECK(b.kinds() == kinds{notify::rm_disconnected});
}
