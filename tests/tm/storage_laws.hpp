// tests/tm/storage_laws.hpp: the laws of enlistment_storage
// (ktm/concepts/enlistment_storage.hpp), run against every model through a
// TM that uses it. The caller has made a and b known to the TM.
#pragma once

#include <catch2/catch.hpp>

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

}  // namespace ktm::test
