// tests/rm/crash_test.cpp: crashes at random points of a workload
// (ktm::io::fault_injection_storage: unflushed writes lost, all or a random
// subset). After recovery, with the in-doubt transactions resolved as the
// TM decided, the store equals the committed state of a reference model and
// contains every acknowledged commit.
#include <catch2/catch.hpp>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"
#include "tests/rm/rm_fixtures.hpp"
#include "tests/support/log_fixtures.hpp"
#include "tests/support/tm_fakes.hpp"

using namespace ktm::rm;
using namespace ktm::test::crash_test_names;
using ktm::guid;
namespace kt = ktm::tm;
using model = std::map<std::string, std::string>;

namespace {

// One attempted transaction and its writes, in order.
struct attempt {
  guid uow;
  std::vector<std::pair<std::string, image>> writes;
  bool acknowledged = false;  // the client was told it committed
};

// The committed state: the writes of the transactions in `committed`, in
// attempt order (the workloads run one transaction at a time).
model expected(const std::vector<attempt>& attempts, const std::set<guid>& committed) {
  model m;
  for (const auto& a : attempts) {
    if (!committed.count(a.uow)) continue;
    for (const auto& [k, v] : a.writes) {
      if (v) m[k] = *v;
      else m.erase(k);
    }
  }
  return m;
}

crash_spec spec_for(std::uint64_t seed) {
  crash_spec c;
  c.unflushed = seed % 2 ? crash_spec::writes::lost : crash_spec::writes::random_subset;
  c.seed = seed;
  return c;
}

ktm::log::log_options crash_log_options() {
  auto o = ktm::test::rm_log_options();
  o.grow = true;
  o.max_containers = 32;
  return o;
}

}  // namespace

TEST_CASE("after a crash at a random point the recovered change log holds exactly the commits the TM decided") {
  int crashed = 0, in_doubt_seen = 0, redone_seen = 0;
  for (std::uint64_t seed = 1; seed <= 80; ++seed) {
    INFO("seed " << seed);
    fstore st(memory_storage(), std::make_shared<fault_controller>());
    std::mt19937_64 rng(seed);
    std::vector<attempt> attempts;
    std::set<guid> decided;  // the TM's forced commit records: decided before COMMIT
    const std::vector<std::string> keys{"a", "b", "c", "d", "e", "f", "g", "h"};
    std::set<std::string> held;  // keys of transactions left pending
    for (int round = 0; round < 2; ++round) {
      ktm::test::rm_env<fstore> e(st, crash_log_options(), change_log_options{rng() % 3 == 0 ? 0u : 7u});
      const bool started = e.start(round == 0);
      INFO(e.last_error.message());
      REQUIRE(started);
      auto rep = e.cl->recover();
      REQUIRE(rep);
      if (round == 1) {
        in_doubt_seen += static_cast<int>(rep->in_doubt.size());
        redone_seen += static_cast<int>(rep->redone);
        for (const auto& t : rep->in_doubt)
          REQUIRE(e.cl->resolve(t.uow, decided.count(t.uow) ? outcome::commit : outcome::abort).code() !=
                  ktm::errc::transaction_not_found);
        CHECK(e.store.copy() == expected(attempts, decided));
        break;
      }
      st.controller()->crash_at(call_kind::flush, 1 + rng() % 40, spec_for(seed));
      for (int i = 0; i < 120 && st.controller()->crashes() == 0; ++i) {
        attempt a{guid::generate(), {}, false};
        std::map<std::string, image> mine;  // the private copy: own writes over the store
        bool ok = true;
        const int n = 1 + static_cast<int>(rng() % 3);
        for (int j = 0; j < n && ok; ++j) {
          const std::string& k = keys[rng() % keys.size()];
          if (held.count(k)) continue;  // 2PL: a pending transaction keeps its keys
          image before = mine.count(k) ? mine[k] : e.store.get(k);
          image after = rng() % 4 == 0 ? image() : image(std::to_string(seed) + ":" + std::to_string(i));
          ok = static_cast<bool>(e.cl->log_change(a.uow, k, before ? image_view(*before) : std::nullopt,
                                                  after ? image_view(*after) : std::nullopt));
          if (ok) {
            a.writes.emplace_back(k, after);
            mine[k] = after;
          }
        }
        attempts.push_back(a);
        if (!ok || rng() % 6 == 0) {
          (void)e.cl->rollback(a.uow);
          continue;
        }
        if (!e.cl->prepare(a.uow)) {  // forced; the TM would roll back
          (void)e.cl->rollback(a.uow);
          continue;
        }
        if (rng() % 8 == 0) {  // prepared; the outcome is not delivered before the crash
          if (rng() % 2) decided.insert(a.uow);  // though the TM may have decided commit
          for (const auto& w : a.writes) held.insert(w.first);
          continue;
        }
        if (rng() % 7 == 0) {
          (void)e.cl->rollback(a.uow);  // the TM decided abort
          continue;
        }
        decided.insert(a.uow);  // the TM's commit point
        attempts.back().acknowledged = true;
        (void)e.cl->commit(a.uow);
        if (rng() % 15 == 0) (void)e.cl->checkpoint();
      }
      if (st.controller()->crashes() == 0) st.controller()->crash(spec_for(seed));
      st.controller()->clear_faults();  // an unfired crash rule must not hit the reopen
      ++crashed;
    }
  }
  CHECK(crashed == 80);
  CHECK(in_doubt_seen > 0);  // the runs exercised both paths
  CHECK(redone_seen > 0);
}

namespace {

using map_t = transactional_map<fstore>;

// The UOWs of the commit records (type 1) a TM wrote, from tm_record layout.
template <class Records>
std::set<guid> tm_commits(const Records& payloads) {
  std::set<guid> s;
  for (const auto& p : payloads) {
    if (p.size() < 28 || std::to_integer<int>(p[0]) != 1) continue;
    guid::bytes_type g;
    for (std::size_t i = 0; i < 16; ++i) g[i] = std::to_integer<std::uint8_t>(p[12 + i]);
    s.insert(guid(g));
  }
  return s;
}

// Runs transactions against `map` through `tm` until the crash (plus a few).
template <class TM>
void map_workload(TM& tm, map_t& map, fstore& st, std::mt19937_64& rng, std::uint64_t seed, std::vector<attempt>& attempts) {
  const std::vector<std::string> keys{"a", "b", "c", "d", "e"};
  for (int i = 0; i < 100; ++i) {
    if (st.controller()->crashes() > 0 && i % 10 == 9) break;
    auto tx = tm.begin();
    attempt a{tx.id(), {}, false};
    bool ok = true;
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int j = 0; j < n && ok; ++j) {
      const std::string& k = keys[rng() % keys.size()];
      if (rng() % 4 == 0) {
        ok = static_cast<bool>(map.erase(tx, k));
        if (ok) a.writes.emplace_back(k, std::nullopt);
      } else {
        const std::string v = std::to_string(seed) + ":" + std::to_string(i) + ":" + std::to_string(j);
        ok = static_cast<bool>(map.put(tx, k, v));
        if (ok) a.writes.emplace_back(k, v);
      }
    }
    if (!ok || rng() % 6 == 0) {
      (void)tx.rollback();
    } else {
      a.acknowledged = static_cast<bool>(tx.commit());
    }
    attempts.push_back(std::move(a));
    if (rng() % 20 == 0) (void)map.checkpoint();
  }
  if (st.controller()->crashes() == 0) st.controller()->crash(spec_for(seed));
  st.controller()->clear_faults();  // an unfired crash rule must not hit the reopen
}

}  // namespace

TEST_CASE("after a crash the recovered map equals the committed state of the TM's log (TM log apart; forced prepares)") {
  using tm_type = kt::basic_transaction_manager<kt::with_log<ktm::test::memory_log>, kt::with_storage<kt::static_storage<map_t>>>;
  int acknowledged = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    fstore st(memory_storage(), std::make_shared<fault_controller>());
    std::mt19937_64 rng(seed * 31);
    std::vector<attempt> attempts;
    std::vector<std::vector<std::byte>> tm_log;  // survives: the TM's own (fake) durable log
    const guid rm_id = guid::generate();
    transactional_map_options o;
    o.checkpoint_every = seed % 2 ? 5 : 0;
    {
      auto lg = ktm::log::log<fstore>::create(st, "maplog", crash_log_options());
      REQUIRE(lg);
      auto s = lg->create_stream("map");
      auto w = s->marshalling_area();
      map_t map(*s, std::move(*w), o, rm_id);
      REQUIRE(map.recover());
      tm_type tm{map};
      REQUIRE(tm.recover());
      st.controller()->crash_at(call_kind::flush, 1 + rng() % 60, spec_for(seed));
      map_workload(tm, map, st, rng, seed, attempts);
      for (const auto& r : tm.log().records) tm_log.push_back(r.bytes);
    }
    auto lg = ktm::log::log<fstore>::open(st, "maplog", crash_log_options());
    REQUIRE(lg);
    auto s = lg->open_stream("map");
    REQUIRE(s);
    auto w = s->marshalling_area();
    map_t map(*s, std::move(*w), o, rm_id);
    auto rep = map.recover();
    REQUIRE(rep);
    const auto committed = tm_commits(tm_log);
    // what the durable TM's recovery will do: RECOVER + outcome per logged commit, then LAST_RECOVER
    kt::enlistment unused;
    for (const auto& t : rep->in_doubt)
      if (committed.count(t.uow)) {
        (void)map.on_recover(unused, {t.uow, kt::notify::recover, 1, {}});
        (void)map.on_commit(unused, {t.uow, kt::notify::commit, 1, {}});
      }
    map.on_last_recover({guid{}, kt::notify::last_recover, 1, {}});
    CHECK(map.in_doubt().empty());
    CHECK(map.snapshot() == expected(attempts, committed));
    for (const auto& a : attempts) {
      if (!a.acknowledged) continue;
      ++acknowledged;
      CHECK(committed.count(a.uow) == 1);  // acknowledged => committed
    }
  }
  CHECK(acknowledged > 100);
}

TEST_CASE("after a crash the recovered map equals the committed state when the TM's stream shares the log (queued prepares)") {
  using backend = ktm::test::stream_backend<fstore>;
  using tm_type = kt::basic_transaction_manager<kt::with_log<backend>, kt::with_storage<kt::static_storage<map_t>>>;
  int acknowledged = 0, doubts = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    fstore st(memory_storage(), std::make_shared<fault_controller>());
    std::mt19937_64 rng(seed * 77);
    std::vector<attempt> attempts;
    const guid rm_id = guid::generate();
    transactional_map_options o;
    o.prepare = durability::queue_only;  // the TM's forced commit record flushes it
    o.checkpoint_every = seed % 2 ? 0 : 4;
    {
      auto lg = ktm::log::log<fstore>::create(st, "shared", crash_log_options());
      REQUIRE(lg);
      auto ts = lg->create_stream("tm");
      auto s = lg->create_stream("map");
      auto w = s->marshalling_area();
      map_t map(*s, std::move(*w), o, rm_id);
      REQUIRE(map.recover());
      tm_type tm(kt::log_arg, backend(*ts), map);
      REQUIRE(tm.recover());
      st.controller()->crash_at(call_kind::flush, 1 + rng() % 40, spec_for(seed));
      map_workload(tm, map, st, rng, seed, attempts);
    }
    auto lg = ktm::log::log<fstore>::open(st, "shared", crash_log_options());
    REQUIRE(lg);
    std::vector<std::vector<std::byte>> tm_log;
    for (const auto& r : lg->open_stream("tm")->read_forward())
      if (r.type == ktm::log::record_type::data) tm_log.push_back(r.payload_copy());
    const auto committed = tm_commits(tm_log);
    auto s = lg->open_stream("map");
    auto w = s->marshalling_area();
    map_t map(*s, std::move(*w), o, rm_id);
    auto rep = map.recover();
    REQUIRE(rep);
    doubts += static_cast<int>(rep->in_doubt.size());
    for (const auto& t : rep->in_doubt)
      REQUIRE(map.resolve(t.uow, committed.count(t.uow) ? outcome::commit : outcome::abort));
    CHECK(map.snapshot() == expected(attempts, committed));
    for (const auto& a : attempts) {
      if (!a.acknowledged) continue;
      ++acknowledged;
      CHECK(committed.count(a.uow) == 1);  // an acknowledged commit's record is durable
    }
  }
  CHECK(acknowledged > 100);
  CHECK(doubts > 0);
}
