// Containers across crashes: recycling (logical -> physical mapping), adding
// and removing containers, and directory operations lost at a crash
// (reliability matrix row 3).
//
// The workload: one stream in a log of 4 KiB containers that recycles them
// (its base follows its records), grows when full and removes free
// containers, with a crash at a seeded point (before or after the nth open,
// write or flush) and sessions on top of each other. The oracle after every
// crash:
//   - the log reopens (tolerate mode);
//   - no two containers of the map hold the same logical id, and no two
//     container files carry a valid header for the same logical id in the
//     same epoch (one session assigns a logical id once: two free containers
//     never claim the same successor);
//   - every container the base file records exists;
//   - the records read back are consecutive numbers, and hold every record
//     that was acknowledged (forced, or flushed, and the call returned).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>

#include "ktm/io/fault_injection.hpp"
#include "ktm/log/container_set.hpp"
#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::crash_test_names;
using flog = ktm::log::log<fstore, tolerate_corrupted_tail>;

namespace {

log_options recycling_options() {
  auto o = ktm::test::small_log_options();  // blocks of 1 KiB, containers of 4 KiB
  o.containers = 2;
  o.grow = true;
  o.max_containers = 5;
  return o;
}

struct oracle {
  long next = 0;      // number of the next record appended
  long acked = -1;    // every record <= acked is acknowledged
  long appended = -1;
};

// One session of the workload; returns at the first failure (a crash).
void session(flog& lg, oracle& m, std::mt19937_64& rng, int steps) {
  auto s = lg.open_stream("s");
  if (!s) s = lg.create_stream("s");
  if (!s) return;
  auto ma = s->marshalling_area();
  if (!ma) return;
  std::map<long, lsn> at;
  for (int i = 0; i < steps; ++i) {
    const int op = static_cast<int>(rng() % 100);
    if (op < 80) {
      const bool force = op < 30;
      const std::string p = std::to_string(m.next) + "#" + std::string(rng() % 200, 'r');
      auto r = ma->append(as_bytes(p), record_type::data, force ? append_flags::force : append_flags::none);
      if (!r) {
        if (r.code() != errc::log_full && r.code() != errc::tail_pinned) return;
        if (!s->advance_base(s->last_lsn())) return;  // recycle: everything before the last record
        continue;
      }
      at[m.next] = *r;
      m.appended = m.next++;
      if (force) m.acked = m.appended;
    } else if (op < 88) {
      if (!lg.flush_all()) return;
      m.acked = m.appended;
    } else if (op < 94) {
      if (!at.empty() && !s->advance_base(at.rbegin()->second)) return;
    } else {
      // remove a free container if there is one (errors other than "in use"
      // or "too few" are the crash)
      for (const auto& c : lg.containers()) {
        auto r = lg.remove_container(c.physical_id);
        if (r) break;
        if (r.code() != errc::container_in_use && r.code() != errc::too_few_containers &&
            r.code() != errc::invalid_argument)
          return;
      }
    }
  }
}

// No two valid container headers on disk name the same logical id in the
// same epoch; no two map entries hold the same logical id; every container
// the map records exists.
void check_containers(fstore& st, flog& lg) {
  std::set<std::uint32_t> held;
  for (const auto& c : lg.containers()) {
    INFO("container " << c.physical_id);
    CHECK(st.exists(detail::container_file_name("l", c.physical_id)));
    if (c.logical_id != format::no_logical) CHECK(held.insert(c.logical_id).second);
  }
  std::set<std::pair<std::uint32_t, std::uint32_t>> claims;  // (logical, epoch)
  for (const auto& name : st.inner().names()) {
    if (name.rfind("l.c", 0) != 0) continue;
    const auto physical = static_cast<std::uint32_t>(std::strtoul(name.c_str() + 3, nullptr, 10));
    const auto& b = ktm::test::bytes_of(st.inner(), name);
    if (b.size() < format::ch::size) continue;
    detail::geometry g{};
    g.log_id = format::load64(b.data() + format::ch::log_id);
    g.container_size = static_cast<std::uint32_t>(b.size());
    auto h = detail::decode_container_header(b.data(), g, physical);
    if (!h || h->logical_id == format::no_logical) continue;
    INFO("file " << name << " claims logical " << h->logical_id << " in epoch " << h->epoch);
    CHECK(claims.insert(std::make_pair(h->logical_id, h->epoch)).second);
  }
}

// Reopens and checks the oracle; keeps in `m` what the log now holds.
void verify(fstore& st, oracle& m) {
  auto lg = flog::open(st, "l", recycling_options());
  INFO("reopen: " << (lg ? std::string("ok") : lg.error().message()));
  REQUIRE(lg);
  check_containers(st, *lg);
  long last = -1;
  if (auto s = lg->open_stream("s")) {
    long prev = -1;
    auto view = s->read_forward();
    for (const log_record& r : view) {
      const long n = std::strtol(as_string(r.payload).c_str(), nullptr, 10);
      if (prev >= 0) CHECK(n == prev + 1);  // consecutive: nothing lost in between
      prev = last = n;
    }
    CHECK(view.ok());
  }
  CHECK(last >= m.acked);  // every acknowledged record is there
  m.appended = last;
  m.next = last + 1;
  m.acked = last;
}

// Seeds: short by default, KTM_LONG_TORTURE=1 for many more.
std::uint64_t seeds() { return std::getenv("KTM_LONG_TORTURE") ? 2000 : 120; }

// Runs three sessions per seed, each ended by a crash at a seeded call.
template <class Setup>
int crash_sessions(Setup&& setup) {
  int crashed = 0;
  for (std::uint64_t seed = 1; seed <= seeds(); ++seed) {
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    fstore st(memory_storage(), std::make_shared<fault_controller>());
    setup(st);
    oracle m;
    for (int round = 0; round < 3; ++round) {
      INFO("round " << round);
      const auto crashes0 = st.controller()->crashes();
      crash_spec c;
      c.unflushed = rng() % 2 ? crash_spec::writes::lost : crash_spec::writes::random_subset;
      c.unsynced_directory = rng() % 2 ? crash_spec::writes::lost : crash_spec::writes::random_subset;
      c.seed = rng();
      const call_kind kinds[] = {call_kind::open, call_kind::write, call_kind::flush};
      st.controller()->crash_at(kinds[rng() % 3], 1 + rng() % 60, c, rng() % 2 == 1);
      bool created = round > 0;
      {
        auto lg = round == 0 ? flog::create(st, "l", recycling_options()) : flog::open(st, "l", recycling_options());
        created = created || static_cast<bool>(lg);
        if (lg) session(*lg, m, rng, 150);
      }
      st.controller()->clear_faults();
      if (st.controller()->crashes() == crashes0) st.controller()->crash(c);
      ++crashed;
      if (!created) {  // the create itself did not return: a complete empty log or no log
        auto lg = flog::open(st, "l", recycling_options());
        if (!lg)
          CHECK((lg.code() == errc::not_found || lg.code() == errc::incomplete_log));
        break;
      }
      verify(st, m);
    }
  }
  return crashed;
}

}  // namespace

TEST_CASE("two free containers never claim the same successor; whatever crash recycling and growing meet") {
  const int crashed = crash_sessions([](fstore&) {});
  CHECK(crashed >= static_cast<int>(seeds()));
}

TEST_CASE("the log survives directory operations lost at a crash when the directory was not synced") {
  const int crashed =
      crash_sessions([](fstore& st) { st.set_directory_sync(fstore::directory_sync::explicit_only); });
  CHECK(crashed >= static_cast<int>(seeds()));
}

TEST_CASE("a container file left by an add that crashed before the base file recorded it is taken over") {
  fstore st(memory_storage(), std::make_shared<fault_controller>());
  auto o = recycling_options();
  o.grow = false;
  {
    auto lg = flog::create(st, "l", o);
    REQUIRE(lg);
  }
  // what an add that died after creating its file leaves: the next file
  // number exists, half written, and the base file does not record it
  {
    auto d = st.open("l.c2", ktm::open_mode::create_new);
    REQUIRE(d);
    REQUIRE(!d->grow(512));
    REQUIRE(!d->write(0, as_bytes(std::string(512, 'x'))));
  }
  auto lg = flog::open(st, "l", o);
  REQUIRE(lg);
  CHECK(lg->containers().size() == 2);
  REQUIRE(lg->add_container());  // not already_exists
  CHECK(lg->containers().size() == 3);
  auto s = lg->create_stream("s");
  REQUIRE(s);
  auto ma = s->marshalling_area();
  REQUIRE(ma);
  for (int i = 0; i < 6; ++i)
    REQUIRE(ma->append(as_bytes(std::string(300, 'r')), record_type::data, append_flags::force));
  REQUIRE(lg->close());
  auto again = flog::open(st, "l", o);
  REQUIRE(again);
  CHECK(again->containers().size() == 3);
}

TEST_CASE("a container add whose directory entry was never synced is not recorded in the base file") {
  fstore st(memory_storage(), std::make_shared<fault_controller>());
  st.set_directory_sync(fstore::directory_sync::explicit_only);
  auto o = recycling_options();
  auto lg = flog::create(st, "l", o);
  REQUIRE(lg);
  CHECK(st.unsynced_directory_ops() == 0);  // create synced the base file's and containers' names
  const auto syncs = st.directory_syncs();
  REQUIRE(lg->add_container());
  CHECK(st.directory_syncs() == syncs + 1);  // before the base file recorded it
  CHECK(st.unsynced_directory_ops() == 0);
  REQUIRE(lg->remove_container(2));
  CHECK(st.unsynced_directory_ops() == 0);
}
