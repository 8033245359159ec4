// tests/tm/superior_faults_test.cpp: lost, duplicated, failed and delayed
// messages between a superior and its subordinates. Resending (tick) repairs
// every loss; repeats are answered as the first; every transaction is
// resolved, and never committed by one participant and rolled back by
// another.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <memory>
#include <random>
#include <vector>

#include "ktm/tm.hpp"
#include "tests/support/superior_fakes.hpp"
#include "tests/support/tm_fakes.hpp"

using namespace ktm::test;
using ktm::guid;
namespace kt = ktm::tm;
using k = kt::superior_message_kind;

namespace {

using tm_t = kt::superior_transaction_manager<kt::with_transport<fault_transport>>;

// The outcome one RM saw for a transaction: 0 none, 1 committed, 2 rolled back, 3 both.
template <class RM>
int seen(const RM& rm, const guid& uow) {
  int v = 0;
  for (const auto& e : rm.events()) {
    if (e.transaction != uow) continue;
    if (e.kind == kt::notify::commit) v |= 1;
    if (e.kind == kt::notify::rollback) v |= 2;
  }
  return v;
}

int rounds_from_env() {
  const char* s = std::getenv("KTM_SUPERIOR_FAULT_ROUNDS");
  return s ? std::atoi(s) : 20;
}

}  // namespace

TEST_CASE("with messages lost; duplicated and delayed at random; every transaction resolves atomically") {
  const int seeds = rounds_from_env();
  int committed = 0, aborted = 0;
  for (int seed = 1; seed <= seeds; ++seed) {
    INFO("seed " << seed);
    trio<tm_t, fault_transport> w;
    auto& [bus, top, left, right, top_rm, left_rm, right_rm] = w;
    bus.reseed(static_cast<std::uint64_t>(seed));
    bus.drop_per_million = 150000;
    bus.duplicate_per_million = 150000;
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    for (int i = 0; i < 8; ++i) {
      // One RM in three refuses to prepare, some of the time.
      right_rm.answer(kt::notify::prepare, rng() % 4 == 0 ? kt::reply::rollback() : kt::reply::done());
      auto t = std::make_unique<tm_t::transaction>(top, guid::generate());
      auto l = std::make_unique<tm_t::transaction>(left, t->id());
      auto r = std::make_unique<tm_t::transaction>(right, t->id());
      REQUIRE(kt::link_subordinate(top, *t, left, *l));
      REQUIRE(kt::link_subordinate(top, *t, right, *r));
      auto e1 = t->enlist(top_rm);
      auto e2 = l->enlist(left_rm);
      auto e3 = r->enlist(right_rm);
      REQUIRE((e1 && e2 && e3));
      if (rng() % 3 == 0) bus.delay_next = 1 + rng() % 3;
      REQUIRE(t->commit_async([](ktm::result<void>) {}));
      int round = 0;
      for (; round < 500; ++round) {
        bus.pump();
        if (round % 7 == 3) bus.release_delayed();
        if (t->is_done() && l->is_done() && r->is_done() && top.tick() == 0) break;
        top.tick();
        left.tick();
        right.tick();
      }
      bus.release_delayed();
      bus.pump();
      CHECK(round < 500);
      const int a = seen(top_rm, t->id()), b = seen(left_rm, t->id()), c = seen(right_rm, t->id());
      CHECK(a != 3);
      CHECK(b != 3);
      CHECK(c != 3);
      const bool all_commit = a == 1 && b == 1 && c == 1;
      const bool none_commit = (a & 1) == 0 && (b & 1) == 0 && (c & 1) == 0;
      CHECK((all_commit || none_commit));
      CHECK(t->outcome() == (all_commit ? kt::transaction_outcome::committed : kt::transaction_outcome::aborted));
      CHECK(l->outcome() == t->outcome());
      CHECK(r->outcome() == t->outcome());
      (all_commit ? committed : aborted) += 1;
    }
    bus.drop_per_million = 0;
    bus.duplicate_per_million = 0;
    bus.pump();
  }
  CHECK(committed > 0);
  CHECK(aborted > 0);
}

TEST_CASE("a duplicated message at every step is answered as the first and changes nothing") {
  trio<tm_t, fault_transport> w;
  auto& [bus, top, left, right, top_rm, left_rm, right_rm] = w;
  bus.duplicate_per_million = 1000000;  // every message twice
  linked_pair<tm_t> p(top, left, &top_rm, &left_rm);
  auto& t = p.top;
  auto& l = p.sub;
  REQUIRE(t.commit_async([](ktm::result<void>) {}));
  bus.pump(200);
  bus.duplicate_per_million = 0;
  bus.pump();
  CHECK(t.outcome() == kt::transaction_outcome::committed);
  CHECK(l.outcome() == kt::transaction_outcome::committed);
  CHECK(left_rm.count(kt::notify::prepare) == 1);
  CHECK(left_rm.count(kt::notify::commit) == 1);
  CHECK(t.protocol_errors() == 0);
}

TEST_CASE("a send that fails is repaired by the sender's next tick; at every step of the protocol") {
  for (std::size_t step = 0; step < 6; ++step) {
    INFO("failing the send of message " << step);
    trio<tm_t, fault_transport> w;
    auto& [bus, top, left, right, top_rm, left_rm, right_rm] = w;
    linked_pair<tm_t> p(top, left, &top_rm, &left_rm);
    auto& t = p.top;
    auto& l = p.sub;
    REQUIRE(t.commit_async([](ktm::result<void>) {}));
    bus.pump(step);
    bus.lose_queued();  // message `step` never arrives
    for (int i = 0; i < 5 && !(t.is_done() && l.is_done()); ++i) {
      top.tick();
      left.tick();
      bus.pump();
    }
    CHECK(t.outcome() == kt::transaction_outcome::committed);
    CHECK(l.outcome() == kt::transaction_outcome::committed);
    CHECK(left_rm.count(kt::notify::commit) == 1);
    CHECK(top.tick() == 0);  // nothing left to resend
  }
}
