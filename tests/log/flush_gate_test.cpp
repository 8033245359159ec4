// tests/log/flush_gate_test.cpp: where forcers sleep until their flush has
// completed (ktm/log/detail/flush_gate.hpp).
//
// "Still asleep" is checked by waiting a while and finding the waiter has
// not returned: a gate that wrongly wakes it fails the check; a slow
// machine can only make such a check pass, never fail.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "ktm/log/detail/flush_gate.hpp"

using ktm::log::detail::flush_gate;

namespace {

// A thread that waits on the gate for generation g and records when it is
// through.
class waiter {
 public:
  waiter(flush_gate& gate, std::uint64_t g, bool leads)
      : gate_(gate), t_([this, g, leads] {
          gate_.wait(g, leads);
          through_.store(true);
        }) {}
  // A waiter still asleep here is one a check has already found lost:
  // failing the gate wakes it, so that the test reports that, not hangs.
  ~waiter() {
    if (!through()) gate_.fail();
    if (t_.joinable()) t_.join();
  }
  bool through() const { return through_.load(); }
  // True if the waiter gets through within a few seconds.
  bool gets_through() const {
    for (int i = 0; i < 5000 && !through(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    return through();
  }

 private:
  flush_gate& gate_;
  std::atomic<bool> through_{false};
  std::thread t_;
};

void pause_a_while() { std::this_thread::sleep_for(std::chrono::milliseconds(50)); }

}  // namespace

TEST_CASE("a waiter for a completed generation does not sleep") {
  flush_gate gate;
  gate.complete(3, 300);
  for (bool leads : {false, true}) {
    waiter w(gate, 3, leads);
    CHECK(w.gets_through());
    waiter older(gate, 2, leads);
    CHECK(older.gets_through());
  }
  CHECK(gate.done() == 3);
  CHECK(gate.durable() == 300);
}

TEST_CASE("completing a generation wakes its waiters and its next leader but no waiter of the next one") {
  flush_gate gate;
  waiter follower(gate, 1, false);
  waiter leader(gate, 1, true);  // will lead generation 2
  waiter next(gate, 2, false);
  waiter next_leader(gate, 2, true);  // will lead generation 3
  pause_a_while();
  CHECK_FALSE(follower.through());
  CHECK_FALSE(leader.through());

  gate.complete(1, 100);
  CHECK(follower.gets_through());
  CHECK(leader.gets_through());
  pause_a_while();
  CHECK_FALSE(next.through());
  CHECK_FALSE(next_leader.through());  // woken with generation 1's leader, it went back to sleep

  gate.complete(2, 200);
  CHECK(next.gets_through());
  CHECK(next_leader.gets_through());
  CHECK(gate.durable() == 200);
}

TEST_CASE("a late completion of an older generation moves nothing back") {
  flush_gate gate;
  gate.complete(2, 200);
  gate.complete(1, 100);  // its leader published after the next one's
  CHECK(gate.done() == 2);
  CHECK(gate.durable() == 200);
  waiter w(gate, 2, false);
  CHECK(w.gets_through());
}

TEST_CASE("a next leader is released when a later generation completes first") {
  flush_gate gate;
  waiter leader(gate, 4, true);  // will lead 5
  pause_a_while();
  gate.complete(5, 500);  // 5 was run by someone else (close) and published before 4
  CHECK(leader.gets_through());
  gate.complete(4, 400);
  CHECK(gate.done() == 5);
  CHECK(gate.durable() == 500);
}

TEST_CASE("a failed gate wakes every waiter for good") {
  flush_gate gate;
  waiter follower(gate, 5, false);
  waiter leader(gate, 5, true);
  waiter later(gate, 9, false);
  pause_a_while();
  CHECK_FALSE(follower.through());
  gate.fail();
  CHECK(follower.gets_through());
  CHECK(leader.gets_through());
  CHECK(later.gets_through());
  CHECK(gate.failed());
  waiter after(gate, 12, true);
  CHECK(after.gets_through());
  CHECK(gate.done() == 0);  // no generation completed
}

TEST_CASE("many waiters of one generation and its leader all wake on its completion") {
  flush_gate gate;
  std::atomic<int> through{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 32; ++i)
    ts.emplace_back([&, i] {
      gate.wait(7, i == 0);
      through.fetch_add(1);
    });
  pause_a_while();
  CHECK(through.load() == 0);
  gate.complete(7, 700);
  for (auto& t : ts) t.join();
  CHECK(through.load() == 32);
}
