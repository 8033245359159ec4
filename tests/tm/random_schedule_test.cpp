// tests/tm/random_schedule_test.cpp: seeded random schedules over the
// transaction layer, checked against the protocol's invariants.
//
// Several client threads run many transactions at once on one TM, for every
// dispatcher (inline, queued with one thread per RM pulling its queue, thread
// pool) and storage (static, inline array, dynamic), and on a durable TM over
// fault injection in a multiplexed log. What every RM answers to every
// notification is drawn from the seed: done, read-only, rollback, reject
// (single phase) or an illegal reply; returned, answered through the
// enlistment from the handler, or answered late from another thread after a
// delay; with a virtual clock value or not; sometimes after a misuse (a
// reply the enlistment does not wait for), sometimes twice, sometimes by
// dropping its handle instead. Some RMs also read-only, roll back or drop
// their handle from another thread at a random moment, racing the client.
// Clients commit (sync, callback, future), roll back (the same three), let a
// short timeout expire, race a timeout, destroy the transaction undecided or
// in the middle of its commit, and misuse the API (enlist the same RM twice
// or past capacity, enlist after commit began, commit or roll back twice,
// set a timeout or description too late). In some seeds the volatile TM is
// shut down in the middle of the run, and on a registered storage one RM
// leaves the registry and rejoins it again and again meanwhile.
//
// The clients and RMs only record what they did and saw; the main thread
// checks the records once a run is over (Catch2 is not thread-safe):
//   - the client's result agrees with the outcome, an asynchronous completion
//     runs exactly once, a call that could not start never runs its completion;
//   - per enlistment: each notification at most once, never both COMMIT and
//     ROLLBACK, nothing after COMMIT or ROLLBACK, COMMIT only after PREPARE
//     answered prepared (as the mask asks), SINGLE_PHASE_COMMIT exactly when
//     one live enlistment asked for it and all others are read-only, nothing
//     after a read-only answer, ROLLBACK to every enlistment still active
//     when the transaction rolls back (not to one that rolled back itself);
//   - a rollback answer, a dropped handle or an expired timeout before the
//     prepare point gives a rolled-back outcome;
//   - the TM's virtual clock never goes back and covers every clock value an
//     RM passed back and the TM accepted; COMMIT is stamped after them;
//   - misuse gets a ktm error code (invalid_state, already_enlisted,
//     capacity_exhausted, too_large, ...) and the invariants above still hold;
//   - nothing hangs (every wait of the test is bounded; a watchdog aborts the
//     run, printing the seed and the transactions in progress, when no
//     transaction finishes for a while); nothing leaks (ASan).
// The durable TM fails stop at a seeded flush in half of the seeds, is then
// crashed and recovered: every acknowledged two-phase commit of a durable RM
// is recovered as committed with its RMs' prepare records durable, nothing
// else is, and only such transactions are redelivered.
//
// Knobs (environment): KTM_TM_SCHEDULE_SEED=s runs that seed only;
// KTM_TM_SCHEDULE_SEEDS=n runs n seeds (default 3) from KTM_TM_SCHEDULE_FIRST_SEED (1);
// KTM_TM_SCHEDULE_TXS (transactions per client thread and run, default 32),
// KTM_TM_SCHEDULE_THREADS (client threads, default 3),
// KTM_TM_SCHEDULE_WATCHDOG_S (seconds without progress before aborting, 120).
// A failure names its seed, dispatcher and storage, client thread and
// transaction, and that transaction's plan.
//
// What the schedules found is at the end of the file: one minimal
// TEST_CASE per library problem (each fixed since).
#include <catch2/catch.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/hana.hpp>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"
#include "tests/support/late_executor.hpp"
#include "tests/support/tm_fakes.hpp"
#include "tests/tm/durable_fixtures.hpp"

namespace {

namespace kt = ktm::tm;
using ktm::errc;
using ktm::guid;
using steady = std::chrono::steady_clock;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// ------------------------------------------------------------------ knobs

std::optional<std::uint64_t> env_number(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 0);
  if (end == v) return std::nullopt;
  return static_cast<std::uint64_t>(n);
}

struct knobs {
  std::vector<std::uint64_t> seeds;
  int threads = 3;
  int txs = 32;
  int watchdog_s = 120;
};

knobs read_knobs() {
  knobs k;
  if (auto s = env_number("KTM_TM_SCHEDULE_SEED")) {
    k.seeds = {*s};
  } else {
    const std::uint64_t n = env_number("KTM_TM_SCHEDULE_SEEDS").value_or(3);
    const std::uint64_t first = env_number("KTM_TM_SCHEDULE_FIRST_SEED").value_or(1);
    for (std::uint64_t i = 0; i < n; ++i) k.seeds.push_back(first + i);
  }
  if (auto t = env_number("KTM_TM_SCHEDULE_THREADS")) k.threads = std::max(1, static_cast<int>(*t));
  if (auto t = env_number("KTM_TM_SCHEDULE_TXS")) k.txs = static_cast<int>(*t);
  if (auto t = env_number("KTM_TM_SCHEDULE_WATCHDOG_S")) k.watchdog_s = std::max(1, static_cast<int>(*t));
  return k;
}


// How long the test waits for anything before it calls it a hang.
constexpr auto patience = std::chrono::seconds(30);

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  std::uint64_t z = a * 0x9e3779b97f4a7c15ull + b + 0x632be59bd9b4e019ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class dice {
 public:
  explicit dice(std::uint64_t seed) : g_(seed) {}
  int below(int n) { return static_cast<int>(g_() % static_cast<std::uint64_t>(n)); }
  bool chance(int percent) { return below(100) < percent; }

 private:
  std::mt19937_64 g_;
};

// One order for every event of every run: deliveries and answers are stamped
// with it, so the checks can tell what came after what.
std::atomic<std::uint64_t> g_seq{1};
std::uint64_t next_seq() { return g_seq.fetch_add(1, std::memory_order_acq_rel); }

const char* notify_name(kt::notify k) {
  switch (k) {
    case kt::notify::preprepare: return "PREPREPARE";
    case kt::notify::prepare: return "PREPARE";
    case kt::notify::commit: return "COMMIT";
    case kt::notify::rollback: return "ROLLBACK";
    case kt::notify::single_phase_commit: return "SINGLE_PHASE_COMMIT";
    case kt::notify::rm_disconnected: return "RM_DISCONNECTED";
    case kt::notify::none: return "(before commit)";
    default: return "other";
  }
}

const char* status_name(kt::enlistment_status s) {
  switch (s) {
    case kt::enlistment_status::unused: return "unused";
    case kt::enlistment_status::active: return "active";
    case kt::enlistment_status::read_only: return "read_only";
    case kt::enlistment_status::awaiting_preprepare: return "awaiting_preprepare";
    case kt::enlistment_status::preprepared: return "preprepared";
    case kt::enlistment_status::awaiting_prepare: return "awaiting_prepare";
    case kt::enlistment_status::prepared: return "prepared";
    case kt::enlistment_status::awaiting_single_phase: return "awaiting_single_phase";
    case kt::enlistment_status::awaiting_commit: return "awaiting_commit";
    case kt::enlistment_status::committed: return "committed";
    case kt::enlistment_status::needs_rollback: return "needs_rollback";
    case kt::enlistment_status::awaiting_rollback: return "awaiting_rollback";
    case kt::enlistment_status::rolled_back: return "rolled_back";
  }
  return "?";
}

const char* reason_name(kt::abort_reason r) {
  switch (r) {
    case kt::abort_reason::none: return "none";
    case kt::abort_reason::client: return "client";
    case kt::abort_reason::resource_manager: return "resource_manager";
    case kt::abort_reason::timeout: return "timeout";
    case kt::abort_reason::destroyed: return "destroyed";
    case kt::abort_reason::enlistment_dropped: return "enlistment_dropped";
    case kt::abort_reason::log_failure: return "log_failure";
    case kt::abort_reason::tm_offline: return "tm_offline";
    case kt::abort_reason::superior: return "superior";
  }
  return "?";
}

std::string code_name(const std::error_code& ec) { return ec ? ec.message() : std::string("success"); }

// ------------------------------------------------------------------ plans

// What an RM does with its enlistment: the reply calls, and dropping the handle.
enum class act : std::uint8_t {
  preprepare_complete,
  prepare_complete,
  commit_complete,
  rollback_complete,
  read_only,
  single_phase_reject,
  rollback,
  drop,
};

const char* act_name(act a) {
  switch (a) {
    case act::preprepare_complete: return "preprepare_complete";
    case act::prepare_complete: return "prepare_complete";
    case act::commit_complete: return "commit_complete";
    case act::rollback_complete: return "rollback_complete";
    case act::read_only: return "read_only";
    case act::single_phase_reject: return "single_phase_reject";
    case act::rollback: return "rollback";
    case act::drop: return "drop";
  }
  return "?";
}

ktm::result<void> call(kt::enlistment& e, act a, std::uint64_t clock) {
  switch (a) {
    case act::preprepare_complete: return e.preprepare_complete(clock);
    case act::prepare_complete: return e.prepare_complete(clock);
    case act::commit_complete: return e.commit_complete(clock);
    case act::rollback_complete: return e.rollback_complete(clock);
    case act::read_only: return e.read_only(clock);
    case act::single_phase_reject: return e.single_phase_reject(clock);
    case act::rollback: return e.rollback(clock);
    case act::drop: break;
  }
  return errc::invalid_argument;
}

// A reply call the enlistment never waits for while it waits for the answer
// to k, whatever else happens meanwhile (a rollback overtaking a delivery
// makes ROLLBACK the next wait: rollback_complete is left out before it).
act misuse_for(kt::notify k, unsigned pick) {
  static constexpr act pp[] = {act::prepare_complete, act::commit_complete, act::single_phase_reject};
  static constexpr act p[] = {act::preprepare_complete, act::commit_complete, act::single_phase_reject};
  static constexpr act spc[] = {act::preprepare_complete, act::prepare_complete, act::rollback_complete};
  static constexpr act c[] = {act::preprepare_complete, act::prepare_complete, act::rollback_complete,
                              act::read_only,           act::rollback,         act::single_phase_reject};
  static constexpr act rb[] = {act::preprepare_complete, act::prepare_complete, act::commit_complete,
                               act::read_only,           act::rollback,         act::single_phase_reject};
  switch (k) {
    case kt::notify::preprepare: return pp[pick % 3];
    case kt::notify::prepare: return p[pick % 3];
    case kt::notify::single_phase_commit: return spc[pick % 3];
    case kt::notify::commit: return c[pick % 6];
    default: return rb[pick % 6];
  }
}

enum class answer : std::uint8_t { done, read_only, rollback, reject, illegal };
enum class via : std::uint8_t { returned, through, late };

const char* answer_name(answer a) {
  switch (a) {
    case answer::done: return "done";
    case answer::read_only: return "ro";
    case answer::rollback: return "rb";
    case answer::reject: return "reject";
    case answer::illegal: return "illegal";
  }
  return "?";
}

// How one notification is answered.
struct step {
  answer what = answer::done;
  via how = via::returned;
  bool also_return = false;   // through: also returns the reply (the TM must drop it)
  bool misuse_first = false;  // first a reply call the enlistment does not wait for
  bool twice = false;         // the same reply call again afterwards
  bool drop = false;          // drops the handle instead of answering
  unsigned misuse_pick = 0;
  std::uint64_t clock_bump = 0;  // 0: no clock; else the notification's clock + bump
  int delay_us = 0;              // late: after this long
};

// The act a `what` answer to k stands for.
act act_for(kt::notify k, answer a) {
  switch (a) {
    case answer::done:
      switch (k) {
        case kt::notify::preprepare: return act::preprepare_complete;
        case kt::notify::prepare: return act::prepare_complete;
        case kt::notify::rollback: return act::rollback_complete;
        default: return act::commit_complete;  // COMMIT, SINGLE_PHASE_COMMIT
      }
    case answer::read_only: return act::read_only;
    case answer::rollback: return act::rollback;
    case answer::reject: return act::single_phase_reject;
    case answer::illegal:  // what the TM reads it as
      return k == kt::notify::preprepare || k == kt::notify::prepare ? act::rollback
                                                                      : act_for(k, answer::done);
  }
  return act::rollback;
}

// What an RM does with its enlistment before the client decides.
enum class before : std::uint8_t { nothing, read_only, rollback, drop, release };

const char* before_name(before b) {
  switch (b) {
    case before::nothing: return "-";
    case before::read_only: return "ro";
    case before::rollback: return "rb";
    case before::drop: return "drop";
    case before::release: return "release";
  }
  return "?";
}

struct enl_plan {
  int rm = 0;
  kt::notification_mask mask = kt::default_mask;
  before pre = before::nothing;
  std::uint64_t pre_clock_bump = 0;
  before racer = before::nothing;  // read_only, rollback or drop from another thread, racing the decision
  int racer_delay_us = 0;
  step pp, p, spc, c, rb;

  const step& for_kind(kt::notify k) const {
    static const step plain{};
    switch (k) {
      case kt::notify::preprepare: return pp;
      case kt::notify::prepare: return p;
      case kt::notify::single_phase_commit: return spc;
      case kt::notify::commit: return c;
      case kt::notify::rollback: return rb;
      default: return plain;
    }
  }
};

enum class client_act : std::uint8_t {
  commit_sync,
  commit_callback,
  commit_future,
  rollback_sync,
  rollback_callback,
  rollback_future,
  destroy_undecided,
  destroy_during_commit,
  timeout_expire,
};

const char* client_act_name(client_act a) {
  switch (a) {
    case client_act::commit_sync: return "commit";
    case client_act::commit_callback: return "commit_async(callback)";
    case client_act::commit_future: return "commit_async()";
    case client_act::rollback_sync: return "rollback";
    case client_act::rollback_callback: return "rollback_async(callback)";
    case client_act::rollback_future: return "rollback_async()";
    case client_act::destroy_undecided: return "destroy undecided";
    case client_act::destroy_during_commit: return "destroy during commit_async";
    case client_act::timeout_expire: return "let the timeout expire";
  }
  return "?";
}

bool is_commit(client_act a) {
  return a == client_act::commit_sync || a == client_act::commit_callback || a == client_act::commit_future ||
         a == client_act::destroy_during_commit;
}
bool is_rollback(client_act a) {
  return a == client_act::rollback_sync || a == client_act::rollback_callback || a == client_act::rollback_future;
}

struct tx_plan {
  client_act what = client_act::commit_sync;
  int timeout_us = -1;  // set_timeout before acting; -1: none
  int pause_us = 0;     // between set_timeout and the act
  bool misuse_after = false;
  bool enlist_twice = false;
  bool describe = false;  // set_description before deciding
  std::vector<enl_plan> enls;  // the enlistments tried, in order (may go past capacity)
};

std::string describe(const step& s) {
  std::ostringstream o;
  o << answer_name(s.what) << '/' << (s.how == via::returned ? "ret" : s.how == via::through ? "thr" : "late");
  if (s.how == via::late) o << s.delay_us << "us";
  if (s.also_return) o << "+ret";
  if (s.misuse_first) o << "+misuse";
  if (s.twice) o << "+twice";
  if (s.drop) o << "+drop";
  if (s.clock_bump) o << "+clk" << s.clock_bump;
  return o.str();
}

std::string describe(const tx_plan& p) {
  std::ostringstream o;
  o << client_act_name(p.what);
  if (p.timeout_us >= 0) o << " timeout=" << p.timeout_us << "us";
  if (p.pause_us) o << " pause=" << p.pause_us << "us";
  if (p.misuse_after) o << " misuse-after";
  if (p.enlist_twice) o << " enlist-twice";
  for (const enl_plan& e : p.enls) {
    o << " [rm" << e.rm << " mask=" << std::hex << e.mask.bits() << std::dec << " pre=" << before_name(e.pre);
    if (e.racer != before::nothing) o << " racer=" << before_name(e.racer) << '@' << e.racer_delay_us << "us";
    o
      << " pp=" << describe(e.pp) << " p=" << describe(e.p) << " spc=" << describe(e.spc) << " c=" << describe(e.c)
      << " rb=" << describe(e.rb) << ']';
  }
  return o.str();
}

step make_step(dice& d, kt::notify k) {
  step s;
  const int r = d.below(100);
  switch (k) {
    case kt::notify::preprepare:
    case kt::notify::prepare:
      s.what = r < 85 ? answer::done : r < 92 ? answer::read_only : r < 97 ? answer::rollback : answer::illegal;
      break;
    case kt::notify::single_phase_commit:
      s.what = r < 55 ? answer::done : r < 65 ? answer::read_only : r < 75 ? answer::rollback : answer::reject;
      break;
    default: s.what = r < 95 ? answer::done : answer::illegal; break;
  }
  const int h = d.below(100);
  s.how = h < 50 ? via::returned : h < 70 ? via::through : via::late;
  if (s.what == answer::illegal) s.how = via::returned;  // a returned reply only
  if (s.how == via::through) s.also_return = d.chance(15);
  if (s.how != via::returned) {
    s.misuse_first = d.chance(12);
    s.twice = d.chance(12);
    const bool may_drop =
        k == kt::notify::preprepare || k == kt::notify::prepare || k == kt::notify::single_phase_commit;
    s.drop = may_drop && d.chance(4);
  }
  s.misuse_pick = static_cast<unsigned>(d.below(6));
  s.clock_bump = d.chance(30) ? 1 + static_cast<std::uint64_t>(d.below(40)) : 0;
  s.delay_us = d.below(400);
  return s;
}

kt::notification_mask make_mask(dice& d) {
  std::uint32_t bits = kt::default_mask.bits();
  if (d.chance(30)) bits |= static_cast<std::uint32_t>(kt::notify::single_phase_commit);
  if (d.chance(50)) bits |= static_cast<std::uint32_t>(kt::notify::rm_disconnected);
  if (d.chance(6)) bits &= ~static_cast<std::uint32_t>(kt::notify::preprepare);
  if (d.chance(4)) bits &= ~static_cast<std::uint32_t>(kt::notify::prepare);
  if (d.chance(4)) bits &= ~static_cast<std::uint32_t>(kt::notify::commit);
  if (d.chance(4)) bits &= ~static_cast<std::uint32_t>(kt::notify::rollback);
  return kt::notification_mask(bits);
}

tx_plan make_plan(dice& d, int rm_count, int capacity) {
  tx_plan p;
  const int a = d.below(100);
  p.what = a < 20   ? client_act::commit_sync
           : a < 35 ? client_act::commit_callback
           : a < 47 ? client_act::commit_future
           : a < 53 ? client_act::rollback_sync
           : a < 58 ? client_act::rollback_callback
           : a < 62 ? client_act::rollback_future
           : a < 70 ? client_act::destroy_undecided
           : a < 82 ? client_act::destroy_during_commit
                    : client_act::timeout_expire;
  if (p.what == client_act::timeout_expire) p.timeout_us = d.below(1500);
  else if (d.chance(20)) p.timeout_us = d.below(3000);
  if (d.chance(30)) p.pause_us = d.below(500);
  p.misuse_after = d.chance(25);
  p.enlist_twice = d.chance(10);
  p.describe = d.chance(30);
  // How many: mostly one to three; sometimes every RM (past an inline array's capacity).
  int n = d.chance(8) ? 0 : d.chance(75) ? 1 + d.below(3) : rm_count;
  if (n > capacity && !d.chance(50)) n = capacity;
  std::vector<int> rms(static_cast<std::size_t>(rm_count));
  for (int i = 0; i < rm_count; ++i) rms[static_cast<std::size_t>(i)] = i;
  for (int i = rm_count - 1; i > 0; --i) std::swap(rms[static_cast<std::size_t>(i)], rms[static_cast<std::size_t>(d.below(i + 1))]);
  for (int i = 0; i < n; ++i) {
    enl_plan e;
    e.rm = rms[static_cast<std::size_t>(i)];
    e.mask = make_mask(d);
    const int b = d.below(100);
    e.pre = b < 74 ? before::nothing : b < 83 ? before::read_only : b < 86 ? before::rollback : b < 89 ? before::drop : before::release;
    e.pre_clock_bump = d.chance(30) ? 1 + static_cast<std::uint64_t>(d.below(40)) : 0;
    if (e.pre == before::nothing && d.chance(10)) {
      const int r = d.below(3);
      e.racer = r == 0 ? before::read_only : r == 1 ? before::rollback : before::drop;
      e.racer_delay_us = d.below(600);
    }
    e.pp = make_step(d, kt::notify::preprepare);
    e.p = make_step(d, kt::notify::prepare);
    e.spc = make_step(d, kt::notify::single_phase_commit);
    e.c = make_step(d, kt::notify::commit);
    e.rb = make_step(d, kt::notify::rollback);
    p.enls.push_back(e);
  }
  return p;
}

// ------------------------------------------------------------------ records

struct delivery {
  kt::notify kind;
  std::uint64_t start, end;  // the handler's first and last instant (g_seq)
  std::uint64_t clock;       // the notification's virtual clock
};

enum class how_offered : std::uint8_t { returned, through_ok, through_refused, dropped };

struct offer_rec {
  kt::notify answering;  // none: before the client decided
  act what;
  how_offered how;
  bool misuse;     // a call the enlistment does not wait for (or the second of two)
  bool illegal;    // a returned reply illegal for its notification
  bool shadowed;   // returned after the same handler answered through the enlistment
  std::uint64_t seq, clock;
  std::error_code ec;
  bool racing;     // from an RM thread racing the client's decision (answering: none)
};

struct tx_ctx;

struct enl_ctx {
  tx_ctx* tx = nullptr;
  enl_plan plan;
  std::mutex m;
  kt::enlistment* e = nullptr;
  kt::enlistment_handle handle;
  std::vector<delivery> got;
  std::vector<offer_rec> offers;
  std::optional<kt::enlistment_status> final_status;  // read by the client once the outcome is known
  bool pre_effective = false;  // the action before the decision took effect

  void note_delivery(const delivery& d) {
    std::lock_guard g(m);
    got.push_back(d);
  }
  void note_offer(const offer_rec& o) {
    std::lock_guard g(m);
    offers.push_back(o);
  }
  kt::enlistment_handle take_handle() {
    std::lock_guard g(m);
    return std::move(handle);
  }
};

struct tx_ctx {
  std::string tag;  // where: seed, combination, thread, transaction
  tx_plan plan;
  bool inline_dispatch = false;
  bool pool_dispatch = false;  // thread_pool_dispatcher: see "the thread pool" below
  guid uow;
  std::vector<std::unique_ptr<enl_ctx>> enls;   // enlisted
  std::vector<std::unique_ptr<enl_ctx>> extra;  // keys of enlistments that should have failed
  // the client's view
  kt::tx_state state_before_decision = kt::tx_state::active;
  bool offline_before = false;   // the TM was offline (shut down, or failed) before the decision
  errc offline_code = errc::tm_not_online;  // what an offline TM answers
  bool churn = false;            // rm3 is removed from and added to the TM meanwhile
  bool outcome_known = false;
  bool decision_started = false;  // commit/rollback (any form) started
  std::optional<std::error_code> result;  // the client's result (sync call or completion)
  kt::transaction_outcome outcome{};
  kt::transaction_state state{};
  kt::abort_reason reason{};
  std::uint32_t protocol_errors = 0;
  std::uint64_t commit_clock = 0, tm_clock_before = 0, tm_clock_after = 0, tm_clock_in_completion = 0;
  std::uint64_t tm_clock_right_after = 0;  // read as the synchronous call returned
  bool clean_sync = false;  // a synchronous commit or rollback that started on an active transaction
  bool expect_completion = false;
  std::atomic<int> completions{0}, stray_completions{0};
  std::mutex cm;
  std::error_code completion_result;
  std::atomic<int> late{0};
  std::mutex pm;
  std::vector<std::string> problems;  // found while running (any thread)

  void problem(const std::string& s) {
    std::lock_guard g(pm);
    problems.push_back(s);
  }
};

// ------------------------------------------------------------------ threads

// late_executor (tests/support/late_executor.hpp): the RMs' late answers.
using ktm::test::late_executor;

using journal_fn = std::function<bool(const guid&)>;

// What every RM of a world shares: the answering logic and the late thread.
class schedule_env {
 public:
  struct redelivery {
    int rm;
    guid uow;
    kt::notify kind;
  };

  late_executor late{2};
  std::atomic<bool> recovering{false};

  // A notification for RM `rm`. manual: a queued RM answering by hand what
  // it pulled (what it would have returned goes through the enlistment).
  kt::reply handle(int rm, const journal_fn& journal, kt::enlistment& e, const kt::notification& n, bool manual) {
    if (recovering.load(std::memory_order_acquire)) {
      std::lock_guard g(m_);
      redelivered_.push_back({rm, n.transaction, n.kind});
      return kt::reply::done();
    }
    auto* c = n.key.pointer<enl_ctx>();
    if (!c) {
      stray("RM " + std::to_string(rm) + " got " + notify_name(n.kind) + " without a key");
      return kt::reply::done();
    }
    const std::uint64_t start = next_seq();
    {
      std::lock_guard g(c->m);
      if (c->e != &e) c->tx->problem(std::string(notify_name(n.kind)) + " delivered with another enlistment's key");
    }
    if (n.transaction != c->tx->uow) c->tx->problem(std::string(notify_name(n.kind)) + " names another transaction");
    kt::reply r = kt::reply::later();
    if (n.kind != kt::notify::rm_disconnected) {
      const step& s = c->plan.for_kind(n.kind);
      const std::uint64_t clock = s.clock_bump ? n.virtual_clock + s.clock_bump : 0;
      if (s.how == via::returned && !manual) {
        r = returned(*c, n.kind, s, clock, journal, false);
      } else if (s.how == via::late) {
        // Pinned: the transaction (and e) stay alive until the late answer is given.
        e.transaction().pin();
        c->tx->late.fetch_add(1, std::memory_order_acq_rel);
        const kt::notify k = n.kind;
        late.post(microseconds(s.delay_us), [this, c, &e, k, &s, clock, &journal] {
          perform(*c, e, k, s, clock, journal, false);
          e.transaction().release_inflight();
          c->tx->late.fetch_sub(1, std::memory_order_acq_rel);
        });
      } else {
        perform(*c, e, n.kind, s, clock, journal, manual && s.how == via::returned);
        if (s.also_return && !manual) r = returned(*c, n.kind, s, clock, journal, true);
      }
    } else {
      r = kt::reply::done();
    }
    c->note_delivery({n.kind, start, next_seq(), n.virtual_clock});
    return r;
  }

  std::vector<redelivery> redelivered() const {
    std::lock_guard g(m_);
    return redelivered_;
  }
  std::vector<std::string> strays() const {
    std::lock_guard g(m_);
    return strays_;
  }
  void stray(const std::string& s) {
    std::lock_guard g(m_);
    strays_.push_back(s);
  }

 private:
  // The reply a handler returns (recorded; shadowed: after answering through).
  kt::reply returned(enl_ctx& c, kt::notify k, const step& s, std::uint64_t clock, const journal_fn& journal,
                     bool shadowed) {
    answer a = s.what;
    if (k == kt::notify::prepare && a == answer::done && journal && !shadowed && !journal(c.tx->uow))
      a = answer::rollback;  // the prepare record could not be written
    const bool illegal = a == answer::illegal || (a == answer::reject && k != kt::notify::single_phase_commit);
    kt::reply r = kt::reply::done(clock);
    act what = act_for(k, a);
    switch (a) {
      case answer::done: r = kt::reply::done(clock); break;
      case answer::read_only: r = kt::reply::read_only(clock); break;
      case answer::rollback: r = kt::reply::rollback(clock); break;
      case answer::reject: r = kt::reply::reject(clock); break;
      case answer::illegal:
        if (k == kt::notify::preprepare || k == kt::notify::prepare) {
          r = kt::reply::reject(clock);  // read as rollback
        } else {
          r = kt::reply::rollback(clock);  // read as done
        }
        break;
    }
    c.note_offer({k, what, how_offered::returned, false, illegal, shadowed, next_seq(), clock, {}, false});
    return r;
  }

  // Answers through the enlistment as s says (late, or from the handler).
  void perform(enl_ctx& c, kt::enlistment& e, kt::notify k, const step& s, std::uint64_t clock,
               const journal_fn& journal, bool from_returned) {
    const auto refused_ok = [&](const ktm::result<void>& r) { return r || r.code() == errc::invalid_state; };
    if (s.misuse_first) {
      const act m = misuse_for(k, s.misuse_pick);
      const std::uint64_t at = next_seq();
      const ktm::result<void> r = call(e, m, clock);
      c.note_offer({k, m, r ? how_offered::through_ok : how_offered::through_refused, true, false, false, at, clock,
                    r.code(), false});
      if (r || r.code() != errc::invalid_state)
        c.tx->problem(std::string("misuse ") + act_name(m) + " while answering " + notify_name(k) + " gave " +
                      code_name(r.code()) + ", not invalid_state");
    }
    if (s.drop) {
      kt::enlistment_handle h = c.take_handle();
      if (h) {
        c.note_offer({k, act::drop, how_offered::dropped, false, false, false, next_seq(), 0, {}, false});
        h.reset();
        return;
      }
      // The handle was released: roll back instead.
    }
    answer a = s.what;
    if (s.drop) a = answer::rollback;
    act what = act_for(k, a);
    if (from_returned && a == answer::illegal) {
      // By hand there is no illegal return: the misuse it stands for, then what the TM reads it as.
      const act m = k == kt::notify::preprepare || k == kt::notify::prepare ? act::single_phase_reject : act::read_only;
      const std::uint64_t at = next_seq();
      const ktm::result<void> r = call(e, m, clock);
      c.note_offer({k, m, r ? how_offered::through_ok : how_offered::through_refused, true, false, false, at, clock,
                    r.code(), false});
      if (r || r.code() != errc::invalid_state)
        c.tx->problem(std::string("misuse ") + act_name(m) + " while answering " + notify_name(k) + " gave " +
                      code_name(r.code()));
    }
    if (what == act::prepare_complete && journal && !journal(c.tx->uow)) what = act::rollback;
    const std::uint64_t at = next_seq();
    const ktm::result<void> r = call(e, what, clock);
    c.note_offer({k, what, r ? how_offered::through_ok : how_offered::through_refused, false, false, false, at, clock,
                  r.code(), false});
    if (!refused_ok(r))
      c.tx->problem(std::string(act_name(what)) + " answering " + notify_name(k) + " gave " + code_name(r.code()));
    if (s.twice) {
      const std::uint64_t at2 = next_seq();
      const ktm::result<void> r2 = call(e, what, clock);
      c.note_offer({k, what, r2 ? how_offered::through_ok : how_offered::through_refused, true, false, false, at2,
                    clock, r2.code(), false});
      if (r2 || r2.code() != errc::invalid_state)
        c.tx->problem(std::string("a second ") + act_name(what) + " answering " + notify_name(k) + " gave " +
                      code_name(r2.code()) + ", not invalid_state");
    }
  }

  mutable std::mutex m_;
  std::vector<redelivery> redelivered_;
  std::vector<std::string> strays_;
};

// An RM that answers as its enlistments' plans say (the key of each
// enlistment points to its enl_ctx). Distinct Ids: distinct types.
template <int Id, kt::rm_kind Kind = kt::rm_kind::volatile_rm>
class chaos_rm : public kt::resource_manager_base<Kind> {
 public:
  explicit chaos_rm(schedule_env& env, guid id = guid::generate()) : kt::resource_manager_base<Kind>(id), env_(&env) {}

  kt::reply on_preprepare(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  kt::reply on_prepare(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  kt::reply on_commit(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  kt::reply on_rollback(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  kt::reply on_single_phase_commit(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  void on_rm_disconnected(kt::enlistment& e, const kt::notification& n) { (void)handle(e, n); }
  void on_tm_online(const kt::notification&) { online.fetch_add(1); }
  kt::reply on_recover(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  void on_last_recover(const kt::notification&) { last_recovers.fetch_add(1); }

  // Written before the RM gets its first notification.
  void set_journal(journal_fn j) { journal_ = std::move(j); }

  // queued_dispatcher: pulls one notification; runs its handler, or answers by hand.
  bool serve(microseconds wait, bool by_hand) {
    auto q = this->get_notification(wait);
    if (!q) return false;
    if (!by_hand || !q->target() || env_->recovering.load(std::memory_order_acquire)) {
      q->run();
    } else {
      (void)env_->handle(Id, journal_, *q->target(), q->get(), true);
    }
    return true;
  }

  std::atomic<int> online{0}, last_recovers{0};

 private:
  kt::reply handle(kt::enlistment& e, const kt::notification& n) { return env_->handle(Id, journal_, e, n, false); }

  schedule_env* env_;
  journal_fn journal_;
};

// Serves the RMs' own queues (queued_dispatcher), answering by hand now and then.
class rm_servers {
 public:
  template <class... R>
  rm_servers(std::uint64_t seed, R&... rms) {
    int i = 0;
    (ts_.emplace_back([this, &rms, s = mix(seed, static_cast<std::uint64_t>(i++))] {
      dice d(s);
      while (!stop_.load(std::memory_order_acquire)) (void)rms.serve(microseconds(2000), d.chance(40));
      while (rms.serve(microseconds(0), false)) {
      }
    }),
     ...);
  }
  rm_servers(const rm_servers&) = delete;
  rm_servers& operator=(const rm_servers&) = delete;
  ~rm_servers() {
    stop_.store(true, std::memory_order_release);
    for (auto& t : ts_) t.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> ts_;
};

// Aborts the process, printing where it was, when no transaction finished
// for `seconds`: a hang cannot be failed and recovered from in-process.
class watchdog {
 public:
  watchdog(int seconds, std::function<std::string()> where)
      : seconds_(seconds), where_(std::move(where)), t_([this] { run(); }) {}
  watchdog(const watchdog&) = delete;
  watchdog& operator=(const watchdog&) = delete;
  ~watchdog() {
    {
      std::lock_guard l(m_);
      stop_ = true;
    }
    cv_.notify_all();
    t_.join();
  }
  void progress() { ticks_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void run() {
    std::unique_lock l(m_);
    std::uint64_t seen = ticks_.load();
    auto last = steady::now();
    while (!stop_) {
      cv_.wait_for(l, milliseconds(200));
      const std::uint64_t now_ticks = ticks_.load();
      if (now_ticks != seen) {
        seen = now_ticks;
        last = steady::now();
      } else if (steady::now() - last > std::chrono::seconds(seconds_)) {
        const std::string w = where_();
        std::fprintf(stderr, "random_schedule_test: no transaction finished for %d s: a hang\n%s\n", seconds_, w.c_str());
        std::fflush(stderr);
        std::abort();
      }
    }
  }
  int seconds_;
  std::function<std::string()> where_;
  std::atomic<std::uint64_t> ticks_{0};
  std::mutex m_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread t_;
};

template <class Pred>
bool wait_for(Pred pred, std::chrono::nanoseconds limit = patience) {
  const auto until = steady::now() + limit;
  while (!pred()) {
    if (steady::now() > until) return false;
    std::this_thread::sleep_for(microseconds(50));
  }
  return true;
}

// ------------------------------------------------------------------ worlds

template <class S>
constexpr int capacity_of() {
  if constexpr (requires { S::capacity; }) return static_cast<int>(S::capacity);
  else return 4;
}

template <class D>
inline constexpr bool is_pool = false;
template <std::size_t N>
inline constexpr bool is_pool<kt::thread_pool_dispatcher<N>> = true;

template <class D>
inline constexpr const char* dispatcher_name = nullptr;
template <>
inline constexpr const char* dispatcher_name<kt::inline_dispatcher> = "the inline dispatcher";
template <>
inline constexpr const char* dispatcher_name<kt::queued_dispatcher> = "the queued dispatcher";
template <>
inline constexpr const char* dispatcher_name<kt::thread_pool_dispatcher<2>> = "the thread pool dispatcher";

using rm0 = chaos_rm<0>;
using rm1 = chaos_rm<1>;
using rm2 = chaos_rm<2>;
using rm3 = chaos_rm<3>;

template <class S>
inline constexpr const char* storage_name = nullptr;
template <>
inline constexpr const char* storage_name<kt::static_storage<rm0, rm1, rm2, rm3>> = "static storage";
template <>
inline constexpr const char* storage_name<kt::inline_array_storage<3>> = "inline array storage";
template <>
inline constexpr const char* storage_name<kt::dynamic_storage> = "dynamic storage";

// Four RMs (distinct types) on one volatile TM with dispatcher D and storage S.
template <class D, class S>
struct volatile_world {
  using tm_type = kt::volatile_transaction_manager<kt::with_storage<S>, kt::with_dispatcher<D>>;
  static constexpr bool durable = false;
  static constexpr bool inline_dispatch = D::is_inline;
  static constexpr bool pool_dispatch = is_pool<D>;
  static constexpr int rm_count = 4;
  static constexpr int capacity = capacity_of<S>();

  explicit volatile_world(std::uint64_t seed)
    requires S::is_static
      : tm(r0, r1, r2, r3) {
    start(seed);
  }
  explicit volatile_world(std::uint64_t seed)
    requires(!S::is_static)
  {
    REQUIRE(tm.add_resource_manager(r0));
    REQUIRE(tm.add_resource_manager(r1));
    REQUIRE(tm.add_resource_manager(r2));
    REQUIRE(tm.add_resource_manager(r3));
    start(seed);
  }

  template <class Tx>
  ktm::result<kt::enlistment_handle> enlist(Tx& tx, int i, kt::notification_mask m, kt::enlistment_key k) {
    switch (i) {
      case 0: return tx.enlist(r0, m, k);
      case 1: return tx.enlist(r1, m, k);
      case 2: return tx.enlist(r2, m, k);
      default: return tx.enlist(r3, m, k);
    }
  }
  // Offline (shut down): new work gets offline_code.
  bool offline() const { return tm.state() == kt::tm_state::offline; }
  static constexpr errc offline_code = errc::tm_not_online;
  static constexpr bool registered = !S::is_static;
  int online_count() const { return r0.online + r1.online + r2.online + r3.online; }
  template <class R>
  auto add(R& r) { return tm.add_resource_manager(r); }
  template <class R>
  auto remove(R& r) { return tm.remove_resource_manager(r); }

  schedule_env env;
  rm0 r0{env};
  rm1 r1{env};
  rm2 r2{env};
  rm3 r3{env};
  tm_type tm;
  std::optional<rm_servers> servers;  // last: stops first

 private:
  void start(std::uint64_t seed) {
    if constexpr (std::is_same_v<D, kt::queued_dispatcher>) servers.emplace(seed, r0, r1, r2, r3);
    REQUIRE(tm.recover());
  }
};

using io_t = ktm::test::fault_storage;
using log_t = ktm::log::log<io_t>;
using drm0 = chaos_rm<0, kt::rm_kind::durable_rm>;
using drm1 = chaos_rm<1, kt::rm_kind::durable_rm>;
using drm2 = chaos_rm<2, kt::rm_kind::durable_rm>;

// The ids that stay the same across a crash.
struct durable_ids {
  guid tm = guid::generate(), r0 = guid::generate(), r1 = guid::generate(), r2 = guid::generate();
};

ktm::log::log_options durable_log_options() {
  ktm::log::log_options o = ktm::test::durable_options();
  o.container_size = 4 * 1024 * 1024;  // no restart areas: the log keeps every record of a long run
  return o;
}

// One prepare record: 'P' and the UOW.
std::array<std::byte, 17> prepare_record(const guid& uow) {
  std::array<std::byte, 17> rec{};
  rec[0] = std::byte{'P'};
  for (std::size_t i = 0; i < 16; ++i) rec[1 + i] = static_cast<std::byte>(uow.bytes()[i]);
  return rec;
}

// A durable TM over fault injection whose stream shares a multiplexed log
// with the streams of two journaling durable RMs (r0, r1: each appends a
// queue-only prepare record before it answers PREPARE prepared); r2 is
// durable without a journal, r3 volatile. Registered (dynamic) storage.
// recovering: a restart over the same storage after a crash; the RMs then
// only record what is redelivered.
template <class D>
struct durable_world {
  using tm_type = kt::durable_transaction_manager<io_t, kt::with_storage<kt::dynamic_storage>, kt::with_dispatcher<D>,
                                                  kt::with_recovery<kt::replay_recovery<0>>>;
  static constexpr bool durable = true;
  static constexpr bool inline_dispatch = D::is_inline;
  static constexpr bool pool_dispatch = is_pool<D>;
  static constexpr int rm_count = 4;
  static constexpr int capacity = 4;

  durable_world(io_t& storage, const durable_ids& ids, std::uint64_t seed, bool recovering)
      : st(storage),
        lg(make_log(storage, !recovering)),
        ts(make_stream("tm", !recovering)),
        rs0(make_stream("rm0", !recovering)),
        rs1(make_stream("rm1", !recovering)),
        r0(env, ids.r0),
        r1(env, ids.r1),
        r2(env, ids.r2),
        tm(kt::log_arg, ts, ids.tm) {
    env.recovering.store(recovering, std::memory_order_release);
    if (!recovering) {
      auto w0 = rs0.marshalling_area();
      auto w1 = rs1.marshalling_area();
      REQUIRE(w0);
      REQUIRE(w1);
      ma0.emplace(std::move(*w0));
      ma1.emplace(std::move(*w1));
      r0.set_journal([this](const guid& u) { return journal(*ma0, u); });
      r1.set_journal([this](const guid& u) { return journal(*ma1, u); });
    }
    REQUIRE(tm.add_resource_manager(r0));
    REQUIRE(tm.add_resource_manager(r1));
    REQUIRE(tm.add_resource_manager(r2));
    REQUIRE(tm.add_resource_manager(r3));
    if constexpr (std::is_same_v<D, kt::queued_dispatcher>) servers.emplace(seed, r0, r1, r2, r3);
    tm.set_checkpoint_every(0);  // recovered_outcome remembers every transaction
    REQUIRE(tm.recover());
  }

  template <class Tx>
  ktm::result<kt::enlistment_handle> enlist(Tx& tx, int i, kt::notification_mask m, kt::enlistment_key k) {
    switch (i) {
      case 0: return tx.enlist(r0, m, k);
      case 1: return tx.enlist(r1, m, k);
      case 2: return tx.enlist(r2, m, k);
      default: return tx.enlist(r3, m, k);
    }
  }
  bool failed() const { return tm.failed(); }
  bool offline() const { return tm.failed(); }  // fail-stop after a log failure
  static constexpr errc offline_code = errc::tm_failed;
  static constexpr bool registered = true;
  template <class R>
  auto add(R& r) { return tm.add_resource_manager(r); }
  template <class R>
  auto remove(R& r) { return tm.remove_resource_manager(r); }
  int online_count() const { return r0.online + r1.online + r2.online + r3.online; }

  // The UOWs of the prepare records of journal stream s.
  std::set<guid> prepared_in(const ktm::log::stream<io_t>& s) const {
    std::set<guid> out;
    for (const auto& r : s.read_forward()) {
      if (r.payload.size() != 17 || r.payload[0] != std::byte{'P'}) continue;
      guid::bytes_type b{};
      for (std::size_t i = 0; i < 16; ++i) b[i] = static_cast<std::uint8_t>(r.payload[1 + i]);
      out.insert(guid(b));
    }
    return out;
  }

  io_t& st;
  log_t lg;
  ktm::log::stream<io_t> ts, rs0, rs1;
  std::optional<ktm::log::marshalling_area<io_t>> ma0, ma1;
  schedule_env env;
  drm0 r0;
  drm1 r1;
  drm2 r2;
  rm3 r3{env};
  tm_type tm;
  std::optional<rm_servers> servers;  // last: stops first

 private:
  static log_t make_log(io_t& storage, bool create) {
    auto r = create ? log_t::create(storage, "txlog", durable_log_options())
                    : log_t::open(storage, "txlog", durable_log_options());
    INFO((create ? "creating" : "opening") << " the log: " << (r ? std::string("ok") : r.error().message()));
    REQUIRE(r);
    return std::move(*r);
  }
  ktm::log::stream<io_t> make_stream(const char* name, bool create) {
    auto r = create ? lg.create_stream(name) : lg.open_stream(name);
    INFO((create ? "creating" : "opening") << " stream " << name << ": " << (r ? std::string("ok") : r.error().message()));
    REQUIRE(r);
    return std::move(*r);
  }
  static bool journal(ktm::log::marshalling_area<io_t>& ma, const guid& uow) {
    const auto rec = prepare_record(uow);
    return ma.append(std::span<const std::byte>(rec), ktm::log::record_type::data, ktm::log::append_flags::none)
        .has_value();
  }
};

// ------------------------------------------------------------------ the client

template <class World>
struct run_state {
  run_state(World& world, std::string at) : w(world), where(std::move(at)) {}
  World& w;
  std::string where;
  bool churn = false;       // rm3 leaves and rejoins the TM's registry meanwhile
  int shutdown_after = -1;  // client thread 0 shuts the TM down after this transaction
  watchdog* dog = nullptr;
  std::vector<std::unique_ptr<std::atomic<tx_ctx*>>> current;
  std::vector<std::vector<std::unique_ptr<tx_ctx>>> done;
  std::mutex m;
  std::vector<std::string> problems;  // not tied to one transaction
  void problem(const std::string& s) {
    std::lock_guard g(m);
    problems.push_back(where + ": " + s);
  }
};

// rm3 may be unregistered at the moment (the churn thread).
bool churned(const tx_ctx& t, int rm) { return t.churn && rm == 3; }

template <class World, class Tx>
void misuse_after(World& w, Tx& tx, tx_ctx& t) {
  // Enlisting once the decision started: invalid_state (transaction_aborted
  // once rolled back; tm_failed on a failed TM).
  std::set<int> enlisted;
  for (const auto& c : t.enls) enlisted.insert(c->plan.rm);
  int other = 0;
  while (other < World::rm_count - 1 && enlisted.count(other)) ++other;
  auto c = std::make_unique<enl_ctx>();
  c->tx = &t;
  auto r = w.enlist(tx, other, kt::default_mask, kt::enlistment_key(c.get()));
  if (r) {
    t.problem("enlisting after the decision succeeded");
    std::lock_guard g(c->m);
    c->e = &r->get();
    (void)r->release();
  } else if (r.code() != errc::invalid_state && r.code() != errc::transaction_aborted &&
             !(r.code() == World::offline_code && w.offline()) && !(r.code() == errc::rm_not_found && churned(t, other))) {
    t.problem("enlisting after the decision gave " + code_name(r.code()));
  }
  t.extra.push_back(std::move(c));
  const auto expect_invalid = [&](const char* what, const std::error_code& ec) {
    if (ec != errc::invalid_state) t.problem(std::string(what) + " after the decision gave " + code_name(ec));
  };
  expect_invalid("commit", tx.commit().code());
  tx_ctx* tp = &t;
  expect_invalid("commit_async", tx.commit_async([tp](ktm::result<void>) { tp->stray_completions.fetch_add(1); }).code());
  expect_invalid("commit_async()", tx.commit_async().get().code());
  expect_invalid("rollback", tx.rollback().code());
  expect_invalid("rollback_async", tx.rollback_async([tp](ktm::result<void>) { tp->stray_completions.fetch_add(1); }).code());
  expect_invalid("set_timeout", tx.set_timeout(std::chrono::hours(1)).code());
  expect_invalid("set_description", tx.set_description("late").code());
  const auto big = tx.set_description(std::string(kt::max_description + 1, 'x')).code();
  if (big != errc::too_large) t.problem("an over-long description gave " + code_name(big));
}

// One transaction, as its plan says.
template <class World>
void run_one(World& w, tx_ctx& t, watchdog& dog) {
  using tx_type = typename World::tm_type::transaction;
  auto& tm = w.tm;
  std::optional<tx_type> tx;
  tx.emplace(tm, guid::generate());
  t.uow = tx->id();
  // Enlist.
  for (const enl_plan& ep : t.plan.enls) {
    auto c = std::make_unique<enl_ctx>();
    c->tx = &t;
    c->plan = ep;
    const bool full = static_cast<int>(t.enls.size()) >= World::capacity;
    auto r = w.enlist(*tx, ep.rm, ep.mask, kt::enlistment_key(c.get()));
    if (!r) {
      if (!(full && r.code() == errc::capacity_exhausted) && !(r.code() == World::offline_code && w.offline()) &&
          !(r.code() == errc::rm_not_found && churned(t, ep.rm)))
        t.problem("enlisting rm" + std::to_string(ep.rm) + " gave " + code_name(r.code()));
      continue;
    }
    if (full) t.problem("enlisted past the storage's capacity");
    {
      std::lock_guard g(c->m);
      c->e = &r->get();
      c->handle = std::move(*r);
    }
    t.enls.push_back(std::move(c));
  }
  if (t.plan.enlist_twice && !t.enls.empty()) {
    auto r = w.enlist(*tx, t.enls[0]->plan.rm, kt::default_mask, kt::enlistment_key(t.enls[0].get()));
    if (r) {
      t.problem("the same RM enlisted twice");
      (void)r->release();
    } else if (r.code() != errc::already_enlisted && !(r.code() == World::offline_code && w.offline()) &&
               !(r.code() == errc::rm_not_found && churned(t, t.enls[0]->plan.rm))) {
      t.problem("enlisting the same RM twice gave " + code_name(r.code()));
    }
  }
  // What the RMs do before the client decides (on the client's thread: deterministic).
  for (auto& c : t.enls) {
    const std::uint64_t clock = c->plan.pre_clock_bump ? tm.virtual_clock() + c->plan.pre_clock_bump : 0;
    const bool was_active = c->e->status() == kt::enlistment_status::active;
    switch (c->plan.pre) {
      case before::nothing: break;
      case before::read_only:
      case before::rollback: {
        const act a = c->plan.pre == before::read_only ? act::read_only : act::rollback;
        const std::uint64_t at = next_seq();
        const auto r = call(*c->e, a, clock);
        c->note_offer({kt::notify::none, a, r ? how_offered::through_ok : how_offered::through_refused, false, false,
                       false, at, clock, r.code(), false});
        c->pre_effective = r.has_value();
        if (r.has_value() != was_active)
          t.problem(std::string(act_name(a)) + " before the decision on a " + (was_active ? "" : "not ") +
                    "active enlistment gave " + code_name(r.code()));
        break;
      }
      case before::drop: {
        kt::enlistment_handle h = c->take_handle();
        c->note_offer({kt::notify::none, act::drop, how_offered::dropped, false, false, false, next_seq(), 0, {}, false});
        c->pre_effective = was_active;
        h.reset();
        break;
      }
      case before::release: {
        std::lock_guard g(c->m);
        (void)c->handle.release();
        break;
      }
    }
  }
  // RMs acting from their own threads, racing what comes next. Pinned: the
  // transaction (and the enlistment) stay alive until the racer has run.
  for (auto& cp : t.enls) {
    enl_ctx* c = cp.get();
    if (c->plan.racer == before::nothing) continue;
    c->e->transaction().pin();
    t.late.fetch_add(1, std::memory_order_acq_rel);
    w.env.late.post(microseconds(c->plan.racer_delay_us), [c, &tm] {
      kt::enlistment& e = *c->e;
      if (c->plan.racer == before::drop) {
        kt::enlistment_handle h = c->take_handle();
        if (h) {
          c->note_offer({kt::notify::none, act::drop, how_offered::dropped, false, false, false, next_seq(), 0, {}, true});
          h.reset();
        }
      } else {
        const act a = c->plan.racer == before::read_only ? act::read_only : act::rollback;
        const std::uint64_t clock = c->plan.pre_clock_bump ? tm.virtual_clock() + c->plan.pre_clock_bump : 0;
        const std::uint64_t at = next_seq();
        const auto r = call(e, a, clock);
        c->note_offer({kt::notify::none, a, r ? how_offered::through_ok : how_offered::through_refused, false, false,
                       false, at, clock, r.code(), true});
        if (!r && r.code() != errc::invalid_state)
          c->tx->problem(std::string("a racing ") + act_name(a) + " gave " + code_name(r.code()));
      }
      e.transaction().release_inflight();
      c->tx->late.fetch_sub(1, std::memory_order_acq_rel);
    });
  }
  if (t.plan.describe) {
    const bool active = tx->internal_state() == kt::tx_state::active;
    const auto r = tx->set_description("random schedule");
    // A racer may roll it back meanwhile: then invalid_state.
    if (!r && (active && r.code() != errc::invalid_state)) t.problem("set_description gave " + code_name(r.code()));
  }
  t.state_before_decision = tx->internal_state();
  t.offline_before = w.offline();
  if (t.plan.timeout_us >= 0) {
    const bool active = t.state_before_decision == kt::tx_state::active;
    const auto r = tx->set_timeout(microseconds(t.plan.timeout_us));
    const bool raced = std::any_of(t.enls.begin(), t.enls.end(), [](const auto& c) { return c->plan.racer != before::nothing; });
    if (active ? (!r && !(raced && r.code() == errc::invalid_state)) : r.code() != errc::invalid_state)
      t.problem("set_timeout on a " + std::string(active ? "" : "not ") + "active transaction gave " +
                code_name(r.code()));
  }
  if (t.plan.pause_us) std::this_thread::sleep_for(microseconds(t.plan.pause_us));
  t.tm_clock_before = tm.virtual_clock();
  tx_ctx* tp = &t;
  const auto on_done = [tp, &tm](ktm::result<void> r) {
    {
      std::lock_guard g(tp->cm);
      tp->completion_result = r.code();
      tp->tm_clock_in_completion = tm.virtual_clock();
    }
    tp->completions.fetch_add(1, std::memory_order_acq_rel);
  };
  const auto wait_completion = [&]() -> bool {
    if (!wait_for([&] { return t.completions.load(std::memory_order_acquire) >= 1; })) {
      t.problem("the completion did not run within the test's patience");
      return false;
    }
    std::lock_guard g(t.cm);
    t.result = t.completion_result;
    return true;
  };
  const auto release_handles = [&] {
    for (auto& c : t.enls) {
      std::lock_guard g(c->m);
      (void)c->handle.release();
    }
  };
  std::future<ktm::result<void>> fut;
  bool async_started = false;
  switch (t.plan.what) {
    case client_act::commit_sync: {
      const auto r = tx->commit();
      t.tm_clock_after = tm.virtual_clock();
      t.result = r.code();
      t.decision_started = true;
      if (t.plan.misuse_after) misuse_after(w, *tx, t);
      break;
    }
    case client_act::rollback_sync: {
      const auto r = tx->rollback();
      t.tm_clock_after = tm.virtual_clock();
      t.result = r.code();
      t.decision_started = true;
      if (t.plan.misuse_after) misuse_after(w, *tx, t);
      break;
    }
    case client_act::commit_callback:
    case client_act::rollback_callback: {
      const auto r = t.plan.what == client_act::commit_callback ? tx->commit_async(on_done) : tx->rollback_async(on_done);
      t.decision_started = true;
      if (!r) {
        t.result = r.code();  // did not start: the completion must never run
      } else {
        t.expect_completion = true;
        async_started = true;
      }
      if (t.plan.misuse_after) misuse_after(w, *tx, t);
      if (async_started) (void)wait_completion();
      t.tm_clock_after = tm.virtual_clock();
      break;
    }
    case client_act::commit_future:
    case client_act::rollback_future: {
      fut = t.plan.what == client_act::commit_future ? tx->commit_async() : tx->rollback_async();
      t.decision_started = true;
      if (t.plan.misuse_after) misuse_after(w, *tx, t);
      if (fut.wait_for(patience) != std::future_status::ready) {
        t.problem("the future did not become ready within the test's patience");
      } else {
        t.result = fut.get().code();
      }
      t.tm_clock_after = tm.virtual_clock();
      break;
    }
    case client_act::timeout_expire: {
      if (!wait_for([&] { return tx->is_done(); })) t.problem("the timeout did not finish the transaction");
      const auto r = tx->commit();
      t.tm_clock_after = tm.virtual_clock();
      t.result = r.code();
      t.decision_started = true;
      if (r.code() != errc::transaction_aborted && !(r.code() == World::offline_code && w.offline()))
        t.problem("commit after the timeout expired gave " + code_name(r.code()));
      break;
    }
    case client_act::destroy_undecided: {
      release_handles();
      tx.reset();
      break;
    }
    case client_act::destroy_during_commit: {
      const auto r = tx->commit_async(on_done);
      t.decision_started = true;
      if (!r) t.result = r.code();
      else t.expect_completion = true;
      release_handles();
      tx.reset();  // waits for what is outstanding, not for the completion
      if (r) (void)wait_completion();
      break;
    }
  }
  if (tx) {
    // commit() returns transaction_aborted at once for a transaction already
    // rolling back; every other decision returns (or completes) once done.
    const bool raced = std::any_of(t.enls.begin(), t.enls.end(), [](const auto& c) { return c->plan.racer != before::nothing; });
    const bool started_clean = t.state_before_decision == kt::tx_state::active && t.plan.timeout_us < 0 &&
                               !t.offline_before && !raced;
    const bool refused_at_start = t.result && *t.result == t.offline_code;
    if (!tx->is_done() && !refused_at_start &&
        (is_rollback(t.plan.what) || (is_commit(t.plan.what) && started_clean)))
      t.problem("the transaction is not done once the client has its outcome");
    if (!wait_for([&] { return tx->is_done(); })) t.problem("the transaction never finished");
    t.tm_clock_right_after = t.tm_clock_after;
    t.clean_sync = started_clean && !refused_at_start && (t.plan.what == client_act::commit_sync || t.plan.what == client_act::rollback_sync);
    t.tm_clock_after = tm.virtual_clock();
    t.outcome_known = true;
    t.outcome = tx->outcome();
    t.state = tx->state();
    t.reason = tx->reason();
    t.protocol_errors = tx->protocol_errors();
    t.commit_clock = tx->commit_clock();
    for (auto& c : t.enls) c->final_status = c->e->status();
    // Handles must not outlive the transaction: drop them now (settled: nothing happens).
    for (auto& c : t.enls) {
      kt::enlistment_handle h = c->take_handle();
      h.reset();
    }
    // destroyed while late answers may still be given (and pins released)
    // from other threads: see "a transaction finished on its creating
    // thread is destroyed only after another thread released it" below
    tx.reset();
  }
  if (!wait_for([&] { return t.late.load(std::memory_order_acquire) == 0; }))
    t.problem("late answers still outstanding after the transaction was destroyed");
  dog.progress();
}

template <class World>
void run_client(run_state<World>& rs, std::uint64_t seed, int thread, int txs) {
  dice d(mix(seed, 1000 + static_cast<std::uint64_t>(thread)));
  for (int i = 0; i < txs; ++i) {
    auto t = std::make_unique<tx_ctx>();
    t->plan = make_plan(d, World::rm_count, World::capacity);
    t->inline_dispatch = World::inline_dispatch;
    t->pool_dispatch = World::pool_dispatch;
    t->offline_code = World::offline_code;
    t->churn = rs.churn;
    t->tag = rs.where + ", client thread " + std::to_string(thread) + ", transaction " + std::to_string(i) + " (" +
             describe(t->plan) + ")";
    rs.current[static_cast<std::size_t>(thread)]->store(t.get(), std::memory_order_release);
    run_one(rs.w, *t, *rs.dog);
    rs.current[static_cast<std::size_t>(thread)]->store(nullptr, std::memory_order_release);
    if (thread == 0 && i == rs.shutdown_after) rs.w.tm.shutdown();
    rs.done[static_cast<std::size_t>(thread)].push_back(std::move(t));
  }
}

// ------------------------------------------------------------------ the checks

struct tx_stats {
  std::size_t txs = 0, committed = 0, aborted = 0, in_doubt = 0, single_phase = 0, destroyed = 0, enlistments = 0,
              rmd_missing = 0, pool_overlapped = 0, pool_reordered = 0, offline_refused = 0;
};

// The enlistment that got SINGLE_PHASE_COMMIT, if any.
const enl_ctx* spc_getter_of(tx_ctx& t) {
  for (auto& c : t.enls) {
    std::lock_guard g(c->m);
    for (const auto& d : c->got)
      if (d.kind == kt::notify::single_phase_commit) return c.get();
  }
  return nullptr;
}

enum class fate { unknown, committed, aborted, in_doubt };

// The outcome the client learned (its result, or the transaction's state).
fate fate_of(const tx_ctx& t, bool offline) {
  if (is_rollback(t.plan.what) || t.plan.what == client_act::destroy_undecided) return fate::aborted;
  if (t.result) {
    const std::error_code ec = *t.result;
    if (!ec) return fate::committed;
    if (ec == errc::transaction_aborted) return fate::aborted;
    if (ec == errc::in_doubt) return fate::in_doubt;
    if (ec == t.offline_code && offline) return fate::aborted;
  }
  return fate::unknown;
}

// The invariants of one finished transaction (main thread, after the run).
void verify(tx_ctx& t, bool offline, std::vector<std::string>& out, tx_stats& stats) {
  using kt::notify;
  // a durable TM whose commit record's force failed leaves that transaction
  // in doubt (its RMs prepared, no notification) and fails stop
  const bool log_in_doubt = offline && t.offline_code == errc::tm_failed;
  const auto fail = [&](const std::string& what) { out.push_back(t.tag + ":\n    " + what); };
  {
    std::lock_guard g(t.pm);
    for (const auto& p : t.problems) fail(p);
  }
  ++stats.txs;
  stats.enlistments += t.enls.size();
  const client_act act_ = t.plan.what;
  // ---- completions
  const int completions = t.completions.load();
  if (t.expect_completion && completions != 1)
    fail("the completion ran " + std::to_string(completions) + " times, not once");
  if (!t.expect_completion && completions != 0)
    fail("a completion ran " + std::to_string(completions) + " times for a call that did not start");
  if (t.stray_completions.load() != 0) fail("the completion of a refused call ran");
  // ---- the client's result and the outcome
  fate f = fate::unknown;
  if (t.result) {
    const std::error_code ec = *t.result;
    if (is_rollback(act_)) {
      if (ec) fail("rollback gave " + code_name(ec));
      f = fate::aborted;
    } else if (!ec) {
      f = fate::committed;
    } else if (ec == errc::transaction_aborted) {
      f = fate::aborted;
    } else if (ec == errc::in_doubt) {
      f = fate::in_doubt;
    } else if (ec == t.offline_code && offline) {
      f = fate::aborted;
      ++stats.offline_refused;
    } else {
      fail("the client got " + code_name(ec));
    }
  } else if (act_ == client_act::destroy_undecided) {
    f = fate::aborted;
  }
  if (t.outcome_known) {
    fate g = fate::unknown;
    if (t.outcome == kt::transaction_outcome::committed && t.state == kt::transaction_state::normal) g = fate::committed;
    else if (t.outcome == kt::transaction_outcome::aborted && t.state == kt::transaction_state::normal) g = fate::aborted;
    else if (t.outcome == kt::transaction_outcome::undetermined && t.state == kt::transaction_state::indoubt) g = fate::in_doubt;
    else fail("a finished transaction has outcome " + std::to_string(int(t.outcome)) + " in state " + std::to_string(int(t.state)));
    if (f != fate::unknown && g != f) fail("the client's result " + code_name(t.result.value_or(std::error_code{})) + " disagrees with the outcome");
    if (f == fate::unknown) f = g;
  }
  if (f == fate::committed) ++stats.committed;
  if (f == fate::aborted) ++stats.aborted;
  if (f == fate::in_doubt) ++stats.in_doubt;
  if (act_ == client_act::destroy_undecided || act_ == client_act::destroy_during_commit) ++stats.destroyed;
  if (is_rollback(act_) && t.outcome_known && t.outcome != kt::transaction_outcome::aborted)
    fail("rolled back but the outcome is not aborted");
  // ---- per enlistment
  bool any_rollback_answer = false, any_drop = false, any_commit = false, any_rollback = false;
  std::uint64_t max_accepted_before_commit = 0, max_accepted = 0, min_commit_clock = UINT64_MAX;
  std::string max_from;  // who passed max_accepted back
  int illegal_returned = 0;
  const enl_ctx* spc_getter = nullptr;
  const enl_ctx* const spc_first = spc_getter_of(t);
  for (auto& cp : t.enls) {
    enl_ctx& c = *cp;
    std::lock_guard g(c.m);
    std::vector<delivery> got = c.got;
    std::sort(got.begin(), got.end(), [](const delivery& a, const delivery& b) { return a.start < b.start; });
    const auto count = [&](notify k) {
      return std::count_if(got.begin(), got.end(), [&](const delivery& d) { return d.kind == k; });
    };
    const auto first = [&](notify k) -> const delivery* {
      for (const auto& d : got)
        if (d.kind == k) return &d;
      return nullptr;
    };
    const std::string who = "rm" + std::to_string(c.plan.rm) + " (mask " + std::to_string(c.plan.mask.bits()) + ")";
    std::string seen;
    for (const auto& d : got) seen += std::string(" ") + notify_name(d.kind);
    std::string offered;
    for (const auto& o : c.offers) {
      offered += std::string(" ") + act_name(o.what) + "@" + notify_name(o.answering) +
                 (o.how == how_offered::returned ? "(ret)" : o.how == how_offered::through_ok ? "(ok)" : o.how == how_offered::dropped ? "(drop)" : "(refused)");
    }
    const std::string trail = " [" + who + " got:" + seen + "; answered:" + offered + "; final " +
                              (c.final_status ? status_name(*c.final_status) : "unknown") + "]";
    const auto efail = [&](const std::string& what) { fail(what + trail); };
    const auto answered = [&](notify k, act a) {
      return std::any_of(c.offers.begin(), c.offers.end(), [&](const offer_rec& o) {
        return o.answering == k && o.what == a && !o.misuse && !o.shadowed &&
               (o.how == how_offered::returned || o.how == how_offered::through_ok);
      });
    };
    // When a handler's delivery was answered: its first answer given inside
    // the handler, else the handler's return.
    const auto answered_at = [&](const delivery& d) {
      std::uint64_t at = d.end;
      for (const offer_rec& o : c.offers)
        if (o.answering == d.kind && !o.misuse && o.seq > d.start && o.seq < d.end) at = std::min(at, o.seq);
      return at;
    };
    const std::size_t n_pp = count(notify::preprepare), n_p = count(notify::prepare), n_c = count(notify::commit),
                      n_rb = count(notify::rollback), n_spc = count(notify::single_phase_commit),
                      n_rmd = count(notify::rm_disconnected);
    for (notify k : {notify::preprepare, notify::prepare, notify::commit, notify::rollback, notify::single_phase_commit,
                     notify::rm_disconnected})
      if (count(k) > 1) efail(std::string(notify_name(k)) + " delivered " + std::to_string(count(k)) + " times");
    for (notify k : {notify::preprepare, notify::prepare, notify::commit, notify::rollback, notify::single_phase_commit,
                     notify::rm_disconnected})
      if (count(k) && !c.plan.mask.has(k)) efail(std::string(notify_name(k)) + " delivered though the mask lacks it");
    if (n_c && n_rb) efail("both COMMIT and ROLLBACK");
    if (n_spc && n_rb && !answered(notify::single_phase_commit, act::single_phase_reject))
      efail("both SINGLE_PHASE_COMMIT and ROLLBACK");
    any_commit |= n_c != 0 || n_spc != 0;
    any_rollback |= n_rb != 0;
    if (n_c || n_spc) stats.single_phase += n_spc;
    // Nothing after COMMIT or ROLLBACK; no two handlers of one enlistment at
    // once (the thread pool once broke both: "the thread pool runs the
    // handlers of one enlistment one at a time" below).
    const auto overtaken = [](const delivery&) { return false; };
    for (std::size_t i = 0; i < got.size(); ++i) {
      if ((got[i].kind == notify::commit || got[i].kind == notify::rollback)) {
        for (std::size_t j = i + 1; j < got.size(); ++j) {
          if (got[j].kind == notify::rm_disconnected) continue;
          if (got[i].kind == notify::rollback && overtaken(got[j])) {
            ++stats.pool_reordered;
            continue;
          }
          efail(std::string(notify_name(got[j].kind)) + " delivered after " + notify_name(got[i].kind));
        }
      }
      if (i + 1 < got.size() && got[i + 1].start < answered_at(got[i]) && got[i + 1].kind != notify::rm_disconnected &&
          got[i].kind != notify::rm_disconnected) {
        if ((overtaken(got[i]) && got[i + 1].kind == notify::rollback) ||
            (overtaken(got[i + 1]) && got[i].kind == notify::rollback)) {
          ++stats.pool_overlapped;
          continue;
        }
        efail(std::string("the handlers for ") + notify_name(got[i].kind) + " and " + notify_name(got[i + 1].kind) +
              " of one enlistment ran at the same time (the second began before the first was answered)");
      }
    }
    bool self_rollback = false, dropped = false, dropped_known = false, ro_before = false, any_ro = false,
         rollback_answer_maybe = false, drop_maybe = false;
    std::uint64_t first_ro = UINT64_MAX;
    for (const offer_rec& o : c.offers) {
      if (o.misuse || o.shadowed) continue;
      const bool before_prepare = o.answering == notify::none || o.answering == notify::preprepare ||
                                  o.answering == notify::prepare || o.answering == notify::single_phase_commit;
      if (o.what == act::drop) {
        dropped = true;
        // A racing drop may come after the enlistment prepared: then it does nothing.
        if (!o.racing) dropped_known = true;
        if (o.answering != notify::single_phase_commit && !o.racing) drop_maybe = true;
      }
      if (o.what == act::rollback && before_prepare && o.how != how_offered::through_refused) self_rollback = true;
      // A rollback answer to a phase notification: accepted, or refused because
      // a rollback overtook it; or refused because a racing read-only came first.
      if (o.what == act::rollback && before_prepare && o.answering != notify::none) {
        if (o.how == how_offered::through_ok) any_rollback_answer = true;
        else rollback_answer_maybe = true;
      }
      if (o.illegal) ++illegal_returned;
      if (o.what == act::read_only && o.answering == notify::none && o.how == how_offered::through_ok && !o.racing)
        ro_before = true;
      // A racing read-only may overtake a delivery already sent (queued, not yet run): not counted here.
      if (o.what == act::read_only && (o.how == how_offered::through_ok || o.how == how_offered::returned)) {
        if (!o.racing) first_ro = std::min(first_ro, o.seq);
        any_ro = true;
      }
      if (o.what == act::rollback && o.answering == notify::none && o.how == how_offered::through_ok) any_rollback_answer = true;
      // Accepted clock values.
      bool accepted = o.how == how_offered::through_ok;
      if (o.how == how_offered::returned && t.inline_dispatch) accepted = true;
      if (o.how == how_offered::returned && o.what == act::preprepare_complete && n_p) accepted = true;
      if (o.how == how_offered::returned && o.what == act::prepare_complete && n_c) accepted = true;
      if (accepted && o.clock) {
        if (o.clock > max_accepted)
          max_from = "rm" + std::to_string(c.plan.rm) + " " + act_name(o.what) + " answering " + notify_name(o.answering) +
                     (o.how == how_offered::returned ? " (returned)" : " (through the enlistment)");
        max_accepted = std::max(max_accepted, o.clock);
        if (o.answering != notify::commit && o.answering != notify::rollback && o.answering != notify::single_phase_commit)
          max_accepted_before_commit = std::max(max_accepted_before_commit, o.clock);
      }
    }
    if (rollback_answer_maybe && !any_ro) any_rollback_answer = true;
    if (drop_maybe && !any_ro) any_drop = true;  // after a (racing) read-only a drop does nothing
    if (ro_before && !got.empty() && (got.size() != n_rmd)) efail("notified after it was read-only before the decision");
    if (n_c) {
      if (c.plan.mask.has(notify::preprepare) && !answered(notify::preprepare, act::preprepare_complete))
        efail("COMMIT without having answered PREPREPARE done");
      if (c.plan.mask.has(notify::prepare) && !answered(notify::prepare, act::prepare_complete))
        efail("COMMIT without having answered PREPARE prepared");
      if (self_rollback || dropped_known) efail("COMMIT after rolling back itself or dropping its handle");
      if (ro_before) efail("COMMIT after read_only");
      min_commit_clock = std::min(min_commit_clock, first(notify::commit)->clock);
      if (n_spc && !answered(notify::single_phase_commit, act::single_phase_reject))
        efail("two-phase COMMIT after a SINGLE_PHASE_COMMIT it did not reject");
    }
    if ((n_pp || n_p) && n_spc && !answered(notify::single_phase_commit, act::single_phase_reject))
      efail("the two-phase protocol after a SINGLE_PHASE_COMMIT it did not reject");
    if (n_spc) {
      if (spc_getter) efail("a second enlistment got SINGLE_PHASE_COMMIT");
      spc_getter = &c;
      if (got.front().kind != notify::single_phase_commit) efail("SINGLE_PHASE_COMMIT was not its first notification");
    }
    // Ordered clocks: phases are stamped with a clock that never goes back.
    {
      const delivery *a = first(notify::single_phase_commit), *b = first(notify::preprepare),
                     *p = first(notify::prepare), *cm = first(notify::commit);
      const delivery* seq[] = {a, b, p, cm};
      std::uint64_t last = 0;
      for (const delivery* d : seq) {
        if (!d) continue;
        if (d->clock < last) efail(std::string(notify_name(d->kind)) + " stamped with an earlier clock than the phase before");
        last = d->clock;
      }
    }
    if (n_rmd && f != fate::in_doubt && f != fate::unknown) efail("RM_DISCONNECTED though the outcome is not in doubt");
    // Read-only: nothing more.
    if (c.final_status == kt::enlistment_status::read_only) {
      if (n_c || n_rb) efail("COMMIT or ROLLBACK after read-only");
      for (const auto& d : got)
        if (d.kind != notify::rm_disconnected && d.start > first_ro)
          efail(std::string(notify_name(d.kind)) + " delivered after its read-only answer");
    }
    // The final status against the outcome.
    if (c.final_status) {
      const auto s = *c.final_status;
      using st = kt::enlistment_status;
      if (f == fate::committed && s != st::committed && s != st::read_only) efail("committed transaction, enlistment not settled");
      if (f == fate::aborted && s != st::rolled_back && s != st::read_only) efail("aborted transaction, enlistment not settled");
      // in doubt after a commit record whose force failed: still prepared
      if (f == fate::in_doubt && s != st::rolled_back && s != st::read_only && s != st::prepared)
        efail("in-doubt transaction, enlistment not settled");
      if (s == st::committed && c.plan.mask.has(notify::commit) && !n_c && !n_spc) efail("committed without COMMIT");
      if (s == st::committed && !c.plan.mask.has(notify::commit) && !n_spc && n_c) efail("COMMIT though masked");
    }
    // Rolled back: ROLLBACK to every enlistment that did not settle itself.
    if (f == fate::aborted) {
      if (n_c) efail("COMMIT in a rolled-back transaction");
      const bool settled_itself = ro_before || self_rollback || dropped || any_ro;
      if (c.plan.mask.has(notify::rollback) && !settled_itself && !n_rb)
        efail("no ROLLBACK to an enlistment still active when the transaction rolled back");
    }
    if (c.final_status == kt::enlistment_status::rolled_back && c.plan.mask.has(notify::rollback) && !n_rb &&
        !self_rollback && !dropped)
      efail("rolled back without ROLLBACK and without rolling back itself");
    if (f == fate::in_doubt && !log_in_doubt && &c != spc_first && c.plan.mask.has(notify::rm_disconnected) &&
        !n_rmd) {
      if (t.inline_dispatch) efail("no RM_DISCONNECTED though it subscribed and the outcome is in doubt");
      else ++stats.rmd_missing;
    }
    if (f == fate::committed && n_rb) efail("ROLLBACK in a committed transaction");
    // Rolled back itself (accepted through the enlistment): no ROLLBACK.
    const bool known_self = std::any_of(c.offers.begin(), c.offers.end(), [](const offer_rec& o) {
      return !o.misuse && o.what == act::rollback && o.how == how_offered::through_ok;
    });
    if ((known_self || (dropped && c.pre_effective && c.plan.pre == before::drop)) && n_rb)
      efail("ROLLBACK after it rolled back itself or dropped its handle");
    if (act_ == client_act::destroy_undecided) {
      if (n_pp || n_p || n_c || n_spc) efail("phase notifications though the client never committed");
    }
  }
  // ---- the transaction as a whole
  if (f == fate::committed && (any_rollback_answer || any_drop))
    fail("committed though an RM rolled back or dropped its handle before the commit point");
  if (f == fate::committed && any_rollback) fail("committed yet ROLLBACK was delivered");
  if (f == fate::aborted && any_commit && spc_getter == nullptr) fail("aborted yet COMMIT was delivered");
  if (act_ == client_act::timeout_expire && f != fate::aborted) fail("the timeout expired but the outcome is not aborted");
  // Single phase: exactly when one live enlistment asked for it, others read-only.
  const bool raced = std::any_of(t.enls.begin(), t.enls.end(), [](const auto& c) { return c->plan.racer != before::nothing; });
  const bool deterministic_start = is_commit(act_) && !raced && t.state_before_decision == kt::tx_state::active &&
                                   t.plan.timeout_us < 0 && !t.offline_before &&
                                   !(t.result && *t.result == t.offline_code);
  if (deterministic_start) {
    std::vector<const enl_ctx*> live;
    for (auto& c : t.enls)
      if (!(c->pre_effective && (c->plan.pre == before::read_only || c->plan.pre == before::rollback ||
                                 c->plan.pre == before::drop)))
        live.push_back(c.get());
    const bool expect_spc = live.size() == 1 && live[0]->plan.mask.has(kt::notify::single_phase_commit);
    if (expect_spc && spc_getter != live[0])
      fail("one live enlistment asked for single-phase commit but did not get SINGLE_PHASE_COMMIT");
    if (!expect_spc && spc_getter)
      fail("SINGLE_PHASE_COMMIT though " + std::to_string(live.size()) + " enlistments were live");
  }
  if (spc_getter) {
    for (auto& c : t.enls)
      if (c.get() != spc_getter) {
        const bool ro = std::any_of(c->offers.begin(), c->offers.end(), [](const offer_rec& o) {
          return o.answering == kt::notify::none && o.what == act::read_only && o.how == how_offered::through_ok;
        });
        if (!ro) fail("SINGLE_PHASE_COMMIT while another enlistment was not read-only");
      }
  }
  // In doubt: only through a dropped single-phase enlistment.
  if (f == fate::in_doubt) {
    // The single-phase RM dropped its handle with SINGLE_PHASE_COMMIT outstanding
    // (sent: a queued delivery may be cancelled with the transaction before it ran).
    const bool spc_dropped = std::any_of(t.enls.begin(), t.enls.end(), [](const auto& c) {
      return c->plan.mask.has(kt::notify::single_phase_commit) &&
             std::any_of(c->offers.begin(), c->offers.end(), [](const offer_rec& o) { return o.what == act::drop; });
    });
    if (!spc_dropped && !log_in_doubt) fail("in doubt though no single-phase enlistment dropped its handle");
  }
  // Reasons.
  if (t.outcome_known && f == fate::aborted) {
    std::set<kt::abort_reason> ok;
    if (is_rollback(act_)) ok.insert(kt::abort_reason::client);
    if (any_rollback_answer || illegal_returned) ok.insert(kt::abort_reason::resource_manager);
    for (auto& c : t.enls)
      for (const auto& o : c->offers)
        if (o.what == act::rollback) ok.insert(kt::abort_reason::resource_manager);
    if (act_ == client_act::destroy_undecided || act_ == client_act::destroy_during_commit)
      ok.insert(kt::abort_reason::destroyed);
    if (t.plan.timeout_us >= 0) ok.insert(kt::abort_reason::timeout);
    for (auto& c : t.enls)
      for (const auto& o : c->offers)
        if (o.what == act::drop) ok.insert(kt::abort_reason::enlistment_dropped);
    if (offline) {
      ok.insert(kt::abort_reason::log_failure);
      ok.insert(kt::abort_reason::tm_offline);
    }
    if (!ok.count(t.reason)) fail(std::string("rolled back for a reason nothing gave: ") + reason_name(t.reason));
    if (act_ == client_act::timeout_expire && t.reason != kt::abort_reason::timeout) {
      bool earlier = false;
      for (auto& c : t.enls)
        earlier |= (c->pre_effective && (c->plan.pre == before::rollback || c->plan.pre == before::drop)) ||
                   c->plan.racer == before::rollback || c->plan.racer == before::drop;
      if (!earlier) fail(std::string("the timeout expired first but the reason is ") + reason_name(t.reason));
    }
  }
  // Protocol errors: every illegal returned reply that reached the transaction.
  if (t.outcome_known) {
    if (t.inline_dispatch && t.protocol_errors != static_cast<std::uint32_t>(illegal_returned))
      fail("protocol_errors() is " + std::to_string(t.protocol_errors) + " for " + std::to_string(illegal_returned) +
           " illegal replies");
    if (!t.inline_dispatch && t.protocol_errors > static_cast<std::uint32_t>(illegal_returned))
      fail("protocol_errors() is " + std::to_string(t.protocol_errors) + " for " + std::to_string(illegal_returned) +
           " illegal replies");
  }
  // Clocks.
  if (t.outcome_known) {
    if (t.commit_clock < max_accepted)
      fail("commit_clock() " + std::to_string(t.commit_clock) + " is below a clock value the TM accepted: " +
           std::to_string(max_accepted));
    if (t.tm_clock_after < max_accepted)
      fail("the TM's clock " + std::to_string(t.tm_clock_after) + " once the transaction is done is below a clock value it accepted: " +
           std::to_string(max_accepted));
    if (t.clean_sync && t.tm_clock_right_after < max_accepted)
      fail("the TM's clock " + std::to_string(t.tm_clock_right_after) + " as " + client_act_name(act_) +
           " returned is below a clock value it accepted: " + std::to_string(max_accepted) + " from " + max_from +
           "; once done it reads " + std::to_string(t.tm_clock_after) + "; the client got " +
           code_name(t.result.value_or(std::error_code{})) + ", reason " + reason_name(t.reason));
  }
  if (t.expect_completion && completions == 1 && t.tm_clock_in_completion < max_accepted)
    fail("the TM's clock in the completion " + std::to_string(t.tm_clock_in_completion) +
         " is below a clock value it accepted: " + std::to_string(max_accepted));
  if (min_commit_clock != UINT64_MAX && min_commit_clock < max_accepted_before_commit)
    fail("COMMIT stamped " + std::to_string(min_commit_clock) + ", below a clock value accepted before it: " +
         std::to_string(max_accepted_before_commit));
}

template <class World>
void report(run_state<World>& rs, bool offline, tx_stats& stats) {
  std::vector<std::string> out;
  {
    std::lock_guard g(rs.m);
    out = rs.problems;
  }
  for (const auto& s : rs.w.env.strays()) out.push_back(rs.where + ": " + s);
  for (auto& per_thread : rs.done)
    for (auto& t : per_thread) verify(*t, offline, out, stats);
  INFO(rs.where);
  constexpr std::size_t shown = 25;
  for (std::size_t i = 0; i < out.size() && i < shown; ++i) FAIL_CHECK(out[i]);
  if (out.size() > shown) FAIL_CHECK(out.size() - shown << " more problems in " << rs.where);
}

// Runs the clients on world w, then checks.
struct schedule_options {
  bool churn = false;
  int shutdown_after = -1;
};

template <class World>
void run_schedule(World& w, const std::string& where, std::uint64_t seed, const knobs& k, tx_stats& stats,
                  std::vector<std::vector<std::unique_ptr<tx_ctx>>>* keep = nullptr, schedule_options so = {}) {
  run_state<World> rs(w, where);
  rs.churn = so.churn;
  rs.shutdown_after = so.shutdown_after;
  for (int i = 0; i < k.threads; ++i) {
    rs.current.push_back(std::make_unique<std::atomic<tx_ctx*>>(nullptr));
    rs.done.emplace_back();
  }
  {
    watchdog dog(k.watchdog_s, [&rs] {
      std::string s = rs.where + "; in progress:";
      for (auto& c : rs.current)
        if (tx_ctx* t = c->load()) s += "\n  " + t->tag;
      return s;
    });
    rs.dog = &dog;
    // The TM's clock never goes back.
    std::atomic<bool> stop{false};
    std::thread monitor([&] {
      std::uint64_t last = w.tm.virtual_clock();
      while (!stop.load(std::memory_order_acquire)) {
        const std::uint64_t now = w.tm.virtual_clock();
        if (now < last) rs.problem("the TM's virtual clock went back from " + std::to_string(last) + " to " + std::to_string(now));
        last = now;
        std::this_thread::sleep_for(microseconds(100));
      }
    });
    // rm3 leaves the registry and comes back, again and again: enlisting it
    // then fails with rm_not_found, and its enlistments go on.
    std::thread churner;
    if constexpr (World::registered) {
      if (so.churn)
        churner = std::thread([&] {
          while (!stop.load(std::memory_order_acquire)) {
            std::this_thread::sleep_for(microseconds(300));
            if (auto r = w.remove(w.r3); !r) rs.problem("removing rm3 gave " + code_name(r.code()));
            std::this_thread::sleep_for(microseconds(300));
            if (auto r = w.add(w.r3); !r) rs.problem("adding rm3 again gave " + code_name(r.code()));
          }
        });
    }
    std::vector<std::thread> clients;
    for (int i = 0; i < k.threads; ++i) clients.emplace_back([&, i] { run_client(rs, seed, i, k.txs); });
    for (auto& c : clients) c.join();
    stop.store(true, std::memory_order_release);
    monitor.join();
    if (churner.joinable()) churner.join();
  }
  if (w.tm.timer().armed() != 0) rs.problem("timeouts still armed after every transaction was destroyed");
  report(rs, w.offline(), stats);
  if (keep) *keep = std::move(rs.done);
}

void print_stats(const char* what, const tx_stats& s, std::size_t runs) {
  std::printf("random_schedule_test: %s: %zu runs, %zu transactions (%zu committed, %zu aborted, %zu in doubt, %zu "
              "destroyed by the client, %zu refused by an offline TM), %zu enlistments, %zu single-phase commits; "
              "in-doubt subscribers without "
              "RM_DISCONNECTED (asynchronous dispatchers): %zu; thread pool: %zu stale handlers overlapping their "
              "enlistment's ROLLBACK, %zu run after it\n",
              what, runs, s.txs, s.committed, s.aborted, s.in_doubt, s.destroyed, s.offline_refused, s.enlistments,
              s.single_phase,
              s.rmd_missing, s.pool_overlapped, s.pool_reordered);
  std::fflush(stdout);
}

}  // namespace

// =================================================================== tests

TEST_CASE("random schedules on a volatile TM keep every transaction and enlistment invariant") {
  namespace hana = boost::hana;
  const knobs k = read_knobs();
  constexpr auto dispatchers =
      hana::tuple_t<kt::inline_dispatcher, kt::queued_dispatcher, kt::thread_pool_dispatcher<2>>;
  constexpr auto storages =
      hana::tuple_t<kt::static_storage<rm0, rm1, rm2, rm3>, kt::inline_array_storage<3>, kt::dynamic_storage>;
  std::uint64_t combo = 0;
  hana::for_each(hana::cartesian_product(hana::make_tuple(dispatchers, storages)), [&](auto c) {
    using D = typename decltype(+hana::at_c<0>(c))::type;
    using S = typename decltype(+hana::at_c<1>(c))::type;
    const std::uint64_t id = combo++;
    DYNAMIC_SECTION(dispatcher_name<D> << " with " << storage_name<S>) {
      tx_stats stats;
      for (std::uint64_t seed : k.seeds) {
        const std::string where = std::string("seed ") + std::to_string(seed) + ", " + dispatcher_name<D> + " with " +
                                  storage_name<S>;
        CAPTURE(seed);
        dice d(mix(seed, id) ^ 0x5eed);
        schedule_options so;
        so.churn = !S::is_static && d.chance(50);
        if (d.chance(25)) so.shutdown_after = d.below(k.txs + 1);
        const std::string what = where + (so.churn ? ", rm3 unregistered and registered again meanwhile" : "") +
                                 (so.shutdown_after >= 0 ? ", shut down after transaction " +
                                                               std::to_string(so.shutdown_after) + " of client thread 0"
                                                         : "");
        volatile_world<D, S> w(mix(seed, id));
        run_schedule(w, what, mix(seed, id), k, stats, nullptr, so);
        CHECK(w.tm.state() == (so.shutdown_after >= 0 && so.shutdown_after < k.txs ? kt::tm_state::offline
                                                                                    : kt::tm_state::online));
        CHECK(w.online_count() == 4);  // TM_ONLINE once to each RM
      }
      print_stats((std::string(dispatcher_name<D>) + " with " + storage_name<S>).c_str(), stats, k.seeds.size());
    }
  });
}

TEST_CASE("random schedules on a durable TM over fault injection keep every invariant and recover every acknowledged commit") {
  namespace hana = boost::hana;
  const knobs k = read_knobs();
  constexpr auto dispatchers =
      hana::tuple_t<kt::inline_dispatcher, kt::queued_dispatcher, kt::thread_pool_dispatcher<2>>;
  std::uint64_t combo = 100;
  hana::for_each(dispatchers, [&](auto dt) {
    using D = typename decltype(dt)::type;
    const std::uint64_t id = combo++;
    DYNAMIC_SECTION("a durable TM with " << dispatcher_name<D>) {
      tx_stats stats;
      std::size_t fail_stops = 0, recovered_commits = 0, redelivered = 0;
      for (std::uint64_t seed : k.seeds) {
        const std::uint64_t run_seed = mix(seed, id);
        dice d(run_seed);
        const bool inject = d.chance(50);
        const std::uint64_t nth = 2 + static_cast<std::uint64_t>(d.below(16));
        const std::string where = std::string("seed ") + std::to_string(seed) + ", a durable TM with " +
                                  dispatcher_name<D> + (inject ? ", the " + std::to_string(nth) + "th flush fails" : "");
        CAPTURE(seed);
        io_t st{ktm::io::memory_storage{}};
        const durable_ids ids;
        std::vector<std::vector<std::unique_ptr<tx_ctx>>> txs;
        bool failed = false;
        std::uint64_t clock_before_crash = 0;
        {
          durable_world<D> w(st, ids, run_seed, false);
          if (inject) st.controller()->fail_nth(ktm::io::call_kind::flush, nth, errc::io_error);
          run_schedule(w, where, run_seed, k, stats, &txs);
          failed = w.failed();
          fail_stops += failed;
          CHECK(w.tm.state() == (failed ? kt::tm_state::offline : kt::tm_state::online));
          clock_before_crash = w.tm.virtual_clock();
          st.controller()->clear_faults();  // one that did not fire must not fail the reopening
          st.controller()->crash();
        }
        INFO(where << ": after the crash");
        // What the clients learned; which durable RMs committed in two phases.
        std::map<guid, std::set<int>> committed;  // UOW -> durable RMs prepared in an acknowledged commit
        std::map<guid, std::set<int>> journaled;  // UOW -> journaling RMs that answered PREPARE prepared
        std::set<guid> aborted;
        std::map<guid, const tx_ctx*> by_uow;
        for (auto& per_thread : txs)
          for (auto& t : per_thread) {
            by_uow.emplace(t->uow, t.get());
            const fate f = fate_of(*t, failed);
            if (f == fate::aborted || f == fate::in_doubt) aborted.insert(t->uow);
            if (f != fate::committed) continue;
            // The durable enlistments that prepared in two phases (the commit
            // record names them), and those that wrote a prepare record.
            std::set<int> rms, wrote;
            for (auto& c : t->enls) {
              std::lock_guard g(c->m);
              const auto got = [&](kt::notify k) {
                return std::any_of(c->got.begin(), c->got.end(), [&](const delivery& x) { return x.kind == k; });
              };
              const auto offered = [&](kt::notify k, act a) {
                return std::any_of(c->offers.begin(), c->offers.end(), [&](const offer_rec& o) {
                  return o.answering == k && o.what == a && !o.misuse && !o.shadowed &&
                         (o.how == how_offered::returned || o.how == how_offered::through_ok);
                });
              };
              const bool settled_otherwise = std::any_of(c->offers.begin(), c->offers.end(), [](const offer_rec& o) {
                return !o.misuse && (o.what == act::read_only || o.what == act::rollback || o.what == act::drop) &&
                       o.how != how_offered::through_refused && !(o.racing && o.what == act::drop);
              });
              if (c->plan.rm > 2) continue;
              if (got(kt::notify::single_phase_commit) &&
                  !offered(kt::notify::single_phase_commit, act::single_phase_reject))
                continue;  // committed alone: no commit record
              if (got(kt::notify::commit) || (!c->plan.mask.has(kt::notify::commit) && !settled_otherwise)) {
                rms.insert(c->plan.rm);
                if (got(kt::notify::prepare) && offered(kt::notify::prepare, act::prepare_complete))
                  wrote.insert(c->plan.rm);
              }
            }
            if (!rms.empty()) {
              committed.emplace(t->uow, std::move(rms));
              journaled.emplace(t->uow, std::move(wrote));
            }
          }
        durable_world<D> w(st, ids, run_seed, true);
        CHECK(w.tm.recover_resource_manager(w.r0));
        CHECK(w.tm.recover_resource_manager(w.r1));
        CHECK(w.tm.recover_resource_manager(w.r2));
        const bool last = wait_for([&] { return w.r0.last_recovers == 1 && w.r1.last_recovers == 1 && w.r2.last_recovers == 1; });
        CHECK(last);
        recovered_commits += committed.size();
        for (const auto& [uow, rms] : committed) {
          INFO("acknowledged two-phase commit " << uow.to_string());
          CHECK(w.tm.recovered_outcome(uow) == kt::transaction_outcome::committed);
        }
        for (const guid& uow : aborted) {
          INFO("rolled back or in doubt " << uow.to_string());
          CHECK(w.tm.recovered_outcome(uow) == kt::transaction_outcome::aborted);
        }
        // The flush contract: each acknowledged commit's prepare records are durable.
        const std::set<guid> p0 = w.prepared_in(w.rs0), p1 = w.prepared_in(w.rs1);
        for (const auto& [uow, rms] : journaled) {
          INFO("acknowledged two-phase commit " << uow.to_string());
          INFO(by_uow[uow]->tag);
          if (rms.count(0)) CHECK(p0.count(uow) == 1);
          if (rms.count(1)) CHECK(p1.count(uow) == 1);
        }
        // Only acknowledged commits are redelivered, and only to their RMs.
        for (const auto& r : w.env.redelivered()) {
          if (r.kind != kt::notify::commit && r.kind != kt::notify::recover) continue;
          ++redelivered;
          INFO("redelivered " << notify_name(r.kind) << " of " << r.uow.to_string() << " to rm" << r.rm);
          INFO((by_uow.count(r.uow) ? by_uow[r.uow]->tag : std::string("an unknown transaction")));
          const auto it = committed.find(r.uow);
          CHECK(it != committed.end());
          if (it != committed.end()) CHECK(it->second.count(r.rm) == 1);
        }
        CHECK(w.tm.virtual_clock() <= clock_before_crash);
        CHECK(w.tm.state() == kt::tm_state::online);
      }
      print_stats((std::string("a durable TM with ") + dispatcher_name<D>).c_str(), stats, k.seeds.size());
      std::printf("random_schedule_test: a durable TM with %s: %zu fail-stops, %zu acknowledged two-phase commits "
                  "recovered, %zu notifications redelivered\n",
                  dispatcher_name<D>, fail_stops, recovered_commits, redelivered);
      std::fflush(stdout);
    }
  });
}

// =================================================================== found problems
//
// Minimal reproductions of what the random schedules found, each fixed
// since; the comment above each says what it was.

namespace {

// PREPARE waits (at most `hold`) for its enlistment's ROLLBACK handler to
// begin, and notes whether the two handlers ran at the same time.
struct slow_prepare_rm : kt::resource_manager_base<> {
  static constexpr auto hold = milliseconds(500);
  std::atomic<bool> in_prepare{false}, rollback_began{false}, overlapped{false};
  kt::reply on_prepare(kt::enlistment&, const kt::notification&) {
    in_prepare.store(true);
    (void)wait_for([&] { return rollback_began.load(); }, hold);
    if (rollback_began.load()) overlapped.store(true);
    in_prepare.store(false);
    return kt::reply::done();
  }
  kt::reply on_commit(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_rollback(kt::enlistment&, const kt::notification&) {
    rollback_began.store(true);
    if (in_prepare.load()) overlapped.store(true);
    return kt::reply::done();
  }
};
struct refusing_rm : kt::resource_manager_base<> {
  kt::reply on_prepare(kt::enlistment&, const kt::notification&) { return kt::reply::rollback(); }
  kt::reply on_commit(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_rollback(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
};

}  // namespace

// Was: the pool's workers took deliveries from one queue in any order, so
// when a rollback overtook a PREPARE still running, a second worker ran the
// same enlistment's ROLLBACK at the same time (or before the PREPARE: seed
// 2 showed ROLLBACK then PREPREPARE), and an RM writing a prepare record
// could stay prepared for a rolled-back transaction. Now a worker takes the
// oldest delivery whose enlistment has none running
// (notification_queue::pop_unclaimed). Here a's PREPARE holds one worker
// while b's PREPARE answers rollback on the other.
TEST_CASE("the thread pool runs the handlers of one enlistment one at a time") {
  slow_prepare_rm a;
  refusing_rm b;
  kt::volatile_transaction_manager<kt::with_storage<kt::static_storage<slow_prepare_rm, refusing_rm>>,
                                   kt::with_dispatcher<kt::thread_pool_dispatcher<2>>>
      tm{a, b};
  auto tx = tm.begin();
  auto ea = tx.enlist(a);
  auto eb = tx.enlist(b);
  REQUIRE(ea);
  REQUIRE(eb);
  auto fut = tx.commit_async();
  REQUIRE(fut.wait_for(patience) == std::future_status::ready);
  CHECK(fut.get().code() == errc::transaction_aborted);
  CHECK(a.rollback_began.load());
  CHECK_FALSE(a.overlapped.load());  // ROLLBACK waits for a's PREPARE handler
}

// Was: a timeout that fired while SINGLE_PHASE_COMMIT was outstanding was
// dropped (single_phase_committing is not before prepared), so when the RM
// then rejected, the two phases ran to a commit the timeout should have
// prevented. Now the expiry is kept and a reject rolls back
// (transaction_core::on_timeout, transaction_replies.hpp).
TEST_CASE("a timeout that expires during a single-phase commit the RM then rejects rolls the transaction back") {
  ktm::test::rm_a a;
  ktm::test::rm_b b;
  kt::volatile_transaction_manager<kt::with_storage<kt::static_storage<ktm::test::rm_a, ktm::test::rm_b>>> tm{a, b};
  a.answer(kt::notify::single_phase_commit, kt::reply::later());
  auto tx = tm.begin();
  auto ea = tx.enlist(a, kt::default_mask | kt::notify::single_phase_commit);
  REQUIRE(ea);
  REQUIRE(tx.set_timeout(milliseconds(5)));
  auto fut = tx.commit_async();
  auto d = a.deferred();
  REQUIRE(d.size() == 1);  // SINGLE_PHASE_COMMIT, unanswered
  REQUIRE(wait_for([&] { return tm.timer().armed() == 0; }));  // the timeout fired
  tm.timer().cancel(tx);  // and its handler returned (cancel waits for a timeout firing)
  CHECK(tx.internal_state() == kt::tx_state::single_phase_committing);
  REQUIRE(d[0]->single_phase_reject());  // the RM asks for two phases
  REQUIRE(fut.wait_for(patience) == std::future_status::ready);
  CHECK(fut.get().code() == errc::transaction_aborted);
  CHECK(tx.reason() == kt::abort_reason::timeout);
  CHECK(a.count(kt::notify::commit) == 0);
}

// RM_DISCONNECTED (the single-phase RM went away: outcome in doubt) needs
// no answer, so the client learns the outcome and may destroy the
// transaction before a queued subscriber pulled it; the notification then
// goes with the transaction, whose enlistment it names (doc/transactions.md).
// A subscriber gets it while the transaction lives.
TEST_CASE("a queued subscriber gets RM_DISCONNECTED while the in-doubt transaction lives and not after it is destroyed") {
  ktm::test::rm_a a;
  ktm::test::rm_b b;
  kt::volatile_transaction_manager<kt::with_storage<kt::static_storage<ktm::test::rm_a, ktm::test::rm_b>>,
                                   kt::with_dispatcher<kt::queued_dispatcher>>
      tm{a, b};
  for (const bool pull_first : {true, false}) {
    CAPTURE(pull_first);
    const auto before = b.count(kt::notify::rm_disconnected);
    {
      auto tx = tm.begin();
      auto ea = tx.enlist(a, kt::default_mask | kt::notify::single_phase_commit);
      auto eb = tx.enlist(b, kt::default_mask | kt::notify::rm_disconnected);
      REQUIRE(ea);
      REQUIRE(eb);
      REQUIRE((*eb)->read_only());
      auto fut = tx.commit_async();
      {
        auto q = a.get_notification(patience);
        REQUIRE(q);
        CHECK(q->get().kind == kt::notify::single_phase_commit);
        ea->reset();  // the RM goes away without answering
      }
      REQUIRE(fut.wait_for(patience) == std::future_status::ready);
      CHECK(fut.get().code() == errc::in_doubt);
      CHECK(b.notifications().size() == 1);  // RM_DISCONNECTED, not pulled yet
      if (pull_first) {
        while (b.serve_one(milliseconds(0))) {
        }
        CHECK(b.count(kt::notify::rm_disconnected) == before + 1);
      }
    }  // the client is done with the transaction
    CHECK(b.notifications().size() == 0);
    while (b.serve_one(milliseconds(0))) {
    }
    CHECK(b.count(kt::notify::rm_disconnected) == before + (pull_first ? 1 : 0));
  }
}

// Was: the destructor's lock-free fast path (settled_on_creator_thread)
// read foreign_, set by another thread's guard only once it locked the
// transaction, and then inflight_ without the lock; a pin or queued
// delivery released by another thread after the transaction finished could
// thus be freed under that thread's guard (ThreadSanitizer: a data race on
// inflight_; found with 5 client threads, seeds 5000-5039). Now handing a
// delivery or pin to another thread marks the transaction foreign at once
// (transaction_core::hand_off_locked). Visible under --config=tsan.
TEST_CASE("a transaction finished on its creating thread is destroyed only after another thread released it") {
  ktm::test::rm_a a;
  ktm::test::rm_b b;
  using tm_type = kt::volatile_transaction_manager<kt::with_storage<kt::static_storage<ktm::test::rm_a, ktm::test::rm_b>>>;
  tm_type tm{a, b};
  std::atomic<kt::transaction_core*> handed{nullptr};
  std::atomic<bool> stop{false};
  std::atomic<int> released{0};
  std::thread other([&] {  // holds nothing but what it is handed; releases it at once
    while (!stop.load(std::memory_order_acquire))
      if (kt::transaction_core* c = handed.exchange(nullptr, std::memory_order_acq_rel)) {
        c->release_inflight();
        released.fetch_add(1, std::memory_order_release);
      }
  });
  constexpr int rounds = 1000;
  for (int i = 0; i < rounds; ++i) {
    auto tx = std::make_unique<tm_type::transaction>(tm, guid::generate());
    auto e = tx->enlist(a);
    REQUIRE(e);
    REQUIRE(tx->rollback());  // ROLLBACK answered inline: finished on this thread alone
    e->reset();
    tx->pin();  // e.g. a delivery another thread still holds
    handed.store(tx.get(), std::memory_order_release);
    tx.reset();  // must wait for the release (wind_down), not race it
  }
  stop.store(true, std::memory_order_release);
  other.join();
  CHECK(released.load() == rounds);
}
