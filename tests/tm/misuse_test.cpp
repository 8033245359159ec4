// tests/tm/misuse_test.cpp: calls in the wrong state fail with an error code.
#include <catch2/catch.hpp>

#include <atomic>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;

TEST_CASE_METHOD(two_rm_world<static_tm>, "committing twice is invalid") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  REQUIRE(tx.commit());
  CHECK(tx.commit().code() == ktm::errc::invalid_state);
  CHECK(tx.commit_async([](ktm::result<void>) {}).code() == ktm::errc::invalid_state);
  CHECK(tx.commit_async().get().code() == ktm::errc::invalid_state);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "rolling back after commit or twice is invalid") {
  auto tx = tm.begin();
  REQUIRE(tx.commit());
  CHECK(tx.rollback().code() == ktm::errc::invalid_state);
  auto tx2 = tm.begin();
  REQUIRE(tx2.rollback());
  CHECK(tx2.rollback().code() == ktm::errc::invalid_state);
  CHECK(tx2.commit().code() == ktm::errc::invalid_state);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "rolling back a transaction an RM rolled back already succeeds") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  REQUIRE((*ea)->rollback());
  CHECK(tx.rollback());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "rolling back while a commit is in progress is invalid") {
  a.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto fut = tx.commit_async();
  CHECK(tx.rollback().code() == ktm::errc::invalid_state);
  REQUIRE(a.deferred()[0]->prepare_complete());
  CHECK(fut.get());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "enlisting after commit started is invalid") {
  a.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto fut = tx.commit_async();
  CHECK(tx.enlist(b).code() == ktm::errc::invalid_state);
  REQUIRE(a.deferred()[0]->prepare_complete());
  CHECK(fut.get());
  CHECK(tx.enlist(b).code() == ktm::errc::invalid_state);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "enlisting in a rolled-back transaction reports the abort") {
  auto tx = tm.begin();
  REQUIRE(tx.rollback());
  CHECK(tx.enlist(a).code() == ktm::errc::transaction_aborted);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "enlisting the same RM twice is rejected") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  CHECK(tx.enlist(a).code() == ktm::errc::already_enlisted);
}

TEST_CASE("enlisting an RM object the TM does not know is rejected") {
  rm_a a, other;
  rm_b b;
  static_tm tm{a, b};
  auto tx = tm.begin();
  CHECK(tx.enlist(other).code() == ktm::errc::rm_not_found);
  volatile_transaction_manager<> dyn;
  auto tx2 = dyn.begin();
  CHECK(tx2.enlist(a).code() == ktm::errc::rm_not_found);
  REQUIRE(dyn.add_resource_manager(a));
  CHECK(dyn.add_resource_manager(a).code() == ktm::errc::already_exists);
  CHECK(tx2.enlist(a));
  REQUIRE(dyn.remove_resource_manager(b).code() == ktm::errc::rm_not_found);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an asynchronous commit calls its completion exactly once") {
  std::atomic<int> calls{0};
  ktm::result<void> seen = ktm::errc::invalid_state;
  {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    REQUIRE(tx.commit_async([&](ktm::result<void> r) {
      ++calls;
      seen = r;
    }));
  }
  CHECK(calls == 1);
  CHECK(seen.has_value());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an asynchronous rollback calls its completion with success") {
  b.answer(notify::rollback, reply::later());
  auto tx = tm.begin();
  auto eb = tx.enlist(b);
  auto fut = tx.rollback_async();
  CHECK(fut.wait_for(std::chrono::milliseconds(0)) == std::future_status::timeout);
  REQUIRE(b.deferred()[0]->rollback_complete());
  CHECK(fut.get());
  auto tx2 = tm.begin();
  auto e2 = tx2.enlist(a);
  REQUIRE((*e2)->rollback());
  CHECK(tx2.rollback_async().get());  // already rolled back by the RM
}
