// tests/tm/dispatcher_laws_test.cpp: the dispatcher laws for every model.
#include "tests/tm/dispatcher_laws.hpp"

using namespace ktm::tm;
using namespace ktm::test;

template <class D>
using tm_with = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>, with_dispatcher<D>>;

TEST_CASE("the inline dispatcher obeys the dispatcher laws") {
  rm_a a;
  rm_b b;
  tm_with<inline_dispatcher> tm{a, b};
  check_dispatcher_laws(tm, a, b);
}

TEST_CASE("the queued dispatcher obeys the dispatcher laws") {
  rm_a a;
  rm_b b;
  tm_with<queued_dispatcher> tm{a, b};
  rm_servers servers(a, b);
  check_dispatcher_laws(tm, a, b);
}

TEST_CASE("the thread pool dispatcher obeys the dispatcher laws") {
  rm_a a;
  rm_b b;
  tm_with<thread_pool_dispatcher<3>> tm{a, b};
  check_dispatcher_laws(tm, a, b);
}

TEST_CASE("the thread pool dispatcher obeys the dispatcher laws with erased storage") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<with_dispatcher<thread_pool_dispatcher<2>>> tm;
  REQUIRE(tm.add_resource_manager(a));
  REQUIRE(tm.add_resource_manager(b));
  check_dispatcher_laws(tm, a, b);
}

TEST_CASE("a queued RM pulls its notifications with a timeout and answers by hand") {
  rm_a a;
  rm_b b;
  tm_with<queued_dispatcher> tm{a, b};
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

TEST_CASE("stale queued notifications are dropped when their transaction goes") {
  rm_a a;
  rm_b b;
  tm_with<queued_dispatcher> tm{a, b};
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
