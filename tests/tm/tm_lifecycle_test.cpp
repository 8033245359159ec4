// tests/tm/tm_lifecycle_test.cpp: the TM's identity and state machine.
#include <catch2/catch.hpp>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;

TEST_CASE("a TM has a guid identity; given or generated") {
  rm_a a;
  rm_b b;
  static_tm t1{a, b}, t2{a, b};
  CHECK(!t1.id().is_nil());
  CHECK(t1.id() != t2.id());
  const ktm::guid id = ktm::guid::generate();
  static_tm t3{id, a, b};
  CHECK(t3.id() == id);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "recovery takes a TM from initialized to online and sends TM_ONLINE to every RM") {
  CHECK(tm.state() == tm_state::initialized);
  auto r = tm.recover();
  REQUIRE(r);
  CHECK(r->in_doubt == 0);
  CHECK(tm.state() == tm_state::online);
  CHECK(a.kinds() == std::vector<notify>{notify::tm_online});
  CHECK(b.kinds() == std::vector<notify>{notify::tm_online});
  CHECK(a.events()[0].transaction.is_nil());
  CHECK(tm.recover().code() == ktm::errc::invalid_state);
}

TEST_CASE("registered RMs of a dynamic TM get TM_ONLINE") {
  rm_a a;
  volatile_transaction_manager<> tm;
  REQUIRE(tm.add_resource_manager(a));
  REQUIRE(tm.recover());
  CHECK(a.count(notify::tm_online) == 1);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "transactions may run before recovery finished") {
  auto tx = tm.begin();
  auto e = tx.enlist(a);
  CHECK(tx.commit());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an offline TM refuses enlistments and rolls back commits") {
  REQUIRE(tm.recover());
  auto tx = tm.begin();
  auto e = tx.enlist(a);
  tm.shutdown();
  CHECK(tm.state() == tm_state::offline);
  CHECK(tx.enlist(b).code() == ktm::errc::tm_not_online);
  CHECK(tx.commit().code() == ktm::errc::tm_not_online);
  CHECK(tx.outcome() == transaction_outcome::aborted);
  CHECK(tx.reason() == abort_reason::tm_offline);
  CHECK(a.count(notify::rollback) == 1);
}

TEST_CASE("a TM-wide notification reaches a queued RM too") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>, with_dispatcher<queued_dispatcher>> tm{a, b};
  REQUIRE(tm.recover());
  auto q = a.get_notification(std::chrono::milliseconds(100));
  REQUIRE(q);
  CHECK(q->get().kind == notify::tm_online);
  CHECK(q->target() == nullptr);
  CHECK(b.serve_one(std::chrono::milliseconds(100)));
  CHECK(b.count(notify::tm_online) == 1);
}
