// tests/tm/threading_test.cpp: the with_threading<P> option. The default
// stays thread_safe; single_threaded composes only with the inline
// dispatcher, takes no lock and uses a plain clock, and runs the same
// protocol (commit, rollback, RM rollback, read-only, single phase, replies
// given later on the same thread) with the laws suites passing against it.
#include <catch2/catch.hpp>

#include <type_traits>

#include "tests/support/tm_fakes.hpp"
#include "tests/tm/dispatcher_laws.hpp"
#include "tests/tm/storage_laws.hpp"

using namespace ktm::tm;
using namespace ktm::test;

using st_static = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>,
                                               with_threading<single_threaded>>;
using st_inline_array = volatile_transaction_manager<with_storage<inline_array_storage<2>>, with_threading<single_threaded>>;

// Composition accepted.
static_assert(std::is_same_v<basic_transaction_manager<>::threading_type, thread_safe>, "the default");
static_assert(basic_transaction_manager<>::concurrent);
static_assert(!st_static::concurrent);
static_assert(std::is_same_v<st_static::clock_type, plain_virtual_clock>, "single_threaded picks the plain clock");
static_assert(std::is_same_v<basic_transaction_manager<with_threading<thread_safe>>::clock_type, atomic_virtual_clock>);
static_assert(std::is_same_v<basic_transaction_manager<with_threading<single_threaded>, with_clock<atomic_virtual_clock>>::clock_type,
                             atomic_virtual_clock>,
              "an explicit with_clock wins");
static_assert(can_compose<with_threading<single_threaded>>);
static_assert(can_compose<with_threading<single_threaded>, with_dispatcher<inline_dispatcher>,
                          with_storage<inline_array_storage<2>>>);
static_assert(can_compose<with_dispatcher<queued_dispatcher>, with_threading<thread_safe>>);
static_assert(check_threading_policy<thread_safe>());
static_assert(check_threading_policy<single_threaded>());
static_assert(check_tm_clock<plain_virtual_clock>());
// Composition rejected.
static_assert(!can_compose<with_threading<single_threaded>, with_dispatcher<queued_dispatcher>>,
              "single_threaded needs the inline dispatcher");
static_assert(!can_compose<with_threading<single_threaded>, with_dispatcher<thread_pool_dispatcher<2>>>);
static_assert(!can_compose<with_threading<single_threaded>, with_threading<thread_safe>>, "the same kind twice");
static_assert(!can_compose<with_threading<int>>, "not a threading policy");
static_assert(!can_compose<with_threading<atomic_virtual_clock>>, "not a threading policy");

TEST_CASE("a plain virtual clock obeys the clock laws on one thread") {
  plain_virtual_clock c;
  CHECK(c.now() == 1);
  const auto a = c.advance();
  CHECK(a > 1);
  CHECK(c.now() == a);
  CHECK(c.merge(100) == 100);
  CHECK(c.now() == 100);
  CHECK(c.merge(50) == 100);
  CHECK(c.advance() == 101);
}

TEST_CASE_METHOD(two_rm_world<st_static>, "a single-threaded TM commits") {
  REQUIRE(tm.recover());
  const auto clock0 = tm.virtual_clock();
  auto tx = tm.begin();
  auto ea = tx.enlist(a, default_mask, enlistment_key(7));
  auto eb = tx.enlist(b);
  REQUIRE(ea);
  REQUIRE(eb);
  CHECK(tx.enlistment_count() == 2);
  CHECK(tx.enlist(a).code() == ktm::errc::already_enlisted);
  REQUIRE(tx.commit());
  CHECK(tx.outcome() == transaction_outcome::committed);
  CHECK(tx.is_done());
  CHECK(tm.virtual_clock() > clock0);
  const std::vector<notify> seq{notify::tm_online, notify::preprepare, notify::prepare, notify::commit};
  CHECK(a.kinds() == seq);
  CHECK(b.kinds() == seq);
  for (const event& e : a.events())
    if (e.kind != notify::tm_online) CHECK(e.key == enlistment_key(7));
  CHECK(tx.commit().code() == ktm::errc::invalid_state);
  CHECK(tx.protocol_errors() == 0);
}

TEST_CASE_METHOD(two_rm_world<st_static>, "a single-threaded TM rolls back") {
  REQUIRE(tm.recover());
  a.clear();
  b.clear();

  SECTION("client rollback") {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    REQUIRE(tx.rollback());
    CHECK(tx.outcome() == transaction_outcome::aborted);
    CHECK(tx.reason() == abort_reason::client);
    CHECK(a.kinds() == std::vector<notify>{notify::rollback});
    CHECK(b.kinds() == std::vector<notify>{notify::rollback});
    CHECK(a.commits == 0);
  }
  SECTION("an RM votes rollback at prepare") {
    b.answer(notify::prepare, reply::rollback());
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
    CHECK(tx.reason() == abort_reason::resource_manager);
    CHECK(a.kinds() == std::vector<notify>{notify::preprepare, notify::prepare, notify::rollback});
    CHECK(b.kinds() == std::vector<notify>{notify::preprepare, notify::prepare});
    CHECK(a.commits == 0);
    CHECK(b.commits == 0);
  }
  SECTION("an RM rolls back through its enlistment before commit") {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    REQUIRE((*eb)->rollback());
    CHECK(tx.outcome() == transaction_outcome::aborted);
    CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
    CHECK(a.kinds() == std::vector<notify>{notify::rollback});
  }
  SECTION("destroyed undecided") {
    {
      auto tx = tm.begin();
      auto ea = tx.enlist(a);
      REQUIRE(ea);
      (void)ea->release();  // else dropping the handle rolls a back by itself, before the transaction goes
    }
    CHECK(a.kinds() == std::vector<notify>{notify::rollback});
  }
}

TEST_CASE_METHOD(two_rm_world<st_static>, "a single-threaded TM takes replies given later on the same thread") {
  REQUIRE(tm.recover());
  a.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  bool fired = false;
  ktm::result<void> outcome = ktm::errc::invalid_state;
  REQUIRE(tx.commit_async([&](ktm::result<void> r) {
    fired = true;
    outcome = r;
  }));
  CHECK(!fired);
  CHECK(tx.state() == transaction_state::normal);
  auto deferred = a.deferred();
  REQUIRE(deferred.size() == 1);
  REQUIRE(deferred[0]->prepare_complete());
  CHECK(fired);
  CHECK(outcome);
  CHECK(tx.outcome() == transaction_outcome::committed);
  CHECK(a.commits == 1);
  CHECK(b.commits == 1);
}

TEST_CASE_METHOD(two_rm_world<st_static>, "a blocking commit on a single-threaded TM does not wait for a later reply") {
  a.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  CHECK(tx.commit().code() == ktm::errc::invalid_state);  // nothing could answer while it waited
  auto deferred = a.deferred();
  REQUIRE(deferred.size() == 1);
  REQUIRE(deferred[0]->prepare_complete());
  CHECK(tx.outcome() == transaction_outcome::committed);
}

TEST_CASE_METHOD(two_rm_world<st_static>, "a single-threaded TM obeys the dispatcher laws") {
  check_dispatcher_laws(tm, a, b);
}

TEST_CASE_METHOD(registered_two_rm_world<st_inline_array>,
                 "a single-threaded TM with inline array storage obeys the dispatcher laws") {
  check_dispatcher_laws(tm, a, b);
}

TEST_CASE_METHOD(two_rm_world<st_static>, "a single-threaded TM obeys the storage laws") {
  check_storage_laws(tm, a, b);
}

TEST_CASE_METHOD(two_rm_world<st_static>, "a single-threaded TM may be handed to another thread") {
  std::thread t([&] {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    REQUIRE(tx.commit());
  });
  t.join();
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  REQUIRE(tx.commit());
  CHECK(a.commits == 2);
}
