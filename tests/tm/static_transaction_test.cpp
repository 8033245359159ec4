// tests/tm/static_transaction_test.cpp: static transactions
// (tm.begin_static()): the protocol when every handler answers by
// returning, on the clean path and off it, and the contract's edges.
#include <catch2/catch.hpp>

#include <atomic>
#include <functional>
#include <tuple>
#include <utility>
#include <thread>
#include <type_traits>
#include <vector>

#include "tests/support/tm_fakes.hpp"

using namespace ktm::tm;
using namespace ktm::test;
using kinds = std::vector<notify>;
using static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>>;
using single_static_tm = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>,
                                                      with_threading<single_threaded>>;

namespace {
template <class TM>
concept can_begin_static = requires(TM& tm) { tm.begin_static(); };

// Enlists a and b with the default mask.
template <class Tx>
void enlist_both(Tx& tx, rm_a& a, rm_b& b) {
  REQUIRE(tx.enlist(a));
  REQUIRE(tx.enlist(b));
}

const kinds full_commit = {notify::preprepare, notify::prepare, notify::commit};
const notification_mask spc_mask = default_mask | notify::single_phase_commit;

// Calls `hook` (if set) from its PREPARE handler: a way back into the
// transaction that the protocol does not give it.
struct reentrant_rm : resource_manager_base<> {
  reply on_prepare(enlistment&, const notification&) {
    if (hook) hook();
    return reply::done();
  }
  reply on_commit(enlistment&, const notification&) { return reply::done(); }
  reply on_rollback(enlistment&, const notification&) { return reply::done(); }
  std::function<void()> hook;
};

// Commits one static transaction over 32 RM types, each enlisted.
template <std::size_t... I>
void commit_over_rms(std::index_sequence<I...>) {
  std::tuple<recording_rm<100 + static_cast<int>(I)>...> rms;
  volatile_transaction_manager<with_storage<static_storage<recording_rm<100 + static_cast<int>(I)>...>>> tm{
      std::get<I>(rms)...};
  auto tx = tm.begin_static();
  const bool enlisted = (static_cast<bool>(tx.enlist(std::get<I>(rms))) && ...);
  REQUIRE(enlisted);
  CHECK(tx.enlistment_count() == sizeof...(I));
  REQUIRE(tx.commit());
  const bool all_full = ((std::get<I>(rms).kinds() == std::vector<notify>{notify::preprepare, notify::prepare,
                                                                          notify::commit}) && ...);
  CHECK(all_full);
}

// Looks at the enlistment it is handed, from inside each handler.
struct probing_rm : resource_manager_base<> {
  reply on_prepare(enlistment& e, const notification& n) {
    seen_key = e.key();
    seen_mask = e.mask();
    seen_id = e.transaction_id();
    seen_uow = n.transaction;
    has_transaction = e.has_transaction();
    reply_result = e.prepare_complete();
    rollback_result = e.rollback();
    recovery_result = e.set_recovery_information({});
    return reply::done();
  }
  reply on_commit(enlistment&, const notification&) { return reply::done(); }
  reply on_rollback(enlistment&, const notification&) { return reply::done(); }
  enlistment_key seen_key{};
  notification_mask seen_mask{};
  ktm::guid seen_id{}, seen_uow{};
  bool has_transaction = true;
  ktm::result<void> reply_result, rollback_result, recovery_result;
};
}  // namespace

TEST_CASE_METHOD(two_rm_world<static_tm>, "a static commit sends preprepare prepare and commit to each RM in order") {
  const std::uint64_t clock_before = tm.virtual_clock();
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a, default_mask, enlistment_key(7)));
  REQUIRE(tx.enlist(b, default_mask, enlistment_key(8)));
  CHECK(tx.enlistment_count() == 2);
  CHECK(tx.status_of(a) == enlistment_status::active);
  REQUIRE(tx.commit());
  CHECK(a.kinds() == full_commit);
  CHECK(b.kinds() == full_commit);
  CHECK(tx.internal_state() == tx_state::committed);
  CHECK(tx.outcome() == transaction_outcome::committed);
  CHECK(tx.state() == transaction_state::normal);
  CHECK(tx.status_of(a) == enlistment_status::committed);
  CHECK(tx.status_of(b) == enlistment_status::committed);
  CHECK(tx.protocol_errors() == 0);
  CHECK(tx.commit_clock() == clock_before + 1);
  for (const event& e : a.events()) {
    CHECK(e.transaction == tx.id());
    CHECK(e.key == enlistment_key(7));
    CHECK(e.clock == clock_before + 1);
  }
  for (const event& e : b.events()) CHECK(e.key == enlistment_key(8));
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a static transaction takes the UOW id it is given") {
  const ktm::guid uow = ktm::guid::generate();
  auto tx = tm.begin_static(uow);
  CHECK(tx.id() == uow);
  REQUIRE(tx.enlist(a));
  REQUIRE(tx.commit());
  CHECK(a.events()[0].transaction == uow);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a static commit with no enlistment commits") {
  auto tx = tm.begin_static();
  REQUIRE(tx.commit());
  CHECK(tx.outcome() == transaction_outcome::committed);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "one RM of two enlisted runs the two phases with statuses kept") {
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(b));
  REQUIRE(tx.commit());
  CHECK(a.kinds().empty());
  CHECK(b.kinds() == full_commit);
  CHECK(tx.status_of(a) == enlistment_status::unused);
  CHECK(tx.status_of(b) == enlistment_status::committed);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a mask without a notification skips that phase") {
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a, notify::prepare | notify::commit | notify::rollback));
  REQUIRE(tx.enlist(b));
  REQUIRE(tx.commit());
  CHECK(a.kinds() == kinds{notify::prepare, notify::commit});
  CHECK(b.kinds() == full_commit);
  CHECK(tx.status_of(a) == enlistment_status::committed);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "an RM that rolls back in prepare gets no rollback and the other one does") {
  a.answer(notify::prepare, reply::rollback());
  auto tx = tm.begin_static();
  enlist_both(tx, a, b);
  const auto r = tx.commit();
  REQUIRE_FALSE(r);
  CHECK(r.code() == ktm::errc::transaction_aborted);
  CHECK(tx.reason() == abort_reason::resource_manager);
  CHECK(tx.outcome() == transaction_outcome::aborted);
  CHECK(tx.internal_state() == tx_state::aborted);
  CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare});
  // b was not sent PREPARE: the phase stops at the rollback.
  CHECK(b.kinds() == kinds{notify::preprepare, notify::rollback});
  CHECK(tx.status_of(a) == enlistment_status::rolled_back);
  CHECK(tx.status_of(b) == enlistment_status::rolled_back);
  CHECK(tx.protocol_errors() == 0);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a rollback in preprepare from the second RM rolls back the first") {
  b.answer(notify::preprepare, reply::rollback());
  auto tx = tm.begin_static();
  enlist_both(tx, a, b);
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
  CHECK(a.kinds() == kinds{notify::preprepare, notify::rollback});
  CHECK(b.kinds() == kinds{notify::preprepare});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a read-only reply drops the enlistment out of the later phases") {
  const notify phase = GENERATE(notify::preprepare, notify::prepare);
  a.answer(phase, reply::read_only());
  auto tx = tm.begin_static();
  enlist_both(tx, a, b);
  REQUIRE(tx.commit());
  CHECK(a.kinds() == (phase == notify::preprepare ? kinds{notify::preprepare}
                                                  : kinds{notify::preprepare, notify::prepare}));
  CHECK(tx.status_of(a) == enlistment_status::read_only);
  CHECK(b.kinds() == full_commit);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a later reply before the commit point is a protocol error that rolls back") {
  a.answer(notify::prepare, reply::later());
  auto tx = tm.begin_static();
  enlist_both(tx, a, b);
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
  CHECK(tx.protocol_errors() == 1);
  // The RM that meant to answer later is told the outcome.
  CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare, notify::rollback});
  CHECK(b.kinds() == kinds{notify::preprepare, notify::rollback});
  // Its enlistment cannot answer: a static transaction takes returned replies only.
  const auto deferred = a.deferred();
  REQUIRE(deferred.size() == 1);
  CHECK(deferred[0]->prepare_complete().code() == ktm::errc::invalid_state);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a reject to prepare reads as rollback") {
  b.answer(notify::prepare, reply::reject());
  auto tx = tm.begin_static();
  enlist_both(tx, a, b);
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
  CHECK(tx.protocol_errors() == 1);
  CHECK(a.kinds() == kinds{notify::preprepare, notify::prepare, notify::rollback});
  CHECK(b.kinds() == kinds{notify::preprepare, notify::prepare});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a reply other than done to commit is counted and the commit stands") {
  a.answer(notify::commit, reply::rollback());
  auto tx = tm.begin_static();
  enlist_both(tx, a, b);
  REQUIRE(tx.commit());
  CHECK(tx.protocol_errors() == 1);
  CHECK(a.kinds() == full_commit);
  CHECK(b.kinds() == full_commit);
  CHECK(tx.status_of(a) == enlistment_status::committed);
  CHECK(tx.outcome() == transaction_outcome::committed);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "the lone enlistment that asks for it gets single-phase commit") {
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a, spc_mask));
  SECTION("committed") {
    REQUIRE(tx.commit());
    CHECK(a.kinds() == kinds{notify::single_phase_commit});
    CHECK(tx.status_of(a) == enlistment_status::committed);
  }
  SECTION("read-only: it changed nothing and the transaction commits") {
    a.answer(notify::single_phase_commit, reply::read_only());
    REQUIRE(tx.commit());
    CHECK(tx.outcome() == transaction_outcome::committed);
    CHECK(tx.status_of(a) == enlistment_status::read_only);
  }
  SECTION("rolled back by the RM") {
    a.answer(notify::single_phase_commit, reply::rollback());
    CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
    CHECK(a.kinds() == kinds{notify::single_phase_commit});
    CHECK(tx.reason() == abort_reason::resource_manager);
    CHECK(tx.status_of(a) == enlistment_status::rolled_back);
  }
  SECTION("rejected: two phases at once") {
    a.answer(notify::single_phase_commit, reply::reject());
    REQUIRE(tx.commit());
    CHECK(a.kinds() == kinds{notify::single_phase_commit, notify::preprepare, notify::prepare, notify::commit});
    CHECK(tx.status_of(a) == enlistment_status::committed);
  }
  SECTION("later: a protocol error; and the RM is told to roll back") {
    a.answer(notify::single_phase_commit, reply::later());
    CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
    CHECK(tx.protocol_errors() == 1);
    CHECK(a.kinds() == kinds{notify::single_phase_commit, notify::rollback});
  }
  CHECK(b.kinds().empty());
}

TEST_CASE("a TM with one RM commits in two phases unless the RM asks for single-phase") {
  rm_a a;
  volatile_transaction_manager<with_storage<static_storage<rm_a>>> tm{a};
  {
    auto tx = tm.begin_static();
    REQUIRE(tx.enlist(a));
    REQUIRE(tx.commit());
  }
  CHECK(a.kinds() == full_commit);
  a.clear();
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a, spc_mask));
  REQUIRE(tx.commit());
  CHECK(a.kinds() == kinds{notify::single_phase_commit});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "two live enlistments use two phases even if one asked for single-phase") {
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a, spc_mask));
  REQUIRE(tx.enlist(b));
  REQUIRE(tx.commit());
  CHECK(a.kinds() == full_commit);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "reply clocks are max-merged into the TM's clock") {
  a.answer(notify::prepare, reply::done(1000));
  auto tx = tm.begin_static();
  enlist_both(tx, a, b);
  REQUIRE(tx.commit());
  CHECK(tm.virtual_clock() == 1000);
  CHECK(b.events()[1].clock < 1000);   // PREPARE carries the clock at the phase's start
  CHECK(b.events()[2].clock == 1000);  // COMMIT carries the merged clock
  auto tx2 = tm.begin_static();
  REQUIRE(tx2.commit());
  CHECK(tx2.commit_clock() == 1001);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a static transaction destroyed undecided rolls back") {
  {
    auto tx = tm.begin_static();
    REQUIRE(tx.enlist(a));
    REQUIRE(tx.enlist(b));
  }
  CHECK(a.kinds() == kinds{notify::rollback});
  CHECK(b.kinds() == kinds{notify::rollback});
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "the client's rollback tells every enlistment and ends the transaction") {
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a));
  REQUIRE(tx.enlist(b, notify::prepare | notify::commit));  // not told of a rollback
  REQUIRE(tx.rollback());
  CHECK(a.kinds() == kinds{notify::rollback});
  CHECK(b.kinds().empty());
  CHECK(tx.reason() == abort_reason::client);
  CHECK(tx.commit_clock() == 0);
  CHECK(tx.status_of(a) == enlistment_status::rolled_back);
  CHECK(tx.outcome() == transaction_outcome::aborted);
  CHECK(tx.rollback().code() == ktm::errc::invalid_state);
  CHECK(tx.commit().code() == ktm::errc::invalid_state);
  CHECK(tx.enlist(a).code() == ktm::errc::invalid_state);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "misuse of a static transaction gets an error and changes nothing") {
  rm_a other;
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a));
  CHECK(tx.enlist(a).code() == ktm::errc::already_enlisted);
  CHECK(tx.enlist(other).code() == ktm::errc::rm_not_found);
  CHECK(tx.enlistment_count() == 1);
  CHECK(tx.enlistment_of(other) == nullptr);
  CHECK(tx.enlistment_of(b) == nullptr);
  REQUIRE(tx.enlistment_of(a) != nullptr);
  REQUIRE(tx.commit());
  CHECK(tx.commit().code() == ktm::errc::invalid_state);
  CHECK(tx.enlist(b).code() == ktm::errc::invalid_state);
  CHECK(a.kinds() == full_commit);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a commit on an offline TM rolls back with the TM's error") {
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a));
  tm.shutdown();
  CHECK(tx.commit().code() == ktm::errc::tm_not_online);
  CHECK(tx.reason() == abort_reason::tm_offline);
  CHECK(tx.outcome() == transaction_outcome::aborted);
  CHECK(tx.status_of(a) == enlistment_status::rolled_back);
  CHECK(tx.commit_clock() == 0);
  CHECK(a.kinds() == kinds{notify::rollback});
}

TEST_CASE("a handler of a static transaction sees its enlistment but cannot answer through it") {
  probing_rm p;
  volatile_transaction_manager<with_storage<static_storage<probing_rm>>> tm{p};
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(p, default_mask, enlistment_key(42)));
  REQUIRE(tx.commit());
  CHECK(p.seen_key == enlistment_key(42));
  CHECK(p.seen_mask == default_mask);
  CHECK(p.seen_id == tx.id());
  CHECK(p.seen_uow == tx.id());
  CHECK_FALSE(p.has_transaction);
  CHECK(p.reply_result.code() == ktm::errc::invalid_state);
  CHECK(p.rollback_result.code() == ktm::errc::invalid_state);
  CHECK(p.recovery_result.code() == ktm::errc::invalid_state);
  CHECK(tx.enlistment_of(p)->key() == enlistment_key(42));
}

TEST_CASE("static transactions from many threads on one thread-safe TM all commit") {
  rm_a a;
  rm_b b;
  static_tm tm{a, b};
  constexpr int threads = 4, each = 500;
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < each; ++i) {
        auto tx = tm.begin_static();
        if (!tx.enlist(a) || !tx.enlist(b) || !tx.commit()) ++failures;
      }
    });
  for (auto& t : ts) t.join();
  CHECK(failures == 0);
  CHECK(a.commits == threads * each);
  CHECK(b.count(notify::prepare) == threads * each);
  CHECK(tm.virtual_clock() == 1 + threads * each);
}

TEST_CASE("a single-threaded TM runs static transactions too") {
  rm_a a;
  rm_b b;
  single_static_tm tm{a, b};
  for (int i = 0; i < 10; ++i) {
    auto tx = tm.begin_static();
    REQUIRE(tx.enlist(a, default_mask, enlistment_key(static_cast<std::uint64_t>(i))));
    REQUIRE(tx.enlist(b));
    REQUIRE(tx.commit());
  }
  CHECK(a.commits == 10);
  CHECK(tm.virtual_clock() == 11);
}

TEST_CASE("only a volatile TM with static storage and the inline dispatcher has static transactions") {
  STATIC_REQUIRE(static_tm::has_static_transactions);
  STATIC_REQUIRE(single_static_tm::has_static_transactions);
  using registered = volatile_transaction_manager<with_storage<dynamic_storage>>;
  using queued = volatile_transaction_manager<with_storage<static_storage<rm_a, rm_b>>,
                                              with_dispatcher<queued_dispatcher>>;
  using durable = basic_transaction_manager<with_log<memory_log>, with_storage<static_storage<rm_a, rm_b>>>;
  STATIC_REQUIRE_FALSE(registered::has_static_transactions);
  STATIC_REQUIRE_FALSE(queued::has_static_transactions);
  STATIC_REQUIRE_FALSE(durable::has_static_transactions);
  STATIC_REQUIRE_FALSE(can_begin_static<durable>);
  STATIC_REQUIRE(can_begin_static<static_tm>);
}

TEST_CASE("a lone RM that rejects single-phase commit gets the two phases on the clean path") {
  rm_a a;
  volatile_transaction_manager<with_storage<static_storage<rm_a>>> tm{a};
  a.answer(notify::single_phase_commit, reply::reject());
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a, spc_mask));
  REQUIRE(tx.commit());
  CHECK(a.kinds() == kinds{notify::single_phase_commit, notify::preprepare, notify::prepare, notify::commit});
  CHECK(tx.status_of(a) == enlistment_status::committed);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "a rollback met on the status-driven path rolls back the prepared RM") {
  b.answer(notify::prepare, reply::rollback());
  auto tx = tm.begin_static();
  REQUIRE(tx.enlist(a, notify::prepare | notify::commit | notify::rollback));  // off the clean path
  REQUIRE(tx.enlist(b));
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
  CHECK(a.kinds() == kinds{notify::prepare, notify::rollback});
  CHECK(b.kinds() == kinds{notify::preprepare, notify::prepare});
  CHECK(tx.status_of(b) == enlistment_status::rolled_back);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "two different odd replies in one commit are both applied") {
  a.answer(notify::preprepare, reply::read_only());  // leaves the clean path
  b.answer(notify::prepare, reply::later());         // met on the status-driven path
  auto tx = tm.begin_static();
  enlist_both(tx, a, b);
  CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
  CHECK(tx.protocol_errors() == 1);
  CHECK(a.kinds() == kinds{notify::preprepare});  // read-only: out of the transaction
  CHECK(b.kinds() == kinds{notify::preprepare, notify::prepare, notify::rollback});
  CHECK(tx.status_of(a) == enlistment_status::read_only);
  CHECK(tx.status_of(b) == enlistment_status::rolled_back);
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "odd replies to preprepare roll back") {
  SECTION("later: a protocol error and the RM is told") {
    a.answer(notify::preprepare, reply::later());
    auto tx = tm.begin_static();
    enlist_both(tx, a, b);
    CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
    CHECK(tx.protocol_errors() == 1);
    CHECK(a.kinds() == kinds{notify::preprepare, notify::rollback});
    CHECK(b.kinds() == kinds{notify::rollback});
  }
  SECTION("reject: a protocol error read as the RM's own rollback") {
    b.answer(notify::preprepare, reply::reject());
    auto tx = tm.begin_static();
    enlist_both(tx, a, b);
    CHECK(tx.commit().code() == ktm::errc::transaction_aborted);
    CHECK(tx.protocol_errors() == 1);
    CHECK(a.kinds() == kinds{notify::preprepare, notify::rollback});
    CHECK(b.kinds() == kinds{notify::preprepare});
  }
}

TEST_CASE_METHOD(two_rm_world<static_tm>, "odd replies to commit and rollback are counted and change no outcome") {
  SECTION("later to commit") {
    b.answer(notify::commit, reply::later());
    auto tx = tm.begin_static();
    enlist_both(tx, a, b);
    REQUIRE(tx.commit());
    CHECK(tx.protocol_errors() == 1);
    CHECK(tx.status_of(b) == enlistment_status::committed);
  }
  SECTION("later to rollback") {
    a.answer(notify::rollback, reply::later());
    auto tx = tm.begin_static();
    enlist_both(tx, a, b);
    REQUIRE(tx.rollback());
    CHECK(tx.protocol_errors() == 1);
    CHECK(tx.status_of(a) == enlistment_status::rolled_back);
    CHECK(b.kinds() == kinds{notify::rollback});
  }
}

TEST_CASE("a handler that reaches its own static transaction can neither commit nor roll back nor enlist") {
  reentrant_rm r;
  rm_b b;
  volatile_transaction_manager<with_storage<static_storage<reentrant_rm, rm_b>>> tm{r, b};
  const bool clean_path = GENERATE(true, false);
  auto tx = tm.begin_static();
  std::vector<std::error_code> seen;
  enlistment_status own{};
  r.hook = [&] {
    seen.push_back(tx.commit().code());
    seen.push_back(tx.rollback().code());
    seen.push_back(tx.enlist(b).code());
    own = tx.status_of(r);
  };
  REQUIRE(tx.enlist(r));
  if (clean_path) REQUIRE(tx.enlist(b));
  REQUIRE(tx.commit());
  CHECK(seen == std::vector<std::error_code>(3, ktm::errc::invalid_state));
  CHECK(own != enlistment_status::unused);
  CHECK(tx.outcome() == transaction_outcome::committed);
}

TEST_CASE("a static transaction over 32 RM types commits every one") {
  commit_over_rms(std::make_index_sequence<32>{});
}
