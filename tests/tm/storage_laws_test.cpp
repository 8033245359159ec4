// tests/tm/storage_laws_test.cpp: the storage laws for every model.
#include "tests/tm/storage_laws.hpp"

using namespace ktm::tm;
using namespace ktm::test;

using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;
using inline_array_tm = volatile_transaction_manager<with_storage<inline_array_storage<4>>>;
using dynamic_tm = volatile_transaction_manager<with_storage<dynamic_storage>>;

TEST_CASE_METHOD(two_rm_world<static_tm>, "static storage obeys the storage laws") {
  check_storage_laws(tm, a, b);
}

TEST_CASE_METHOD(registered_two_rm_world<inline_array_tm>, "inline array storage obeys the storage laws") {
  check_storage_laws(tm, a, b);
}

TEST_CASE_METHOD(registered_two_rm_world<dynamic_tm>, "dynamic storage obeys the storage laws") {
  check_storage_laws(tm, a, b);
}

TEST_CASE("dynamic storage lets RMs come and go") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<> tm;
  REQUIRE(tm.add_resource_manager(a));
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  REQUIRE(tm.remove_resource_manager(a));
  auto tx2 = tm.begin();
  CHECK(tx2.enlist(a).code() == ktm::errc::rm_not_found);
  REQUIRE(tx.commit());  // the enlistment made before removal still completes
  CHECK(a.count(notify::commit) == 1);
  REQUIRE(tm.add_resource_manager(b));
  auto eb = tx2.enlist(b);
  CHECK(eb);
  CHECK(tx2.commit());
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "static storage finds an RM by its type") {
  CHECK(&tm.storage().get<rm_b>() == &b);
  CHECK(static_storage<rm_a, rm_b>::rm_count == 2);
}
