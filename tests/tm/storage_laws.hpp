// tests/tm/storage_laws.hpp: the laws of enlistment_storage
// (ktm/concepts/enlistment_storage.hpp), run against every model through a
// TM that uses it. The caller has made a and b known to the TM (and, for a
// pull dispatcher, keeps their queues served); storage_laws_test.cpp runs
// them for every storage under every dispatcher (law_matrix.hpp).
//
// check_storage_laws(tm, a, b)  the laws every model obeys
// allocations_per_transactions(tm, a, b, count)  the heap allocations of
//     synchronous commits and rollbacks after a warm-up, counted by
//     count() (this thread's allocations so far; the test binary replaces
//     operator new to count them): the law "a static model allocates
//     nothing per transaction" is that this is 0 for static_storage
#pragma once

#include <catch2/catch.hpp>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "tests/support/tm_fakes.hpp"

namespace ktm::test {

template <class TM>
void check_storage_laws(TM& tm, rm_a& a, rm_b& b) {
  using namespace ktm::tm;
  a.clear();
  b.clear();
  SECTION("law: an added enlistment is visited exactly once") {
    typename TM::transaction tx(tm, ktm::guid::generate());
    CHECK(tx.enlistment_count() == 0);
    auto ea = tx.enlist(a, default_mask, enlistment_key(1));
    CHECK(tx.enlistment_count() == 1);
    auto eb = tx.enlist(b, default_mask, enlistment_key(2));
    CHECK(tx.enlistment_count() == 2);
    REQUIRE(tx.commit());
    CHECK(a.count(notify::commit) == 1);
    CHECK(b.count(notify::commit) == 1);
    CHECK(a.events()[0].key == enlistment_key(1));
    CHECK(b.events()[0].key == enlistment_key(2));
  }
  SECTION("law: the same RM cannot enlist twice in one transaction") {
    typename TM::transaction tx(tm, ktm::guid::generate());
    auto ea = tx.enlist(a);
    CHECK(tx.enlist(a).code() == ktm::errc::already_enlisted);
    CHECK(tx.enlistment_count() == 1);
  }
  SECTION("law: enlistments of different transactions are independent") {
    typename TM::transaction t1(tm, ktm::guid::generate());
    typename TM::transaction t2(tm, ktm::guid::generate());
    auto e1 = t1.enlist(a);
    auto e2 = t2.enlist(a);
    REQUIRE(e1);
    REQUIRE(e2);
    CHECK(&e1->get() != &e2->get());
    REQUIRE(t1.rollback());
    REQUIRE(t2.commit());
    CHECK(a.count(notify::rollback) == 1);
    CHECK(a.count(notify::commit) == 1);
  }
  SECTION("law: an enlistment keeps its address while its transaction lives") {
    typename TM::transaction tx(tm, ktm::guid::generate());
    auto ea = tx.enlist(a);
    enlistment* first = &ea->get();
    auto eb = tx.enlist(b);
    CHECK(&ea->get() == first);
    CHECK(first->transaction_id() == tx.id());
    REQUIRE(tx.commit());
  }
}

// Transactions made by the client thread: begin, enlist a and b, then a
// commit or a rollback, `rounds` of each, after a warm-up (a recording RM's
// event list keeps its capacity across clear(), a thread's guid engine is
// seeded once). Under the inline dispatcher every handler runs in this
// thread, so count() sees every allocation the transactions make. No Catch
// assertion runs while counting (it may allocate): failed steps are counted
// and checked after.
template <class TM, class Count>
std::uint64_t allocations_per_transactions(TM& tm, rm_a& a, rm_b& b, Count count, int rounds = 100) {
  using namespace ktm::tm;
  static_assert(std::is_same_v<typename TM::dispatcher_type, inline_dispatcher>,
                "a synchronous commit: a queueing dispatcher's own allocations are not the storage's");
  auto one = [&](bool commit) {
    a.clear();
    b.clear();
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    if (!ea || !eb) return false;
    return (commit ? tx.commit() : tx.rollback()).has_value();
  };
  int failed = 0;
  auto round = [&] {
    failed += !one(true);
    failed += !one(false);
  };
  for (int i = 0; i < 3; ++i) round();
  const std::uint64_t before = count();
  for (int i = 0; i < rounds; ++i) round();
  const std::uint64_t allocations = count() - before;
  CHECK(failed == 0);
  CHECK(a.kinds() == std::vector<notify>{notify::rollback});  // the last one rolled back
  CHECK(b.kinds() == std::vector<notify>{notify::rollback});
  return allocations;
}

}  // namespace ktm::test
