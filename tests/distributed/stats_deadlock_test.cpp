// tests/distributed/stats_deadlock_test.cpp: a known defect, reproduced
// (tagged manual: it fails). durable_log::stats() takes the log's lock and
// then each recovered transaction's lock (recovered_transaction::ended());
// a recovered in-doubt transaction resolved by its superior's OUTCOME
// forces its commit record and delivers COMMIT to its RMs under its own
// lock, then appends its end record, which takes the log's lock. stats()
// on one thread while that runs on another: each holds the lock the other
// waits for.
//
// The RM's COMMIT handler (run under the recovered transaction's lock)
// starts stats() on another thread and gives it two seconds; then the
// delivery of the OUTCOME is given five seconds to finish. It never does:
// the process reports the deadlock and exits with 1 (a hung thread cannot
// be joined).
#include <catch2/catch.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>
#include <thread>

#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"

namespace kt = ktm::tm;
using io_t = ktm::io::posix_storage;
using namespace std::chrono_literals;

// The test leaks on purpose: the first TM "crashes" (nothing is closed) and
// the second may be deadlocked when the check fails. Its leaks are not
// reported (LeakSanitizer's built-in suppressions, used under --config=asan).
extern "C" const char* __lsan_default_suppressions() { return "leak:stats_deadlock_test.cpp\n"; }

namespace {

class hook_rm : public kt::resource_manager_base<kt::rm_kind::durable_rm> {
 public:
  explicit hook_rm(const ktm::guid& id) : resource_manager_base(id) {}
  std::function<void()> on_commit_hook;
  kt::reply on_prepare(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_commit(kt::enlistment&, const kt::notification&) {
    if (on_commit_hook) on_commit_hook();
    return kt::reply::done();
  }
  kt::reply on_rollback(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
};

using tm_t = kt::superior_transaction_manager<kt::with_transport<kt::in_process_transport>,
                                              kt::with_log<kt::durable_log_for<io_t>>,
                                              kt::with_recovery<kt::replay_recovery<1024, kt::wait_in_doubt>>,
                                              kt::with_storage<kt::dynamic_storage>>;

kt::superior_message msg(kt::superior_message_kind k, const ktm::guid& from, const ktm::guid& to, const ktm::guid& uow,
                         kt::transaction_outcome o = kt::transaction_outcome::undetermined) {
  kt::superior_message m;
  m.kind = k;
  m.from = from;
  m.to = to;
  m.uow = uow;
  m.outcome = o;
  m.clock = 1;
  return m;
}

}  // namespace

TEST_CASE("stats() while a recovered in-doubt transaction commits does not deadlock") {
  const char* t = std::getenv("TEST_TMPDIR");
  const std::filesystem::path dir = std::filesystem::path(t ? t : "/tmp") / "stats_deadlock";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const ktm::guid tm_id = ktm::guid::generate(), rm_id = ktm::guid::generate(), sup = ktm::guid::generate();
  ktm::guid uow;
  kt::in_process_transport bus;
  {  // a subordinate prepares, then "crashes": everything is leaked, nothing closed
    auto* io = new io_t(dir.string());
    auto* lg = new ktm::log::log<io_t>(ktm::log::log<io_t>::create(*io, "txlog").value());
    auto* ts = new ktm::log::stream<io_t>(lg->create_stream("tm").value());
    auto* rm = new hook_rm(rm_id);
    auto* tm = new tm_t(bus, kt::log_arg, *ts, tm_id);
    REQUIRE(tm->add_resource_manager(*rm));
    REQUIRE(tm->recover());
    uow = ktm::guid::generate();
    auto* tx = new tm_t::transaction(*tm, uow);
    REQUIRE(tm->enlist_superior(*tx, sup));
    auto e = tx->enlist(*rm);
    REQUIRE(e);
    e->release();
    tm->receive(msg(kt::superior_message_kind::preprepare, sup, tm_id, uow));
    tm->receive(msg(kt::superior_message_kind::prepare, sup, tm_id, uow));
    REQUIRE(tx->internal_state() == kt::tx_state::prepared);
    bus.detach(tm_id);
  }
  io_t io(dir.string());
  auto lg = ktm::log::log<io_t>::open(io, "txlog");
  REQUIRE(lg);
  auto ts = lg->open_stream("tm");
  REQUIRE(ts);
  hook_rm rm(rm_id);
  auto* tm = new tm_t(bus, kt::log_arg, *ts, tm_id);  // leaked: it may be deadlocked
  REQUIRE(tm->add_resource_manager(rm));
  auto r = tm->recover();
  REQUIRE(r);
  REQUIRE(r->in_doubt == 1);
  REQUIRE(tm->recover_resource_manager(rm));

  std::promise<void> stats_done;
  auto stats_returned = stats_done.get_future();
  bool stats_waited = false;
  rm.on_commit_hook = [&] {  // under the recovered transaction's lock
    std::thread([tm, &stats_done] {
      (void)tm->log().stats();
      stats_done.set_value();
    }).detach();
    stats_waited = stats_returned.wait_for(30s) != std::future_status::ready;
  };
  auto delivered = std::async(std::launch::async, [&] {
    tm->receive(msg(kt::superior_message_kind::outcome, sup, tm_id, uow, kt::transaction_outcome::committed));
  });
  if (delivered.wait_for(60s) != std::future_status::ready) {
    std::printf("DEADLOCK: stats() %s on the recovered transaction's lock while holding the log's; the "
                "transaction, ending, waits for the log's lock\n",
                stats_waited ? "waited" : "did not wait");
    std::fflush(stdout);
    std::_Exit(1);
  }
  CHECK(!stats_waited);
  CHECK(stats_returned.wait_for(30s) == std::future_status::ready);
}
