// tests/tm/dispatcher_laws_test.cpp: the dispatcher laws for every model.
#include "tests/tm/dispatcher_laws.hpp"

using namespace ktm::tm;
using namespace ktm::test;

template <class D>
using tm_with = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>, with_dispatcher<D>>;
using erased_pool_tm = volatile_transaction_manager<with_dispatcher<thread_pool_dispatcher<2>>>;

TEST_CASE_METHOD(two_rm_world<tm_with<inline_dispatcher>>, "the inline dispatcher obeys the dispatcher laws") {
  check_dispatcher_laws(tm, a, b);
}

TEST_CASE_METHOD(two_rm_world<tm_with<queued_dispatcher>>, "the queued dispatcher obeys the dispatcher laws") {
  rm_servers servers(a, b);
  check_dispatcher_laws(tm, a, b);
}

TEST_CASE_METHOD(two_rm_world<tm_with<thread_pool_dispatcher<3>>>,
                 "the thread pool dispatcher obeys the dispatcher laws") {
  check_dispatcher_laws(tm, a, b);
}

TEST_CASE_METHOD(registered_two_rm_world<erased_pool_tm>,
                 "the thread pool dispatcher obeys the dispatcher laws with erased storage") {
  check_dispatcher_laws(tm, a, b);
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
