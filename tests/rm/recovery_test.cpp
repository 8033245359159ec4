// tests/rm/recovery_test.cpp: change_log::recover and checkpoint: redo,
// presumed abort, in-doubt transactions, idempotence, bounded scans.
#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <set>
#include <string>

#include "ktm/io/memory_device.hpp"
#include "ktm/rm.hpp"
#include "tests/rm/rm_fixtures.hpp"

using namespace ktm::rm;
using ktm::errc;
using ktm::guid;
using ktm::io::memory_storage;
using env = ktm::test::rm_env<memory_storage>;
using model = std::map<std::string, std::string>;

namespace {

// Dropping every handle with persist_on_close off: what the log had not
// written is lost, as in a crash.
ktm::log::log_options crashy_options() {
  auto o = ktm::test::rm_log_options();
  o.persist_on_close = false;
  o.grow = true;
  o.max_containers = 16;
  return o;
}

// The first run on `io`: a new log and change log, recovered (empty).
struct first_run : env {
  explicit first_run(memory_storage& io) : env(io, crashy_options()) {
    REQUIRE(start(true));
    REQUIRE(cl->recover());
  }
};

// The run after a crash: the log reopened, the change log recovered (`rep`).
struct next_run : env {
  ktm::result<recovery_report> rep;
  explicit next_run(memory_storage& io) : env(io, crashy_options()), rep(reopen()) {}
  ktm::result<recovery_report> reopen() {
    REQUIRE(start(false));
    return cl->recover();
  }
};

// One transaction that sets `k` = `v` (before-image from the store).
void set(env& e, const guid& t, const std::string& k, const std::string& v) {
  image before = e.store.get(k);
  REQUIRE(e.cl->log_change(t, k, before ? image_view(*before) : std::nullopt, std::string_view(v)));
}

void commit_one(env& e, const std::string& k, const std::string& v) {
  const guid t = guid::generate();
  set(e, t, k, v);
  REQUIRE(e.cl->prepare(t));
  REQUIRE(e.cl->commit(t));
}

std::set<guid> uows(const std::vector<in_doubt_transaction>& v) {
  std::set<guid> s;
  for (const auto& t : v) s.insert(t.uow);
  return s;
}

}  // namespace

TEST_CASE("a transaction committed before a crash is redone from its after-images into an empty store") {
  memory_storage io;
  first_run e(io);
  commit_one(e, "a", "1");
  const guid t = guid::generate();
  set(e, t, "b", "2");
  REQUIRE(e.cl->log_change(t, "a", std::string_view("1"), std::nullopt));
  REQUIRE(e.cl->prepare(t));
  REQUIRE(e.cl->commit(t));
  REQUIRE(e.cl->flush());
  REQUIRE(e.store.copy() == model{{"b", "2"}});
  e.stop();  // crash

  next_run r(io);
  auto& rep = r.rep;
  REQUIRE(rep);
  CHECK(rep->redone == 2);
  CHECK(rep->in_doubt.empty());
  CHECK(rep->restart_at.is_null());
  CHECK(r.store.copy() == model{{"b", "2"}});
}

TEST_CASE("a transaction without a prepare record is discarded at recovery (presumed abort)") {
  memory_storage io;
  first_run e(io);
  commit_one(e, "kept", "1");
  set(e, guid::generate(), "lost", "x");
  set(e, guid::generate(), "kept", "y");
  REQUIRE(e.cl->flush());
  e.stop();

  next_run r(io);
  auto& rep = r.rep;
  REQUIRE(rep);
  CHECK(rep->discarded == 2);
  CHECK(rep->in_doubt.empty());
  CHECK(r.cl->live_transactions() == 0);
  CHECK(r.store.copy() == model{{"kept", "1"}});
}

TEST_CASE("prepared transactions without an outcome come back in doubt and are resolved by commit or abort") {
  memory_storage io;
  first_run e(io);
  commit_one(e, "a", "0");
  const guid yes = guid::generate(), no = guid::generate();
  set(e, yes, "a", "1");
  set(e, yes, "b", "1");
  set(e, no, "c", "1");
  REQUIRE(e.cl->prepare(yes));
  REQUIRE(e.cl->prepare(no));
  e.stop();  // both prepare records are durable, no outcome logged

  next_run r(io);
  auto& rep = r.rep;
  REQUIRE(rep);
  REQUIRE(rep->in_doubt.size() == 2);
  CHECK(uows(rep->in_doubt) == std::set<guid>{yes, no});
  for (const auto& t : rep->in_doubt) {
    CHECK_FALSE(t.prepare_at.is_null());
    if (t.uow == yes) {
      REQUIRE(t.changes.size() == 2);
      CHECK(t.changes[0].key == "a");
      CHECK(t.changes[0].before == std::string("0"));
      CHECK(t.changes[0].after == std::string("1"));
    }
  }
  CHECK(r.store.copy() == model{{"a", "0"}});  // held: nothing applied yet
  CHECK(uows(r.cl->in_doubt()) == std::set<guid>{yes, no});
  CHECK(r.cl->log_change(yes, "z", std::nullopt, std::string_view("z")).code() == errc::invalid_state);
  REQUIRE(r.cl->resolve(yes, outcome::commit));
  REQUIRE(r.cl->resolve(no, outcome::abort));
  CHECK(r.cl->resolve(no, outcome::abort).code() == errc::transaction_not_found);
  CHECK(r.store.copy() == model{{"a", "1"}, {"b", "1"}});
  CHECK(r.cl->in_doubt().empty());
  REQUIRE(r.cl->flush());
  r.stop();

  env again(io, crashy_options());
  REQUIRE(again.start(false));
  auto rep2 = again.cl->recover();
  REQUIRE(rep2);
  CHECK(rep2->in_doubt.empty());
  CHECK(again.store.copy() == model{{"a", "1"}, {"b", "1"}});
}

TEST_CASE("recovering twice gives the same store and the same transactions in doubt") {
  memory_storage io;
  first_run e(io);
  for (int i = 0; i < 10; ++i) commit_one(e, "k" + std::to_string(i % 4), std::to_string(i));
  REQUIRE(e.cl->checkpoint());
  commit_one(e, "k1", "after");
  const guid d = guid::generate();
  set(e, d, "k2", "doubt");
  REQUIRE(e.cl->prepare(d));
  set(e, guid::generate(), "k3", "active");
  REQUIRE(e.cl->flush());
  e.stop();

  next_run r(io);
  auto& one = r.rep;
  REQUIRE(one);
  const auto state = r.store.copy();
  CHECK(state == model{{"k0", "8"}, {"k1", "after"}, {"k2", "6"}, {"k3", "7"}});
  auto two = r.cl->recover();  // recovered transactions only: allowed again
  REQUIRE(two);
  CHECK(r.store.copy() == state);
  CHECK(uows(two->in_doubt) == uows(one->in_doubt));
  CHECK(uows(two->in_doubt) == std::set<guid>{d});
  CHECK(two->redone == one->redone);
  CHECK(two->discarded == one->discarded);
  CHECK(r.cl->writer().reserved_records() == 1);  // one outcome reserved, not two
  r.stop();

  env r2(io, crashy_options());
  REQUIRE(r2.start(false));
  auto three = r2.cl->recover();
  REQUIRE(three);
  CHECK(r2.store.copy() == state);
  CHECK(uows(three->in_doubt) == std::set<guid>{d});
  // new work first, then recover: refused
  set(r2, guid::generate(), "n", "1");
  CHECK(r2.cl->recover().code() == errc::invalid_state);
}

TEST_CASE("a checkpoint snapshots the store; moves the base and bounds the recovery scan") {
  memory_storage io;
  first_run e(io);
  model m;
  for (int i = 0; i < 60; ++i) {
    const std::string k = "key" + std::to_string(i % 25), v = "v" + std::to_string(i);
    commit_one(e, k, v);
    m[k] = v;
  }
  const auto base0 = e.st->base_lsn();
  auto ck = e.cl->checkpoint();
  REQUIRE(ck);
  CHECK(e.st->base_lsn() > base0);
  CHECK(e.cl->checkpoints() == 1);
  commit_one(e, "key0", "late");
  m["key0"] = "late";
  REQUIRE(e.cl->flush());
  e.stop();

  next_run r(io);
  auto& rep = r.rep;
  REQUIRE(rep);
  CHECK(rep->restart_at == *ck);
  CHECK(rep->snapshot_entries == 25);
  CHECK(rep->redone == 1);
  // checkpoint record + 25 snapshot records + restart area + 4 records of the late transaction
  CHECK(rep->records_scanned == 1 + 25 + 1 + 4);
  CHECK(r.store.copy() == m);
}

TEST_CASE("a checkpoint keeps the records of unfinished transactions and recovery still finds them") {
  memory_storage io;
  first_run e(io);
  const guid prepared = guid::generate(), later = guid::generate(), dropped = guid::generate();
  set(e, prepared, "p", "1");
  REQUIRE(e.cl->prepare(prepared));
  set(e, later, "l", "1");
  set(e, dropped, "d", "1");
  for (int i = 0; i < 20; ++i) commit_one(e, "c" + std::to_string(i), "x");
  REQUIRE(e.cl->checkpoint());
  // the base stays at the oldest unfinished transaction's first record
  CHECK(e.st->base_lsn() <= e.cl->changes(prepared).front().before_at);
  set(e, later, "l2", "2");
  REQUIRE(e.cl->prepare(later));
  REQUIRE(e.cl->commit(later));  // committed after the checkpoint: redone
  REQUIRE(e.cl->flush());
  e.stop();

  next_run r(io);
  auto& rep = r.rep;
  REQUIRE(rep);
  CHECK(uows(rep->in_doubt) == std::set<guid>{prepared});
  CHECK(rep->discarded == 1);
  CHECK(rep->redone == 1);
  auto s = r.store.copy();
  CHECK(s.size() == 22);
  CHECK(s.count("l"));
  CHECK(s.count("l2"));
  CHECK_FALSE(s.count("p"));
  CHECK_FALSE(s.count("d"));
}

TEST_CASE("periodic checkpoints keep a long run of transactions within a fixed number of containers") {
  auto run = [](std::size_t every, model& m, std::size_t& max_containers) -> ktm::result<void> {
    memory_storage io;
    auto o = ktm::test::rm_log_options();
    o.grow = true;
    o.max_containers = 12;
    env e(io, o, change_log_options{every});
    if (!e.start(true)) return errc::io_error;
    KTM_TRY(e.cl->recover());
    const std::string pad(120, 'p');
    for (int i = 0; i < 1500; ++i) {
      const guid t = guid::generate();
      const std::string k = "k" + std::to_string(i % 16), v = pad + std::to_string(i);
      image before = e.store.get(k);
      KTM_TRY(e.cl->log_change(t, k, before ? image_view(*before) : std::nullopt, std::string_view(v)));
      KTM_TRY(e.cl->prepare(t, durability::queue_only));
      KTM_TRY(e.cl->commit(t));
      m[k] = v;
      max_containers = std::max(max_containers, e.lg->containers().size());
    }
    if (e.cl->last_checkpoint_failure()) return *e.cl->last_checkpoint_failure();
    KTM_TRY(e.cl->flush());
    e.stop();
    env r(io, o);
    if (!r.start(false)) return errc::io_error;
    auto rep = r.cl->recover();
    if (!rep) return std::move(rep).error();
    if (r.store.copy() != m) return errc::invalid_state;
    if (every && rep->records_scanned > 16 + 2 + 4 * every) return errc::invalid_state;
    return {};
  };
  model m;
  std::size_t most = 0;
  auto with = run(20, m, most);
  INFO((with ? std::string("ok") : with.error().message()));
  CHECK(with);
  CHECK(most <= 4);

  model m2;
  std::size_t most2 = 0;
  auto without = run(0, m2, most2);  // the same run with no restart areas: the log fills up
  REQUIRE_FALSE(without);
  CHECK((without.code() == errc::log_full || without.code() == errc::tail_pinned ||
         without.code() == errc::too_many_containers));
}
