// tests/rm/random_map_test.cpp: a seeded randomized concurrency test of
// transactional_map under the durable TM (what tests/crash/model_test.cpp
// leaves out). Each seed runs rounds; in a round 2-3 client threads run
// transactions on 2-3 maps over overlapping key windows (lock conflicts,
// lock timeouts, deadlocks ended by timeouts), mixing put / erase / get /
// get_for_update, ending in commit, rollback, a TM timeout or a dropped
// handle, while a checkpoint thread writes restart areas (maps and TM). A
// round may crash (fault injection over memory storage: unflushed writes
// lost or a random subset kept) at a random write or flush, possibly in the
// middle of a checkpoint, and recovery itself may crash and be redone.
// Checks:
//   - reads: a transaction reads its own last write; a key it locked does
//     not change under it; a value of another transaction is seen only once
//     that transaction started to commit, and (after the round) only if it
//     committed (acknowledged, or in flight at a crash);
//   - without a crash: every lock is released, no transaction is left in the
//     change logs, and the maps equal the serial reference model (the
//     acknowledged commits applied in lock order);
//   - after a crash and recovery: in-doubt transactions hold their locks and
//     are invisible to others until resolved; the maps equal the reference
//     model plus some subset of the commits in flight (atomically: all of a
//     transaction's writes or none), no lost or phantom key.
// The TEST_CASEs at the end pin the library bugs this test found (they fail
// until ktm/rm/transactional_map.hpp is fixed).
// Knobs: KTM_RM_RANDOM_KNOWN_BUGS=tolerate (see below);
// KTM_RM_RANDOM_SEED=<n> runs seed n only; KTM_RM_RANDOM_SEEDS=<n>
// runs seeds 1..n (default 10). A failing seed is printed; thread scheduling
// makes a replay similar, not identical.
#include <catch2/catch.hpp>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"
#include "ktm/tm/durable_transaction_manager.hpp"
#include "tests/support/log_fixtures.hpp"

using namespace std::chrono_literals;

namespace {

using fstore = ktm::io::fault_injection_storage<ktm::io::memory_storage>;
using map_t = ktm::rm::transactional_map<fstore>;
using tm_t = ktm::tm::durable_transaction_manager<fstore, ktm::tm::with_storage<ktm::tm::dynamic_storage>>;
using state = std::map<std::string, std::string>;  // "<map>/<key>" -> value
using writes_t = std::map<std::string, std::optional<std::string>>;

constexpr const char* map_names[] = {"a", "b", "c"};

// KTM_RM_RANDOM_KNOWN_BUGS=tolerate: do not fail on the symptoms of the three
// bugs (fixed since) pinned by the TEST_CASEs at the end of this file (a
// lock leaked by get_for_update racing a TM timeout; a get after a TM
// timeout reading the committed value instead of the transaction's own
// write; a change-log entry leaked by a put racing a TM timeout's rollback).
bool tolerate_known() {
  const char* v = std::getenv("KTM_RM_RANDOM_KNOWN_BUGS");
  return v && std::string(v) == "tolerate";
}

std::uint64_t env_u64(const char* n, std::uint64_t dflt) {
  const char* v = std::getenv(n);
  if (!v || !*v) return dflt;
  return std::strtoull(v, nullptr, 10);
}

// The log, the TM and the maps, opened and recovered in that order. open()
// reports failures (a crash during recovery) instead of asserting.
struct rig {
  std::optional<ktm::log::log<fstore>> lg;
  std::unique_ptr<tm_t> tm;
  std::vector<std::unique_ptr<map_t>> maps;
  std::string error;
  ~rig() { tm.reset(); }

  struct in_doubt_seen {
    std::size_t map;
    ktm::guid uow;
    std::vector<std::string> keys;
  };
  std::vector<in_doubt_seen> in_doubt;  // found at recovery (before resolution)

  bool open(fstore& st, bool create, const ktm::guid& tm_id, const std::vector<ktm::guid>& ids,
            const ktm::rm::transactional_map_options& mo, bool check_in_doubt) {
    auto l = create ? ktm::log::log<fstore>::create(st, "rmrandom", ktm::test::growing_log_options())
                    : ktm::log::log<fstore>::open(st, "rmrandom", ktm::test::growing_log_options());
    if (!l) return error = "log open: " + l.error().message(), false;
    lg.emplace(std::move(*l));
    auto stream = [&](const char* n) -> std::optional<ktm::log::stream<fstore>> {
      auto s = create ? lg->create_stream(n) : lg->open_stream(n);
      if (!s) {
        error = std::string("stream ") + n + ": " + s.error().message();
        return std::nullopt;
      }
      return *s;
    };
    auto ts = stream("tm");
    if (!ts) return false;
    tm = std::make_unique<tm_t>(ktm::tm::log_arg, *ts, tm_id);
    if (auto r = tm->recover(); !r) return error = "tm recover: " + r.error().message(), false;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      auto s = stream(map_names[i]);
      if (!s) return false;
      auto w = s->marshalling_area();
      if (!w) return error = "marshalling area: " + w.error().message(), false;
      auto m = std::make_unique<map_t>(*s, std::move(*w), mo, ids[i]);
      if (auto r = m->recover(); !r) return error = "map recover: " + r.error().message(), false;
      // in-doubt transactions: they hold their keys' locks and stay invisible
      for (const auto& t : m->in_doubt()) {
        in_doubt_seen seen{i, t.uow, {}};
        for (const auto& c : t.changes) {
          if (c.after_at.is_null()) continue;
          seen.keys.push_back(c.key);
          if (!check_in_doubt) continue;
          auto o = m->locks().owner(c.key);
          if (!o || *o != t.uow)
            return error = "in-doubt transaction does not hold the lock of " + std::string(map_names[i]) + "/" +
                           c.key,
                   false;
          auto g = m->get(ktm::guid::generate(), c.key);
          auto snap = m->snapshot();
          std::optional<std::string> committed;
          if (auto it = snap.find(c.key); it != snap.end()) committed = it->second;
          if (!g || *g != committed)
            return error = "another transaction reads an in-doubt write of " + std::string(map_names[i]) + "/" +
                           c.key,
                   false;
        }
        in_doubt.push_back(std::move(seen));
      }
      if (auto r = tm->add_resource_manager(*m); !r) return error = "add rm: " + r.error().message(), false;
      if (auto r = tm->recover_resource_manager(*m); !r)
        return error = "recover rm: " + r.error().message(), false;
      maps.push_back(std::move(m));
    }
    for (auto& m : maps)
      for (const auto& t : m->in_doubt()) {
        auto r = m->resolve(t.uow, tm->recovered_outcome(t.uow) == ktm::tm::transaction_outcome::committed
                                       ? ktm::rm::outcome::commit
                                       : ktm::rm::outcome::abort);
        if (!r) return error = "resolve: " + r.error().message(), false;
      }
    for (std::size_t i = 0; i < maps.size(); ++i) {
      if (!maps[i]->in_doubt().empty()) return error = "in-doubt transactions left after resolution", false;
      if (maps[i]->locks().size() != 0) return error = "locks left after resolution", false;
    }
    return true;
  }
  state snapshot() const {
    state s;
    for (std::size_t i = 0; i < maps.size(); ++i)
      for (const auto& [k, v] : maps[i]->snapshot()) s[std::string(map_names[i]) + "/" + k] = v;
    return s;
  }
};

// A transaction of the round as the reference model sees it.
struct tx_record {
  std::string name;                           // "t<thread>x<n>": the prefix of its values
  ktm::guid id;
  std::string trace;                          // what it did, for failure reports
  std::map<std::string, std::uint64_t> stamp;  // key -> lock order stamp of its last write
  writes_t writes;                            // key -> its last write
  enum class fate { rolled_back, acked, uncertain } f = fate::rolled_back;
  bool commit_called = false;
};

struct read_record {
  std::string reader, key, value;
};

struct round_shared {
  std::mutex mu;
  std::set<std::string> commit_started;  // writers that called commit()
  std::vector<std::string> errors;
  std::vector<tx_record> txs;
  std::vector<read_record> reads;
  std::atomic<std::uint64_t> stamp{0};
  std::atomic<int> done{0};
  std::atomic<int> lock_timeouts{0};
  void fail(std::string e) {
    std::lock_guard l(mu);
    if (errors.size() < 20) errors.push_back(std::move(e));
  }
};

std::string writer_of(const std::string& value) {  // "t1x3.o2" -> "t1x3"
  auto p = value.find('.');
  return p == std::string::npos ? value : value.substr(0, p);
}

struct stats {
  int rounds = 0, lock_timeouts = 0, txs = 0, acked = 0, rolled = 0, timeouts = 0, crashes = 0, recovery_crashes = 0, in_doubt = 0,
      in_flight_kept = 0, checkpoints = 0;
};

// One client thread: `n` transactions.
void client(rig& sys, fstore& st, round_shared& sh, std::uint64_t seed, int round, int thread, int n, int nmaps,
            int key_lo, int key_width, std::atomic<bool>& crashed) {
  std::mt19937_64 rng(seed * 1000003 + static_cast<std::uint64_t>(round) * 101 + static_cast<std::uint64_t>(thread));
  for (int x = 0; x < n; ++x) {
    if (st.controller()->crashes() != 0) crashed = true;
    if (crashed) break;
    tx_record rec;
    rec.name = "r" + std::to_string(round) + "t" + std::to_string(thread) + "x" + std::to_string(x);
    std::map<std::string, std::string> locked_seen;  // key -> value read under its lock (no own write)
    bool acked = false, uncertain = false;
    {  // the transaction object lives in this block (a dropped one rolls back)
    auto tx_object = sys.tm->begin();
    auto* tx = &tx_object;
    rec.id = tx->id();
    const bool with_timeout = rng() % 8 == 0;
    if (with_timeout) (void)tx->set_timeout(std::chrono::milliseconds(1 + rng() % 4));
    if (with_timeout) rec.trace += "timeout ";
    bool ok = true;
    const int ops = 1 + static_cast<int>(rng() % 6);
    for (int o = 0; o < ops && ok; ++o) {
      if (rng() % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1500));  // overlap others
      const int mi = static_cast<int>(rng() % static_cast<std::uint64_t>(nmaps));
      map_t& m = *sys.maps[static_cast<std::size_t>(mi)];
      const std::string key = "k" + std::to_string(key_lo + static_cast<int>(rng() % static_cast<std::uint64_t>(key_width)));
      const std::string full = std::string(map_names[mi]) + "/" + key;
      const auto dice = rng() % 10;
      rec.trace += std::string(dice < 4 ? "put " : dice < 5 ? "erase " : dice < 7 ? "get_for_update " : "get ") + full;
      if (dice < 4) {  // put
        const std::string v = rec.name + ".o" + std::to_string(o);
        auto r = m.put(*tx, key, v);
        rec.trace += r ? "; " : " -> " + r.error().message() + "; ";
        if (!r) {
          if (r.code() == ktm::errc::timed_out) ++sh.lock_timeouts;
          ok = false;
          break;
        }
        rec.writes[full] = v;
        rec.stamp[full] = ++sh.stamp;
        locked_seen.erase(full);
      } else if (dice < 5) {  // erase
        auto r = m.erase(*tx, key);
        rec.trace += r ? "; " : " -> " + r.error().message() + "; ";
        if (!r) {
          if (r.code() == ktm::errc::timed_out) ++sh.lock_timeouts;
          ok = false;
          break;
        }
        rec.writes[full] = std::nullopt;
        rec.stamp[full] = ++sh.stamp;
        locked_seen.erase(full);
      } else {  // get or get_for_update
        const bool for_update = dice < 7;
        auto r = for_update ? m.get_for_update(*tx, key) : m.get(*tx, key);
        rec.trace += r ? "; " : " -> " + r.error().message() + "; ";
        if (!r) {
          if (r.code() == ktm::errc::timed_out) ++sh.lock_timeouts;
          // a TM timeout may have rolled it back: then get says so
          const bool timed_out_tx = with_timeout && r.code() == ktm::errc::transaction_aborted;
          if (!for_update && !crashed && st.controller()->crashes() == 0 && !timed_out_tx)
            sh.fail(rec.name + ": get failed: " + r.error().message());
          ok = false;
          break;
        }
        const std::optional<std::string> got = *r;
        const bool skip = with_timeout && tolerate_known();
        if (auto w = rec.writes.find(full); w != rec.writes.end() && (got == w->second || !skip)) {
          if (got != w->second)
            sh.fail(rec.name + ": does not read its own write of " + full + ": got " + got.value_or("<none>") +
                    " wrote " + w->second.value_or("<erased>") + " [" + rec.trace + "]");
          continue;
        }
        if (auto s = locked_seen.find(full); !skip && s != locked_seen.end() && got.value_or("<none>") != s->second)
          sh.fail(rec.name + ": locked key " + full + " changed under it: " + s->second + " -> " +
                  got.value_or("<none>"));
        if (for_update) locked_seen.emplace(full, got.value_or("<none>"));
        if (got) {
          const std::string w = writer_of(*got);
          if (w == rec.name) sh.fail(rec.name + ": reads its own value without having written it: " + full);
          bool started;
          {
            std::lock_guard l(sh.mu);
            started = got->rfind("r" + std::to_string(round) + "t", 0) != 0 || sh.commit_started.count(w);
            sh.reads.push_back({rec.name, full, *got});
          }
          if (!started) sh.fail(rec.name + ": dirty read of " + full + " = " + *got + " (its writer has not committed)");
        }
      }
    }
    const auto end = rng() % 10;
    if (ok && end < 6) {
      {
        std::lock_guard l(sh.mu);
        sh.commit_started.insert(rec.name);
      }
      rec.commit_called = true;
      auto r = tx->commit();
      rec.trace += r ? "commit" : "commit -> " + r.error().message();
      acked = static_cast<bool>(r);
      if (!acked) {
        const bool was_crash = crashed || st.controller()->crashes() != 0;
        if (was_crash || r.code() == ktm::errc::in_doubt) uncertain = true;
        else if (!with_timeout)
          sh.fail(rec.name + ": commit failed without a crash or timeout: " + r.error().message());
      }
    } else if (end < 8 || !ok) {
      (void)tx->rollback();
      rec.trace += "rollback";
    } else {
      rec.trace += "dropped";
    }  // else: dropped undecided (RAII rollback)
    }
    rec.f = acked ? tx_record::fate::acked : uncertain ? tx_record::fate::uncertain : tx_record::fate::rolled_back;
    std::lock_guard l(sh.mu);
    sh.txs.push_back(std::move(rec));
  }
}

// Base state + the given committed transactions, per key the write with the highest lock stamp.
state expected(const state& base, const std::vector<const tx_record*>& committed) {
  std::map<std::string, std::pair<std::uint64_t, std::optional<std::string>>> last;
  for (const tx_record* t : committed)
    for (const auto& [k, v] : t->writes) {
      const std::uint64_t s = t->stamp.at(k);
      auto it = last.find(k);
      if (it == last.end() || it->second.first < s) last[k] = {s, v};
    }
  state r = base;
  for (const auto& [k, sv] : last) {
    if (sv.second) r[k] = *sv.second;
    else r.erase(k);
  }
  return r;
}

std::string show(const state& s) {
  std::string o;
  for (const auto& [k, v] : s) o += k + "=" + v + " ";
  return o;
}

// One seed: several rounds over one storage. Returns "" or the first failure.
std::string run_seed(std::uint64_t seed, stats& stt) {
  std::mt19937_64 rng(seed);
  fstore st(ktm::io::memory_storage(), std::make_shared<ktm::io::fault_controller>());
  const ktm::guid tm_id = ktm::guid::generate();
  const int nmaps = 2 + static_cast<int>(seed % 2);
  std::vector<ktm::guid> ids;
  for (int i = 0; i < nmaps; ++i) ids.push_back(ktm::guid::generate());
  ktm::rm::transactional_map_options mo;
  mo.lock_timeout = std::chrono::milliseconds(2 + rng() % 15);
  mo.prepare = rng() % 2 ? ktm::rm::durability::queue_only : ktm::rm::durability::force;
  mo.checkpoint_every = rng() % 4;  // 0: on demand only
  auto sys = std::make_unique<rig>();
  if (!sys->open(st, true, tm_id, ids, mo, true)) return "create: " + sys->error;
  state model;
  std::set<ktm::guid> timed;
  std::map<ktm::guid, std::pair<std::string, bool>> fates;  // name, commit called  // every transaction since the last reopen
  const int rounds = 6;
  for (int round = 0; round < rounds; ++round) {
    ++stt.rounds;
    const int threads = 2 + static_cast<int>(rng() % 2);
    const int per_thread = 10 + static_cast<int>(rng() % 20);
    const int key_width = 2 + static_cast<int>(rng() % 4);
    const int shift = static_cast<int>(rng() % 3);  // 0: every thread on the same keys
    const bool crash_round = rng() % 2 == 0;
    const bool crash_in_checkpoint = crash_round && rng() % 2 == 0;  // armed by the checkpoint thread
    ktm::io::crash_spec ck_crash;
    ck_crash.unflushed = rng() % 2 ? ktm::io::crash_spec::writes::lost : ktm::io::crash_spec::writes::random_subset;
    ck_crash.seed = seed * 6007 + static_cast<std::uint64_t>(round);
    if (crash_round && !crash_in_checkpoint) {
      ktm::io::crash_spec c;
      c.unflushed = rng() % 2 ? ktm::io::crash_spec::writes::lost : ktm::io::crash_spec::writes::random_subset;
      c.seed = seed * 7919 + static_cast<std::uint64_t>(round);
      const auto kind = rng() % 2 ? ktm::io::call_kind::write : ktm::io::call_kind::flush;
      st.controller()->crash_at(kind, 1 + rng() % (kind == ktm::io::call_kind::write ? 400 : 150), c, rng() % 2 == 0);
    }
    round_shared sh;
    std::atomic<bool> crashed{false}, stop_ck{false};
    std::vector<std::thread> ts;
    for (int t = 0; t < threads; ++t)
      ts.emplace_back([&, t] {
        client(*sys, st, sh, seed, round, t, per_thread, nmaps, t * shift, key_width, crashed);
        ++sh.done;
      });
    std::thread ck([&] {  // restart areas while transactions run
      std::mt19937_64 r2(seed * 31 + static_cast<std::uint64_t>(round));
      int ck_calls = 0;
      while (!stop_ck) {
        std::this_thread::sleep_for(std::chrono::microseconds(r2() % 3000));
        if (stop_ck || st.controller()->crashes() != 0) break;
        const auto which = r2() % static_cast<std::uint64_t>(nmaps + 1);
        if (crash_in_checkpoint && ++ck_calls == 3)  // a crash among this checkpoint's writes (or soon after)
          st.controller()->crash_at(ktm::io::call_kind::write, 1 + r2() % 6, ck_crash, r2() % 2 == 0);
        bool okc = which == static_cast<std::uint64_t>(nmaps) ? static_cast<bool>(sys->tm->checkpoint())
                                                               : static_cast<bool>(sys->maps[which]->checkpoint());
        if (!okc && st.controller()->crashes() == 0) sh.fail("checkpoint failed without a crash");
        ++stt.checkpoints;
      }
      ++sh.done;
    });
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    while (sh.done < threads && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    stop_ck = true;
    while (sh.done < threads + 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    if (sh.done < threads + 1) {
      std::fprintf(stderr, "random_map_test: seed %llu round %d: client threads hang (more than 60 s)\n",
                   static_cast<unsigned long long>(seed), round);
      std::fflush(stderr);
      std::abort();
    }
    for (auto& t : ts) t.join();
    ck.join();
    const bool did_crash = st.controller()->crashes() != 0;
    st.controller()->clear_faults();
    stt.lock_timeouts += sh.lock_timeouts;
    for (const auto& t : sh.txs) fates[t.id] = {t.name, t.commit_called};
    for (const auto& t : sh.txs) {
      ++stt.txs;
      stt.acked += t.f == tx_record::fate::acked;
      stt.rolled += t.f == tx_record::fate::rolled_back;
    }
    const std::string where = "round " + std::to_string(round) + (did_crash ? " (crashed)" : "") + ": ";
    if (!sh.errors.empty()) return where + sh.errors.front();
    // reads of others' values: only values that were committed (or in flight at a crash)
    {
      std::map<std::string, tx_record::fate> fates;
      for (const auto& t : sh.txs) fates[t.name] = t.f;
      for (const auto& r : sh.reads) {
        const std::string w = writer_of(r.value);
        if (r.value.rfind("r" + std::to_string(round) + "t", 0) != 0) continue;  // an earlier round's
        auto f = fates.find(w);
        if (f == fates.end() || f->second == tx_record::fate::rolled_back)
          return where + r.reader + " read " + r.key + " = " + r.value + " written by a transaction that did not commit";
      }
    }
    std::vector<const tx_record*> acked, uncertain;
    for (const auto& t : sh.txs) {
      if (t.writes.empty()) continue;
      if (t.f == tx_record::fate::acked) acked.push_back(&t);
      else if (t.f == tx_record::fate::uncertain) uncertain.push_back(&t);
    }
    if (!did_crash) {
      // a timed-out transaction's rollback may still be running in the TM's timer thread
      const auto until = std::chrono::steady_clock::now() + 2s;
      // transactions with a TM timeout (earlier rounds' too: a leaked lock stays until a reopen)
      for (const auto& t : sh.txs)
        if (t.trace.rfind("timeout", 0) == 0) timed.insert(t.id);
      auto leaked = [&](map_t& m) {  // locks held by someone, not counting tolerated leaks
        std::size_t n = m.locks().size();
        if (tolerate_known())
          for (int k = 0; k < 12; ++k)
            if (auto o = m.locks().owner("k" + std::to_string(k)); o && timed.count(*o)) --n;
        return n;
      };
      auto live = [&](map_t& m) {  // change-log entries left, not counting tolerated leaks (third bug)
        return tolerate_known() && !timed.empty() ? 0 : m.changes().live_transactions();
      };
      auto quiet = [&] {
        for (auto& m : sys->maps)
          if (leaked(*m) != 0 || live(*m) != 0) return false;
        return true;
      };
      while (!quiet() && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(1ms);
      for (int i = 0; i < nmaps; ++i) {
        auto& m = *sys->maps[static_cast<std::size_t>(i)];
        if (leaked(m) != 0) {
          std::string who;
          for (int k = 0; k < 12; ++k)
            if (auto o = m.locks().owner("k" + std::to_string(k))) {
              who += " k" + std::to_string(k) + " held by";
              for (const auto& t : sh.txs)
                if (t.id == *o) who += " " + t.name + " [" + t.trace + "]";
            }
          return where + "map " + map_names[i] + " keeps " + std::to_string(m.locks().size()) +
                 " locks after every transaction ended:" + who;
        }
        if (live(m) != 0)
          return where + "map " + map_names[i] + " keeps " + std::to_string(m.changes().live_transactions()) +
                 " live transactions in its change log after every transaction ended";
      }
      if (!uncertain.empty()) return where + "uncertain commits without a crash";
      const state want = expected(model, acked);
      const state got = sys->snapshot();
      if (got != want) return where + "live maps differ from the reference model\n got:  " + show(got) + "\n want: " + show(want);
      model = want;
    }
    // sometimes crash between rounds too, and always reopen after a crash
    const bool reopen = did_crash || rng() % 3 == 0;
    if (!reopen) continue;
    if (!did_crash) {
      ktm::io::crash_spec c;
      c.unflushed = rng() % 2 ? ktm::io::crash_spec::writes::lost : ktm::io::crash_spec::writes::random_subset;
      c.seed = seed * 104729 + static_cast<std::uint64_t>(round);
      st.controller()->crash(c);
      st.controller()->clear_faults();
    }
    ++stt.crashes;
    timed.clear();
    sys.reset();
    for (int attempt = 0;; ++attempt) {
      const bool crash_recovery = attempt < 3 && rng() % 3 == 0;
      const auto before = st.controller()->crashes();
      if (crash_recovery) {
        ktm::io::crash_spec c;
        c.unflushed = rng() % 2 ? ktm::io::crash_spec::writes::lost : ktm::io::crash_spec::writes::random_subset;
        c.seed = seed * 15485863 + static_cast<std::uint64_t>(round * 10 + attempt);
        const auto kinds = rng() % 3;
        const auto kind = kinds == 0 ? ktm::io::call_kind::write
                          : kinds == 1 ? ktm::io::call_kind::flush
                                       : ktm::io::call_kind::read;
        st.controller()->crash_at(kind, 1 + rng() % 30, c, rng() % 2 == 0);
      }
      sys = std::make_unique<rig>();
      const bool opened = sys->open(st, false, tm_id, ids, mo, true);
      const bool crashed_now = st.controller()->crashes() != before;
      st.controller()->clear_faults();
      if (crashed_now) {
        ++stt.recovery_crashes;
        sys.reset();
        continue;
      }
      if (!opened) return where + "recovery failed: " + sys->error;
      break;
    }
    stt.in_doubt += static_cast<int>(sys->in_doubt.size());
    for (const auto& d : sys->in_doubt) {  // in doubt: prepared, so its client asked to commit
      auto f = fates.find(d.uow);
      if (f == fates.end()) return where + "recovery found an in-doubt transaction no client ran";
      if (!f->second.second)
        return where + "recovery found " + f->second.first + " in doubt, but its client never committed it";
    }
    fates.clear();
    const state got = sys->snapshot();
    if (uncertain.size() > 12) {
      return where + "too many uncertain commits to check (" + std::to_string(uncertain.size()) + ")";
    }
    bool found = false;
    for (std::uint64_t mask = 0; mask < (1ull << uncertain.size()) && !found; ++mask) {
      std::vector<const tx_record*> c = acked;
      for (std::size_t i = 0; i < uncertain.size(); ++i)
        if (mask >> i & 1) c.push_back(uncertain[i]);
      if (expected(model, c) == got) {
        found = true;
        stt.in_flight_kept += std::popcount(mask);
      }
    }
    if (!found)
      return where + "recovered maps are not the acknowledged commits plus a subset of the " +
             std::to_string(uncertain.size()) + " in flight\n got:  " + show(got) +
             "\n acked only: " + show(expected(model, acked));
    model = got;
  }
  return {};
}

}  // namespace

TEST_CASE("concurrent transactions on several maps with checkpoints and crashes match the serial reference model") {
  std::vector<std::uint64_t> seeds;
  if (const auto one = env_u64("KTM_RM_RANDOM_SEED", 0); one != 0) seeds.push_back(one);
  else
    for (std::uint64_t s = 1, n = env_u64("KTM_RM_RANDOM_SEEDS", 10); s <= n; ++s) seeds.push_back(s);
  stats stt;
  for (const auto seed : seeds) {
    const std::string err = run_seed(seed, stt);
    if (!err.empty()) std::printf("random_map_test: FAILED seed %llu (KTM_RM_RANDOM_SEED=%llu): %s\n",
                                  static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
                                  err.c_str());
    INFO("seed " << seed << " (KTM_RM_RANDOM_SEED=" << seed << " replays it)");
    REQUIRE(err == "");
  }
  std::printf(
      "random map test: %zu seeds, %d rounds, %d transactions (%d acked, %d rolled back), %d crashes, "
      "%d lock timeouts, %d crashes during recovery, %d in-doubt found, %d in-flight commits kept, %d checkpoints\n",
      seeds.size(), stt.rounds, stt.txs, stt.acked, stt.rolled, stt.crashes, stt.lock_timeouts, stt.recovery_crashes, stt.in_doubt,
      stt.in_flight_kept, stt.checkpoints);
  CHECK(stt.txs > 0);
}

// ---- the bugs the random test found, pinned deterministically ----

namespace {

struct one_map {
  fstore st{ktm::io::memory_storage(), std::make_shared<ktm::io::fault_controller>()};
  rig sys;
  explicit one_map(std::chrono::milliseconds lock_timeout) {
    ktm::rm::transactional_map_options mo;
    mo.lock_timeout = lock_timeout;
    INFO(sys.error);
    REQUIRE(sys.open(st, true, ktm::guid::generate(), {ktm::guid::generate()}, mo, true));
  }
  map_t& map() { return *sys.maps[0]; }
  tm_t& tm() { return *sys.tm; }
};

}  // namespace

// Found by the random test (seeds 2 and 6), fixed: get_for_update checked
// that the transaction was live, then waited for the lock outside the map's
// mutex; a TM timeout's rollback meanwhile released the transaction's locks,
// and the finished transaction then took the lock for good. lock() now
// rechecks after taking it and releases it for a finished transaction.
TEST_CASE("get_for_update waiting for a lock while a TM timeout rolls its transaction back must not keep the lock") {
  one_map w(2000ms);
  auto holder = w.tm().begin();
  REQUIRE(w.map().put(holder, "k", "holder"));
  auto victim = w.tm().begin();
  const ktm::guid victim_id = victim.id();
  REQUIRE(w.map().put(victim, "other", "victim"));  // enlisted
  REQUIRE(victim.set_timeout(30ms));
  std::atomic<bool> holder_committed{false};
  std::thread t([&] {
    std::this_thread::sleep_for(200ms);  // well after the victim's timeout
    holder_committed = static_cast<bool>(holder.commit());
  });
  auto r = w.map().get_for_update(victim, "k");  // waits for the holder (at most 2 s)
  t.join();
  REQUIRE(holder_committed);
  (void)victim.rollback();  // rolled back by its timeout already
  INFO("get_for_update answered " << (r ? std::string("a value") : r.error().message()));
  CHECK(w.map().locks().owner("other") == std::nullopt);
  CHECK(w.map().locks().owner("k") == std::nullopt);  // fails: the rolled-back victim owns it for good
  if (auto o = w.map().locks().owner("k")) CHECK(*o != victim_id);
}

// Found by the random test (seed 12), fixed: after a TM timeout rolled the
// transaction back, get in that transaction found no write set and read the
// committed store, with no error. It now answers transaction_aborted, as
// get_for_update and put do.
TEST_CASE("a get after a TM timeout rolled the transaction back must not silently return another value than its own write") {
  one_map w(200ms);
  {
    auto tx = w.tm().begin();
    REQUIRE(w.map().put(tx, "k", "committed"));
    REQUIRE(tx.commit());
  }
  auto tx = w.tm().begin();
  REQUIRE(w.map().put(tx, "k", "mine"));
  REQUIRE(w.map().get(tx, "k").value() == std::optional<std::string>("mine"));
  REQUIRE(tx.set_timeout(10ms));
  const auto until = std::chrono::steady_clock::now() + 2s;
  while (w.map().changes().live_transactions() != 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(1ms);
  REQUIRE(w.map().changes().live_transactions() == 0);  // the timeout rolled it back
  CHECK(w.map().get_for_update(tx, "k").code() == ktm::errc::transaction_aborted);
  auto r = w.map().get(tx, "k");
  INFO("get answered " << (r ? r->value_or("<none>") : r.error().message()));
  CHECK((!r || *r == std::optional<std::string>("mine")));  // fails: "committed", no error
}

// Found by the random test under TSan (seed 89), fixed: finish() rolled the
// change log back before it marked the transaction finished, so a put whose
// change-log entry landed in between saw the transaction live and left that
// entry (and its reserved outcome record) behind, pinning the stream's base
// for good. finish() now marks the transaction finished first.
TEST_CASE("a put racing the rollback of a TM timeout leaves no live transaction in the change log") {
  one_map w(50ms);
  std::mt19937_64 rng(env_u64("KTM_RM_RANDOM_SEED", 1));
  const auto until = std::chrono::steady_clock::now() + 3s;
  int attempts = 0;
  std::size_t leaked = 0;
  while (std::chrono::steady_clock::now() < until && leaked == 0) {
    ++attempts;
    auto tx = w.tm().begin();
    {
      auto first = w.map().put(tx, "k0", "v");  // enlisted
      INFO("attempt " << attempts << ": the first put: " << (first ? "" : first.error().message()) << "; k0 owner "
                      << (w.map().locks().owner("k0") ? "someone" : "none") << "; locks " << w.map().locks().size()
                      << "; live " << w.map().changes().live_transactions());
      REQUIRE(first);
    }
    REQUIRE(tx.set_timeout(std::chrono::microseconds(20 + rng() % 400)));
    for (int i = 1; i < 400; ++i)
      if (!w.map().put(tx, "k" + std::to_string(i % 50), "v" + std::to_string(i))) break;
    (void)tx.rollback();
    leaked = w.map().changes().live_transactions();
    REQUIRE(w.map().checkpoint());  // lets the log truncate (a leaked entry would pin it)
  }
  INFO(attempts << " attempts");
  CHECK(leaked == 0);
  CHECK(w.map().locks().size() == 0);
}
