// tests/tm/two_phase_test.cpp: the two-phase protocol through the inline
// dispatcher and static storage: every notification path.
#include <catch2/catch.hpp>

#include <thread>
#include <vector>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using kinds = std::vector<notify>;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;

namespace {
const kinds full_commit = {notify::preprepare, notify::prepare, notify::commit};
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a commit sends preprepare, prepare and commit to each RM in order") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a, default_mask, enlistment_key(7));
  auto eb = tx.enlist(b, default_mask, enlistment_key(8));
  REQUIRE(ea);
  REQUIRE(eb);
  CHECK(tx.enlistment_count() == 2);
  REQUIRE(tx.commit());
  CHECK(a.kinds() == full_commit);
  CHECK(b.kinds() == full_commit);
  CHECK(tx.internal_state() == tx_state::committed);
  CHECK(tx.outcome() == transaction_outcome::committed);
  CHECK(tx.state() == transaction_state::normal);
  CHECK((*ea)->status() == enlistment_status::committed);
  for (const event& e : a.events()) {
    CHECK(e.transaction == tx.id());
    CHECK(e.key == enlistment_key(7));
  }
  CHECK(b.events()[0].key == enlistment_key(8));
  CHECK(tx.protocol_errors() == 0);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a transaction uses the UOW id it is given") {
  const ktm::guid uow = ktm::guid::generate();
  auto tx = tm.begin(uow);
  CHECK(tx.id() == uow);
  CHECK(tm.begin().id() != tm.begin().id());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a commit with no enlistments commits at once") {
  auto tx = tm.begin();
  REQUIRE(tx.commit());
  CHECK(tx.outcome() == transaction_outcome::committed);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an enlistment gets only the notifications in its mask") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a, notify::prepare | notify::commit | notify::rollback);
  auto eb = tx.enlist(b);
  REQUIRE(tx.commit());
  CHECK(a.kinds() == kinds{notify::prepare, notify::commit});
  CHECK(b.kinds() == full_commit);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a read-only enlistment drops out of the second phase") {
  SECTION("answering read-only to PREPARE") { a.answer(notify::prepare, reply::read_only()); }
  SECTION("answering read-only to PREPREPARE") { a.answer(notify::preprepare, reply::read_only()); }
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(tx.commit());
  CHECK(a.count(notify::commit) == 0);
  CHECK(b.kinds() == full_commit);
  CHECK((*ea)->status() == enlistment_status::read_only);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an enlistment that calls read_only before commit gets no notification") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE((*ea)->read_only());
  REQUIRE(tx.commit());
  CHECK(a.kinds().empty());
  CHECK(b.kinds() == full_commit);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "when every enlistment is read-only the transaction commits with no commit notification") {
  a.answer(notify::prepare, reply::read_only());
  b.answer(notify::preprepare, reply::read_only());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(tx.commit());
  CHECK(a.count(notify::commit) == 0);
  CHECK(b.kinds() == kinds{notify::preprepare});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an RM that rolls back in PREPARE rolls the transaction back") {
  b.answer(notify::prepare, reply::rollback());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  auto r = tx.commit();
  REQUIRE(!r);
  CHECK(r.code() == ktm::errc::transaction_aborted);
  CHECK(tx.reason() == abort_reason::resource_manager);
  CHECK(tx.outcome() == transaction_outcome::aborted);
  CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare, notify::rollback});
  CHECK(b.kinds() == kinds{notify::preprepare, notify::prepare});  // it rolled back itself
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an RM that rolls back in PREPREPARE stops the others getting PREPARE") {
  a.answer(notify::preprepare, reply::rollback());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  CHECK(!tx.commit());
  CHECK(a.kinds() == kinds{notify::preprepare});
  CHECK(b.kinds() == kinds{notify::rollback});  // never reached PREPREPARE
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an RM may roll back an active transaction through its enlistment") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE((*ea)->rollback());
  CHECK(tx.outcome() == transaction_outcome::aborted);
  CHECK(a.kinds().empty());
  CHECK(b.kinds() == kinds{notify::rollback});
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a client rollback sends ROLLBACK to every enlistment") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(tx.rollback());
  CHECK(a.kinds() == kinds{notify::rollback});
  CHECK(b.kinds() == kinds{notify::rollback});
  CHECK(tx.reason() == abort_reason::client);
  CHECK(tx.internal_state() == tx_state::aborted);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an RM may answer later, from another thread") {
  a.answer(notify::prepare, reply::later());
  a.answer(notify::commit, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  auto fut = tx.commit_async();
  CHECK(tx.internal_state() == tx_state::preparing);
  auto d = a.deferred();
  REQUIRE(d.size() == 1);
  std::thread([&] { REQUIRE(d[0]->prepare_complete()); }).join();
  CHECK(tx.internal_state() == tx_state::committing);
  CHECK(tx.state() == transaction_state::committed_notify);
  CHECK(tx.outcome() == transaction_outcome::committed);
  d = a.deferred();
  REQUIRE(d.size() == 1);
  std::thread([&] { REQUIRE(d[0]->commit_complete()); }).join();
  CHECK(fut.get());
  CHECK(tx.internal_state() == tx_state::committed);
}

TEST_CASE("a handler may answer through its enlistment before returning later") {
  struct replying_rm : resource_manager_base<> {
    reply on_prepare(enlistment& e, const notification&) {
      (void)e.prepare_complete();
      second = e.prepare_complete().code();  // twice: the second is rejected
      return reply::later();
    }
    reply on_commit(enlistment& e, const notification&) { return e.commit_complete() ? reply::later() : reply::done(); }
    reply on_rollback(enlistment&, const notification&) { return reply::done(); }
    std::error_code second;
  } r;
  volatile_transaction_manager<with_storage<static_storage<replying_rm>>> tm{r};
  auto tx = tm.begin();
  auto e = tx.enlist(r);
  REQUIRE(tx.commit());
  CHECK(r.second == ktm::errc::invalid_state);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a reply in the wrong phase is rejected with invalid_state") {
  a.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  enlistment& e = **ea;
  CHECK(e.prepare_complete().code() == ktm::errc::invalid_state);  // nothing sent yet
  CHECK(e.commit_complete().code() == ktm::errc::invalid_state);
  CHECK(e.single_phase_reject().code() == ktm::errc::invalid_state);
  auto fut = tx.commit_async();
  CHECK(e.preprepare_complete().code() == ktm::errc::invalid_state);  // answered already
  CHECK(e.commit_complete().code() == ktm::errc::invalid_state);
  CHECK(e.rollback_complete().code() == ktm::errc::invalid_state);
  REQUIRE(e.prepare_complete());
  CHECK(e.prepare_complete().code() == ktm::errc::invalid_state);  // twice
  CHECK(e.read_only().code() == ktm::errc::invalid_state);         // after prepare_complete
  CHECK(e.rollback().code() == ktm::errc::invalid_state);          // after prepare_complete
  CHECK(fut.get());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an illegal returned reply is counted and read safely") {
  SECTION("reject to PREPARE reads as rollback") {
    a.answer(notify::prepare, reply::reject());
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    CHECK(!tx.commit());
    CHECK(tx.protocol_errors() == 1);
  }
  SECTION("rollback to COMMIT reads as done") {
    a.answer(notify::commit, reply::rollback());
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    CHECK(tx.commit());
    CHECK(tx.protocol_errors() == 1);
  }
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a late reply after a rollback is rejected") {
  a.answer(notify::prepare, reply::later());
  b.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  auto fut = tx.commit_async();
  auto da = a.deferred();
  auto db = b.deferred();
  REQUIRE(db[0]->rollback());
  CHECK(fut.get().code() == ktm::errc::transaction_aborted);
  CHECK(da[0]->prepare_complete().code() == ktm::errc::invalid_state);
  CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare, notify::rollback});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "recovery information is bounded and fixed once prepared") {
  a.answer(notify::commit, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  std::vector<std::byte> info(max_recovery_information, std::byte{0x5a});
  REQUIRE((*ea)->set_recovery_information(info));
  CHECK((*ea)->recovery_information().size() == max_recovery_information);
  info.push_back(std::byte{1});
  CHECK((*ea)->set_recovery_information(info).code() == ktm::errc::too_large);
  CHECK((*ea)->recovery_information().size() == max_recovery_information);
  auto fut = tx.commit_async();
  CHECK((*ea)->set_recovery_information(std::span<const std::byte>()).code() == ktm::errc::invalid_state);
  REQUIRE(a.deferred()[0]->commit_complete());
  CHECK(fut.get());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "the description holds at most 64 characters") {
  auto tx = tm.begin();
  REQUIRE(tx.set_description(std::string(64, 'd')));
  CHECK(tx.description() == std::string(64, 'd'));
  CHECK(tx.set_description(std::string(65, 'e')).code() == ktm::errc::too_large);
  CHECK(tx.description() == std::string(64, 'd'));
  REQUIRE(tx.set_description("short"));
  CHECK(tx.description() == "short");
  REQUIRE(tx.commit());
  CHECK(tx.set_description("late").code() == ktm::errc::invalid_state);
}
