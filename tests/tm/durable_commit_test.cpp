// tests/tm/durable_commit_test.cpp: commit and rollback on a durable TM over
// a ktm::log stream (memory storage): what the TM's stream holds afterwards.
// Read-only enlistments of durable RMs over fault injection, whose call
// counts show the device flushes.
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <future>
#include <optional>
#include <string>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"
#include "tests/support/tm_fakes.hpp"
#include "tests/tm/durable_fixtures.hpp"

using namespace ktm::test;
using ktm::errc;
using ktm::guid;
using ktm::io::memory_storage;
namespace kt = ktm::tm;

namespace {

using rm_t = journal_rm<memory_storage>;
using tm_t = kt::durable_transaction_manager<memory_storage, kt::with_storage<kt::static_storage<rm_t, plain_rm>>>;

struct env {
  memory_storage st;
  std::optional<ktm::log::log<memory_storage>> lg;
  std::optional<ktm::log::stream<memory_storage>> ts;
  std::optional<rm_t> rm;
  plain_rm vol;
  std::optional<tm_t> tm;
  env() {
    lg.emplace(std::move(*ktm::log::log<memory_storage>::create(st, "txlog", durable_options())));
    ts.emplace(*lg->create_stream("tm"));
    rm.emplace(*lg->create_stream("rm"), false);
    tm.emplace(kt::log_arg, *ts, *rm, vol);
    REQUIRE(tm->recover());
  }
};

// A transaction on env's TM with its durable RM, then its volatile RM,
// enlisted (the handles go before the transaction).
struct mixed_tx {
  tm_t::transaction tx;
  ktm::result<kt::enlistment_handle> durable, vol;
  explicit mixed_tx(env& e) : tx(e.tm->begin()), durable(tx.enlist(*e.rm)), vol(tx.enlist(e.vol)) {
    REQUIRE(durable);
    REQUIRE(vol);
  }
};

}  // namespace

static_assert(!tm_t::is_volatile);
static_assert(std::is_same_v<tm_t::log_type, kt::durable_log<kt::log_stream_backend<memory_storage>>>);
static_assert(std::is_same_v<tm_t::recovery_type, kt::replay_recovery<>>);
static_assert(kt::check_log_backend<kt::durable_log_for<memory_storage>>());
static_assert(std::is_same_v<kt::durable_transaction_manager<memory_storage, kt::with_recovery<kt::replay_recovery<7>>>::recovery_type,
                             kt::replay_recovery<7>>);

TEST_CASE("a durable commit forces a commit record naming the prepared durable RM; then queues an end record") {
  env e;
  auto tx = e.tm->begin();
  auto h1 = tx.enlist(*e.rm, kt::default_mask, kt::enlistment_key(42));
  REQUIRE(h1);
  REQUIRE(tx.set_description("transfer 42"));
  REQUIRE(tx.commit());
  CHECK(e.rm->committed(tx.id()));
  const auto recs = tm_records(*e.ts);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].type == kt::detail::tm_record_type::commit);
  CHECK(recs[0].id == tx.id());
  CHECK(recs[0].clock == tx.commit_clock());
  CHECK(recs[0].description == "transfer 42");
  REQUIRE(recs[0].enlistments.size() == 1);
  CHECK(recs[0].enlistments[0].rm == e.rm->id());
  CHECK(recs[0].enlistments[0].key == 42);
  CHECK(recs[0].enlistments[0].recovery_information.size() == 8);  // the RM's prepare LSN
  CHECK(recs[1].type == kt::detail::tm_record_type::end);
  CHECK(recs[1].id == tx.id());
  // the commit record (and the RM's prepare record before it) is durable once commit returned
  ktm::log::lsn commit_at;
  for (const auto& r : e.ts->read_forward()) {
    commit_at = r.at;
    break;
  }
  CHECK(e.rm->last_prepare() < commit_at);
  CHECK(commit_at < e.lg->durable_lsn());
  CHECK(e.tm->log().stats().commit_records == 1);
  CHECK(e.tm->log().stats().end_records == 1);
  CHECK(e.tm->log().stats().pending == 0);
}

TEST_CASE("a rollback logs nothing in the TM's stream (presumed abort)") {
  env e;
  mixed_tx m(e);
  auto& tx = m.tx;
  REQUIRE(tx.rollback());
  CHECK(e.rm->rolled_back(tx.id()));
  CHECK(tm_records(*e.ts).empty());
  CHECK(e.tm->recovered_outcome(tx.id()) == kt::transaction_outcome::aborted);
}

TEST_CASE("a durable TM runs volatile RMs beside durable ones and a commit with no enlistment logs nothing") {
  env e;
  {
    mixed_tx m(e);
    auto& tx = m.tx;
    REQUIRE(tx.commit());
    CHECK(e.vol.commits == 1);
    CHECK(e.rm->committed(tx.id()));
  }
  {
    auto tx = e.tm->begin();  // no enlistment: nothing to log
    REQUIRE(tx.commit());
  }
  CHECK(tm_records(*e.ts).size() == 2);
}

namespace {

// A durable journal RM and two scripted durable RMs (recording_rm, durable
// kind: they answer as told) of one durable TM, over fault injection.
using ro_journal = journal_rm<fault_storage>;
using ro_a = recording_rm<21, kt::rm_kind::durable_rm>;
using ro_b = recording_rm<22, kt::rm_kind::durable_rm>;
using ro_tm = kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<ro_journal, ro_a, ro_b>>>;

struct read_only_env {
  fault_storage st{memory_storage{}};
  std::optional<ktm::log::log<fault_storage>> lg;
  std::optional<ktm::log::stream<fault_storage>> ts;
  std::optional<ro_journal> journal;
  ro_a a;
  ro_b b;
  std::optional<ro_tm> tm;
  read_only_env() {
    lg.emplace(std::move(*ktm::log::log<fault_storage>::create(st, "txlog", durable_options())));
    ts.emplace(*lg->create_stream("tm"));
    journal.emplace(*lg->create_stream("rm"), false);
    tm.emplace(kt::log_arg, *ts, *journal, a, b);
    REQUIRE(tm->recover());
    a.clear();  // TM_ONLINE
    b.clear();
  }
  std::uint64_t flushes() const { return st.controller()->counts().flushes(); }
};

// Commits tx and waits for the outcome; an RM scripted to answer later gets
// its PREPARE answered with read_only() through the enlistment first.
template <class R>
ktm::result<void> commit_answering_read_only(ro_tm::transaction& tx, R& later_rm) {
  auto done = tx.commit_async();
  for (kt::enlistment* e : later_rm.deferred()) REQUIRE(e->read_only());
  REQUIRE(done.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  return done.get();
}

}  // namespace

TEST_CASE("a durable RM that answers PREPARE read-only is left out of the commit record") {
  read_only_env e;
  SECTION("by returning reply::read_only()") { e.a.answer(kt::notify::prepare, kt::reply::read_only()); }
  SECTION("by calling read_only() on its enlistment") { e.a.answer(kt::notify::prepare, kt::reply::later()); }
  auto tx = e.tm->begin();
  auto hj = tx.enlist(*e.journal, kt::default_mask, kt::enlistment_key(1));
  auto ha = tx.enlist(e.a, kt::default_mask, kt::enlistment_key(2));
  REQUIRE(hj);
  REQUIRE(ha);
  REQUIRE(commit_answering_read_only(tx, e.a));
  CHECK((*ha)->status() == kt::enlistment_status::read_only);
  CHECK(e.a.kinds() == std::vector<kt::notify>{kt::notify::preprepare, kt::notify::prepare});
  CHECK(e.journal->committed(tx.id()));
  const auto recs = tm_records(*e.ts);
  REQUIRE(recs.size() == 2);
  CHECK(recs[0].type == kt::detail::tm_record_type::commit);
  CHECK(recs[0].id == tx.id());
  REQUIRE(recs[0].enlistments.size() == 1);  // the journal's only
  CHECK(recs[0].enlistments[0].rm == e.journal->id());
  CHECK(recs[0].enlistments[0].rm != e.a.id());
  CHECK(recs[0].enlistments[0].key == 1);
  CHECK(recs[1].type == kt::detail::tm_record_type::end);
  CHECK(e.tm->log().stats().commit_records == 1);
}

TEST_CASE("a durable commit whose every durable RM answers read-only writes no record and flushes no device") {
  read_only_env e;
  e.a.answer(kt::notify::prepare, kt::reply::read_only());
  SECTION("both by returning reply::read_only()") { e.b.answer(kt::notify::prepare, kt::reply::read_only()); }
  SECTION("one by calling read_only() on its enlistment") { e.b.answer(kt::notify::prepare, kt::reply::later()); }
  const std::uint64_t before = e.flushes();
  {
    auto tx = e.tm->begin();
    auto ha = tx.enlist(e.a);
    auto hb = tx.enlist(e.b);
    REQUIRE(ha);
    REQUIRE(hb);
    REQUIRE(commit_answering_read_only(tx, e.b));
    CHECK(tx.outcome() == kt::transaction_outcome::committed);
    CHECK((*ha)->status() == kt::enlistment_status::read_only);
    CHECK((*hb)->status() == kt::enlistment_status::read_only);
  }
  CHECK(e.a.count(kt::notify::commit) == 0);
  CHECK(e.b.count(kt::notify::commit) == 0);
  CHECK(e.b.count(kt::notify::prepare) == 1);
  CHECK(tm_records(*e.ts).empty());
  CHECK(e.tm->log().stats().commit_records == 0);
  CHECK(e.tm->log().stats().end_records == 0);
  CHECK(e.flushes() == before);
  // The same transaction with one RM answering done: the counter sees its flush.
  e.b.answer(kt::notify::prepare, kt::reply::done());
  {
    auto tx = e.tm->begin();
    auto ha = tx.enlist(e.a);
    auto hb = tx.enlist(e.b);
    REQUIRE(tx.commit());
    const auto recs = tm_records(*e.ts);
    REQUIRE(recs.size() == 2);
    REQUIRE(recs[0].enlistments.size() == 1);
    CHECK(recs[0].enlistments[0].rm == e.b.id());
  }
  CHECK(e.flushes() - before == 1);
}

TEST_CASE("a checkpoint writes a restart area stamped with the TM id and clock; and moves the base past ended transactions") {
  env e;
  for (int i = 0; i < 3; ++i) {
    auto tx = e.tm->begin();
    auto h6 = tx.enlist(*e.rm);
    REQUIRE(h6);
    REQUIRE(tx.commit());
  }
  const auto before = e.ts->base_lsn();
  REQUIRE(e.tm->checkpoint());
  CHECK(e.ts->base_lsn() > before);
  auto ra = e.ts->read_restart_area();
  REQUIRE(ra);
  auto rec = kt::detail::parse_tm_record(ra->data);
  REQUIRE(rec);
  CHECK(rec->type == kt::detail::tm_record_type::restart);
  CHECK(rec->id == e.tm->id());
  CHECK(rec->clock == e.tm->virtual_clock());
  // what is left from the base on is the last end record and the restart area
  CHECK(tm_records(*e.ts).size() == 2);
  CHECK(e.tm->log().stats().restart_areas == 1);
}

TEST_CASE("a durable TM whose stream already has a writer fails its recovery and stays offline") {
  memory_storage st;
  auto lg = ktm::log::log<memory_storage>::create(st, "txlog", durable_options());
  REQUIRE(lg);
  auto ts = lg->create_stream("tm");
  auto w = ts->marshalling_area();  // someone else writes the TM's stream
  REQUIRE(w);
  auto b = kt::log_stream_backend<memory_storage>::open(*ts);
  CHECK(b.error().code == ktm::make_error_code(errc::writer_exists));
  kt::durable_transaction_manager<memory_storage> tm{kt::log_arg, *ts};
  auto r = tm.recover();
  REQUIRE(!r);
  CHECK(r.error().code == ktm::make_error_code(errc::writer_exists));
  CHECK(tm.state() == kt::tm_state::offline);
}

TEST_CASE("the TM record parser rejects a count or length that does not fit") {
  kt::detail::tm_record_writer w(kt::detail::tm_record_type::commit, 5, guid::generate());
  const std::byte info[3] = {std::byte{1}, std::byte{2}, std::byte{3}};
  w.add_enlistment(guid::generate(), 9, 0xf, info);
  w.set_description("d");
  std::vector<std::byte> b(w.bytes().begin(), w.bytes().end());
  REQUIRE(kt::detail::parse_tm_record(b));
  auto cut = b;
  cut.pop_back();
  CHECK(!kt::detail::parse_tm_record(cut));  // description length no longer matches
  auto big = b;
  big[2] = std::byte{2};  // two enlistments claimed, one present
  CHECK(!kt::detail::parse_tm_record(big));
  auto bad = b;
  bad[0] = std::byte{9};
  CHECK(!kt::detail::parse_tm_record(bad));
  CHECK(!kt::detail::parse_tm_record(std::span<const std::byte>(b).first(10)));
}
