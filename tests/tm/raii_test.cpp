// tests/tm/raii_test.cpp: dropping a transaction or an enlistment without an
// outcome rolls the work back.
#include <catch2/catch.hpp>

#include <vector>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using kinds = std::vector<notify>;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;

TEST_CASE_METHOD(two_rm_world<static_tm>, "a transaction destroyed without an outcome rolls back") {
  {
    auto tx = tm.begin();
    auto ea = tx.enlist(a).value().release();
    auto eb = tx.enlist(b).value().release();
    (void)ea;
    (void)eb;
  }
  CHECK(a.kinds() == kinds{notify::rollback});
  CHECK(b.kinds() == kinds{notify::rollback});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a transaction destroyed after its outcome sends nothing more") {
  {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    REQUIRE(tx.commit());
  }
  CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare, notify::commit});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a transaction destroyed during an asynchronous commit waits for the outcome") {
  a.answer(notify::commit, reply::later());
  std::thread answerer;
  {
    auto tx = tm.begin();
    auto ea = tx.enlist(a).value().release();
    (void)ea;
    REQUIRE(tx.commit_async([](ktm::result<void>) {}));
    auto d = a.deferred();
    REQUIRE(d.size() == 1);
    answerer = std::thread([e = d[0]] {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      REQUIRE(e->commit_complete());
    });
  }  // blocks until commit_complete
  answerer.join();
  CHECK(a.count(notify::rollback) == 0);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "dropping an enlistment before it prepares rolls the transaction back") {
  auto tx = tm.begin();
  auto eb = tx.enlist(b);
  {
    auto ea = tx.enlist(a);
  }
  CHECK(tx.outcome() == transaction_outcome::aborted);
  CHECK(tx.reason() == abort_reason::enlistment_dropped);
  CHECK(a.kinds().empty());
  CHECK(b.kinds() == kinds{notify::rollback});
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "dropping an enlistment while its PREPARE is unanswered rolls back") {
  a.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  auto fut = tx.commit_async();
  ea->reset();
  CHECK(fut.get().code() == ktm::errc::transaction_aborted);
  CHECK(b.kinds() == kinds{notify::preprepare, notify::prepare, notify::rollback});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "dropping an enlistment after it prepared changes nothing") {
  b.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  auto fut = tx.commit_async();
  ea->reset();  // a prepared already
  REQUIRE(b.deferred()[0]->prepare_complete());
  CHECK(fut.get());
  CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare, notify::commit});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a released enlistment does not roll back when its handle goes") {
  auto tx = tm.begin();
  { tx.enlist(a).value().release(); }
  CHECK(tx.outcome() == transaction_outcome::undetermined);
  REQUIRE(tx.commit());
  CHECK(a.count(notify::commit) == 1);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an enlistment handle can be moved") {
  auto tx = tm.begin();
  enlistment_handle h = tx.enlist(a).value();
  enlistment_handle g = std::move(h);
  CHECK(!h);
  REQUIRE(g);
  CHECK(g->transaction_id() == tx.id());
  REQUIRE(tx.commit());
}
