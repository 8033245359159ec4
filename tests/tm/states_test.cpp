// tests/tm/states_test.cpp: the transition tables, every pair of states.
#include <catch2/catch.hpp>

#include <set>
#include <utility>

#include "ktm/tm/notification.hpp"
#include "ktm/tm/states.hpp"

using namespace ktm::tm;
using s = tx_state;

TEST_CASE("exactly the documented transaction transitions are legal") {
  const std::set<std::pair<s, s>> legal = {
      {s::active, s::prepreparing},          {s::active, s::single_phase_committing},
      {s::active, s::rolling_back},          {s::prepreparing, s::preprepared},
      {s::prepreparing, s::rolling_back},    {s::preprepared, s::preparing},
      {s::preprepared, s::rolling_back},     {s::preparing, s::prepared},
      {s::preparing, s::rolling_back},       {s::prepared, s::committing},
      {s::prepared, s::rolling_back},        {s::prepared, s::in_doubt}, {s::single_phase_committing, s::committed},
      {s::single_phase_committing, s::aborted}, {s::single_phase_committing, s::prepreparing},
      {s::single_phase_committing, s::in_doubt}, {s::committing, s::committed},
      {s::rolling_back, s::aborted},
  };
  int checked = 0;
  for (int f = 0; f <= static_cast<int>(s::in_doubt); ++f) {
    for (int t = 0; t <= static_cast<int>(s::in_doubt); ++t) {
      const auto from = static_cast<s>(f), to = static_cast<s>(t);
      INFO("from " << f << " to " << t);
      CHECK(is_legal_transition(from, to) == (legal.count({from, to}) == 1));
      ++checked;
    }
  }
  CHECK(checked == 121);
}

TEST_CASE("final states have no successor") {
  for (s f : {s::committed, s::aborted, s::in_doubt}) {
    CHECK(is_final(f));
    for (int t = 0; t <= static_cast<int>(s::in_doubt); ++t) CHECK(!is_legal_transition(f, static_cast<s>(t)));
  }
}

TEST_CASE("the public state and outcome follow the internal state") {
  CHECK(public_state(s::active) == transaction_state::normal);
  CHECK(public_outcome(s::active) == transaction_outcome::undetermined);
  CHECK(public_outcome(s::prepared) == transaction_outcome::undetermined);
  CHECK(public_state(s::committing) == transaction_state::committed_notify);
  CHECK(public_outcome(s::committing) == transaction_outcome::committed);
  CHECK(public_state(s::committed) == transaction_state::normal);
  CHECK(public_outcome(s::committed) == transaction_outcome::committed);
  CHECK(public_outcome(s::rolling_back) == transaction_outcome::aborted);
  CHECK(public_outcome(s::aborted) == transaction_outcome::aborted);
  CHECK(public_state(s::in_doubt) == transaction_state::indoubt);
  CHECK(public_outcome(s::in_doubt) == transaction_outcome::undetermined);
}

TEST_CASE("a transaction can be rolled back only before it is prepared") {
  CHECK(is_before_prepared(s::active));
  CHECK(is_before_prepared(s::prepreparing));
  CHECK(is_before_prepared(s::preprepared));
  CHECK(is_before_prepared(s::preparing));
  CHECK(!is_before_prepared(s::prepared));
  CHECK(!is_before_prepared(s::committing));
  CHECK(!is_before_prepared(s::single_phase_committing));
}

TEST_CASE("exactly the documented transaction manager transitions are legal") {
  using t = tm_state;
  const std::set<std::pair<t, t>> legal = {{t::initialized, t::recovering}, {t::initialized, t::offline},
                                           {t::recovering, t::online},      {t::recovering, t::offline},
                                           {t::online, t::offline}};
  for (int f = 0; f <= 3; ++f)
    for (int to = 0; to <= 3; ++to)
      CHECK(is_legal_transition(static_cast<t>(f), static_cast<t>(to)) ==
            (legal.count({static_cast<t>(f), static_cast<t>(to)}) == 1));
}

TEST_CASE("notification values are KTM's") {
  CHECK(static_cast<std::uint32_t>(notify::preprepare) == 0x1);
  CHECK(static_cast<std::uint32_t>(notify::prepare) == 0x2);
  CHECK(static_cast<std::uint32_t>(notify::commit) == 0x4);
  CHECK(static_cast<std::uint32_t>(notify::rollback) == 0x8);
  CHECK(static_cast<std::uint32_t>(notify::single_phase_commit) == 0x200);
  CHECK(static_cast<std::uint32_t>(notify::rm_disconnected) == 0x01000000);
  CHECK(static_cast<std::uint32_t>(notify::tm_online) == 0x02000000);
  const notification_mask m = notify::prepare | notify::commit;
  CHECK(m.has(notify::prepare));
  CHECK(!m.has(notify::rollback));
  CHECK(default_mask.bits() == 0xf);
  int x = 0;
  CHECK(enlistment_key(&x).pointer<int>() == &x);
}
