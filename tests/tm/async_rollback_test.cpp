// tests/tm/async_rollback_test.cpp: rollback_async as doc/transactions.md
// ("Asynchronous commit and rollback") describes it: when and where its
// completion runs, what it is called with, and the errors that keep it from
// starting.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <thread>
#include <vector>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using kinds = std::vector<notify>;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;
using pool_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>,
                                             with_dispatcher<thread_pool_dispatcher<1>>>;

namespace {
// What a completion saw: how often it ran, with what, on which thread.
struct completion_probe {
  int calls = 0;
  ktm::result<void> seen = ktm::errc::io_error;  // anything but success
  std::thread::id thread;
  auto callback() {
    return [this](ktm::result<void> r) {
      ++calls;
      seen = r;
      thread = std::this_thread::get_id();
    };
  }
};
}  // namespace

TEST_CASE_METHOD(two_rm_world<static_tm>,
                 "an asynchronous rollback whose handlers answer inline completes before it returns") {
  completion_probe p;
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(tx.rollback_async(p.callback()));
  CHECK(p.calls == 1);
  CHECK(p.seen.has_value());
  CHECK(p.thread == std::this_thread::get_id());
  CHECK(a.kinds() == kinds{notify::rollback});
  CHECK(b.kinds() == kinds{notify::rollback});
  CHECK(tx.outcome() == transaction_outcome::aborted);
}

TEST_CASE_METHOD(two_rm_world<static_tm>,
                 "an asynchronous rollback completes in the thread that answers the last ROLLBACK") {
  a.answer(notify::rollback, reply::later());
  b.answer(notify::rollback, reply::later());
  completion_probe p;
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(tx.rollback_async(p.callback()));
  CHECK(p.calls == 0);
  auto da = a.deferred();
  auto db = b.deferred();
  REQUIRE(da.size() == 1);
  REQUIRE(db.size() == 1);
  REQUIRE(da[0]->rollback_complete());
  CHECK(p.calls == 0);  // b's ROLLBACK is still outstanding
  std::thread::id answerer;
  bool answered = false;  // Catch's assertions are not for other threads: checked after
  std::thread([&] {
    answerer = std::this_thread::get_id();
    answered = db[0]->rollback_complete().has_value();
  }).join();
  CHECK(answered);
  CHECK(p.calls == 1);
  CHECK(p.seen.has_value());
  CHECK(p.thread == answerer);
  CHECK(p.thread != std::this_thread::get_id());
}

TEST_CASE_METHOD(two_rm_world<pool_tm>, "an asynchronous rollback under a thread pool completes on a worker") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  std::promise<std::thread::id> where;
  auto ran_on = where.get_future();
  REQUIRE(tx.rollback_async([&where](ktm::result<void> r) {
    where.set_value(r ? std::this_thread::get_id() : std::thread::id{});
  }));
  REQUIRE(ran_on.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  const std::thread::id worker = ran_on.get();
  CHECK(worker != std::thread::id{});
  CHECK(worker != std::this_thread::get_id());
  CHECK(a.count(notify::rollback) == 1);
  CHECK(b.count(notify::rollback) == 1);
}

TEST_CASE_METHOD(two_rm_world<static_tm>,
                 "an asynchronous rollback of a transaction an RM rolled back completes at once with success") {
  completion_probe p;
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  REQUIRE((*ea)->rollback());  // the RM rolls the transaction back: nothing left to send
  CHECK(tx.is_done());
  REQUIRE(tx.rollback_async(p.callback()));
  CHECK(p.calls == 1);
  CHECK(p.seen.has_value());
  CHECK(p.thread == std::this_thread::get_id());
  CHECK(tx.reason() == abort_reason::resource_manager);
  CHECK(a.kinds().empty());  // it rolled back itself: no ROLLBACK
}

TEST_CASE_METHOD(two_rm_world<static_tm>,
                 "an asynchronous rollback that cannot start returns the error and never calls its completion") {
  completion_probe p;
  SECTION("after a commit") {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    REQUIRE(tx.commit());
    CHECK(tx.rollback_async(p.callback()).code() == ktm::errc::invalid_state);
    auto fut = tx.rollback_async();
    REQUIRE(fut.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    CHECK(fut.get().code() == ktm::errc::invalid_state);
  }
  SECTION("after a rollback") {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    REQUIRE(tx.rollback_async().get());
    CHECK(tx.rollback_async(p.callback()).code() == ktm::errc::invalid_state);
    CHECK(a.count(notify::rollback) == 1);
  }
  SECTION("once prepared while the commit waits for COMMIT") {
    a.answer(notify::commit, reply::later());
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    auto committed = tx.commit_async();
    CHECK(tx.rollback_async(p.callback()).code() == ktm::errc::invalid_state);
    REQUIRE(a.deferred()[0]->commit_complete());
    CHECK(committed.get());
  }
  CHECK(p.calls == 0);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an asynchronous rollback runs on an offline TM") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  tm.shutdown();
  auto fut = tx.rollback_async();
  REQUIRE(fut.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
  CHECK(fut.get());
  CHECK(a.kinds() == kinds{notify::rollback});
}
