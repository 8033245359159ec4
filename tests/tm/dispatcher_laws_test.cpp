// tests/tm/dispatcher_laws_test.cpp: the dispatcher laws for every model,
// with every storage (law_matrix.hpp).
#include "tests/tm/dispatcher_laws.hpp"

using namespace ktm::tm;
using namespace ktm::test;

template <class D>
using tm_with = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>, with_dispatcher<D>>;

TEST_CASE("every dispatcher obeys the dispatcher laws with every storage") {
  for_each_law_world([](auto& w) { check_dispatcher_laws(w.tm, w.a, w.b); });
}

TEST_CASE_METHOD(two_rm_world<tm_with<queued_dispatcher>>, "a queued RM pulls its notifications with a timeout and answers by hand") {
  CHECK(!a.get_notification(std::chrono::milliseconds(1)));  // nothing yet: times out
  auto tx = tm.begin();
  auto ea = tx.enlist(a, notify::prepare | notify::commit | notify::rollback, enlistment_key(5));
  auto fut = tx.commit_async();
  auto q = a.get_notification(std::chrono::milliseconds(500));
  REQUIRE(q);
  CHECK(q->get().kind == notify::prepare);
  CHECK(q->get().key == enlistment_key(5));
  CHECK(q->get().transaction == tx.id());
  REQUIRE(q->target()->prepare_complete());
  q.reset();
  auto c = a.get_notification(std::chrono::milliseconds(500));
  REQUIRE(c);
  CHECK(c->get().kind == notify::commit);
  REQUIRE(c->target()->commit_complete());
  c.reset();
  CHECK(fut.get());
}

TEST_CASE_METHOD(two_rm_world<tm_with<queued_dispatcher>>, "stale queued notifications are dropped when their transaction goes") {
  {
    auto tx = tm.begin();
    auto ea = tx.enlist(a, notify::rollback | notify::prepare | notify::commit | notify::rm_disconnected);
    auto fut = tx.commit_async();
    auto q = a.get_notification(std::chrono::milliseconds(500));
    REQUIRE(q);
    REQUIRE(q->target()->rollback());  // leaves nothing pending
    CHECK(fut.get().code() == ktm::errc::transaction_aborted);
  }
  CHECK(a.notifications().size() == 0);
}
