// tests/tm/superior_protocol_test.cpp: a superior TM and its subordinates in
// one process: every message and reply path, the commit request, the
// outcome request, misuse, and the count of messages per commit.
#include <catch2/catch.hpp>

#include <vector>

#include "ktm/tm.hpp"
#include "tests/support/superior_fakes.hpp"

using namespace ktm::test;
using ktm::errc;
using ktm::guid;
namespace kt = ktm::tm;
using k = kt::superior_message_kind;

namespace {

std::error_code code(errc e) { return ktm::make_error_code(e); }

using inline_tm = kt::superior_transaction_manager<kt::with_transport<kt::in_process_transport>>;
using pumped_tm = kt::superior_transaction_manager<kt::with_transport<fault_transport>>;

}  // namespace

TEST_CASE("a superior's commit reaches every subordinate's resource managers") {
  trio<inline_tm, kt::in_process_transport> w;
  linked_trio x(w);
  auto& t = x.top;
  auto& l = x.left;
  auto& r = x.right;
  REQUIRE(t.commit());
  CHECK(l.outcome() == kt::transaction_outcome::committed);
  CHECK(r.outcome() == kt::transaction_outcome::committed);
  const std::vector<kt::notify> two_phase{kt::notify::preprepare, kt::notify::prepare, kt::notify::commit};
  CHECK(w.top_rm.kinds() == two_phase);
  CHECK(w.left_rm.kinds() == two_phase);
  CHECK(w.right_rm.kinds() == two_phase);
  CHECK(l.superior() == w.top.id());
  // Per subordinate: PREPREPARE, PREPREPARE_COMPLETE, PREPARE, PREPARE_COMPLETE, COMMIT, COMMIT_COMPLETE.
  CHECK(w.bus.messages_sent() == 12);
}

TEST_CASE("the subordinate moves one phase per message of its superior and answers each") {
  trio<pumped_tm, fault_transport> w;
  linked_pair<decltype(w.top)> p(w.top, w.left, &w.top_rm, &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  bool done = false;
  REQUIRE(t.commit_async([&](ktm::result<void> r) { done = r.has_value(); }));
  CHECK(l.internal_state() == kt::tx_state::active);
  CHECK(w.bus.pump(1) == 1);  // PREPREPARE
  CHECK(l.internal_state() == kt::tx_state::preprepared);
  CHECK(w.left_rm.kinds() == std::vector<kt::notify>{kt::notify::preprepare});
  CHECK(w.bus.pump(1) == 1);  // PREPREPARE_COMPLETE
  CHECK(t.internal_state() == kt::tx_state::preparing);
  CHECK(w.bus.pump(1) == 1);  // PREPARE
  CHECK(l.internal_state() == kt::tx_state::prepared);
  CHECK(w.bus.pump(1) == 1);  // PREPARE_COMPLETE: the superior's commit point
  CHECK(t.internal_state() == kt::tx_state::committing);
  CHECK(l.internal_state() == kt::tx_state::prepared);
  CHECK(w.bus.pump(1) == 1);  // COMMIT
  CHECK(l.outcome() == kt::transaction_outcome::committed);
  CHECK(!done);
  CHECK(w.bus.pump() == 1);  // COMMIT_COMPLETE
  CHECK(done);
  CHECK(w.bus.kinds() == std::vector<k>{k::preprepare, k::preprepare_complete, k::prepare, k::prepare_complete,
                                         k::commit, k::commit_complete});
}

TEST_CASE("a subordinate's RM that rolls back makes the subordinate report ABORTED and the superior roll back") {
  trio<inline_tm, kt::in_process_transport> w;
  w.right_rm.answer(kt::notify::prepare, kt::reply::rollback());
  linked_trio x(w);
  auto& t = x.top;
  auto& l = x.left;
  auto& r = x.right;
  CHECK(t.commit().code() == code(errc::transaction_aborted));
  CHECK(t.reason() == kt::abort_reason::resource_manager);
  CHECK(r.outcome() == kt::transaction_outcome::aborted);
  CHECK(l.outcome() == kt::transaction_outcome::aborted);
  CHECK(l.reason() == kt::abort_reason::superior);
  CHECK(w.top_rm.rollbacks == 1);
  CHECK(w.left_rm.rollbacks == 1);
  CHECK(w.left_rm.commits == 0);
  CHECK(w.right_rm.commits == 0);
}

TEST_CASE("a subordinate whose RMs are all read-only drops out with READ_ONLY") {
  trio<pumped_tm, fault_transport> w;
  w.left_rm.answer(kt::notify::prepare, kt::reply::read_only());
  linked_pair<decltype(w.top)> p(w.top, w.left, &w.top_rm, &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  bool ok = false;
  REQUIRE(t.commit_async([&](ktm::result<void> r) { ok = r.has_value(); }));
  w.bus.pump();
  CHECK(ok);
  CHECK(l.outcome() == kt::transaction_outcome::committed);
  CHECK(w.bus.count(k::read_only) == 1);
  CHECK(w.bus.count(k::commit) == 0);
  CHECK(w.top_rm.commits == 1);
}

TEST_CASE("the superior's rollback reaches the subordinate's RMs and is answered ROLLBACK_COMPLETE") {
  trio<pumped_tm, fault_transport> w;
  linked_pair<decltype(w.top)> p(w.top, w.left, no_rm<rm_a>(), &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  REQUIRE(t.rollback());
  w.bus.pump();
  CHECK(l.outcome() == kt::transaction_outcome::aborted);
  CHECK(l.reason() == kt::abort_reason::superior);
  CHECK(w.left_rm.rollbacks == 1);
  CHECK(w.bus.kinds() == std::vector<k>{k::rollback, k::rollback_complete});
}

TEST_CASE("a superior rolls back a prepared subordinate when another participant refuses") {
  trio<pumped_tm, fault_transport> w;
  w.top_rm.answer(kt::notify::prepare, kt::reply::rollback());
  linked_pair<decltype(w.top)> p(w.top, w.left, &w.top_rm, &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  kt::transaction_outcome seen{};
  REQUIRE(t.commit_async([&](ktm::result<void>) { seen = t.outcome(); }));
  w.bus.pump();
  CHECK(seen == kt::transaction_outcome::aborted);
  CHECK(l.outcome() == kt::transaction_outcome::aborted);
  CHECK(w.left_rm.kinds() == std::vector<kt::notify>{kt::notify::preprepare, kt::notify::prepare, kt::notify::rollback});
}

TEST_CASE("a transaction has one superior: a second gets superior_exists") {
  trio<inline_tm, kt::in_process_transport> w;
  auto t = w.top.begin();
  auto l = w.left.begin(t.id());
  REQUIRE(w.left.enlist_superior(l, w.top.id()));
  CHECK(w.left.enlist_superior(l, w.right.id()).code() == code(errc::superior_exists));
  CHECK(w.top.enlist_subordinate(t, w.left.id()));
  CHECK(w.top.enlist_subordinate(t, w.left.id()).code() == code(errc::already_enlisted));
  REQUIRE(t.rollback());
}

TEST_CASE("a superior cannot enlist after the subordinate's client decided; nor with another UOW") {
  trio<inline_tm, kt::in_process_transport> w;
  auto t = w.top.begin();
  auto other = w.left.begin();
  CHECK(kt::link_subordinate(w.top, t, w.left, other).code() == code(errc::invalid_argument));
  auto l = w.left.begin(t.id());
  REQUIRE(l.rollback());
  CHECK(w.left.enlist_superior(l, w.top.id()).code() == code(errc::invalid_state));
}

TEST_CASE("no single-phase commit when a superior exists") {
  trio<inline_tm, kt::in_process_transport> w;
  auto t = w.top.begin();
  auto l = w.left.begin(t.id());
  REQUIRE(kt::link_subordinate(w.top, t, w.left, l));
  auto e = l.enlist(w.left_rm, kt::default_mask | kt::notify::single_phase_commit);
  REQUIRE(t.commit());
  CHECK(w.left_rm.count(kt::notify::single_phase_commit) == 0);
  CHECK(w.left_rm.kinds() == std::vector<kt::notify>{kt::notify::preprepare, kt::notify::prepare, kt::notify::commit});
}

TEST_CASE("a client's commit on a subordinate reaches the superior as COMMIT_REQUEST and waits for its decision") {
  trio<inline_tm, kt::in_process_transport> w;
  linked_pair<decltype(w.top)> p(w.top, w.left, &w.top_rm, &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  guid asked, from;
  w.top.on_commit_request([&](const guid& uow, const guid& sub) {
    asked = uow;
    from = sub;
    (void)t.commit();  // the superior's application decides: commit
  });
  REQUIRE(l.commit());  // returns with the superior's outcome
  CHECK(w.top.commit_requests() == 1);
  CHECK(asked == t.id());
  CHECK(from == w.left.id());
  CHECK(t.outcome() == kt::transaction_outcome::committed);
  CHECK(w.left_rm.commits == 1);
  CHECK(w.top_rm.commits == 1);
}

TEST_CASE("a subordinate's commit_async completes with the outcome the superior decides; rollback included") {
  trio<pumped_tm, fault_transport> w;
  linked_pair<decltype(w.top)> p(w.top, w.left, no_rm<rm_a>(), &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  std::optional<std::error_code> got;
  REQUIRE(l.commit_async([&](ktm::result<void> r) { got = r ? std::error_code{} : r.code(); }));
  w.bus.pump();
  CHECK(w.top.commit_requests() == 1);
  CHECK(!got);
  CHECK(l.commit().code() == code(errc::invalid_state));  // asked already
  REQUIRE(t.rollback());
  w.bus.pump();
  REQUIRE(got);
  CHECK(*got == code(errc::transaction_aborted));
}

TEST_CASE("a lost COMMIT_REQUEST is sent again by tick") {
  trio<pumped_tm, fault_transport> w;
  linked_pair<decltype(w.top)> p(w.top, w.left, no_rm<rm_a>(), &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  w.bus.fail_next = 1;
  REQUIRE(l.commit_async([](ktm::result<void>) {}));
  w.bus.pump();
  CHECK(w.top.commit_requests() == 0);
  w.left.tick();
  w.bus.pump();
  CHECK(w.top.commit_requests() == 1);
  REQUIRE(t.commit_async([](ktm::result<void>) {}));
  w.bus.pump();
  CHECK(l.outcome() == kt::transaction_outcome::committed);
}

TEST_CASE("a prepared RM asks for the outcome with REQUEST_OUTCOME and gets the superior's decision") {
  trio<pumped_tm, fault_transport> w;
  linked_pair<decltype(w.top)> p(w.top, w.left, &w.top_rm, &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  CHECK((*p.sub_e)->request_outcome().code() == code(errc::invalid_state));  // not prepared yet
  REQUIRE(t.commit_async([](ktm::result<void>) {}));
  w.bus.pump(4);       // up to PREPARE_COMPLETE: the superior decided commit
  w.bus.lose_queued();  // ... but its COMMIT is lost
  CHECK(l.internal_state() == kt::tx_state::prepared);
  CHECK(w.left.in_doubt_count() == 1);
  REQUIRE((*p.sub_e)->request_outcome());
  w.bus.pump();
  CHECK(w.bus.count(k::request_outcome) == 1);
  CHECK(w.bus.count(k::outcome) == 1);
  CHECK(l.outcome() == kt::transaction_outcome::committed);
  CHECK(w.left_rm.commits == 1);
  CHECK(t.outcome() == kt::transaction_outcome::committed);
  CHECK(w.left.in_doubt_count() == 0);
}

TEST_CASE("an undecided superior answers an outcome request with undetermined; a rolled back one with aborted") {
  trio<pumped_tm, fault_transport> w;
  linked_pair<decltype(w.top)> p(w.top, w.left, &w.top_rm, &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  w.top_rm.answer(kt::notify::prepare, kt::reply::later());
  REQUIRE(t.commit_async([](ktm::result<void>) {}));
  w.bus.pump();
  REQUIRE(l.internal_state() == kt::tx_state::prepared);
  REQUIRE((*p.sub_e)->request_outcome());
  w.bus.pump();
  REQUIRE(w.bus.delivered.back().kind == k::outcome);
  CHECK(w.bus.delivered.back().outcome == kt::transaction_outcome::undetermined);
  CHECK(l.internal_state() == kt::tx_state::prepared);
  auto deferred = w.top_rm.deferred();
  REQUIRE(deferred.size() == 1);
  REQUIRE(deferred[0]->rollback());
  w.bus.pump();
  CHECK(l.outcome() == kt::transaction_outcome::aborted);
  CHECK(w.left_rm.rollbacks == 1);
}

TEST_CASE("messages from a TM that is not the transaction's superior are ignored") {
  trio<pumped_tm, fault_transport> w;
  auto t = w.top.begin();
  auto l = w.left.begin(t.id());
  REQUIRE(kt::link_subordinate(w.top, t, w.left, l));
  kt::superior_message m;
  m.kind = k::rollback;
  m.from = w.right.id();
  m.to = w.left.id();
  m.uow = t.id();
  REQUIRE(!w.bus.send(m));
  w.bus.pump();
  CHECK(l.internal_state() == kt::tx_state::active);
  REQUIRE(t.rollback());
  w.bus.pump();
}

TEST_CASE("a subordinate whose own timeout or client rolls it back before it prepared reports ABORTED") {
  trio<pumped_tm, fault_transport> w;
  linked_pair<decltype(w.top)> p(w.top, w.left, &w.top_rm, &w.left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  REQUIRE(l.rollback());
  w.bus.pump();
  CHECK(w.bus.count(k::aborted) == 1);
  CHECK(t.outcome() == kt::transaction_outcome::aborted);
  CHECK(w.top_rm.rollbacks == 1);
}

TEST_CASE("a superior's messages for a transaction the subordinate does not know are answered by presumed abort") {
  trio<pumped_tm, fault_transport> w;
  const guid uow = guid::generate();
  for (k kind : {k::preprepare, k::prepare, k::commit, k::rollback}) {
    kt::superior_message m;
    m.kind = kind;
    m.from = w.top.id();
    m.to = w.left.id();
    m.uow = uow;
    REQUIRE(!w.bus.send(m));
  }
  w.bus.pump();
  CHECK(w.bus.kinds() == std::vector<k>{k::preprepare, k::prepare, k::commit, k::rollback, k::aborted, k::aborted,
                                         k::commit_complete, k::rollback_complete});
}
