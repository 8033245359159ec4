// tests/tm/virtual_clock_test.cpp: the TM's virtual clock.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;

TEST_CASE("a fresh clock reads 1, advances by one and max-merges") {
  atomic_virtual_clock c;
  CHECK(c.now() == 1);
  CHECK(c.advance() == 2);
  CHECK(c.merge(10) == 10);
  CHECK(c.now() == 10);
  CHECK(c.merge(5) == 10);
  CHECK(c.now() == 10);
  CHECK(c.advance() == 11);
}

TEST_CASE("the clock never goes back under concurrent advance and merge") {
  atomic_virtual_clock c;
  std::vector<std::thread> ts;
  std::atomic<int> went_back{0};  // Catch's assertions are not for other threads: counted, checked after
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      std::uint64_t last = 0;
      for (int i = 0; i < 10000; ++i) {
        const std::uint64_t v = (i % 3 == 0) ? c.merge(static_cast<std::uint64_t>(i * 4 + t)) : c.advance();
        if (v < last) ++went_back;
        last = v;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(went_back == 0);
  CHECK(c.now() >= 40000 * 2 / 3);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "the TM clock advances when a commit begins and is stamped on notifications") {
  CHECK(tm.virtual_clock() == 1);
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  CHECK(tm.virtual_clock() == 1);  // enlisting does not move it
  REQUIRE(tx.commit());
  CHECK(tm.virtual_clock() == 2);
  CHECK(tx.commit_clock() == 2);
  for (const event& e : a.events()) CHECK(e.clock == 2);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a larger clock value passed back by an RM is adopted by the TM") {
  a.answer(notify::prepare, reply::done(100));
  b.answer(notify::prepare, reply::done(50));
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(tx.commit());
  CHECK(tm.virtual_clock() == 100);
  CHECK(tx.commit_clock() == 100);
  const auto ev = a.events();
  CHECK(ev.back().kind == notify::commit);
  CHECK(ev.back().clock == 100);  // COMMIT is stamped after the merge
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a smaller clock value passed back is ignored") {
  tm.clock().merge(500);
  a.answer(notify::prepare, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto fut = tx.commit_async();
  REQUIRE(a.deferred()[0]->prepare_complete(7));
  CHECK(fut.get());
  CHECK(tm.virtual_clock() == 501);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a clock value passed with a reply from another thread is merged") {
  a.answer(notify::commit, reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto fut = tx.commit_async();
  auto d = a.deferred();
  std::thread([&] { REQUIRE(d[0]->commit_complete(1000)); }).join();
  CHECK(fut.get());
  CHECK(tm.virtual_clock() == 1000);
}
