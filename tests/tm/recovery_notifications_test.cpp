// tests/tm/recovery_notifications_test.cpp: what a durable TM's recovery
// tells its RMs and its caller. RECOVER, COMMIT, LAST_RECOVER and TM_ONLINE
// go through the TM's dispatcher (inline, queued, thread pool) in the same
// per-RM order as inline; a compile-time progress callback of the recovery
// policy sees the scan advance at a bounded rate.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"
#include "tests/tm/durable_fixtures.hpp"

using namespace ktm::test;
using ktm::guid;
using ktm::io::memory_storage;
namespace kt = ktm::tm;

namespace {

using log_t = ktm::log::log<fault_storage>;

// A durable RM that writes nothing itself and records every notification it
// handles, with the handling thread.
class recording_rm : public kt::resource_manager_base<kt::rm_kind::durable_rm> {
 public:
  struct event {
    kt::notify kind;
    guid tx;
    std::thread::id thread;
  };
  explicit recording_rm(guid id) : resource_manager_base(id) {}

  kt::reply on_prepare(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_commit(kt::enlistment&, const kt::notification& n) { return note(n); }
  kt::reply on_rollback(kt::enlistment&, const kt::notification& n) { return note(n); }
  kt::reply on_recover(kt::enlistment&, const kt::notification& n) { return note(n); }
  void on_last_recover(const kt::notification& n) { note(n); }
  void on_tm_online(const kt::notification& n) { note(n); }

  // Waits until `kind` was handled (the asynchronous dispatchers).
  void await(kt::notify kind) {
    std::unique_lock l(m_);
    const bool seen = cv_.wait_for(l, std::chrono::seconds(30), [&] {
      for (const auto& e : events_)
        if (e.kind == kind) return true;
      return false;
    });
    REQUIRE(seen);
  }
  std::vector<event> events() const {
    std::lock_guard l(m_);
    return events_;
  }
  void clear() {
    std::lock_guard l(m_);
    events_.clear();
  }

 private:
  kt::reply note(const kt::notification& n) {
    {
      std::lock_guard l(m_);
      events_.push_back({n.kind, n.transaction, std::this_thread::get_id()});
    }
    cv_.notify_all();
    return kt::reply::done();
  }
  mutable std::mutex m_;
  std::condition_variable cv_;
  std::vector<event> events_;
};

// Serves an RM's own queue on a thread of its own (queued_dispatcher).
class queue_server {
 public:
  explicit queue_server(recording_rm& rm) : t_([this, &rm] {
    while (!stop_) rm.serve_one(std::chrono::milliseconds(2));
  }) {}
  ~queue_server() {
    stop_ = true;
    t_.join();
  }
  std::thread::id id() const { return t_.get_id(); }

 private:
  std::atomic<bool> stop_{false};
  std::thread t_;
};

template <class D>
using tm_for = kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<recording_rm>>,
                                               kt::with_dispatcher<D>>;

// An RM that answers COMMIT later (keeps the enlistments): its
// transactions are committed (commit record forced) but not ended.
class lazy_rm : public kt::resource_manager_base<kt::rm_kind::durable_rm> {
 public:
  explicit lazy_rm(guid id) : resource_manager_base(id) {}
  kt::reply on_prepare(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_commit(kt::enlistment& e, const kt::notification&) {
    held.push_back(&e);
    return kt::reply::later();
  }
  kt::reply on_rollback(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  std::vector<kt::enlistment*> held;
};

// Commits `n` transactions whose RM never answers COMMIT, then crashes: the
// commit records are durable, no end record was written.
// With `without_commit`, the last transaction's enlistment has a mask
// without COMMIT: it commits at once, its end record queued and lost.
std::vector<guid> commit_then_crash(fault_storage& st, const guid& tm_id, const guid& rm_id, int n,
                                    bool without_commit = false) {
  auto lg = log_t::create(st, "txlog", durable_options());
  REQUIRE(lg);
  auto ts = lg->create_stream("tm");
  REQUIRE(ts);
  lazy_rm rm(rm_id);
  kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<lazy_rm>>> tm{kt::log_arg, *ts,
                                                                                                  tm_id, rm};
  REQUIRE(tm.recover());
  std::vector<guid> ids;
  std::vector<std::unique_ptr<decltype(tm.begin())>> txs;
  std::vector<ktm::tm::enlistment_handle> handles;
  for (int i = 0; i < n; ++i) {
    txs.push_back(std::make_unique<decltype(tm.begin())>(tm, guid::generate()));
    const bool skip = without_commit && i == n - 1;
    auto e = skip ? txs.back()->enlist(rm, kt::notify::preprepare | kt::notify::prepare | kt::notify::rollback)
                  : txs.back()->enlist(rm);
    REQUIRE(e);
    handles.push_back(std::move(*e));
    REQUIRE(txs.back()->commit_async([](ktm::result<void>) {}));
    ids.push_back(txs.back()->id());
  }
  REQUIRE(rm.held.size() == static_cast<std::size_t>(without_commit ? n - 1 : n));
  st.controller()->crash();
  for (auto* e : rm.held) (void)e->commit_complete();  // too late: the crash lost the end records
  return ids;
}

template <class D>
void recovery_goes_through(const char* name, bool without_commit = false) {
  INFO("dispatcher: " << name << (without_commit ? "; the last enlistment without COMMIT" : ""));
  fault_storage st{memory_storage{}};
  const guid tm_id = guid::generate(), rm_id = guid::generate();
  const std::vector<guid> ids = commit_then_crash(st, tm_id, rm_id, 5, without_commit);
  st.controller()->clear_faults();

  auto lg = log_t::open(st, "txlog", durable_options());
  REQUIRE(lg);
  auto ts = lg->open_stream("tm");
  REQUIRE(ts);
  recording_rm rm(rm_id);
  std::optional<queue_server> server;
  if constexpr (std::is_same_v<D, kt::queued_dispatcher>) server.emplace(rm);
  {
    tm_for<D> tm{kt::log_arg, *ts, tm_id, rm};
    auto r = tm.recover();
    REQUIRE(r);
    CHECK(r->in_doubt == 5);
    CHECK(r->redelivered == 5);
    rm.await(kt::notify::last_recover);
    rm.await(kt::notify::tm_online);
    // the last COMMIT's reply is routed after its handler returned: wait for the end records
    for (int i = 0; i < 30000 && tm.log().stats().unresolved != 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(tm.log().stats().unresolved == 0);

    // per RM, in order: RECOVER then COMMIT for each transaction, then LAST_RECOVER
    std::vector<std::pair<kt::notify, guid>> want, got;
    // (an enlistment whose logged mask lacks COMMIT gets RECOVER only)
    for (std::size_t i = 0; i < ids.size(); ++i) {
      want.emplace_back(kt::notify::recover, ids[i]);
      if (!(without_commit && i + 1 == ids.size())) want.emplace_back(kt::notify::commit, ids[i]);
    }
    want.emplace_back(kt::notify::last_recover, guid{});
    int online = 0;
    for (const auto& e : rm.events()) {
      if (e.kind == kt::notify::tm_online) ++online;
      else got.emplace_back(e.kind, e.tx);
      // where the handlers ran: the dispatcher's threads
      if constexpr (std::is_same_v<D, kt::inline_dispatcher>) CHECK(e.thread == std::this_thread::get_id());
      else if constexpr (std::is_same_v<D, kt::queued_dispatcher>) CHECK(e.thread == server->id());
      else CHECK(e.thread != std::this_thread::get_id());
    }
    CHECK(online == 1);
    CHECK(got == want);
    if constexpr (std::is_same_v<D, kt::inline_dispatcher>) CHECK(rm.events().back().kind == kt::notify::tm_online);
    for (const guid& t : ids) CHECK(tm.recovered_outcome(t) == kt::transaction_outcome::committed);

    // recovering the RM again: nothing to redeliver, LAST_RECOVER again
    rm.clear();
    auto again = tm.recover_resource_manager(rm);
    REQUIRE(again);
    CHECK(*again == 0);
    rm.await(kt::notify::last_recover);
    CHECK(rm.events().size() == 1);

    // new work on the recovered TM goes through the same dispatcher
    rm.clear();
    auto tx = tm.begin();
    auto e = tx.enlist(rm);
    REQUIRE(e);
    REQUIRE(tx.commit());
  }
  // the end records are in the log: a clean reopen redelivers nothing
  server.reset();
  rm.clear();
  recording_rm rm2(rm_id);
  tm_for<kt::inline_dispatcher> tm2{kt::log_arg, *lg->open_stream("tm"), tm_id, rm2};
  auto r2 = tm2.recover();
  REQUIRE(r2);
  CHECK(r2->redelivered == 0);
}

}  // namespace

TEST_CASE("recovery notifications go through the inline dispatcher; in the calling thread; before TM_ONLINE") {
  recovery_goes_through<kt::inline_dispatcher>("inline");
}

TEST_CASE("recovery notifications go through the queued dispatcher: the RM pulls RECOVER; COMMIT; LAST_RECOVER in order") {
  recovery_goes_through<kt::queued_dispatcher>("queued");
}

TEST_CASE("recovery notifications go through the thread pool dispatcher; one handler after the other; in order") {
  recovery_goes_through<kt::thread_pool_dispatcher<3>>("thread pool");
}

TEST_CASE("an enlistment whose mask lacks COMMIT gets none from recovery either; under every dispatcher") {
  recovery_goes_through<kt::inline_dispatcher>("inline", true);
  recovery_goes_through<kt::queued_dispatcher>("queued", true);
  recovery_goes_through<kt::thread_pool_dispatcher<3>>("thread pool", true);
}

TEST_CASE("a TM destroyed before its RM pulled the recovery notifications leaves nothing dangling in the RM's queue") {
  fault_storage st{memory_storage{}};
  const guid tm_id = guid::generate(), rm_id = guid::generate();
  commit_then_crash(st, tm_id, rm_id, 3);
  st.controller()->clear_faults();
  auto lg = log_t::open(st, "txlog", durable_options());
  REQUIRE(lg);
  recording_rm rm(rm_id);
  {
    tm_for<kt::queued_dispatcher> tm{kt::log_arg, *lg->open_stream("tm"), tm_id, rm};
    REQUIRE(tm.recover());
    CHECK(rm.notifications().size() == 2);  // the first RECOVER and TM_ONLINE
    REQUIRE(rm.serve_one(std::chrono::milliseconds(100)));  // RECOVER; COMMIT is queued next
  }
  // the TM dropped the recovery delivery still queued; TM_ONLINE stays (it names no transaction)
  while (rm.serve_one(std::chrono::milliseconds(1))) {
  }
  const auto ev = rm.events();
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].kind == kt::notify::recover);
  CHECK(ev[1].kind == kt::notify::tm_online);
}

TEST_CASE("through a thread pool TM; the transactional map commits what the TM redelivers and aborts the rest at LAST_RECOVER") {
  using map_t = ktm::rm::transactional_map<fault_storage>;
  using mtm_t = kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::dynamic_storage>,
                                                kt::with_dispatcher<kt::thread_pool_dispatcher<2>>>;
  fault_storage st{memory_storage{}};
  const guid map_id = guid::generate(), tm_id = guid::generate();
  ktm::rm::transactional_map_options o;
  o.prepare = ktm::rm::durability::queue_only;
  std::vector<guid> committed;
  guid orphan;
  {
    auto lg = log_t::create(st, "shared", durable_options());
    REQUIRE(lg);
    auto ts = lg->create_stream("tm");
    auto ms = lg->create_stream("map");
    auto mw = ms->marshalling_area();
    REQUIRE(mw);
    map_t map(*ms, std::move(*mw), o, map_id);
    REQUIRE(map.recover());
    kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<map_t>>> tm{kt::log_arg, *ts,
                                                                                                   tm_id, map};
    REQUIRE(tm.recover());
    orphan = guid::generate();
    REQUIRE(map.put(orphan, "orphan", "x"));
    REQUIRE(map.changes().prepare(orphan, ktm::rm::durability::force));
    for (int i = 0; i < 20; ++i) {
      auto tx = tm.begin();
      REQUIRE(map.put(tx, "k" + std::to_string(i), std::to_string(i)));
      REQUIRE(tx.commit());
      committed.push_back(tx.id());
    }
    st.controller()->crash();  // the map's commit records and the TM's end records were queued
  }
  st.controller()->clear_faults();
  auto lg = log_t::open(st, "shared", durable_options());
  REQUIRE(lg);
  auto ms = lg->open_stream("map");
  auto mw = ms->marshalling_area();
  REQUIRE(mw);
  map_t map(*ms, std::move(*mw), o, map_id);
  auto rep = map.recover();
  REQUIRE(rep);
  CHECK(rep->in_doubt.size() == 2);  // the last commit's COMMIT record was queued; the orphan
  mtm_t tm{kt::log_arg, *lg->open_stream("tm"), tm_id};
  REQUIRE(tm.recover());
  REQUIRE(tm.add_resource_manager(map));
  auto n = tm.recover_resource_manager(map);
  REQUIRE(n);
  CHECK(*n == 1);
  for (int i = 0; i < 30000 && !map.in_doubt().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  CHECK(map.in_doubt().empty());
  std::map<std::string, std::string> want;
  for (int i = 0; i < 20; ++i) want["k" + std::to_string(i)] = std::to_string(i);
  CHECK(map.snapshot() == want);
  CHECK(tm.recovered_outcome(orphan) == kt::transaction_outcome::aborted);
}

namespace {

// A progress callback that keeps every report (every 10 records).
struct keep_progress {
  static constexpr std::uint64_t every_records = 10;
  std::vector<kt::recovery_progress>* out = nullptr;
  void operator()(const kt::recovery_progress& p) const {
    if (out) out->push_back(p);
  }
};
struct no_call_operator {};
struct zero_interval {
  static constexpr std::uint64_t every_records = 0;
  void operator()(const kt::recovery_progress&) const {}
};
struct needs_argument {
  explicit needs_argument(int) {}
  void operator()(const kt::recovery_progress&) const {}
};

}  // namespace

static_assert(kt::recovery_progress_callback<keep_progress>);
static_assert(kt::recovery_progress_callback<kt::no_recovery_progress>);
static_assert(!kt::recovery_progress_callback<no_call_operator>);
static_assert(!kt::recovery_progress_callback<zero_interval>);
static_assert(!kt::recovery_progress_callback<needs_argument>);

TEST_CASE("a progress callback in the recovery policy reports records; transactions and bytes every N records; then done") {
  using ptm_t = kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<plain_durable_rm>>,
                                                kt::with_recovery<kt::replay_recovery<0, keep_progress>>>;
  fault_storage st{memory_storage{}};
  const guid tm_id = guid::generate();
  auto lg = log_t::create(st, "txlog", durable_options());
  REQUIRE(lg);
  plain_durable_rm p;
  {
    ptm_t tm{kt::log_arg, *lg->create_stream("tm"), tm_id, p};
    REQUIRE(tm.recover());
    for (int i = 0; i < 37; ++i) {
      auto tx = tm.begin();
      auto e = tx.enlist(p);
      REQUIRE(e);
      REQUIRE(tx.commit());
    }
  }
  REQUIRE(lg->flush_all());
  std::vector<kt::recovery_progress> seen;
  {
    ptm_t tm{kt::log_arg, *lg->open_stream("tm"), tm_id, p};
    tm.recovery().progress().out = &seen;
    REQUIRE(tm.recover());
  }
  // 37 commit records + 37 end records: reports at 10..70 records, then the final one
  REQUIRE(seen.size() == 8);
  for (std::size_t i = 0; i + 1 < seen.size(); ++i) {
    CHECK(seen[i].records_scanned == 10 * (i + 1));
    CHECK(!seen[i].done);
    CHECK(seen[i].bytes_scanned > (i ? seen[i - 1].bytes_scanned : 0));
    CHECK(seen[i].transactions_rebuilt <= seen[i].records_scanned);
  }
  const auto& last = seen.back();
  CHECK(last.done);
  CHECK(last.records_scanned == 74);
  CHECK(last.transactions_rebuilt == 37);
  CHECK(last.bytes_scanned >= 74 * kt::detail::tm_record_header_size);

  // rollforward reports through the same callback
  ptm_t tm2{kt::log_arg, *lg->open_stream("tm"), tm_id, p};
  std::vector<kt::recovery_progress> again;
  tm2.recovery().progress().out = &again;
  REQUIRE(tm2.rollforward(5));
  REQUIRE(!again.empty());
  CHECK(again.back().done);
  CHECK(again.back().records_scanned == 74);  // every record is read, those above the clock do not count
  CHECK(again.back().transactions_rebuilt < 37);
}
