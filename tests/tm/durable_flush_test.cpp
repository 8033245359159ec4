// tests/tm/durable_flush_test.cpp: the flush contract of the durable TM.
// With the TM's stream and the durable RMs' streams in one multiplexed log,
// the RMs append their prepare records queue-only and the TM's forced commit
// record (a later LSN of the same log) covers them: one device flush per
// two-phase commit. With separate logs each RM forces its own: one flush per
// log. A rollback, a read-only commit and a commit of volatile RMs alone
// flush nothing.
//
// Flushes are counted where the device sees them: by the fault-injection
// storage under the logs (fault_controller::counts), over every file of a
// log (containers and base file), not by the log's own counter; each check
// also compares log::device_flushes() with it. Not measured: creating a log
// (each container file, container 0's header and the base file are flushed
// once) and its streams (each create_stream writes the base file). Some
// commits legitimately cost more, each counted and explained by a test
// below: a restart area forces its own record; a commit that moves the
// writer into a container the base file on disk still needs first writes
// the base file; a commit that grows the log flushes the new container file
// and writes the base file. The first test's log is big enough (and its
// restart areas off) for none of them to happen in its window.
#include <catch2/catch.hpp>

#include <cstdint>
#include <map>
#include <string>

#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"
#include "tests/tm/durable_fixtures.hpp"

using namespace ktm::test;
using ktm::io::memory_storage;
namespace kt = ktm::tm;

namespace {

using rm_a = journal_rm<fault_storage, 1>;
using rm_b = journal_rm<fault_storage, 2>;
using log_t = ktm::log::log<fault_storage>;
using tm_t = kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<rm_a, rm_b>>>;

// Flushes a storage has seen: on every file, and on one log's base file.
struct flushes {
  std::uint64_t all = 0, base_file = 0;
  std::uint64_t containers() const { return all - base_file; }
};
flushes seen(const fault_storage& st, const std::string& log_name) {
  return {st.controller()->counts().flushes(), st.controller()->counts(log_name + ".blf").flushes()};
}
flushes operator-(const flushes& x, const flushes& y) { return {x.all - y.all, x.base_file - y.base_file}; }

void commit_one(tm_t& tm, rm_a& a, rm_b& b) {
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(ea);
  REQUIRE(eb);
  REQUIRE(tx.commit());
  REQUIRE(a.committed(tx.id()));
  REQUIRE(b.committed(tx.id()));
}

// A durable RM that changed nothing: it answers PREPARE with read_only.
struct read_only_rm : kt::resource_manager_base<kt::rm_kind::durable_rm> {
  kt::reply on_prepare(kt::enlistment&, const kt::notification&) { return kt::reply::read_only(); }
  kt::reply on_commit(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_rollback(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
};

// A small log: 64 KiB containers of 4 KiB blocks (a few hundred commits
// fill a container).
ktm::log::log_options small_log() {
  auto o = durable_options();
  o.container_size = 64 * 1024;
  o.block_size = 4 * 1024;
  return o;
}

// The logical ids the containers hold, by file number.
std::map<std::uint32_t, std::uint32_t> container_map(const log_t& lg) {
  std::map<std::uint32_t, std::uint32_t> m;
  for (const auto& c : lg.containers()) m[c.physical_id] = c.logical_id;
  return m;
}

}  // namespace

TEST_CASE("with the TM and two durable RMs in one multiplexed log every two-phase commit costs exactly one device flush") {
  fault_storage st{memory_storage{}};
  auto lg = log_t::create(st, "shared", durable_options());
  REQUIRE(lg);
  auto ts = lg->create_stream("tm");
  rm_a a(*lg->create_stream("a"), /*force_prepare*/ false);
  rm_b b(*lg->create_stream("b"), false);
  tm_t tm{kt::log_arg, *ts, a, b};
  tm.set_checkpoint_every(0);  // restart areas: see the next test
  const flushes created = seen(st, "shared");
  REQUIRE(tm.recover());
  CHECK((seen(st, "shared") - created).all == 0);  // recovering an empty stream flushes nothing
  // From the first commit on: 300 commits fill about a third of container 0,
  // so the writer never needs another container and the base file is never
  // written.
  for (int i = 0; i < 300; ++i) {
    const flushes before = seen(st, "shared");
    const auto logged = lg->device_flushes();
    commit_one(tm, a, b);
    const flushes cost = seen(st, "shared") - before;
    CHECK(cost.all == 1);
    CHECK(cost.base_file == 0);  // the one flush is container 0's
    CHECK(lg->device_flushes() - logged == cost.all);
    CHECK(a.last_prepare() < lg->durable_lsn());  // both prepare records are durable
    CHECK(b.last_prepare() < lg->durable_lsn());
  }
  CHECK(tm.log().stats().restart_areas == 0);
  CHECK(container_map(*lg) == std::map<std::uint32_t, std::uint32_t>{{0, 0}, {1, 0xffffffffu}});
}

TEST_CASE("a commit that writes a restart area costs one more device flush for the restart record") {
  fault_storage st{memory_storage{}};
  auto lg = log_t::create(st, "shared", durable_options());
  REQUIRE(lg);
  auto ts = lg->create_stream("tm");
  rm_a a(*lg->create_stream("a"), false);
  rm_b b(*lg->create_stream("b"), false);
  tm_t tm{kt::log_arg, *ts, a, b};
  tm.set_checkpoint_every(8);
  REQUIRE(tm.recover());
  for (int i = 0; i < 64; ++i) {
    const flushes before = seen(st, "shared");
    const auto logged = lg->device_flushes();
    const auto areas = tm.log().stats().restart_areas;
    commit_one(tm, a, b);
    const flushes cost = seen(st, "shared") - before;
    const auto written = tm.log().stats().restart_areas - areas;
    CHECK(written == (i % 8 == 7 ? 1u : 0u));  // after every 8th end record
    // the commit record's flush, then the restart record's (forced after
    // the end record, so never shared with the commit's); the restart
    // record itself carries the stream's new base: no base-file write
    CHECK(cost.all == 1 + written);
    CHECK(cost.base_file == 0);
    CHECK(lg->device_flushes() - logged == cost.all);
  }
}

TEST_CASE("in a ring log a commit that moves the writer into a container the base file on disk still needs also flushes the base file") {
  // The TM alone in a ring of two small containers (its durable RM keeps no
  // stream), a restart area every 8 commits: the restart areas move the
  // TM's base forward in memory (the restart record carries it), so the
  // writer can reuse the containers. The base file on disk still names the
  // old tail until it is written again, so the log writes it (flushing every
  // record first) before the writer moves into a container that held older
  // records: once per turn of the ring, here every reuse.
  using tm_p = kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<plain_durable_rm>>>;
  fault_storage st{memory_storage{}};
  auto lg = log_t::create(st, "ring", small_log());
  REQUIRE(lg);
  auto ts = lg->create_stream("tm");
  plain_durable_rm p;
  tm_p tm{kt::log_arg, *ts, p};
  tm.set_checkpoint_every(8);
  REQUIRE(tm.recover());
  int moves = 0, reuses = 0;
  for (int i = 0; i < 1000; ++i) {
    const flushes before = seen(st, "ring");
    const auto logged = lg->device_flushes();
    const auto areas = tm.log().stats().restart_areas;
    const auto map = container_map(*lg);
    {
      auto tx = tm.begin();
      auto e = tx.enlist(p);
      REQUIRE(e);
      REQUIRE(tx.commit());
    }
    const flushes cost = seen(st, "ring") - before;
    const auto written = tm.log().stats().restart_areas - areas;
    // the container the writer moved into during this commit, if any: it
    // took a new logical id; it is reused if it held an older one
    bool moved = false, reused = false;
    for (const auto& [physical, logical] : container_map(*lg))
      if (map.at(physical) != logical) {
        moved = true;
        reused = map.at(physical) != 0xffffffffu;
      }
    // the commit record's flush and one per restart area, as in a log that
    // never wraps; and a base-file write for a reuse
    CHECK(cost.containers() == 1 + written);
    CHECK(cost.base_file == (reused ? 1u : 0u));
    CHECK(lg->device_flushes() - logged == cost.all);  // the old counter missed the base file's
    moves += moved;
    reuses += reused;
  }
  CHECK(moves >= 5);            // the ring went round several times (9 moves)
  CHECK(reuses == moves - 1);   // into container 1 first, which was free
}

TEST_CASE("a commit that grows the log also flushes the new container file and the base file that records it") {
  // The RMs' streams keep every record (they never move their bases), so a
  // growing log adds a container each time the writer reaches the end.
  fault_storage st{memory_storage{}};
  auto o = small_log();
  o.grow = true;
  o.max_containers = 64;
  auto lg = log_t::create(st, "grows", o);
  REQUIRE(lg);
  auto ts = lg->create_stream("tm");
  rm_a a(*lg->create_stream("a"), false);
  rm_b b(*lg->create_stream("b"), false);
  tm_t tm{kt::log_arg, *ts, a, b};
  tm.set_checkpoint_every(0);
  REQUIRE(tm.recover());
  std::size_t grown = 0;
  for (int i = 0; i < 600; ++i) {
    const flushes before = seen(st, "grows");
    const auto logged = lg->device_flushes();
    const auto containers = lg->containers().size();
    commit_one(tm, a, b);
    const flushes cost = seen(st, "grows") - before;
    const auto added = lg->containers().size() - containers;
    // its own flush, and per container added: the new file's (zeros and
    // header) and the base-file write that records it
    CHECK(cost.all == 1 + 2 * added);
    CHECK(cost.base_file == added);
    CHECK(lg->device_flushes() - logged == cost.all);  // the log's counter missed both
    grown += added;
  }
  CHECK(grown > 2);
}

TEST_CASE("with the TM and the two RMs in three separate logs every log is flushed once per commit") {
  // one storage per log, to count each log's flushes
  fault_storage st_tm{memory_storage{}}, st_a{memory_storage{}}, st_b{memory_storage{}};
  auto lt = log_t::create(st_tm, "tm", durable_options());
  auto la = log_t::create(st_a, "a", durable_options());
  auto lb = log_t::create(st_b, "b", durable_options());
  REQUIRE(lt);
  REQUIRE(la);
  REQUIRE(lb);
  auto ts = lt->create_stream("tm");
  rm_a a(*la->create_stream("a"), /*force_prepare*/ true);
  rm_b b(*lb->create_stream("b"), true);
  tm_t tm{kt::log_arg, *ts, a, b};
  tm.set_checkpoint_every(0);
  REQUIRE(tm.recover());
  for (int i = 0; i < 100; ++i) {
    const flushes t0 = seen(st_tm, "tm"), a0 = seen(st_a, "a"), b0 = seen(st_b, "b");
    const auto lt0 = lt->device_flushes(), la0 = la->device_flushes(), lb0 = lb->device_flushes();
    commit_one(tm, a, b);
    const flushes t = seen(st_tm, "tm") - t0, fa = seen(st_a, "a") - a0, fb = seen(st_b, "b") - b0;
    CHECK(t.all == 1);  // the commit record
    CHECK(fa.all == 1);  // a's prepare record
    CHECK(fb.all == 1);  // b's prepare record
    CHECK(t.base_file + fa.base_file + fb.base_file == 0);
    CHECK(lt->device_flushes() - lt0 == t.all);
    CHECK(la->device_flushes() - la0 == fa.all);
    CHECK(lb->device_flushes() - lb0 == fb.all);
  }
}

TEST_CASE("a rollback and a read-only commit and a commit of volatile RMs alone cost no device flush") {
  using tm_v = kt::durable_transaction_manager<fault_storage,
                                               kt::with_storage<kt::static_storage<rm_a, read_only_rm, plain_rm>>>;
  fault_storage st{memory_storage{}};
  auto lg = log_t::create(st, "shared", durable_options());
  REQUIRE(lg);
  auto ts = lg->create_stream("tm");
  rm_a a(*lg->create_stream("a"), false);
  read_only_rm ro;
  plain_rm vol;
  tm_v tm{kt::log_arg, *ts, a, ro, vol};
  REQUIRE(tm.recover());
  {
    auto tx = tm.begin();  // one durable commit first: costs its one flush
    auto ea = tx.enlist(a);
    REQUIRE(ea);
    REQUIRE(tx.commit());
  }
  const flushes before = seen(st, "shared");
  const auto logged = lg->device_flushes();
  {
    auto tx = tm.begin();  // rolled back before prepare
    auto ea = tx.enlist(a);
    REQUIRE(ea);
    REQUIRE(tx.rollback());
  }
  {
    auto tx = tm.begin();
    REQUIRE(tx.commit());  // nothing enlisted
  }
  {
    auto tx = tm.begin();  // the only durable RM changed nothing: no commit record
    auto er = tx.enlist(ro);
    REQUIRE(er);
    REQUIRE(tx.commit());
  }
  {
    auto tx = tm.begin();  // a volatile RM's enlistment is not logged
    auto ev = tx.enlist(vol);
    REQUIRE(ev);
    REQUIRE(tx.commit());
    CHECK(vol.commits == 1);
  }
  CHECK((seen(st, "shared") - before).all == 0);
  CHECK(lg->device_flushes() == logged);
}
