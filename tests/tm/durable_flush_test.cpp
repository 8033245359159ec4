// tests/tm/durable_flush_test.cpp: the flush contract of the durable TM.
// With the TM's stream and the durable RMs' streams in one multiplexed log,
// the RMs append their prepare records queue-only and the TM's forced commit
// record (a later LSN of the same log) covers them: one device flush per
// two-phase commit. With separate logs each RM forces its own: one flush per
// log.
#include <catch2/catch.hpp>

#include <optional>

#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"
#include "tests/tm/durable_fixtures.hpp"

using namespace ktm::test;
using ktm::io::memory_storage;
namespace kt = ktm::tm;

namespace {
using namespace memory_journals;
using tm_t = tm_of<>;

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
}  // namespace

TEST_CASE("with the TM and two durable RMs in one multiplexed log a two-phase commit costs exactly one device flush") {
  memory_storage st;
  auto lg = log_t::create(st, "shared", durable_options());
  REQUIRE(lg);
  auto ts = lg->create_stream("tm");
  rm_a a(*lg->create_stream("a"), /*force_prepare*/ false);
  rm_b b(*lg->create_stream("b"), false);
  tm_t tm{kt::log_arg, *ts, a, b};
  REQUIRE(tm.recover());
  commit_one(tm, a, b);  // warm-up
  for (int i = 0; i < 20; ++i) {
    const auto before = lg->device_flushes();
    commit_one(tm, a, b);
    CHECK(lg->device_flushes() - before == 1);
    CHECK(a.last_prepare() < lg->durable_lsn());  // both prepare records are durable
    CHECK(b.last_prepare() < lg->durable_lsn());
  }
}

TEST_CASE("with the TM and the two RMs in three separate logs every log is flushed once per commit") {
  memory_storage st;
  auto lt = log_t::create(st, "tm", durable_options());
  auto la = log_t::create(st, "a", durable_options());
  auto lb = log_t::create(st, "b", durable_options());
  REQUIRE(lt);
  REQUIRE(la);
  REQUIRE(lb);
  auto ts = lt->create_stream("tm");
  rm_a a(*la->create_stream("a"), /*force_prepare*/ true);
  rm_b b(*lb->create_stream("b"), true);
  tm_t tm{kt::log_arg, *ts, a, b};
  REQUIRE(tm.recover());
  commit_one(tm, a, b);
  for (int i = 0; i < 20; ++i) {
    const auto t0 = lt->device_flushes(), a0 = la->device_flushes(), b0 = lb->device_flushes();
    commit_one(tm, a, b);
    CHECK(lt->device_flushes() - t0 == 1);
    CHECK(la->device_flushes() - a0 == 1);
    CHECK(lb->device_flushes() - b0 == 1);
  }
}

TEST_CASE("a rollback and a read-only commit cost no device flush") {
  memory_storage st;
  auto lg = log_t::create(st, "shared", durable_options());
  REQUIRE(lg);
  auto ts = lg->create_stream("tm");
  rm_a a(*lg->create_stream("a"), false);
  rm_b b(*lg->create_stream("b"), false);
  tm_t tm{kt::log_arg, *ts, a, b};
  REQUIRE(tm.recover());
  commit_one(tm, a, b);
  const auto before = lg->device_flushes();
  {
    auto tx = tm.begin();
    auto ea = tx.enlist(a);
    REQUIRE(ea);
    REQUIRE(tx.rollback());
  }
  {
    auto tx = tm.begin();
    REQUIRE(tx.commit());  // nothing enlisted
  }
  CHECK(lg->device_flushes() == before);
}
