// tests/rm/transactional_map_test.cpp: the transactional map as a durable RM:
// isolation, read-your-writes, lock timeouts, idempotent outcomes, recovery
// hooks, and a TM sharing the RM's multiplexed log.
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <atomic>
#include <vector>

#include "ktm/io/memory_device.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"
#include "tests/rm/rm_fixtures.hpp"
#include "tests/support/tm_fakes.hpp"

using namespace std::chrono_literals;
using ktm::errc;
using ktm::guid;
using ktm::io::memory_storage;
namespace kt = ktm::tm;
namespace kr = ktm::rm;
using map_t = kr::transactional_map<memory_storage>;
using model = std::map<std::string, std::string>;
using durable_tm = kt::basic_transaction_manager<kt::with_log<ktm::test::memory_log>, kt::with_storage<kt::static_storage<map_t>>>;

static_assert(kt::check_resource_manager<map_t>());
static_assert(map_t::durable());
// a volatile TM accepts only volatile RMs: the map cannot be one of its RMs
static_assert(!kt::can_compose<kt::with_storage<kt::static_storage<map_t>>>);
static_assert(kt::can_compose<kt::with_storage<kt::static_storage<map_t>>, kt::with_log<ktm::test::memory_log>>);

namespace {

struct map_env {
  memory_storage io;
  std::optional<ktm::log::log<memory_storage>> lg;
  std::optional<ktm::log::stream<memory_storage>> st;
  std::unique_ptr<map_t> map;
  guid id = guid::generate();

  explicit map_env(kr::transactional_map_options o = {}, bool create = true) { open(o, create); }
  void open(kr::transactional_map_options o, bool create) {
    auto opts = ktm::test::rm_log_options();
    opts.grow = true;
    auto l = create ? ktm::log::log<memory_storage>::create(io, "maplog", opts)
                    : ktm::log::log<memory_storage>::open(io, "maplog", opts);
    REQUIRE(l);
    lg.emplace(std::move(*l));
    auto s = create ? lg->create_stream("map") : lg->open_stream("map");
    REQUIRE(s);
    st.emplace(*s);
    auto w = st->marshalling_area();
    REQUIRE(w);
    map = std::make_unique<map_t>(*st, std::move(*w), o, id);
    REQUIRE(map->recover());
  }
  void reopen(kr::transactional_map_options o = {}) {
    map.reset();
    st.reset();
    lg.reset();
    open(o, false);
  }
};

// A map_env and a durable TM over its map, recovered.
struct map_world {
  map_env e;
  durable_tm tm{*e.map};
  explicit map_world(kr::transactional_map_options o = {}) : e(o) { REQUIRE(tm.recover()); }
};

kt::notification note(kt::notify k, const guid& tx) { return {tx, k, 1, {}}; }

}  // namespace

TEST_CASE("a volatile TM refuses the map at run time too") {
  map_env e;
  kt::volatile_transaction_manager<> vtm;
  CHECK(vtm.add_resource_manager(*e.map).code() == errc::volatile_tm_durable_rm);
}

TEST_CASE_METHOD(map_world, "a committed transaction's writes become visible and durable; a rolled-back one's vanish") {
  {
    auto tx = tm.begin();
    REQUIRE(e.map->put(tx, "a", "1"));
    REQUIRE(e.map->put(tx, "b", "2"));
    REQUIRE(e.map->erase(tx, "b"));
    REQUIRE(e.map->put(tx, "c", "3"));
    REQUIRE(tx.commit());
  }
  CHECK(e.map->snapshot() == model{{"a", "1"}, {"c", "3"}});
  {
    auto tx = tm.begin();
    REQUIRE(e.map->put(tx, "a", "changed"));
    REQUIRE(e.map->erase(tx, "c"));
    REQUIRE(tx.rollback());
  }
  CHECK(e.map->snapshot() == model{{"a", "1"}, {"c", "3"}});
  {
    auto tx = tm.begin();
    REQUIRE(e.map->put(tx, "d", "4"));
  }  // dropped undecided: rolled back
  CHECK(e.map->snapshot() == model{{"a", "1"}, {"c", "3"}});
  CHECK(e.map->locks().size() == 0);
  CHECK(e.map->changes().live_transactions() == 0);
  // the TM logged a commit record for the committed transaction only (presumed abort)
  std::size_t commits = 0;
  for (const auto& r : tm.log().records) commits += std::to_integer<int>(r.bytes[0]) == 1;
  CHECK(commits == 1);
  e.reopen();
  CHECK(e.map->snapshot() == model{{"a", "1"}, {"c", "3"}});
}

TEST_CASE_METHOD(map_world, "a transaction reads its own writes while others see only committed values") {
  {
    auto tx = tm.begin();
    REQUIRE(e.map->put(tx, "k", "committed"));
    REQUIRE(tx.commit());
  }
  auto a = tm.begin();
  auto b = tm.begin();
  REQUIRE(e.map->put(a, "k", "a's"));
  REQUIRE(e.map->put(a, "new", "a's"));
  CHECK(e.map->get(a, "k").value() == std::string("a's"));
  CHECK(e.map->get(a, "new").value() == std::string("a's"));
  CHECK(e.map->get(b, "k").value() == std::string("committed"));
  CHECK(e.map->get(b, "new").value() == std::nullopt);
  REQUIRE(e.map->erase(a, "k"));
  CHECK(e.map->get(a, "k").value() == std::nullopt);
  CHECK(e.map->get(b, "k").value() == std::string("committed"));
  CHECK(e.map->snapshot() == model{{"k", "committed"}});
  REQUIRE(a.commit());
  CHECK(e.map->get(b, "k").value() == std::nullopt);
  CHECK(e.map->get(b, "new").value() == std::string("a's"));
  REQUIRE(b.commit());  // read only: nothing logged for it
}

TEST_CASE("a write lock held by another transaction times out with timed_out and the caller rolls back") {
  kr::transactional_map_options o;
  o.lock_timeout = 50ms;
  map_world w(o);
  auto& e = w.e;  // not a structured binding: clang 14 cannot capture one in a lambda
  auto& tm = w.tm;
  auto a = tm.begin();
  auto b = tm.begin();
  REQUIRE(e.map->put(a, "k", "a"));
  REQUIRE(e.map->put(b, "other", "b"));
  const auto t0 = std::chrono::steady_clock::now();
  auto r = e.map->put(b, "k", "b");
  CHECK(r.code() == errc::timed_out);
  CHECK(std::chrono::steady_clock::now() - t0 >= 50ms);
  CHECK(e.map->erase(b, "k").code() == errc::timed_out);
  REQUIRE(b.rollback());
  CHECK(e.map->locks().owner("other") == std::nullopt);
  REQUIRE(a.commit());
  CHECK(e.map->snapshot() == model{{"k", "a"}});
}

TEST_CASE("a waiting writer gets the lock when the holder commits") {
  kr::transactional_map_options o;
  o.lock_timeout = 5s;
  map_world w(o);
  auto& e = w.e;  // not a structured binding: clang 14 cannot capture one in a lambda
  auto& tm = w.tm;
  auto a = tm.begin();
  REQUIRE(e.map->put(a, "k", "a"));
  std::atomic<bool> put_ok{false}, read_ok{false}, commit_ok{false};  // Catch2 asserts on the main thread only
  std::thread t([&] {
    auto b = tm.begin();
    put_ok = static_cast<bool>(e.map->put(b, "k", "b"));
    read_ok = e.map->get(b, "k").value() == std::string("b");
    commit_ok = static_cast<bool>(b.commit());
  });
  std::this_thread::sleep_for(20ms);
  REQUIRE(a.commit());
  t.join();
  CHECK(put_ok);
  CHECK(read_ok);
  CHECK(commit_ok);
  CHECK(e.map->snapshot() == model{{"k", "b"}});
}

TEST_CASE_METHOD(map_world, "commit and rollback notifications are idempotent and unknown transactions are answered done") {
  guid committed, rolled;
  {
    auto tx = tm.begin();
    committed = tx.id();
    REQUIRE(e.map->put(tx, "a", "1"));
    REQUIRE(tx.commit());
  }
  {
    auto tx = tm.begin();
    rolled = tx.id();
    REQUIRE(e.map->put(tx, "b", "1"));
    REQUIRE(tx.rollback());
  }
  kt::enlistment unused;  // the handlers for outcomes look transactions up by UOW only
  for (int i = 0; i < 2; ++i) {
    CHECK(e.map->on_commit(unused, note(kt::notify::commit, committed)).what() == kt::reply::kind::done);
    CHECK(e.map->on_rollback(unused, note(kt::notify::rollback, rolled)).what() == kt::reply::kind::done);
    CHECK(e.map->on_commit(unused, note(kt::notify::commit, guid::generate())).what() == kt::reply::kind::done);
    CHECK(e.map->on_rollback(unused, note(kt::notify::rollback, guid::generate())).what() == kt::reply::kind::done);
  }
  CHECK(e.map->snapshot() == model{{"a", "1"}});
  // a write after the outcome is refused
  CHECK(e.map->put(rolled, "c", "1").code() == errc::transaction_aborted);
}

TEST_CASE("a prepared transaction survives a restart in doubt; holds its locks; and a redelivered COMMIT applies it once") {
  kr::transactional_map_options o;
  o.lock_timeout = 20ms;
  map_env e(o);
  const guid tx = guid::generate(), other = guid::generate();
  REQUIRE(e.map->put(tx, "k", "v"));
  REQUIRE(e.map->put(other, "x", "never"));
  // PREPARE through the handler, as the TM would; the enlistment is not bound, so no recovery information
  kt::enlistment unused;
  CHECK(e.map->on_prepare(unused, note(kt::notify::prepare, tx)).what() == kt::reply::kind::done);
  e.reopen(o);  // a restart before the outcome

  auto doubt = e.map->in_doubt();
  REQUIRE(doubt.size() == 1);
  CHECK(doubt[0].uow == tx);
  CHECK(e.map->snapshot().empty());
  CHECK(e.map->get(tx, "k").value() == std::string("v"));  // its write set is back
  CHECK(e.map->put(guid::generate(), "k", "w").code() == errc::timed_out);  // so is its lock
  CHECK(e.map->put(guid::generate(), "x", "free").has_value());  // the unprepared one was discarded

  // the durable TM's recovery: RECOVER for tx, then COMMIT (twice: redelivery)
  CHECK(e.map->on_recover(unused, note(kt::notify::recover, tx)).what() == kt::reply::kind::done);
  CHECK(e.map->on_commit(unused, note(kt::notify::commit, tx)).what() == kt::reply::kind::done);
  CHECK(e.map->on_commit(unused, note(kt::notify::commit, tx)).what() == kt::reply::kind::done);
  e.map->on_last_recover(note(kt::notify::last_recover, guid{}));
  CHECK(e.map->snapshot() == model{{"k", "v"}});
  CHECK(e.map->in_doubt().empty());
  CHECK(e.map->locks().owner("k") == std::nullopt);
}

TEST_CASE("LAST_RECOVER aborts the in-doubt transactions the TM did not mention (presumed abort)") {
  map_env e;
  const guid mentioned = guid::generate(), forgotten = guid::generate();
  kt::enlistment unused;
  REQUIRE(e.map->put(mentioned, "m", "1"));
  REQUIRE(e.map->put(forgotten, "f", "1"));
  REQUIRE(e.map->on_prepare(unused, note(kt::notify::prepare, mentioned)).what() == kt::reply::kind::done);
  REQUIRE(e.map->on_prepare(unused, note(kt::notify::prepare, forgotten)).what() == kt::reply::kind::done);
  e.reopen();
  REQUIRE(e.map->in_doubt().size() == 2);
  e.map->on_recover(unused, note(kt::notify::recover, mentioned));
  e.map->on_last_recover(note(kt::notify::last_recover, guid{}));
  auto left = e.map->in_doubt();
  REQUIRE(left.size() == 1);
  CHECK(left[0].uow == mentioned);  // still waiting for its outcome
  REQUIRE(e.map->resolve(mentioned, kr::outcome::abort));
  CHECK(e.map->resolve(mentioned, kr::outcome::abort).code() == errc::transaction_not_found);
  CHECK(e.map->snapshot().empty());
  e.reopen();
  CHECK(e.map->in_doubt().empty());
}

TEST_CASE_METHOD(map_world, "prepare sets the prepare LSN as the enlistment's recovery information") {
  auto tx = tm.begin();
  REQUIRE(e.map->put(tx, "k", "v"));
  REQUIRE(tx.commit());
  // the TM's commit record carries the enlistment: rm id, key, mask, 8 bytes of recovery information
  const auto& recs = tm.log().records;
  REQUIRE_FALSE(recs.empty());
  const auto& c = recs.front().bytes;
  REQUIRE(std::to_integer<int>(c[0]) == 1);
  REQUIRE(c.size() == 28 + 16 + 8 + 4 + 2 + 8);
  CHECK(std::to_integer<int>(c[28 + 16 + 8 + 4]) == 8);
  std::uint64_t l = 0;
  for (int i = 7; i >= 0; --i) l = (l << 8) | std::to_integer<std::uint64_t>(c[28 + 16 + 8 + 4 + 2 + static_cast<std::size_t>(i)]);
  auto rec = e.st->read_record(ktm::log::lsn(l));
  REQUIRE(rec);
  CHECK(kr::decode_record(rec->payload, rec->at)->kind == kr::change_kind::prepare);
}

TEST_CASE("with the TM's stream in the same multiplexed log; a queued prepare costs no flush: one device flush per commit") {
  memory_storage io;
  auto opts = ktm::test::rm_log_options();
  opts.grow = true;
  auto lg = ktm::log::log<memory_storage>::create(io, "shared", opts);
  REQUIRE(lg);
  auto tm_stream = lg->create_stream("tm");
  auto map_stream = lg->create_stream("map");
  REQUIRE(tm_stream);
  REQUIRE(map_stream);
  using backend = ktm::test::stream_backend<memory_storage>;
  using shared_tm = kt::basic_transaction_manager<kt::with_log<backend>, kt::with_storage<kt::static_storage<map_t>>>;
  for (auto mode : {kr::durability::queue_only, kr::durability::force}) {
    kr::transactional_map_options o;
    o.prepare = mode;
    auto w = map_stream->marshalling_area();
    REQUIRE(w);
    map_t map(*map_stream, std::move(*w), o);
    REQUIRE(map.recover());
    shared_tm tm(kt::log_arg, backend(*tm_stream), map);
    REQUIRE(tm.recover());
    for (int i = 0; i < 5; ++i) {
      auto tx = tm.begin();
      REQUIRE(map.put(tx, "k" + std::to_string(i), "v"));
      const auto before = lg->device_flushes();
      REQUIRE(tx.commit());
      CHECK(lg->device_flushes() - before == (mode == kr::durability::queue_only ? 1u : 2u));
    }
    CHECK(map.snapshot().size() == 5);
  }
}

TEST_CASE("concurrent transfers with lock timeouts and retries keep the total; and recovery agrees") {
  kr::transactional_map_options o;
  o.lock_timeout = 5ms;
  o.prepare = kr::durability::queue_only;
  o.checkpoint_every = 25;
  map_world w(o);
  auto& e = w.e;  // not a structured binding: clang 14 cannot capture one in a lambda
  auto& tm = w.tm;
  constexpr int accounts = 5, threads = 4, transfers = 40;
  {
    auto tx = tm.begin();
    for (int i = 0; i < accounts; ++i) REQUIRE(e.map->put(tx, "acct" + std::to_string(i), "100"));
    REQUIRE(tx.commit());
  }
  std::atomic<int> done{0}, timeouts{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t)
    ts.emplace_back([&, t] {
      std::uint64_t x = 0x9e3779b97f4a7c15ull * static_cast<std::uint64_t>(t + 1);
      auto next = [&] { return x ^= x << 13, x ^= x >> 7, x ^= x << 17, x; };
      for (int n = 0; n < transfers;) {
        const int from = static_cast<int>(next() % accounts), to = static_cast<int>((from + 1 + next() % (accounts - 1)) % accounts);
        auto tx = tm.begin();
        // read-modify-write under the key's write lock (a plain get then put could lose an update)
        auto step = [&](int acct, int delta) -> bool {
          const std::string k = "acct" + std::to_string(acct);
          auto cur = e.map->get_for_update(tx, k);
          if (!cur) {
            timeouts += cur.code() == errc::timed_out;
            return false;
          }
          return static_cast<bool>(e.map->put(tx, k, std::to_string(std::stoi(**cur) + delta)));
        };
        if (step(from, -7) && step(to, +7)) {
          if (tx.commit()) {
            ++n;
            ++done;
          }
        } else {
          (void)tx.rollback();
        }
      }
    });
  for (auto& t : ts) t.join();
  CHECK(done == threads * transfers);
  auto total = [](const model& m) {
    int s = 0;
    for (const auto& [k, v] : m) s += std::stoi(v);
    return s;
  };
  const auto final_state = e.map->snapshot();
  CHECK(total(final_state) == accounts * 100);
  CHECK(e.map->locks().size() == 0);
  e.reopen(o);
  CHECK(e.map->snapshot() == final_state);
}

TEST_CASE("a lock taken by get_for_update is held until the outcome even when nothing is written") {
  kr::transactional_map_options o;
  o.lock_timeout = 10ms;
  map_world w(o);
  auto& e = w.e;  // not a structured binding: clang 14 cannot capture one in a lambda
  auto& tm = w.tm;
  auto a = tm.begin();
  CHECK(e.map->get_for_update(a, "k").value() == std::nullopt);
  auto b = tm.begin();
  CHECK(e.map->put(b, "k", "b").code() == errc::timed_out);
  CHECK(e.map->get_for_update(b, "k").code() == errc::timed_out);
  REQUIRE(a.commit());  // read only: nothing logged, the lock goes
  CHECK(e.map->locks().owner("k") == std::nullopt);
  REQUIRE(e.map->put(b, "k", "b"));
  REQUIRE(b.commit());
  CHECK(e.map->snapshot() == model{{"k", "b"}});
}
