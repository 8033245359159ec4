// tests/tm/virtual_clock_test.cpp: the TM's virtual clock.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <thread>
#include <type_traits>
#include <vector>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;
using dynamic_tm = volatile_transaction_manager<with_storage<dynamic_storage>>;

TEST_CASE("a fresh clock reads 1; advances by one and max-merges") {
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

// A client's commit() may see the outcome from its own thread the moment the
// RM's reply on another thread settles it: the TM's clock must hold the
// reply's value by then (it is merged before the outcome shows).
TEST_CASE_METHOD(two_rm_world<static_tm>, "a commit that returns has the clock of a single-phase reply from another thread") {
  a.answer(notify::single_phase_commit, reply::later());
  int behind = 0;
  for (std::uint64_t i = 1; i <= 2000; ++i) {
    auto tx = tm.begin();
    auto ea = tx.enlist(a, default_mask | notify::single_phase_commit);
    REQUIRE(ea);
    const std::uint64_t value = 10 * i + 1000;
    std::thread rm([&] {
      for (;;) {
        auto d = a.deferred();
        if (d.empty()) {
          std::this_thread::yield();
          continue;
        }
        (void)d[0]->commit_complete(value);
        return;
      }
    });
    const ktm::result<void> r = tx.commit();
    if (tm.virtual_clock() < value) ++behind;
    rm.join();
    REQUIRE(r);
  }
  CHECK(behind == 0);
}

namespace {

// One reply that carries a clock value: the notification it answers, and how
// (returned by the handler, or a reply call on the enlistment after the
// handler returned later()).
struct clock_row {
  const char* what;
  notify answers;
  bool single_phase;     // enlisted alone for SINGLE_PHASE_COMMIT
  bool client_rollback;  // the client rolls back (ROLLBACK) instead of committing
  reply (*returned)(std::uint64_t);                        // this, returned by the handler
  ktm::result<void> (enlistment::*call)(std::uint64_t);    // or this, called on the enlistment
  transaction_outcome outcome;
};

constexpr auto committed = transaction_outcome::committed;
constexpr auto aborted = transaction_outcome::aborted;

const clock_row clock_rows[] = {
    // through the enlistment
    {"preprepare_complete", notify::preprepare, false, false, nullptr, &enlistment::preprepare_complete, committed},
    {"prepare_complete", notify::prepare, false, false, nullptr, &enlistment::prepare_complete, committed},
    {"commit_complete to COMMIT", notify::commit, false, false, nullptr, &enlistment::commit_complete, committed},
    {"commit_complete to SINGLE_PHASE_COMMIT", notify::single_phase_commit, true, false, nullptr,
     &enlistment::commit_complete, committed},
    {"rollback_complete", notify::rollback, false, true, nullptr, &enlistment::rollback_complete, aborted},
    {"read_only to PREPARE", notify::prepare, false, false, nullptr, &enlistment::read_only, committed},
    {"read_only to SINGLE_PHASE_COMMIT", notify::single_phase_commit, true, false, nullptr, &enlistment::read_only,
     committed},
    {"single_phase_reject", notify::single_phase_commit, true, false, nullptr, &enlistment::single_phase_reject,
     committed},
    {"rollback (rollback_enlistment) to PREPARE", notify::prepare, false, false, nullptr, &enlistment::rollback, aborted},
    {"rollback (rollback_enlistment) to SINGLE_PHASE_COMMIT", notify::single_phase_commit, true, false, nullptr,
     &enlistment::rollback, aborted},
    // returned by the handler
    {"returned done to PREPREPARE", notify::preprepare, false, false, &reply::done, nullptr, committed},
    {"returned done to PREPARE", notify::prepare, false, false, &reply::done, nullptr, committed},
    {"returned done to COMMIT", notify::commit, false, false, &reply::done, nullptr, committed},
    {"returned done to SINGLE_PHASE_COMMIT", notify::single_phase_commit, true, false, &reply::done, nullptr, committed},
    {"returned done to ROLLBACK", notify::rollback, false, true, &reply::done, nullptr, aborted},
    {"returned read_only to PREPREPARE", notify::preprepare, false, false, &reply::read_only, nullptr, committed},
    {"returned read_only to PREPARE", notify::prepare, false, false, &reply::read_only, nullptr, committed},
    {"returned read_only to SINGLE_PHASE_COMMIT", notify::single_phase_commit, true, false, &reply::read_only, nullptr,
     committed},
    {"returned rollback to PREPREPARE", notify::preprepare, false, false, &reply::rollback, nullptr, aborted},
    {"returned rollback to PREPARE", notify::prepare, false, false, &reply::rollback, nullptr, aborted},
    {"returned rollback to SINGLE_PHASE_COMMIT", notify::single_phase_commit, true, false, &reply::rollback, nullptr,
     aborted},
    {"returned reject to SINGLE_PHASE_COMMIT", notify::single_phase_commit, true, false, &reply::reject, nullptr,
     committed},
};

// Runs every row twice on a fresh TM whose clock reads 500: with 1000 (the
// TM adopts it) and with 7 (the TM keeps its own: 500, or 501 when a commit
// began and advanced it).
template <class TM>
void check_reply_clocks() {
  using world = std::conditional_t<TM::storage_type::is_static, two_rm_world<TM>, registered_two_rm_world<TM>>;
  for (const clock_row& row : clock_rows) {
    for (const std::uint64_t value : {std::uint64_t{1000}, std::uint64_t{7}}) {
      INFO(row.what << " with clock " << value);
      world w;
      w.tm.clock().merge(500);
      w.a.answer(row.answers, row.returned ? row.returned(value) : reply::later());
      auto tx = w.tm.begin();
      auto ea = tx.enlist(w.a, row.single_phase ? default_mask | notify::single_phase_commit : default_mask);
      REQUIRE(ea);
      auto done = row.client_rollback ? tx.rollback_async() : tx.commit_async();
      if (row.call) {
        auto deferred = w.a.deferred();
        REQUIRE(deferred.size() == 1);
        REQUIRE((deferred[0]->*row.call)(value));
      }
      REQUIRE(done.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
      const ktm::result<void> r = done.get();
      CHECK(r.has_value() == (row.client_rollback || row.outcome == committed));
      CHECK(tx.outcome() == row.outcome);
      CHECK(tx.protocol_errors() == 0);
      const std::uint64_t own = row.client_rollback ? 500 : 501;
      CHECK(w.tm.virtual_clock() == (value > own ? value : own));
    }
  }
}

}  // namespace

TEST_CASE("every reply that carries a clock has it max-merged into the TM clock") {
  SECTION("static storage and the straight-line commit") { check_reply_clocks<static_tm>(); }
  SECTION("dynamic storage and the general protocol loop") { check_reply_clocks<dynamic_tm>(); }
}
