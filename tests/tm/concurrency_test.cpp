// tests/tm/concurrency_test.cpp: many threads run transactions on one TM at
// once, through every dispatcher and storage. Build with -fsanitize=thread.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "tests/support/tm_fakes.hpp"
#include "tests/tm/dispatcher_laws.hpp"

using namespace ktm::tm;
using namespace ktm::test;

namespace {

constexpr int threads = 6;
constexpr int per_thread = 150;

// Each thread commits two transactions in three and rolls back the third;
// every fifth one also has a short timeout. Returns the commits counted.
template <class TM>
std::size_t run_many(TM& tm, rm_a& a, rm_b& b) {
  std::atomic<std::size_t> committed{0}, aborted{0}, failures{0};  // Catch is not thread-safe
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        typename TM::transaction tx(tm, ktm::guid::generate());
        auto ea = tx.enlist(a, default_mask, enlistment_key(static_cast<std::uint64_t>(t)));
        auto eb = tx.enlist(b);
        if (!ea || !eb) ++failures;
        if (i % 5 == 0 && !tx.set_timeout(std::chrono::seconds(30))) ++failures;
        if (i % 3 == 2) {
          if (!tx.rollback()) ++failures;
          ++aborted;
        } else if (tx.commit()) {
          ++committed;
        } else {
          ++aborted;
        }
      }
    });
  }
  for (auto& th : ts) th.join();
  CHECK(failures == 0);
  CHECK(committed + aborted == threads * per_thread);
  CHECK(a.commits == committed.load());
  CHECK(b.commits == committed.load());
  CHECK(a.rollbacks == aborted.load());
  return committed;
}

}  // namespace

TEST_CASE("many threads commit through the inline dispatcher and static storage") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>> tm{a, b};
  const std::size_t n = run_many(tm, a, b);
  CHECK(n == threads * (per_thread - per_thread / 3));
  CHECK(tm.virtual_clock() == 1 + n);  // one advance per commit begun
}

TEST_CASE("many threads commit through dynamic storage") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<> tm;
  REQUIRE(tm.add_resource_manager(a));
  REQUIRE(tm.add_resource_manager(b));
  run_many(tm, a, b);
}

TEST_CASE("many threads commit through the thread pool dispatcher") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>, with_dispatcher<thread_pool_dispatcher<3>>> tm{a, b};
  run_many(tm, a, b);
}

TEST_CASE("many threads commit through the queued dispatcher") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<with_storage<inline_array_storage<2>>, with_dispatcher<queued_dispatcher>> tm;
  REQUIRE(tm.add_resource_manager(a));
  REQUIRE(tm.add_resource_manager(b));
  rm_servers servers(a, b);
  run_many(tm, a, b);
}

TEST_CASE("RMs racing to roll back against a committing client give one outcome") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>> tm{a, b};
  for (int i = 0; i < 300; ++i) {
    a.answer(notify::prepare, reply::later());
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    auto eb = tx.enlist(b);
    std::thread rm_thread([&] { (void)(*eb)->rollback(); });
    auto fut = tx.commit_async();
    rm_thread.join();
    for (auto* e : a.deferred()) (void)e->prepare_complete();
    const auto r = fut.get();
    if (r) {
      CHECK(tx.outcome() == transaction_outcome::committed);
    } else {
      CHECK(tx.outcome() == transaction_outcome::aborted);
    }
  }
}

TEST_CASE("timeouts race against commits safely") {
  rm_a a;
  rm_b b;
  volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>> tm{a, b};
  int committed = 0, aborted = 0;
  for (int i = 0; i < 200; ++i) {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    REQUIRE(tx.set_timeout(std::chrono::microseconds(i % 50)));
    if (tx.commit()) ++committed;
    else ++aborted;
  }
  CHECK(committed + aborted == 200);
  CHECK(a.commits == static_cast<std::size_t>(committed));
}
