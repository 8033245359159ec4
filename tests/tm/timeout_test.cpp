// tests/tm/timeout_test.cpp: a transaction that has not prepared when its
// timeout expires rolls back with no call from the client.
#include <catch2/catch.hpp>

#include <chrono>
#include <thread>
#include <vector>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using namespace std::chrono_literals;
using kinds = std::vector<notify>;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;

TEST_CASE_METHOD(two_rm_world<static_tm>, "an active transaction whose timeout expires gets ROLLBACK by itself") {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(tx.set_timeout(20ms));
  REQUIRE(eventually([&] { return tx.is_done(); }));
  CHECK(tx.outcome() == transaction_outcome::aborted);
  CHECK(tx.reason() == abort_reason::timeout);
  CHECK(a.kinds() == kinds{notify::rollback});
  CHECK(b.kinds() == kinds{notify::rollback});
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a transaction still preparing when its timeout expires rolls back") {
  a.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(tx.set_timeout(20ms));
  auto fut = tx.commit_async();
  CHECK(fut.get().code() == ktm::errc::transaction_aborted);
  CHECK(tx.reason() == abort_reason::timeout);
  CHECK(b.kinds() == kinds{notify::preprepare, notify::prepare, notify::rollback});
  auto d = a.deferred();
  REQUIRE(d.size() == 1);
  CHECK(d[0]->prepare_complete().code() == ktm::errc::invalid_state);  // too late
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a timeout after the commit point changes nothing") {
  a.answer(notify::commit, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  REQUIRE(tx.set_timeout(10ms));
  auto fut = tx.commit_async();
  std::this_thread::sleep_for(50ms);
  CHECK(tx.outcome() == transaction_outcome::committed);
  REQUIRE(a.deferred()[0]->commit_complete());
  CHECK(fut.get());
  CHECK(a.count(notify::rollback) == 0);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a transaction committed before its timeout is not rolled back") {
  {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    REQUIRE(tx.set_timeout(1h));
    REQUIRE(tx.commit());
  }  // the destructor disarms the timer
  CHECK(tm.timer().armed() == 0);
  CHECK(a.count(notify::rollback) == 0);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a timeout can only be set while active") {
  auto tx = tm.begin();
  REQUIRE(tx.commit());
  CHECK(tx.set_timeout(1s).code() == ktm::errc::invalid_state);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "many transactions with short timeouts all roll back") {
  std::vector<std::unique_ptr<static_tm::transaction>> txs;
  std::vector<enlistment_handle> hs;
  for (int i = 0; i < 50; ++i) {
    txs.push_back(std::make_unique<static_tm::transaction>(tm, ktm::guid::generate()));
    hs.push_back(txs.back()->enlist(a).value());
    REQUIRE(txs.back()->set_timeout(std::chrono::milliseconds(1 + i % 7)));
  }
  REQUIRE(eventually([&] {
    for (auto& t : txs)
      if (!t->is_done()) return false;
    return true;
  }));
  CHECK(a.rollbacks == 50);
  hs.clear();
}
