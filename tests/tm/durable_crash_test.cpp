// tests/tm/durable_crash_test.cpp: log failures and crashes at the commit
// point. A commit whose forced commit record failed is never acknowledged
// (the client gets an error, the RMs ROLLBACK, the outcome is aborted) and
// the TM fails stop; after a crash every acknowledged commit is recovered as
// committed and every other transaction as aborted.
#include <catch2/catch.hpp>

#include <optional>
#include <random>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"
#include "tests/tm/durable_fixtures.hpp"

using namespace ktm::test;
using ktm::errc;
using ktm::guid;
using ktm::io::call_kind;
using ktm::io::memory_storage;
namespace kt = ktm::tm;

namespace {
using namespace fault_journal;

std::error_code code(errc e) { return ktm::make_error_code(e); }
}  // namespace

// The record was written and its flush failed: it may be durable, so the
// transaction is neither acknowledged nor rolled back (its RM stays
// prepared); recovery decides from what the log holds.
TEST_CASE("a commit whose commit record force fails is neither acknowledged nor rolled back but left in doubt and the TM fails stop") {
  fault_storage st{memory_storage{}};
  const guid rm_id = guid::generate();
  guid failed_tx;
  {
    auto lg = log_t::create(st, "txlog", durable_options());
    REQUIRE(lg);
    auto ts = lg->create_stream("tm");
    rm_t rm(*lg->create_stream("rm"), false, rm_id);
    tm_t tm{kt::log_arg, *ts, rm};
    REQUIRE(tm.recover());
    {
      auto tx = tm.begin();
      auto e = tx.enlist(rm);
      REQUIRE(tx.commit());
    }
    st.controller()->fail_nth(call_kind::flush, 1, errc::io_error);
    {
      auto tx = tm.begin();
      auto e = tx.enlist(rm);
      REQUIRE(e);
      failed_tx = tx.id();
      auto r = tx.commit();
      REQUIRE(!r);
      CHECK(r.code() == code(errc::in_doubt));
      CHECK(tx.state() == kt::transaction_state::indoubt);
      CHECK(tx.outcome() == kt::transaction_outcome::undetermined);
      CHECK(rm.prepared(tx.id()));
      CHECK(!rm.rolled_back(tx.id()));
      CHECK(!rm.committed(tx.id()));
    }
    CHECK(tm.failed());
    CHECK(tm.state() == kt::tm_state::offline);
    // not presumed aborted: the record may be durable (an RM in another log
    // that asked now must keep its prepared state)
    CHECK(tm.recovered_outcome(failed_tx) == kt::transaction_outcome::undetermined);
    {  // new work is refused with tm_failed
      auto tx = tm.begin();
      CHECK(tx.enlist(rm).code() == code(errc::tm_failed));
      CHECK(tx.commit().code() == code(errc::tm_failed));
    }
    CHECK(tm.checkpoint().code() == code(errc::tm_failed));
    st.controller()->crash();
  }
  auto lg = log_t::open(st, "txlog", durable_options());
  REQUIRE(lg);
  rm_t rm(*lg->open_stream("rm"), false, rm_id);
  tm_t tm{kt::log_arg, *lg->open_stream("tm"), rm};
  auto r = tm.recover();
  REQUIRE(r);
  CHECK(tm.recovered_outcome(failed_tx) == kt::transaction_outcome::aborted);
  CHECK(!rm.recovered(failed_tx));
  CHECK(rm.last_recovers() == 1);
}

TEST_CASE("after a crash at any flush every acknowledged commit recovers as committed and every other as aborted") {
  int acknowledged_total = 0, refused_total = 0;
  for (std::uint64_t seed = 1; seed <= 30; ++seed) {
    INFO("seed " << seed);
    fault_storage st{memory_storage{}};
    const guid rm_id = guid::generate();
    std::mt19937_64 rng(seed);
    std::vector<guid> acknowledged, refused;
    {
      auto lg = log_t::create(st, "txlog", durable_options());
      REQUIRE(lg);
      auto ts = lg->create_stream("tm");
      rm_t rm(*lg->create_stream("rm"), false, rm_id);
      tm_t tm{kt::log_arg, *ts, rm};
      tm.set_checkpoint_every(seed % 3 == 0 ? 4 : 0);
      REQUIRE(tm.recover());
      st.controller()->crash_at(call_kind::flush, 1 + rng() % 25);
      for (int i = 0; i < 40; ++i) {
        auto tx = tm.begin();
        auto e = tx.enlist(rm);
        if (!e) {
          refused.push_back(tx.id());
          continue;
        }
        if (tx.commit()) acknowledged.push_back(tx.id());
        else refused.push_back(tx.id());
      }
    }
    auto lg = log_t::open(st, "txlog", durable_options());
    REQUIRE(lg);
    rm_t rm(*lg->open_stream("rm"), false, rm_id);
    tm_t tm{kt::log_arg, *lg->open_stream("tm"), rm};
    REQUIRE(tm.recover());
    // With restart areas a transaction that ended before the last one's base
    // is forgotten (every RM acknowledged its COMMIT); without, all are known.
    if (seed % 3 != 0)
      for (const guid& g : acknowledged) CHECK(tm.recovered_outcome(g) == kt::transaction_outcome::committed);

    for (const guid& g : refused) CHECK(tm.recovered_outcome(g) == kt::transaction_outcome::aborted);
    for (const guid& g : acknowledged) CHECK(!rm.rolled_back(g));
    acknowledged_total += static_cast<int>(acknowledged.size());
    refused_total += static_cast<int>(refused.size());
  }
  CHECK(acknowledged_total > 100);
  CHECK(refused_total > 100);
}
