// The reliability matrix (doc: /reference/reliability.md) for the log, through
// ktm::io::fault_injection_storage: row 2 (lost unsynced writes), row 4 (torn
// or garbage last write, damage to a neighbouring sector), row 7 (EIO and
// ENOSPC at every I/O call, once and persistent) and row 10 (many threads
// appending and forcing, with a crash in the middle). Row 9 (O_DIRECT) is in
// direct_io_test.cpp; row 3 (directory operations lost at a crash) in
// container_crash_test.cpp.
//
// The oracle of every row: a model of what was appended (per stream: LSN,
// type, payload) and the acknowledged bound (every record at or below it was
// covered by a durable call that returned success). After a crash the log
// must reopen in tolerate mode, every stream must read back as a prefix of
// what was appended (from its base), and that prefix must hold every
// acknowledged record.
#include <catch2/catch.hpp>

#include <cstdio>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "ktm/io/fault_injection.hpp"
#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::crash_test_names;
using ktm::io::fault;
using ktm::io::kind_set;
using ktm::io::persistence;
using flog = ktm::log::log<fstore, tolerate_corrupted_tail>;
using ma_t = ktm::log::marshalling_area<fstore>;
using stream_t = ktm::log::stream<fstore>;

namespace {

struct model_record {
  lsn at;
  record_type type;
  std::string payload;  // for a restart area: the caller's bytes
};

struct model {
  std::map<std::string, std::vector<model_record>> streams;
  std::map<std::string, lsn> acked_base;  // a base made durable by a later durable call
  std::map<std::string, lsn> pending_base;
  lsn acked;     // every record <= acked is acknowledged durable
  lsn appended;  // the largest LSN appended
  void add(const std::string& s, lsn at, record_type t, std::string p) {
    streams[s].push_back({at, t, std::move(p)});
    appended = std::max(appended, at);
  }
  void ack(lsn upto) {
    acked = std::max(acked, upto);
    for (auto& [s, b] : pending_base) acked_base[s] = std::max(acked_base[s], b);
  }
};

fstore make_store() { return fstore(memory_storage(), std::make_shared<fault_controller>()); }

log_options geometry() {
  auto o = ktm::test::small_log_options();  // blocks of 1 KiB, containers of 4 KiB
  o.containers = 3;
  return o;
}

// Reopens `st` in tolerate mode and checks every stream against `m`.
// Returns the number of acknowledged records found.
std::size_t verify(fstore& st, const model& m) {
  auto lg = flog::open(st, "l", geometry());
  INFO("reopen: " << (lg ? std::string("ok") : lg.error().message()));
  REQUIRE(lg);  // reopening never fails in tolerate mode
  const auto& rep = lg->recovery_report();
  if (rep.damaged) CHECK(rep.at > m.acked);  // a cut only ever drops unacknowledged blocks
  std::size_t found = 0;
  for (const auto& [name, recs] : m.streams) {
    auto s = lg->open_stream(name);
    REQUIRE(s);
    const lsn base = s->base_lsn();
    if (auto it = m.acked_base.find(name); it != m.acked_base.end()) CHECK(base >= it->second);
    std::vector<model_record> expect;
    for (const auto& r : recs)
      if (r.at >= base) expect.push_back(r);
    std::size_t i = 0;
    auto view = s->read_forward();
    for (const log_record& r : view) {
      INFO("stream " << name << " record " << i << " at " << r.at.to_string());
      REQUIRE(i < expect.size());  // nothing that was never appended
      CHECK(r.at == expect[i].at);
      CHECK(r.type == expect[i].type);
      std::string p = as_string(r.payload);
      if (r.type == record_type::restart) p = p.substr(8);
      CHECK(p == expect[i].payload);
      ++i;
    }
    CHECK(view.ok());
    // prefix-consistent and complete up to the acknowledged bound
    for (std::size_t k = i; k < expect.size(); ++k) {
      INFO("stream " << name << " lost record at " << expect[k].at.to_string());
      CHECK(expect[k].at > m.acked);
    }
    for (std::size_t k = 0; k < i; ++k) found += expect[k].at <= m.acked;
  }
  return found;
}

// A random workload over three streams: queued and forced appends, flushes,
// restart areas, base advances (so the log wraps over its containers).
// Stops at the first failure. Returns false if a call failed.
bool random_workload(flog& lg, model& m, std::mt19937_64& rng, int steps) {
  const char* names[] = {"a", "b", "c"};
  std::vector<stream_t> ss;
  std::vector<ma_t> mas;
  for (const char* n : names) {
    auto s = lg.open_stream(n);
    if (!s) s = lg.create_stream(n);
    if (!s) return false;
    ss.push_back(*s);
    auto ma = s->marshalling_area();
    if (!ma) return false;
    mas.push_back(std::move(*ma));
  }
  std::map<std::string, std::vector<lsn>> mine;
  auto advance_all = [&]() -> bool {
    for (std::size_t k = 0; k < ss.size(); ++k) {
      auto& v = m.streams[names[k]];
      if (v.empty()) continue;
      const lsn to = v.back().at;
      if (to <= ss[k].base_lsn()) continue;
      if (!ss[k].advance_base(to)) return false;
      m.pending_base[names[k]] = std::max(m.pending_base[names[k]], to);
    }
    return true;
  };
  for (int step = 0; step < steps; ++step) {
    const std::size_t k = rng() % ss.size();
    const std::string name = names[k];
    const int op = static_cast<int>(rng() % 100);
    const std::string payload = name + "#" + std::to_string(step) + std::string(rng() % 300, 'x');
    if (op < 70) {
      const bool force = op >= 50;
      auto r = mas[k].append(as_bytes(payload), record_type::data, force ? append_flags::force : append_flags::none);
      if (!r && r.code() == errc::log_full) {
        if (!advance_all()) return false;
        continue;
      }
      if (!r) return false;
      m.add(name, *r, record_type::data, payload);
      if (force) m.ack(*r);
    } else if (op < 78) {
      if (!lg.flush_all()) return false;
      m.ack(m.appended);
    } else if (op < 83) {
      auto& v = m.streams[name];
      if (v.empty()) continue;
      const lsn to = v[rng() % v.size()].at;
      if (!mas[k].flush_to_lsn(to)) return false;
      m.ack(to);
    } else if (op < 90) {
      auto& v = m.streams[name];
      std::optional<lsn> nb;
      if (!v.empty() && rng() % 2) nb = std::max(v[v.size() / 2].at, ss[k].base_lsn());
      auto r = mas[k].write_restart_area(as_bytes(payload), nb);
      if (!r && r.code() == errc::log_full) {
        if (!advance_all()) return false;
        continue;
      }
      if (!r) return false;
      m.add(name, *r, record_type::restart, payload);
      if (nb) m.pending_base[name] = std::max(m.pending_base[name], *nb);
      m.ack(*r);
    } else {
      if (!advance_all()) return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("row 2: a crash losing all or a random subset of unflushed writes keeps every acknowledged record") {
  int runs = 0, acked_found = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    INFO("seed " << seed);
    auto st = make_store();
    model m;
    std::mt19937_64 rng(seed);
    {
      auto lg = flog::create(st, "l", geometry());
      REQUIRE(lg);
      REQUIRE(random_workload(*lg, m, rng, 40 + static_cast<int>(rng() % 120)));
      crash_spec c;
      c.unflushed = seed % 2 ? crash_spec::writes::lost : crash_spec::writes::random_subset;
      c.seed = seed;
      st.controller()->crash(c);
    }  // handles go after the crash: their close fails, as on a dead machine
    acked_found += static_cast<int>(verify(st, m));
    // and the reopened log works: a second round on top, another crash
    {
      auto lg = flog::open(st, "l", geometry());
      REQUIRE(lg);
      model m2 = m;
      // what survived beyond the acknowledged bound may or may not be there: keep only
      // the acknowledged part in the model, and a fresh bound
      for (auto& [n, v] : m2.streams) {
        auto s = lg->open_stream(n);
        std::vector<model_record> keep;
        for (const auto& r : v)
          if (r.at <= s->last_lsn()) keep.push_back(r);
        v = keep;
      }
      m2.appended = lg->durable_lsn();
      REQUIRE(random_workload(*lg, m2, rng, 60));
      crash_spec c;
      c.unflushed = crash_spec::writes::random_subset;
      c.seed = seed * 7;
      st.controller()->crash(c);
      m = m2;
    }
    verify(st, m);
    ++runs;
  }
  CHECK(runs == 60);
  CHECK(acked_found > 100);
}

TEST_CASE("row 4: a torn or garbage last write is cut and reported; earlier records survive") {
  int damaged_reports = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    INFO("seed " << seed);
    auto st = make_store();
    model m;
    std::mt19937_64 rng(seed);
    {
      auto lg = flog::create(st, "l", geometry());
      REQUIRE(random_workload(*lg, m, rng, 30 + static_cast<int>(rng() % 60)));
      // one more block in flight: written (queued appends pushed out by a
      // non-durable read), never flushed
      auto s = lg->open_stream("a");
      for (const auto& r : s->read_forward()) (void)r;
      crash_spec c;
      c.unflushed = seed % 3 == 0 ? crash_spec::writes::kept : crash_spec::writes::lost;
      c.last_write = seed % 2 ? crash_spec::last::torn : crash_spec::last::garbage;
      c.seed = seed;
      st.controller()->crash(c);
    }
    auto lg = flog::open(st, "l", geometry());
    REQUIRE(lg);
    if (lg->recovery_report().damaged) {
      ++damaged_reports;
      const auto r = lg->recovery_report().reason;
      CHECK((r == errc::torn_write || r == errc::checksum_mismatch || r == errc::corrupt_record ||
             r == errc::corrupt_container));
      CHECK(lg->recovery_report().bytes_dropped > 0);
    }
    lg = ktm::failure(errc::invalid_argument);  // close it
    verify(st, m);
  }
  CHECK(damaged_reports > 0);
}

TEST_CASE("row 4: garbage in the appended region beyond the durable end is never taken for records") {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    auto st = make_store();
    model m;
    std::mt19937_64 rng(seed);
    lsn end;
    {
      auto lg = flog::create(st, "l", geometry());
      REQUIRE(random_workload(*lg, m, rng, 30 + static_cast<int>(rng() % 60)));
      REQUIRE(lg->flush_all());
      m.ack(m.appended);
      end = lg->durable_lsn();
      st.controller()->crash();
    }
    // garbage over one to three sectors somewhere after the durable end, in
    // the container it is in
    const std::string file = "l.c" + std::to_string([&] {
      auto lg = flog::open(st, "l", geometry());  // find the physical file of end's container
      for (auto c : lg->containers())
        if (c.logical_id == end.container()) return c.physical_id;
      return 0u;
    }());
    st.controller()->crash();  // the probe open wrote its base file; harmless
    const std::uint64_t from = end.block_byte_offset() + 512 * (rng() % 3);
    if (from + 512 <= 4096)
      REQUIRE_FALSE(st.controller()->garbage(file, from, std::min<std::uint64_t>(512 * (1 + rng() % 3), 4096 - from), seed));
    verify(st, m);
  }
}

TEST_CASE("row 4: damage to a neighbouring sector of acknowledged data is detected; never silently applied") {
  int detected = 0;
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    INFO("seed " << seed);
    auto st = make_store();
    model m;
    std::mt19937_64 rng(seed);
    lsn last_acked;
    std::uint32_t physical = 0;
    {
      auto o = geometry();
      o.containers = 8;  // room for the workload and the records below
      auto lg = flog::create(st, "l", o);
      REQUIRE(random_workload(*lg, m, rng, 20 + static_cast<int>(rng() % 40)));
      auto s = lg->open_stream("a");
      auto ma = s->marshalling_area();
      auto r = ma->append(as_bytes("the last acknowledged record"), record_type::data, append_flags::force);
      if (!r && r.code() == errc::log_full) {  // make room, then again
        for (const char* n : {"a", "b", "c"}) {
          auto sn = lg->open_stream(n);
          if (sn && !m.streams[n].empty() && m.streams[n].back().at > sn->base_lsn())
            REQUIRE(sn->advance_base(m.streams[n].back().at));
        }
        r = ma->append(as_bytes("the last acknowledged record"), record_type::data, append_flags::force);
      }
      INFO((r ? std::string() : r.error().message()));
      REQUIRE(r);
      m.add("a", *r, record_type::data, "the last acknowledged record");
      m.ack(*r);
      last_acked = *r;
      for (auto c : lg->containers())
        if (c.logical_id == r->container()) physical = c.physical_id;
      // the next write lands next to it and is torn by the crash
      REQUIRE(ma->append(as_bytes(std::string(600, 'n'))));
      for (const auto& x : s->read_forward()) (void)x;
      crash_spec c;
      c.last_write = crash_spec::last::torn;
      c.seed = seed;
      c.unflushed = crash_spec::writes::kept;
      st.controller()->crash(c);
    }
    // ... and damages the sector of the acknowledged block next to it
    REQUIRE_FALSE(st.controller()->flip_bit("l.c" + std::to_string(physical), last_acked.block_byte_offset() + 100, 3));
    auto lg = flog::open(st, "l", geometry());
    bool noticed = !lg;
    if (lg) {
      noticed = lg->recovery_report().damaged;
      for (const auto& [name, recs] : m.streams) {
        auto s = lg->open_stream(name);
        REQUIRE(s);
        std::vector<std::string> got;
        auto view = s->read_forward();
        for (const auto& r : view) got.push_back(as_string(r.payload));
        if (!view.ok()) noticed = true;
        bool has_last = false;
        for (const auto& r : s->read_forward()) has_last |= r.at == last_acked;
        if (name == "a" && !has_last) CHECK(noticed);  // lost, but never silently
      }
    } else {
      CHECK(lg.code().category() == ktm::error_category());
    }
    detected += noticed;
  }
  CHECK(detected == 40);
}

namespace {

// The fixed workload of row 7: every kind of call the log makes.
struct row7_outcome {
  model m;
  bool created = false;
  bool failed_op = false;       // some log call returned an error
  bool fail_stop_ok = true;     // after a failed write or flush, calls give log_failed
};

// Runs the workload; `io_failed()` says whether an injected fault fired on a
// write, flush or grow (the calls that make the log fail-stop).
template <class IoFailed>
void row7_workload(fstore& st, row7_outcome& out, IoFailed&& io_failed) {
  auto o = geometry();
  o.grow = true;
  o.max_containers = 5;
  model& m = out.m;
  auto note = [&](bool ok) {
    if (!ok) out.failed_op = true;
    return ok;
  };
  // After a failed write or flush of the log's own files the log is
  // fail-stop. (A failure while creating a new container only fails that
  // add_container: the file is removed and the log goes on.)
  auto check_fail_stop = [&](auto& ma, const char* name) {
    const std::string p = "after the failure";
    auto r = ma.append(as_bytes(p), record_type::data, append_flags::force);
    if (r) {
      m.add(name, *r, record_type::data, p);
      m.ack(*r);
    }
    if (io_failed() && (r || r.code() != errc::log_failed)) out.fail_stop_ok = false;
  };
  {
    auto lg = flog::create(st, "l", o);
    if (!note(static_cast<bool>(lg))) return;
    out.created = true;
    auto a = lg->create_stream("a");
    if (!note(static_cast<bool>(a))) return;
    auto b = lg->create_stream("b");
    if (!note(static_cast<bool>(b))) return;
    auto ma = a->marshalling_area();
    auto mb = b->marshalling_area();
    for (int i = 0; i < 10; ++i) {
      const std::string p = "a" + std::to_string(i) + std::string(100, 'p');
      auto r = ma->append(as_bytes(p));
      if (!note(static_cast<bool>(r))) return check_fail_stop(*ma, "a");
      m.add("a", *r, record_type::data, p);
      const std::string q = "b" + std::to_string(i);
      auto f = mb->append(as_bytes(q), record_type::data, append_flags::force);
      if (!note(static_cast<bool>(f))) return check_fail_stop(*ma, "a");
      m.add("b", *f, record_type::data, q);
      m.ack(*f);
    }
    auto ra = ma->write_restart_area(as_bytes("restart"), m.streams["a"][3].at);
    if (!note(static_cast<bool>(ra))) return check_fail_stop(*mb, "b");
    m.add("a", *ra, record_type::restart, "restart");
    m.ack(*ra);
    if (!note(static_cast<bool>(lg->add_container()))) return check_fail_stop(*mb, "b");
    if (!note(static_cast<bool>(mb->reserve(1, 64)))) return check_fail_stop(*mb, "b");
    auto u = mb->append(as_bytes("undo"), record_type::data, append_flags::use_reservation);
    if (!note(static_cast<bool>(u))) return check_fail_stop(*mb, "b");
    m.add("b", *u, record_type::data, "undo");
    if (!note(static_cast<bool>(b->advance_base(*u)))) return;
    if (!note(static_cast<bool>(lg->flush_all()))) return check_fail_stop(*ma, "a");
    m.ack(m.appended);
    m.acked_base["b"] = *u;
    for (int i = 0; i < 8; ++i) {  // enough to move into the next containers
      const std::string p = "a-more" + std::to_string(i) + std::string(400, 'q');
      auto r = ma->append(as_bytes(p), record_type::data, i % 3 == 2 ? append_flags::force : append_flags::none);
      if (!note(static_cast<bool>(r))) return check_fail_stop(*mb, "b");
      m.add("a", *r, record_type::data, p);
      if (i % 3 == 2) m.ack(*r);
    }
    ma = ktm::failure(errc::invalid_argument);
    mb = ktm::failure(errc::invalid_argument);
    if (!note(static_cast<bool>(lg->close()))) return;
    m.ack(m.appended);
  }
  {
    auto lg = flog::open(st, "l", o);
    if (!note(static_cast<bool>(lg))) return;
    auto a = lg->open_stream("a");
    if (!note(static_cast<bool>(a))) return;
    {
      auto view = a->read_forward();
      for (const auto& r : view) (void)r;
      if (!note(view.ok())) return;  // a failed read ends the view with its error
    }
    auto ma = a->marshalling_area();
    const std::string p = "after reopen";
    auto r = ma->append(as_bytes(p), record_type::data, append_flags::force);
    if (!note(static_cast<bool>(r))) return check_fail_stop(*ma, "a");
    m.add("a", *r, record_type::data, p);
    m.ack(*r);
    ma = ktm::failure(errc::invalid_argument);
    if (!note(static_cast<bool>(lg->close()))) return;
  }
}

}  // namespace

TEST_CASE("row 7: EIO or ENOSPC at every I/O call; once or persistent; is never acknowledged and loses nothing") {
  std::uint64_t calls = 0, dir_calls = 0;
  {
    auto st = make_store();
    row7_outcome out;
    row7_workload(st, out, [] { return false; });
    REQUIRE(out.created);
    REQUIRE_FALSE(out.failed_op);
    calls = st.controller()->counts().total();
    const auto c = st.controller()->counts();
    dir_calls = c.removes() + c.renames() + c.directory_syncs();
    verify(st, out.m);
  }
  INFO("the workload makes " << calls << " I/O calls");
  REQUIRE(calls > 50);
  int runs = 0, failed_runs = 0, fail_stops = 0;
  for (std::uint64_t n = 1; n <= calls; ++n) {
    for (errc e : {errc::io_error, errc::no_space}) {
      for (persistence p : {persistence::once, persistence::persistent}) {
        INFO("call " << n << " fails with " << ktm::make_error_code(e).message()
                     << (p == persistence::once ? " once" : " persistently"));
        auto st = make_store();
        int kind = -1;
        std::string device;
        fault f;
        f.kinds = kind_set::all();
        f.nth = n;
        f.error = e;
        f.lasting = p;
        f.when = [&](const ktm::io::call_info& ci) {
          kind = static_cast<int>(ci.kind);
          device = std::string(ci.device);
          return true;
        };
        const auto id = st.controller()->inject(std::move(f));
        row7_outcome out;
        row7_workload(st, out, [&] {
          // a write or flush of the base file or of a container of the log
          // (not one that add_container was creating: it removed that file)
          return (kind == int(call_kind::write) || kind == int(call_kind::flush)) && st.exists(device);
        });
        const bool fired = st.controller()->fired(id) > 0;
        CHECK(fired);
        if (fired) CHECK(out.failed_op);  // an injected error is never swallowed into a success
        CHECK(out.fail_stop_ok);
        if (out.fail_stop_ok && fired) ++fail_stops;
        failed_runs += out.failed_op;
        // the machine goes down: whatever was not flushed is gone
        st.controller()->clear_faults();
        st.controller()->crash();
        if (out.m.acked.is_null()) {
          // nothing acknowledged: a clean error or an empty log
          auto lg = flog::open(st, "l", geometry());
          if (!lg) CHECK(lg.code().category() == ktm::error_category());
        } else {
          verify(st, out.m);
        }
        ++runs;
      }
    }
  }
  std::printf("row 7: %llu I/O calls (%llu of them remove, rename or directory sync), %d runs, %d fail-stops\n",
              static_cast<unsigned long long>(calls), static_cast<unsigned long long>(dir_calls), runs, fail_stops);
  CHECK(runs == static_cast<int>(calls * 4));
  CHECK(failed_runs == runs);
  CHECK(fail_stops == runs);
}

namespace {
// Row 10's workload: 8 threads force records of length_of(thread, i) bytes
// into two streams of one log until a crash before one of the next device
// flushes; every acknowledged record must survive, whole and in order.
template <class LengthOf>
void many_threads_force_through_a_crash(LengthOf length_of, std::uint32_t container_size) {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    INFO("seed " << seed);
    auto st = make_store();
    constexpr int threads = 8, per = 60;
    struct ack {
      int thread, i;
      std::uint64_t start, end;
      lsn at;
    };
    std::vector<ack> acks;
    std::mutex acks_mu;
    std::atomic<std::uint64_t> clock{0};
    std::atomic<int> wrong_errors{0};
    {
      auto o = ktm::test::medium_log_options();
      o.container_size = container_size;
      auto lg = flog::create(st, "l", o);
      REQUIRE(lg);
      auto s1 = lg->create_stream("one");
      auto s2 = lg->create_stream("two");
      auto m1 = s1->marshalling_area();
      auto m2 = s2->marshalling_area();
      crash_spec c;
      c.unflushed = crash_spec::writes::random_subset;
      c.seed = seed;
      // crash before the 20th..70th device flush from now
      st.controller()->crash_at(call_kind::flush, 20 + seed * 8, c);
      std::vector<std::thread> ts;
      for (int t = 0; t < threads; ++t)
        ts.emplace_back([&, t] {
          auto& ma = t % 2 ? *m1 : *m2;
          for (int i = 0; i < per; ++i) {
            const std::string p = std::to_string(t) + ":" + std::to_string(i) + ":" + std::string(length_of(t, i), 'z');
            const auto start = clock++;
            auto r = ma.append(as_bytes(p), record_type::data, append_flags::force);
            const auto end = clock++;
            if (!r) {
              if (r.code() != errc::log_failed) ++wrong_errors;
              break;  // the machine is down
            }
            std::lock_guard g(acks_mu);
            acks.push_back({t, i, start, end, *r});
          }
        });
      for (auto& t : ts) t.join();
      REQUIRE(st.controller()->crashes() == 1);
    }
    CHECK(wrong_errors == 0);
    REQUIRE_FALSE(acks.empty());
    // acknowledgement order is log order
    int order_violations = 0;
    for (const auto& a : acks)
      for (const auto& b : acks)
        if (a.end < b.start && !(a.at < b.at)) ++order_violations;
    CHECK(order_violations == 0);
    // every acknowledged record survives, nothing is torn or interleaved
    auto lg = flog::open(st, "l");
    REQUIRE(lg);
    std::map<lsn, std::pair<int, int>> found;
    for (const char* name : {"one", "two"}) {
      std::vector<int> next(threads, 0);
      auto view = lg->open_stream(name)->read_forward();
      for (const auto& r : view) {
        const auto p = as_string(r.payload);
        const auto c1 = p.find(':'), c2 = p.find(':', c1 + 1);
        REQUIRE(c2 != std::string::npos);
        const int t = std::stoi(p.substr(0, c1)), i = std::stoi(p.substr(c1 + 1, c2 - c1 - 1));
        REQUIRE(t >= 0);
        REQUIRE(t < threads);
        CHECK(p.substr(c2 + 1) == std::string(length_of(t, i), 'z'));
        CHECK((t % 2 ? "one" : "two") == std::string(name));
        CHECK(i == next[static_cast<std::size_t>(t)]++);  // per thread: a prefix, in order
        found[r.at] = {t, i};
      }
      CHECK(view.ok());
    }
    for (const auto& a : acks) {
      auto it = found.find(a.at);
      REQUIRE(it != found.end());
      CHECK(it->second == std::make_pair(a.thread, a.i));
    }
  }
}
}  // namespace

TEST_CASE("row 10: many threads appending and forcing with a crash in the middle keep acknowledgement order") {
  many_threads_force_through_a_crash([](int t, int i) { return static_cast<std::size_t>(t * 7 + i % 13); }, 1u << 20);
}

TEST_CASE("row 10: the same with records of 4 KiB and more that append copies in outside the lock") {
  // 4096..7095 bytes: every record takes append's unlocked copy, most
  // blocks hold one record, and forcers seal blocks other threads copy into
  many_threads_force_through_a_crash(
      [](int t, int i) { return static_cast<std::size_t>(4096 + (t * 131 + i * 17) % 3000); }, 4u << 20);
}
