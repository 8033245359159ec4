// tests/crash/model_test.cpp: a seeded model-based property test
// (reliability.md, row 12). Random sequences of begin / put / erase /
// commit / rollback / crash over two transactional maps under the durable
// TM, on fault_injection_storage<memory_storage>; crashes lose unflushed
// writes (all, or a random subset), between operations or during a commit.
// After each crash and recovery the maps equal the reference model: every
// acknowledged commit, plus possibly the one commit in flight at the crash,
// nothing else. A failing seed is printed and replays exactly.
#include <catch2/catch.hpp>

#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"
#include "ktm/tm/durable_transaction_manager.hpp"
#include "tests/support/log_fixtures.hpp"

namespace {

using fstore = ktm::io::fault_injection_storage<ktm::io::memory_storage>;
using map_t = ktm::rm::transactional_map<fstore>;
using tm_t = ktm::tm::durable_transaction_manager<fstore, ktm::tm::with_storage<ktm::tm::dynamic_storage>>;
using state = std::map<std::string, std::string>;  // "<map>/<key>" -> value

ktm::log::log_options options() { return ktm::test::growing_log_options(); }

// The log, the TM and two maps, opened and recovered in that order.
struct rig {
  std::optional<ktm::log::log<fstore>> lg;
  std::unique_ptr<tm_t> tm;
  std::unique_ptr<map_t> a, b;
  ~rig() {
    tm.reset();  // before the maps it points to
  }

  rig(fstore& st, bool create, const ktm::guid& tm_id, const ktm::guid& a_id, const ktm::guid& b_id,
         std::uint64_t seed) {
    auto l = create ? ktm::log::log<fstore>::create(st, "model", options())
                    : ktm::log::log<fstore>::open(st, "model", options());
    INFO((l ? "" : l.error().message()));
    REQUIRE(l);
    lg.emplace(std::move(*l));
    auto stream = [&](const char* n) {
      auto s = create ? lg->create_stream(n) : lg->open_stream(n);
      REQUIRE(s);
      return *s;
    };
    ktm::rm::transactional_map_options mo;
    mo.prepare = ktm::rm::durability::queue_only;
    mo.checkpoint_every = seed % 3;  // 0 (on demand), 1 or 2
    auto make = [&](const char* n, const ktm::guid& id) {
      auto s = stream(n);
      auto w = s.marshalling_area();
      REQUIRE(w);
      auto m = std::make_unique<map_t>(s, std::move(*w), mo, id);
      REQUIRE(m->recover());
      REQUIRE(tm->add_resource_manager(*m));
      REQUIRE(tm->recover_resource_manager(*m));
      return m;
    };
    tm = std::make_unique<tm_t>(ktm::tm::log_arg, stream("tm"), tm_id);  // TM first: replay
    REQUIRE(tm->recover());
    a = make("a", a_id);
    b = make("b", b_id);
    for (map_t* m : {a.get(), b.get()})
      for (const auto& t : m->in_doubt())
        REQUIRE(m->resolve(t.uow, tm->recovered_outcome(t.uow) == ktm::tm::transaction_outcome::committed
                                      ? ktm::rm::outcome::commit
                                      : ktm::rm::outcome::abort));
  }
  state snapshot() const {
    state s;
    for (const auto& [k, v] : a->snapshot()) s["a/" + k] = v;
    for (const auto& [k, v] : b->snapshot()) s["b/" + k] = v;
    return s;
  }
};

void apply_writes(state& s, const std::map<std::string, std::optional<std::string>>& writes) {
  for (const auto& [k, v] : writes) {
    if (v) s[k] = *v;
    else s.erase(k);
  }
}

}  // namespace

TEST_CASE("random transactions with crashes recover to the reference model of their acknowledged commits") {
  int crashes = 0, in_flight_kept = 0, commits = 0;
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    INFO("seed " << seed << " (replay: the same seed gives the same run)");
    std::mt19937_64 rng(seed);
    fstore st(ktm::io::memory_storage(), std::make_shared<ktm::io::fault_controller>());
    const ktm::guid tm_id = ktm::guid::generate(), a_id = ktm::guid::generate(), b_id = ktm::guid::generate();
    state model;
    auto sys = std::make_unique<rig>(st, true, tm_id, a_id, b_id, seed);
    for (int op = 0; op < 60; ++op) {
      INFO("operation " << op);
      const auto dice = rng() % 10;
      if (dice < 7) {  // one transaction: a few writes, then commit or rollback
        const bool crash_inside = rng() % 8 == 0;
        if (crash_inside) {
          ktm::io::crash_spec c;
          c.unflushed = rng() % 2 ? ktm::io::crash_spec::writes::lost : ktm::io::crash_spec::writes::random_subset;
          c.seed = seed * 1000 + static_cast<std::uint64_t>(op);
          st.controller()->crash_at(ktm::io::call_kind::flush, 1, c);
        }
        auto tx = sys->tm->begin();
        std::map<std::string, std::optional<std::string>> writes;
        bool ok = true;
        for (int w = 0, n = 1 + static_cast<int>(rng() % 3); w < n && ok; ++w) {
          const bool in_a = rng() % 2;
          const std::string key = "k" + std::to_string(rng() % 5);
          map_t& m = in_a ? *sys->a : *sys->b;
          const std::string full = std::string(in_a ? "a/" : "b/") + key;
          if (rng() % 4 == 0) {
            ok = static_cast<bool>(m.erase(tx, key));
            writes[full] = std::nullopt;
          } else {
            const std::string v = std::to_string(seed) + "." + std::to_string(op) + "." + std::to_string(w);
            ok = static_cast<bool>(m.put(tx, key, v));
            writes[full] = v;
          }
        }
        const bool commit = ok && rng() % 5 != 0;
        bool acked = false;
        if (commit) acked = static_cast<bool>(tx.commit());
        else (void)tx.rollback();
        if (!crash_inside) {
          REQUIRE(acked == commit);
          if (acked) apply_writes(model, writes), ++commits;
          continue;
        }
        // the crash hit this commit (or the next flush): recover and compare
        if (st.controller()->crashes() == 0) st.controller()->crash(ktm::io::crash_spec{});
        st.controller()->clear_faults();
        sys.reset();
        ++crashes;
        sys = std::make_unique<rig>(st, false, tm_id, a_id, b_id, seed);
        state with = model;
        apply_writes(with, writes);
        const state got = sys->snapshot();
        if (acked) {
          REQUIRE(got == with);  // acknowledged: durable
          model = with;
        } else if (commit && got == with && got != model) {
          model = with;  // its commit record reached the disk before the crash
          ++in_flight_kept;
        } else {
          REQUIRE(got == model);
        }
        continue;
      }
      if (dice < 9) {  // crash between transactions, losing unflushed writes
        ktm::io::crash_spec c;
        c.unflushed = rng() % 2 ? ktm::io::crash_spec::writes::lost : ktm::io::crash_spec::writes::random_subset;
        c.seed = seed * 7919 + static_cast<std::uint64_t>(op);
        st.controller()->crash(c);
        st.controller()->clear_faults();
        sys.reset();
        ++crashes;
        sys = std::make_unique<rig>(st, false, tm_id, a_id, b_id, seed);
        REQUIRE(sys->snapshot() == model);
        continue;
      }
      REQUIRE(sys->a->checkpoint());  // sometimes a restart area by hand
      REQUIRE(sys->tm->checkpoint());
    }
  }
  std::printf("model test: %d commits, %d crashes, %d in-flight commits found durable\n", commits, crashes,
              in_flight_kept);
  CHECK(crashes > 100);
}
