// tests/tm/superior_nesting_test.cpp: superior TMs nest: a TM is the
// subordinate of one TM and the superior of another for the same
// transaction (three levels), for commits, rollbacks and commit requests.
#include <catch2/catch.hpp>

#include <vector>

#include "ktm/tm.hpp"
#include "tests/support/tm_fakes.hpp"

using namespace ktm::test;
using ktm::errc;
using ktm::guid;
namespace kt = ktm::tm;

namespace {

using tm_t = kt::superior_transaction_manager<kt::with_transport<kt::in_process_transport>>;

// root -> middle -> leaf, one RM each, one transaction over all three.
struct chain {
  kt::in_process_transport bus;
  tm_t root{bus}, middle{bus}, leaf{bus};
  rm_a root_rm;
  rm_b middle_rm;
  rm_c leaf_rm;
  chain() {
    REQUIRE(root.recover());
    REQUIRE(middle.recover());
    REQUIRE(leaf.recover());
    REQUIRE(root.add_resource_manager(root_rm));
    REQUIRE(middle.add_resource_manager(middle_rm));
    REQUIRE(leaf.add_resource_manager(leaf_rm));
  }
};

// One transaction on the three, linked root -> middle -> leaf.
struct chain_tx {
  tm_t::transaction r, m, l;
  explicit chain_tx(chain& c) : r(c.root.begin()), m(c.middle.begin(r.id())), l(c.leaf.begin(r.id())) {
    REQUIRE(kt::link_subordinate(c.root, r, c.middle, m));
    REQUIRE(kt::link_subordinate(c.middle, m, c.leaf, l));
  }
};

const std::vector<kt::notify> two_phase{kt::notify::preprepare, kt::notify::prepare, kt::notify::commit};

}  // namespace

TEST_CASE("a commit at the root of three nested TMs reaches the leaf's RMs; in two phases at every level") {
  chain c;
  chain_tx x(c);
  auto& [r, m, l] = x;
  auto e1 = r.enlist(c.root_rm);
  auto e2 = m.enlist(c.middle_rm);
  auto e3 = l.enlist(c.leaf_rm);
  REQUIRE(r.commit());
  CHECK(m.outcome() == kt::transaction_outcome::committed);
  CHECK(l.outcome() == kt::transaction_outcome::committed);
  CHECK(c.root_rm.kinds() == two_phase);
  CHECK(c.middle_rm.kinds() == two_phase);
  CHECK(c.leaf_rm.kinds() == two_phase);
  CHECK(m.superior() == c.root.id());
  CHECK(l.superior() == c.middle.id());
  CHECK(c.bus.messages_sent() == 12);  // six per level
}

TEST_CASE("a leaf RM's rollback in three nested TMs rolls every level back") {
  chain c;
  c.leaf_rm.answer(kt::notify::prepare, kt::reply::rollback());
  chain_tx x(c);
  auto& [r, m, l] = x;
  auto e1 = r.enlist(c.root_rm);
  auto e2 = m.enlist(c.middle_rm);
  auto e3 = l.enlist(c.leaf_rm);
  CHECK(r.commit().code() == ktm::make_error_code(errc::transaction_aborted));
  CHECK(m.outcome() == kt::transaction_outcome::aborted);
  CHECK(l.outcome() == kt::transaction_outcome::aborted);
  CHECK(c.root_rm.commits == 0);
  CHECK(c.middle_rm.commits == 0);
  CHECK(c.root_rm.rollbacks == 1);
  CHECK(c.middle_rm.rollbacks == 1);
}

TEST_CASE("a commit request at the leaf climbs to the root; whose commit reaches every level") {
  chain c;
  chain_tx x(c);
  auto& [r, m, l] = x;
  auto e1 = r.enlist(c.root_rm);
  auto e3 = l.enlist(c.leaf_rm);
  // The middle is itself a subordinate: its commit asks the root.
  c.middle.on_commit_request([&](const guid&, const guid&) { (void)x.m.commit_async([](ktm::result<void>) {}); });
  c.root.on_commit_request([&](const guid&, const guid&) { (void)x.r.commit_async([](ktm::result<void>) {}); });
  REQUIRE(l.commit());
  CHECK(c.middle.commit_requests() == 1);
  CHECK(c.root.commit_requests() == 1);
  CHECK(r.outcome() == kt::transaction_outcome::committed);
  CHECK(m.outcome() == kt::transaction_outcome::committed);
  CHECK(c.leaf_rm.kinds() == two_phase);
  CHECK(c.root_rm.kinds() == two_phase);
}

TEST_CASE("a middle TM with no RM of its own passes the protocol through") {
  chain c;
  chain_tx x(c);
  auto& [r, m, l] = x;
  auto e3 = l.enlist(c.leaf_rm);
  REQUIRE(r.commit());
  CHECK(c.leaf_rm.kinds() == two_phase);
  CHECK(m.enlistment_count() == 1);  // the leaf's proxy
}
