// tests/tm/dispatcher_laws.hpp: the laws of notification_dispatcher
// (ktm/concepts/notification_dispatcher.hpp), run against every model.
//
// check_dispatcher_laws(tm, a, b) runs the protocol's paths through a TM
// built with the dispatcher under test and two recording RMs, and checks
// that each RM saw exactly the sequence the inline dispatcher produces and
// that every reply reached the transaction once (no protocol errors). For a
// pull dispatcher the caller keeps rm_servers running (law_matrix.hpp's
// law_world does). dispatcher_laws_test.cpp runs them for every dispatcher
// with every storage (for_each_law_world).
#pragma once

#include <catch2/catch.hpp>

#include <vector>

#include "tests/support/tm_fakes.hpp"
#include "tests/tm/law_matrix.hpp"

namespace ktm::test {

template <class TM>
void check_dispatcher_laws(TM& tm, rm_a& a, rm_b& b) {
  using namespace ktm::tm;
  using kinds = std::vector<notify>;
  const kinds commit_seq{notify::preprepare, notify::prepare, notify::commit};
  a.clear();
  b.clear();

  SECTION("law: a commit delivers each phase once and in order to each RM") {
    for (int i = 0; i < 20; ++i) {
      a.clear();
      b.clear();
      typename TM::transaction tx(tm, ktm::guid::generate());
      auto ea = tx.enlist(a);
      auto eb = tx.enlist(b);
      REQUIRE(tx.commit());
      CHECK(a.kinds() == commit_seq);
      CHECK(b.kinds() == commit_seq);
      CHECK(tx.protocol_errors() == 0);
      for (const event& e : a.events()) CHECK(e.transaction == tx.id());
    }
  }
  SECTION("law: a rollback delivers ROLLBACK once to each RM") {
    typename TM::transaction tx(tm, ktm::guid::generate());
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    REQUIRE(tx.rollback());
    CHECK(a.kinds() == kinds{notify::rollback});
    CHECK(b.kinds() == kinds{notify::rollback});
  }
  SECTION("law: an RM's returned rollback reaches the transaction") {
    b.answer(notify::prepare, reply::rollback());
    typename TM::transaction tx(tm, ktm::guid::generate());
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
    CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare, notify::rollback});
    CHECK(b.kinds() == kinds{notify::preprepare, notify::prepare});
    CHECK(tx.protocol_errors() == 0);
    b.answer(notify::prepare, reply::done());
  }
  SECTION("law: a read-only reply drops the RM out") {
    a.answer(notify::prepare, reply::read_only());
    typename TM::transaction tx(tm, ktm::guid::generate());
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    REQUIRE(tx.commit());
    CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare});
    CHECK(b.kinds() == commit_seq);
    a.answer(notify::prepare, reply::done());
  }
  SECTION("law: single-phase commit and its rejection") {
    typename TM::transaction tx(tm, ktm::guid::generate());
    auto ea = tx.enlist(a, default_mask | notify::single_phase_commit);
    REQUIRE(tx.commit());
    CHECK(a.kinds() == kinds{notify::single_phase_commit});
    a.clear();
    a.answer(notify::single_phase_commit, reply::reject());
    typename TM::transaction tx2(tm, ktm::guid::generate());
    auto ea2 = tx2.enlist(a, default_mask | notify::single_phase_commit);
    REQUIRE(tx2.commit_async().get());
    CHECK(a.kinds() == kinds{notify::single_phase_commit, notify::preprepare, notify::prepare, notify::commit});
    a.answer(notify::single_phase_commit, reply::done());
  }
  SECTION("law: a transaction destroyed undecided is rolled back before the destructor returns") {
    {
      typename TM::transaction tx(tm, ktm::guid::generate());
      tx.enlist(a).value().release();
    }
    CHECK(a.kinds() == kinds{notify::rollback});
  }
}

}  // namespace ktm::test
