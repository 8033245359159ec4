// tests/tm/durable_recovery_test.cpp: reopening a durable TM's log after a
// crash and recovering: committed outcomes survive and are redelivered,
// unprepared and unlogged transactions are aborted (presumed abort), the
// virtual clock is restored, restart areas bound the stream, rollforward
// stops at a clock, and the transactional map resolves its in-doubt
// transactions through the TM.
#include <catch2/catch.hpp>

#include <optional>
#include <string>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"
#include "tests/tm/durable_fixtures.hpp"

using namespace ktm::test;
using ktm::errc;
using ktm::guid;
using ktm::io::memory_storage;
namespace kt = ktm::tm;

namespace {

using namespace fault_journal;

struct world {
  fault_storage st{memory_storage{}};
  guid rm_id = guid::generate();
  guid tm_id = guid::generate();
  std::optional<log_t> lg;
  std::optional<ktm::log::stream<fault_storage>> ts;
  std::optional<rm_t> rm;
  std::optional<tm_t> tm;

  // Opens (or creates) the log, the RM and the TM; does not recover.
  void start(bool create) {
    tm.reset();
    rm.reset();
    ts.reset();
    lg.reset();
    auto l = create ? log_t::create(st, "txlog", durable_options()) : log_t::open(st, "txlog", durable_options());
    REQUIRE(l);
    lg.emplace(std::move(*l));
    auto t = create ? lg->create_stream("tm") : lg->open_stream("tm");
    auto r = create ? lg->create_stream("rm") : lg->open_stream("rm");
    REQUIRE(t);
    REQUIRE(r);
    ts.emplace(*t);
    rm.emplace(*r, false, rm_id);
    tm.emplace(kt::log_arg, *ts, tm_id, *rm);
  }
  void stop() {
    tm.reset();
    rm.reset();
    ts.reset();
    lg.reset();
  }
};

guid commit_one(tm_t& tm, rm_t& rm, std::uint64_t* clock = nullptr) {
  auto tx = tm.begin();
  auto e = tx.enlist(rm);
  REQUIRE(e);
  REQUIRE(tx.commit());
  if (clock) *clock = tx.commit_clock();
  return tx.id();
}

}  // namespace

TEST_CASE("after a crash a committed transaction whose end record was lost is redelivered: RECOVER; COMMIT; LAST_RECOVER") {
  world w;
  w.start(true);
  REQUIRE(w.tm->recover());
  guid done, unprepared;
  std::uint64_t clock = 0;
  {
    done = commit_one(*w.tm, *w.rm, &clock);  // its end record is queued, not yet durable
    auto active = w.tm->begin();              // enlisted, never prepared
    auto e = active.enlist(*w.rm);
    REQUIRE(e);
    unprepared = active.id();
    w.st.controller()->crash();
  }
  w.stop();

  w.start(false);
  auto r = w.tm->recover();
  REQUIRE(r);
  CHECK(r->in_doubt == 1);
  CHECK(r->redelivered == 1);
  CHECK(r->last_clock == clock);
  CHECK(w.tm->virtual_clock() == clock);  // the clock is restored to the last value logged
  CHECK(w.rm->recovered(done));
  CHECK(w.rm->committed(done));
  CHECK(w.rm->recovered_info().size() == 8);  // the recovery information logged with the commit
  CHECK(w.rm->order() == std::vector<kt::notify>{kt::notify::recover, kt::notify::last_recover});
  CHECK(w.tm->recovered_outcome(done) == kt::transaction_outcome::committed);
  CHECK(w.tm->recovered_outcome(unprepared) == kt::transaction_outcome::aborted);
  CHECK(!w.rm->recovered(unprepared));
  CHECK(w.tm->log().stats().unresolved == 0);
  // the redelivered transaction got its end record
  auto recs = tm_records(*w.ts);
  REQUIRE(!recs.empty());
  CHECK(recs.back().type == kt::detail::tm_record_type::end);
  CHECK(recs.back().id == done);
  // recovering the RM again redelivers nothing; new work runs on the recovered TM
  auto again = w.tm->recover_resource_manager(*w.rm);
  REQUIRE(again);
  CHECK(*again == 0);
  std::uint64_t next = 0;
  commit_one(*w.tm, *w.rm, &next);
  CHECK(next > clock);

  // a clean close then a reopen: nothing left to redeliver
  w.stop();
  w.start(false);
  auto r2 = w.tm->recover();
  REQUIRE(r2);
  CHECK(r2->in_doubt == 0);
  CHECK(r2->redelivered == 0);
  CHECK(w.tm->virtual_clock() == next);
  CHECK(w.tm->recovered_outcome(done) == kt::transaction_outcome::committed);  // still in the stream
}

TEST_CASE("recovery of a new; empty stream succeeds with clock 1 and nothing in doubt; recover twice is refused") {
  world w;
  w.start(true);
  auto r = w.tm->recover();
  REQUIRE(r);
  CHECK(r->last_clock == 0);
  CHECK(r->in_doubt == 0);
  CHECK(w.tm->virtual_clock() == 1);
  CHECK(w.tm->state() == kt::tm_state::online);
  CHECK(w.tm->recover().error().code == ktm::make_error_code(errc::invalid_state));
}

TEST_CASE("restart areas keep the TM's stream bounded; without them the log fills and the TM fails stop") {
  using vtm_t = kt::durable_transaction_manager<memory_storage, kt::with_storage<kt::static_storage<plain_durable_rm>>>;
  ktm::log::log_options o;
  o.block_size = 4096;
  o.container_size = 32 * 1024;
  o.containers = 2;
  for (std::size_t every : {std::size_t{8}, std::size_t{0}}) {
    INFO("checkpoint every " << every);
    memory_storage st;
    auto lg = ktm::log::log<memory_storage>::create(st, "txlog", o);
    REQUIRE(lg);
    auto ts = lg->create_stream("tm");
    plain_durable_rm p;
    vtm_t tm{kt::log_arg, *ts, p};
    tm.set_checkpoint_every(every);
    REQUIRE(tm.recover());
    int ok = 0;
    for (int i = 0; i < 3000; ++i) {
      auto tx = tm.begin();
      auto e = tx.enlist(p);
      if (!e) break;
      if (!tx.commit()) break;
      ++ok;
    }
    if (every) {
      CHECK(ok == 3000);
      CHECK(!tm.failed());
      CHECK(tm.log().stats().restart_areas >= 3000 / 8 - 1);
      // recovery after a close starts at the last restart area
      tm.~vtm_t();
      new (&tm) vtm_t{kt::log_arg, *ts, p};
      auto r = tm.recover();
      REQUIRE(r);
      CHECK(r->in_doubt == 0);
      CHECK(tm.virtual_clock() == 3001);
    } else {
      CHECK(ok < 3000);
      CHECK(tm.failed());
      CHECK(tm.log().failure_cause().code == ktm::make_error_code(errc::log_full));
      auto tx = tm.begin();
      CHECK(tx.enlist(p).code() == ktm::make_error_code(errc::tm_failed));
    }
  }
}

TEST_CASE("rollforward recovers only the commits up to the clock; and again further; a volatile TM refuses it") {
  world w;
  w.start(true);
  REQUIRE(w.tm->recover());
  std::uint64_t c1 = 0, c2 = 0, c3 = 0;
  const guid t1 = commit_one(*w.tm, *w.rm, &c1);
  const guid t2 = commit_one(*w.tm, *w.rm, &c2);
  const guid t3 = commit_one(*w.tm, *w.rm, &c3);
  w.stop();

  w.start(false);
  auto r = w.tm->rollforward(c1);
  REQUIRE(r);
  CHECK(w.tm->virtual_clock() == c1);
  CHECK(w.tm->recovered_outcome(t1) == kt::transaction_outcome::committed);
  CHECK(w.tm->recovered_outcome(t2) == kt::transaction_outcome::aborted);
  CHECK(w.tm->rollforward(c1).error().code == ktm::make_error_code(errc::invalid_state));  // not further
  auto r2 = w.tm->rollforward(c2);
  REQUIRE(r2);
  CHECK(w.tm->recovered_outcome(t2) == kt::transaction_outcome::committed);
  CHECK(w.tm->recovered_outcome(t3) == kt::transaction_outcome::aborted);
  REQUIRE(w.tm->rollforward(0));  // 0: everything
  CHECK(w.tm->recovered_outcome(t3) == kt::transaction_outcome::committed);
  CHECK(w.tm->virtual_clock() == c3);

  kt::volatile_transaction_manager<> vol;
  CHECK(vol.rollforward(5).error().code == ktm::make_error_code(errc::volatile_tm));
  plain_rm p;
  CHECK(vol.recover_resource_manager(p).error().code == ktm::make_error_code(errc::volatile_tm));
}

TEST_CASE("the transactional map resolves its in-doubt transactions through the durable TM's recovery") {
  using map_t = ktm::rm::transactional_map<fault_storage>;
  using mtm_t = kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<map_t>>>;
  fault_storage st{memory_storage{}};
  const guid map_id = guid::generate();
  ktm::rm::transactional_map_options o;
  o.prepare = ktm::rm::durability::queue_only;  // the TM's forced commit record covers it
  guid committed, orphan;
  {
    auto lg = log_t::create(st, "shared", durable_options());
    REQUIRE(lg);
    auto ts = lg->create_stream("tm");
    auto ms = lg->create_stream("map");
    auto mw = ms->marshalling_area();
    map_t map(*ms, std::move(*mw), o, map_id);
    REQUIRE(map.recover());
    mtm_t tm{kt::log_arg, *ts, map};
    REQUIRE(tm.recover());
    // a transaction the map prepared (durably) but the TM never committed
    orphan = guid::generate();
    REQUIRE(map.put(orphan, "o", "x"));
    REQUIRE(map.changes().prepare(orphan, ktm::rm::durability::force));
    {
      auto tx = tm.begin();
      REQUIRE(map.put(tx, "k", "v"));
      REQUIRE(tx.commit());
      committed = tx.id();
    }
    st.controller()->crash();  // the map's commit record and the TM's end record were only queued
  }
  auto lg = log_t::open(st, "shared", durable_options());
  REQUIRE(lg);
  auto ms = lg->open_stream("map");
  auto mw = ms->marshalling_area();
  map_t map(*ms, std::move(*mw), o, map_id);
  auto rep = map.recover();
  REQUIRE(rep);
  CHECK(rep->in_doubt.size() == 2);
  mtm_t tm{kt::log_arg, *lg->open_stream("tm"), map};
  auto r = tm.recover();  // RECOVER + COMMIT for `committed`, then LAST_RECOVER aborts `orphan`
  REQUIRE(r);
  CHECK(r->redelivered == 1);
  CHECK(map.in_doubt().empty());
  CHECK(map.snapshot() == std::map<std::string, std::string>{{"k", "v"}});
  CHECK(tm.recovered_outcome(committed) == kt::transaction_outcome::committed);
  CHECK(tm.recovered_outcome(orphan) == kt::transaction_outcome::aborted);
}

TEST_CASE("a volatile RM enlisted beside a durable one is not named in the commit record and leaves nothing in doubt after a crash") {
  using mixed_tm = kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<rm_t, plain_rm>>>;
  fault_storage st{memory_storage{}};
  const guid rm_id = guid::generate(), tm_id = guid::generate();
  {
    auto lg = log_t::create(st, "txlog", durable_options());
    REQUIRE(lg);
    auto ts = lg->create_stream("tm");
    auto rs = lg->create_stream("rm");
    rm_t rm(*rs, false, rm_id);
    plain_rm vol;
    mixed_tm tm(kt::log_arg, *ts, tm_id, rm, vol);
    REQUIRE(tm.recover());
    auto tx = tm.begin();
    auto a = tx.enlist(rm);
    auto b = tx.enlist(vol);
    REQUIRE(a);
    REQUIRE(b);
    REQUIRE(tx.commit());
    const auto recs = tm_records(*ts);
    REQUIRE(recs.size() >= 1);
    REQUIRE(recs[0].enlistments.size() == 1);
    CHECK(recs[0].enlistments[0].rm == rm_id);
    // a transaction of the volatile RM alone logs nothing and flushes nothing
    const auto flushes = st.controller()->counts().flushes();
    auto only = tm.begin();
    auto c = only.enlist(vol);
    REQUIRE(c);
    REQUIRE(only.commit());
    CHECK(tm_records(*ts).size() == recs.size());
    CHECK(st.controller()->counts().flushes() == flushes);
    st.controller()->crash();
  }
  auto lg = log_t::open(st, "txlog", durable_options());
  REQUIRE(lg);
  auto ts = lg->open_stream("tm");
  auto rs = lg->open_stream("rm");
  rm_t rm(*rs, false, rm_id);
  plain_rm vol;  // a volatile RM is a new one in each process
  mixed_tm tm(kt::log_arg, *ts, tm_id, rm, vol);
  auto r = tm.recover();
  REQUIRE(r);
  // the first transaction's end record was lost: COMMIT goes again to the
  // durable RM alone, and then nothing is left unresolved or pending (a
  // volatile RM named in the record could never be resolved)
  CHECK(r->in_doubt == 1);
  CHECK(r->redelivered == 1);
  const auto s = tm.log().stats();
  CHECK(s.unresolved == 0);
  CHECK(s.pending == 0);
}
