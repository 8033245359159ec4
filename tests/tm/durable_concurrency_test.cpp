// tests/tm/durable_concurrency_test.cpp: many threads committing on one
// durable TM whose stream shares a multiplexed log with two durable RMs
// (run under ThreadSanitizer: bazel test --config=tsan). Concurrent commits
// share device flushes (group commit), restart areas are written meanwhile,
// and a reopen recovers every acknowledged commit.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"
#include "tests/tm/durable_fixtures.hpp"

using namespace ktm::test;
using ktm::guid;
using ktm::io::memory_storage;
namespace kt = ktm::tm;

namespace {
using namespace memory_journals;
using tm_t = tm_of<kt::with_recovery<kt::replay_recovery<16>>>;
}  // namespace

TEST_CASE("many threads commit on one durable TM, sharing device flushes, and every acknowledged commit recovers") {
  constexpr int threads = 8, per_thread = 150;
  memory_storage st;
  const guid a_id = guid::generate(), b_id = guid::generate(), tm_id = guid::generate();
  std::vector<guid> acknowledged;
  std::uint64_t flushes = 0;
  {
    auto lg = log_t::create(st, "shared", durable_options());
    REQUIRE(lg);
    auto ts = lg->create_stream("tm");
    rm_a a(*lg->create_stream("a"), false, a_id);
    rm_b b(*lg->create_stream("b"), false, b_id);
    tm_t tm{kt::log_arg, *ts, tm_id, a, b};
    REQUIRE(tm.recover());
    std::mutex m;
    std::atomic<int> failures{0};
    const auto f0 = lg->device_flushes();
    std::vector<std::thread> pool;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] {
        for (int i = 0; i < per_thread; ++i) {
          auto tx = tm.begin();
          auto ea = tx.enlist(a);
          auto eb = i % 2 ? tx.enlist(b) : ktm::result<kt::enlistment_handle>(ktm::errc::rm_not_found);
          (void)tx.set_description("thread " + std::to_string(t));
          if (!ea || !tx.commit()) {
            failures.fetch_add(1);
            continue;
          }
          std::lock_guard g(m);
          acknowledged.push_back(tx.id());
        }
      });
    for (auto& th : pool) th.join();
    flushes = lg->device_flushes() - f0;
    CHECK(failures.load() == 0);
    CHECK(acknowledged.size() == threads * per_thread);
    CHECK(a.commits() == threads * per_thread);
    CHECK(b.commits() == threads * per_thread / 2);
    CHECK(tm.log().stats().pending == 0);
    CHECK(tm.log().stats().restart_areas > 0);
  }
  // at most one flush per commit plus one per restart area
  CHECK(flushes <= acknowledged.size() + acknowledged.size() / 16 + 1);
  auto lg = log_t::open(st, "shared", durable_options());
  REQUIRE(lg);
  rm_a a(*lg->open_stream("a"), false, a_id);
  rm_b b(*lg->open_stream("b"), false, b_id);
  tm_t tm{kt::log_arg, *lg->open_stream("tm"), tm_id, a, b};
  auto r = tm.recover();
  REQUIRE(r);
  CHECK(r->in_doubt == 0);  // a clean close: every end record made it
  CHECK(tm.virtual_clock() == threads * per_thread + 1);
}
