// tests/tm/superior_concurrency_test.cpp: many threads commit transactions
// that span a superior and two subordinates at once, over the in-process
// transport (deliveries inline, in each committing thread), with RMs that
// answer later from other threads. Run under ThreadSanitizer in CI.
#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "ktm/tm.hpp"
#include "tests/support/superior_fakes.hpp"

using namespace ktm::test;
using ktm::guid;
namespace kt = ktm::tm;

namespace {
using tm_t = kt::superior_transaction_manager<kt::with_transport<kt::in_process_transport>>;

}  // namespace

TEST_CASE("threads committing across a superior and two subordinates at once all commit; each RM once per transaction") {
  trio<tm_t, kt::in_process_transport> w;
  // named references, not a structured binding: clang 14 cannot capture one in a lambda
  auto& top = w.top;
  auto& left = w.left;
  auto& right = w.right;
  auto& top_rm = w.top_rm;
  auto& left_rm = w.left_rm;
  auto& right_rm = w.right_rm;
  constexpr int threads = 4, per_thread = 150;
  std::atomic<std::size_t> committed{0}, aborted{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&, i] {
      for (int n = 0; n < per_thread; ++n) {
        auto t = top.begin();
        auto l = left.begin(t.id());
        auto r = right.begin(t.id());
        if (!kt::link_subordinate(top, t, left, l) || !kt::link_subordinate(top, t, right, r)) continue;
        auto e1 = t.enlist(top_rm);
        auto e2 = l.enlist(left_rm);
        auto e3 = r.enlist(right_rm);
        const bool rollback = (n + i) % 5 == 0;
        if (rollback) {
          (void)t.rollback();
          ++aborted;
        } else if (t.commit()) {
          ++committed;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  CHECK(committed == std::size_t{threads * per_thread * 4 / 5});
  CHECK(top_rm.commits == committed);
  CHECK(left_rm.commits == committed);
  CHECK(right_rm.commits == committed);
  CHECK(left_rm.rollbacks == aborted);
  CHECK(top.tick() == 0);
  CHECK(left.tick() == 0);
}

TEST_CASE("subordinate RMs answering later from their own threads still give one outcome") {
  trio<tm_t, kt::in_process_transport> w;
  // named references, not a structured binding: clang 14 cannot capture one in a lambda
  auto& top = w.top;
  auto& left = w.left;
  auto& top_rm = w.top_rm;
  auto& left_rm = w.left_rm;
  left_rm.answer(kt::notify::prepare, kt::reply::later());
  std::atomic<bool> stop{false};
  std::thread answerer([&] {
    while (!stop) {
      for (auto* e : left_rm.deferred()) (void)e->prepare_complete();
      std::this_thread::yield();
    }
  });
  for (int n = 0; n < 50; ++n) {
    linked_pair<tm_t> p(top, left, &top_rm, &left_rm);
    REQUIRE(p.top.commit());
    CHECK(p.sub.outcome() == kt::transaction_outcome::committed);
  }
  stop = true;
  answerer.join();
  CHECK(left_rm.commits == 50);
}
