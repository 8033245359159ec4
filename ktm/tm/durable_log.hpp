// ktm/tm/durable_log.hpp: the log of a durable TM: a log_backend adapter
// that keeps the TM's bookkeeping around a backend (log_stream_backend over
// ktm::log, or any durable log_backend with scan/base support).
//
// The transaction (transaction.hpp) calls it at two points; this adapter
// turns them into the durable TM's contract:
//   - commit record, force: appended queue-only under a short lock that also
//     records (UOW -> LSN) as "committed, not ended", then flushed to its LSN
//     outside the lock, so concurrent commits share one device flush (the
//     log's group commit). Every record appended to the same log before it
//     (the RMs' queue-only prepare records) is durable when it returns.
//   - end record, queue-only: the UOW is no longer pending; every
//     `checkpoint_every` end records a restart area is written.
// A failed append or flush makes the TM fail-stop: failed() is true, every
// later call fails with errc::tm_failed (the TM reports offline, new work
// gets errc::tm_failed). A commit record whose append failed was never
// written: its transaction rolls back. One whose force failed was written
// and may be durable: this returns errc::in_doubt (the cause stays in
// failed()'s error) and the transaction is left in doubt, never
// acknowledged and never rolled back: recovery decides.
//
// Restart areas (checkpoint(), or the cadence): a restart record stamped with
// the TM id and the largest clock logged, which moves the stream's base to
// the oldest commit record still pending (committed, not ended), else to the
// last record: the stream stays bounded by the unfinished transactions.
//
// Recovery (replay, called by replay_recovery): scans the stream from its
// base; each commit record without an end record becomes a recovered
// transaction, redelivered to its RMs by redeliver(rm, dispatcher)
// (RECOVER, COMMIT, then LAST_RECOVER, through the TM's dispatcher:
// detail::recovery_sequence), whose end record is appended once every
// enlistment answered. replay(limit, progress, every) also reports progress
// (replay_recovery's Progress). recovered_outcome(uow): committed for a
// commit record found by replay or logged since, undetermined for one whose
// force failed (it may be durable), else aborted (presumed abort: a commit
// that ended in this run is forgotten as one ended before a restart is).
//
// Subordinates of a superior TM (doc/superior.md): a prepared record (the
// superior's id, the prepared enlistments) is forced like a commit record
// and pins the base the same way; a commit record or an end record for the
// same UOW closes it. Replay turns a prepared record without either into an
// in-doubt recovered transaction (for_each_in_doubt): RECOVER and INDOUBT to
// its RMs through the same sequence, the outcome later from the superior
// (recovered_transaction.hpp); recovered_outcome says undetermined for it
// until then.
//
// Heuristic records (a subordinate decided alone, superior_transaction_manager):
// forced; one whose superior outcome is still unknown pins the base like a
// pending commit. Replay keeps the last one of each UOW: for_each_heuristic
// lists them (the TM rebuilds its reports and applies again a decision whose
// in-doubt transaction is still open).
#pragma once

#include <algorithm>
#include <atomic>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "ktm/concepts/log_backend.hpp"
#include "ktm/concepts/recovery_policy.hpp"
#include "ktm/guid.hpp"
#include "ktm/result.hpp"
#include "ktm/tm/detail/open_commits.hpp"
#include "ktm/tm/detail/recovered_transaction.hpp"
#include "ktm/tm/detail/recovery_sequence.hpp"
#include "ktm/tm/detail/tm_record.hpp"
#include "ktm/tm/states.hpp"

namespace ktm::tm {

namespace detail {
template <class B>
concept has_scan = requires(B& b) {
  { b.scan([](typename B::lsn_type, bool, std::span<const std::byte>) {}) } -> std::same_as<result<void>>;
};
template <class B>
concept has_restart_base = requires(B& b, std::span<const std::byte> bytes, typename B::lsn_type l) {
  { b.write_restart_area(bytes, l) } -> std::same_as<result<typename B::lsn_type>>;
  { b.base_lsn() } -> std::convertible_to<typename B::lsn_type>;
};

struct no_progress {
  void operator()(const recovery_progress&) const noexcept {}
};

inline guid record_id(std::span<const std::byte> b) {
  guid::bytes_type g{};
  for (std::size_t i = 0; i < 16; ++i) g[i] = static_cast<std::uint8_t>(b[12 + i]);
  return guid(g);
}
inline std::uint64_t record_clock(std::span<const std::byte> b) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<std::uint8_t>(b[4 + static_cast<std::size_t>(i)]);
  return v;
}
}  // namespace detail

// Counters of a durable TM's log (durable_log::stats()).
struct durable_log_stats {
  std::uint64_t commit_records = 0;
  std::uint64_t end_records = 0;
  std::uint64_t restart_areas = 0;
  std::size_t pending = 0;      // committed, end record not yet appended
  std::size_t unresolved = 0;   // recovered transactions not yet ended
};

template <log_backend Backend>
class durable_log {
  static_assert(Backend::durable, "durable_log: the backend must be durable (not no_log)");
  static_assert(detail::has_scan<Backend>,
                "durable_log: the backend needs `result<void> scan(f)` (f(lsn, is_restart, payload)) for recovery");

 public:
  using backend_type = Backend;
  using lsn_type = typename Backend::lsn_type;
  static constexpr bool durable = true;

  durable_log() : s_(std::make_unique<core>(Backend{})) {}
  durable_log(Backend b) : s_(std::make_unique<core>(std::move(b))) {}  // NOLINT: implicit on purpose
  // From whatever the backend is built from (e.g. a ktm::log::stream<Io>).
  template <class S>
    requires(!std::same_as<std::remove_cvref_t<S>, durable_log> && !std::same_as<std::remove_cvref_t<S>, Backend> &&
             std::constructible_from<Backend, S &&>)
  durable_log(S&& s) : durable_log(Backend(std::forward<S>(s))) {}  // NOLINT: implicit on purpose

  durable_log(durable_log&&) noexcept = default;
  durable_log& operator=(durable_log&&) noexcept = default;

  // ---- log_backend ----
  result<lsn_type> append(std::span<const std::byte> bytes, log_append_mode m) { return s_->append(bytes, m); }
  result<lsn_type> flush_to(lsn_type l) {
    if (s_->failed.load(std::memory_order_acquire)) return errc::tm_failed;
    auto r = s_->b.flush_to(l);
    if (!r) s_->fail(r.error());
    return r;
  }
  // A restart area: `bytes` is a TM restart record (the TM's checkpoint());
  // its clock is raised to the largest logged and the base is moved (above).
  result<lsn_type> write_restart_area(std::span<const std::byte> bytes) {
    guid id = s_->tm_id;
    std::uint64_t clock = 0;
    if (bytes.size() >= detail::tm_record_header_size) {
      id = detail::record_id(bytes);
      clock = detail::record_clock(bytes);
    }
    return s_->checkpoint(id, clock);
  }
  result<lsn_type> read_restart_area(std::vector<std::byte>& out) { return s_->b.read_restart_area(out); }
  result<lsn_type> read_record(lsn_type l, std::vector<std::byte>& out) { return s_->b.read_record(l, out); }

  // ---- what the durable TM uses ----
  void attach(const guid& tm_id, std::size_t checkpoint_every) {
    s_->tm_id = tm_id;
    s_->checkpoint_every.store(checkpoint_every, std::memory_order_relaxed);
  }
  void set_checkpoint_every(std::size_t n) noexcept { s_->checkpoint_every.store(n, std::memory_order_relaxed); }
  std::size_t checkpoint_every() const noexcept { return s_->checkpoint_every.load(std::memory_order_relaxed); }
  bool failed() const noexcept { return s_->failed.load(std::memory_order_acquire); }
  // The failure that made the TM fail-stop (empty code if none).
  failure failure_cause() const {
    std::lock_guard l(s_->m);
    return s_->cause;
  }
  // Scans the stream (see the header comment). clock_limit != 0: only
  // records with a clock <= clock_limit count (rollforward). Merges into what
  // an earlier replay found; a transaction is recovered once.
  result<recovery_summary> replay(std::uint64_t clock_limit = 0) {
    detail::no_progress none;
    return s_->replay(clock_limit, none, ~std::uint64_t{0});
  }
  // The same, calling progress(const recovery_progress&) at most once per
  // `every` records scanned, then once with done = true.
  template <class F>
  result<recovery_summary> replay(std::uint64_t clock_limit, F& progress, std::uint64_t every) {
    return s_->replay(clock_limit, progress, every == 0 ? 1 : every);
  }
  transaction_outcome recovered_outcome(const guid& uow) const {
    std::lock_guard l(s_->m);
    if (s_->in_doubt.count(uow)) return transaction_outcome::undetermined;
    if (s_->pending.count(uow)) return transaction_outcome::committed;
    if (!s_->found.empty()) {  // index what the last replays found, once
      s_->committed.reserve(s_->committed.size() + s_->found.size());
      s_->committed.insert(s_->found.begin(), s_->found.end());
      s_->found.clear();
      s_->found.shrink_to_fit();
    }
    if (s_->committed.count(uow)) return transaction_outcome::committed;
    return transaction_outcome::aborted;
  }
  // Sends RECOVER then COMMIT (for an in-doubt transaction: INDOUBT, or its
  // outcome once known) for every recovered enlistment of the RM behind
  // `inv` (an invoker, rm_vtable.hpp), then LAST_RECOVER, through the TM's
  // dispatcher (detail::recovery_sequence). Returns the enlistments handed
  // to the sequence (each enlistment is redelivered once).
  template <class Invoker, class Dispatcher>
  std::size_t redeliver(const Invoker& inv, Dispatcher& d, std::uint64_t clock) {
    const guid rid = inv.rm_id();
    const detail::erased_invoker rm = inv.erase();
    const detail::recovered_transaction::dispatcher_ref via{
        &d,
        [](void* dp, const detail::erased_invoker& i, enlistment* e, const notification& no) {
          return static_cast<Dispatcher*>(dp)->dispatch(i, e, no);
        },
        Dispatcher::is_inline};
    std::vector<detail::recovery_sequence::item> items;
    for (auto* t : recovered_list())
      if (t->mentions(rid))
        for (const auto& [e, then] : t->take(rm, via)) items.push_back({t, e, then});
    const std::size_t n = items.size();
    auto seq = std::make_unique<detail::recovery_sequence>(via.d, via.fn, via.is_inline, rm, clock, std::move(items));
    detail::recovery_sequence* p = seq.get();
    {
      std::lock_guard l(s_->m);
      s_->sequences.push_back(std::move(seq));
    }
    p->start();
    s_->redelivered.fetch_add(n, std::memory_order_relaxed);
    return n;
  }
  // f(recovered_transaction&) for every recovered transaction still in doubt.
  template <class F>
  void for_each_in_doubt(F&& f) {
    for (auto* t : recovered_list())
      if (t->in_doubt()) f(*t);
  }
  // f(const detail::tm_record_header&) for the last heuristic record of each
  // UOW that replays found (a decision taken alone, and the superior's
  // outcome once known).
  template <class F>
  void for_each_heuristic(F&& f) const {
    std::vector<detail::tm_record_header> v;
    {
      std::lock_guard l(s_->m);
      v = s_->heuristics;
    }
    for (const auto& h : v) f(h);
  }
  // f(rm id, recovery information) for every enlistment of a recovered
  // transaction not yet ended.
  template <class F>
  void for_each_recovered_enlistment(F&& f) {
    for (auto* t : recovered_list())
      if (!t->ended()) t->for_each_enlistment(f);
  }

  durable_log_stats stats() const {
    durable_log_stats st;
    {
      std::lock_guard l(s_->m);
      st.commit_records = s_->commits;
      st.end_records = s_->ends;
      st.restart_areas = s_->restarts;
      st.pending = s_->pending.size();
    }
    for (auto* t : recovered_list()) st.unresolved += !t->ended();
    return st;
  }
  Backend& backend() noexcept { return s_->b; }

 private:
  // The recovered transactions (they live as long as the log), copied under
  // m: a transaction's lock is never taken under m (its end callback takes m).
  std::vector<detail::recovered_transaction*> recovered_list() const {
    std::vector<detail::recovered_transaction*> v;
    std::lock_guard l(s_->m);
    for (auto& t : s_->recovered) v.push_back(t.get());
    return v;
  }

  struct core {
    explicit core(Backend bk) : b(std::move(bk)) {}

    Backend b;
    mutable std::mutex m;  // guards everything below that is not atomic
    std::mutex cp;         // one checkpoint (or replay) at a time
    std::unordered_map<guid, lsn_type> pending;  // commit record logged, no end record yet
    mutable std::unordered_set<guid> committed;  // commit records found by replay, indexed
    mutable std::deque<guid> found;              // ... not yet indexed (recovered_outcome does it)
    std::unordered_set<guid> in_doubt;           // prepared records, neither committed nor ended
    std::unordered_map<guid, lsn_type> heuristic_pins;  // heuristic records, the superior's outcome unknown
    std::vector<detail::tm_record_header> heuristics;   // found by replays, the last of each UOW
    std::deque<std::unique_ptr<detail::recovered_transaction>> recovered;
    // after `recovered`: destroyed first, they drop their queued deliveries
    std::deque<std::unique_ptr<detail::recovery_sequence>> sequences;
    std::optional<lsn_type> last;                // the last record of the stream we know of
    failure cause{};
    guid tm_id{};
    std::atomic<bool> failed{false};
    std::atomic<std::uint64_t> max_clock{0};
    std::atomic<std::size_t> checkpoint_every{0};
    std::atomic<std::size_t> since_checkpoint{0};
    std::atomic<std::size_t> redelivered{0};
    std::uint64_t commits = 0, ends = 0, restarts = 0;

    void fail(const failure& f) {
      {
        std::lock_guard l(m);
        if (!cause.code) cause = f;
      }
      failed.store(true, std::memory_order_release);
    }
    void note_clock(std::uint64_t c) {
      std::uint64_t cur = max_clock.load(std::memory_order_relaxed);
      while (c > cur && !max_clock.compare_exchange_weak(cur, c, std::memory_order_relaxed)) {
      }
    }
    void note_last_locked(lsn_type l) {
      if (!last || *last < l) last = l;
    }

    // m held: appends to the backend; a failure makes the TM fail-stop.
    result<lsn_type> append_locked(std::span<const std::byte> bytes, log_append_mode mode) {
      auto r = b.append(bytes, mode);
      if (!r) {
        if (!cause.code) cause = r.error();
        failed.store(true, std::memory_order_release);
        return r;
      }
      note_last_locked(*r);
      return r;
    }

    result<lsn_type> append(std::span<const std::byte> bytes, log_append_mode mode) {
      if (failed.load(std::memory_order_acquire)) return errc::tm_failed;
      const auto type = bytes.size() >= detail::tm_record_header_size
                            ? static_cast<detail::tm_record_type>(bytes[0])
                            : detail::tm_record_type{0};
      if (type == detail::tm_record_type::commit || type == detail::tm_record_type::prepared) {
        const guid uow = detail::record_id(bytes);
        return append_then_force(
            bytes, mode, detail::record_clock(bytes),
            [&](lsn_type at) {
              pending[uow] = at;
              if (type == detail::tm_record_type::prepared) {
                in_doubt.insert(uow);
              } else {
                in_doubt.erase(uow);
                ++commits;
              }
            },
            [&](const failure& f) -> result<lsn_type> {  // written, maybe durable: never acknowledged, nor rolled back
              std::lock_guard l(m);
              pending.erase(uow);
              in_doubt.insert(uow);  // recovered_outcome: undetermined until a replay reads the log
              return failure(errc::in_doubt, f.where, f.file);
            });
      }
      if (type == detail::tm_record_type::heuristic) return append_heuristic(bytes, mode);
      result<lsn_type> r = lsn_type{};
      {
        std::lock_guard l(m);
        r = append_locked(bytes, mode);
        if (!r) return r;
        if (type == detail::tm_record_type::end) {
          pending.erase(detail::record_id(bytes));
          in_doubt.erase(detail::record_id(bytes));
          ++ends;
        }
      }
      if (bytes.size() >= detail::tm_record_header_size) note_clock(detail::record_clock(bytes));
      if (type == detail::tm_record_type::end) maybe_checkpoint();
      return r;
    }

    // One whose superior outcome is unknown pins the base until one that
    // knows it.
    result<lsn_type> append_heuristic(std::span<const std::byte> bytes, log_append_mode mode) {
      detail::tm_record_header h;
      if (!detail::peek_tm_record_into(bytes, h)) return errc::invalid_argument;
      return append_then_force(
          bytes, mode, h.clock,
          [&](lsn_type at) {
            if (h.superior_said == 0) heuristic_pins.try_emplace(h.id, at);
            else heuristic_pins.erase(h.id);
          },
          [](const failure& f) -> result<lsn_type> { return f; });
    }

    // A decision record: appended queue-only under the lock (placed(at)
    // keeps its bookkeeping there), its clock noted, then flushed outside
    // the lock when mode is force. A failed flush returns unforced(the
    // flush's failure), run before the TM is failed.
    template <class Placed, class Unforced>
    result<lsn_type> append_then_force(std::span<const std::byte> bytes, log_append_mode mode, std::uint64_t clock,
                                       Placed placed, Unforced unforced) {
      lsn_type at{};
      {
        std::lock_guard l(m);
        auto r = append_locked(bytes, log_append_mode::queue_only);
        if (!r) return r;
        at = *r;
        placed(at);
      }
      note_clock(clock);
      if (mode == log_append_mode::force) {
        if (auto f = b.flush_to(at); !f) {
          result<lsn_type> out = unforced(f.error());
          fail(f.error());
          return out;
        }
      }
      return at;
    }

    void maybe_checkpoint() {
      const std::size_t every = checkpoint_every.load(std::memory_order_relaxed);
      if (every == 0) return;
      std::size_t n = since_checkpoint.fetch_add(1, std::memory_order_relaxed) + 1;
      if (n < every) return;
      // one thread wins the reset and writes the restart area
      if (!since_checkpoint.compare_exchange_strong(n, 0, std::memory_order_relaxed)) return;
      (void)checkpoint(tm_id, 0);
    }

    result<lsn_type> checkpoint(const guid& id, std::uint64_t clock) {
      if (failed.load(std::memory_order_acquire)) return errc::tm_failed;
      std::lock_guard c(cp);
      std::optional<lsn_type> base;
      {
        std::lock_guard l(m);
        for (auto& [uow, at] : pending)
          if (!base || at < *base) base = at;
        for (auto& [uow, at] : heuristic_pins)
          if (!base || at < *base) base = at;
        if (!base) base = last;
      }
      detail::tm_record_writer w(detail::tm_record_type::restart,
                                 std::max(clock, max_clock.load(std::memory_order_relaxed)), id);
      result<lsn_type> r = lsn_type{};
      if constexpr (detail::has_restart_base<Backend>) {
        if (base && !(*base < b.base_lsn())) r = b.write_restart_area(w.bytes(), *base);
        else r = b.write_restart_area(w.bytes());
      } else {
        r = b.write_restart_area(w.bytes());
      }
      if (!r) {
        fail(r.error());
        return r;
      }
      std::lock_guard l(m);
      note_last_locked(*r);
      ++restarts;
      return r;
    }

    static void on_end(void* ctx, const guid& uow, std::uint64_t clock) {
      detail::tm_record_writer w(detail::tm_record_type::end, clock, uow);
      (void)static_cast<core*>(ctx)->append(w.bytes(), log_append_mode::queue_only);
    }
    static bool on_force(void* ctx, std::span<const std::byte> bytes) {
      return static_cast<core*>(ctx)->append(bytes, log_append_mode::force).has_value();
    }

    // The scan keeps only what is not yet ended (an end record drops its
    // commit record's entry) and validates each record without copying it;
    // the records still open at the end are read again and decoded.
    // Prepared records (subordinates only, rare) are kept apart: a commit or
    // an end record for the same UOW closes one; a prepared record after
    // either, or a second one, is ignored. Heuristic records: the last of
    // each UOW, listed in the order of the first.
    template <class F>
    result<recovery_summary> replay(std::uint64_t limit, F& progress, std::uint64_t every) {
      if constexpr (requires { { b.status() } -> std::same_as<result<void>>; }) KTM_TRY(b.status());
      std::lock_guard c(cp);
      detail::open_commits<lsn_type> open;  // commit record found, no end record yet
      std::unordered_map<guid, detail::open_commit<lsn_type>> prepared;  // neither committed nor ended yet
      std::unordered_set<guid> closed;      // had a prepared record, then a commit or end record
      std::deque<guid> found;  // every commit record found, for recovered_outcome (a deque: no copy as it grows)
      std::unordered_map<guid, std::pair<detail::tm_record_header, lsn_type>> heur;  // the last of each UOW
      std::vector<guid> heur_order;  // ... in the order of their first records (the order of the decisions)
      std::uint64_t clock = 0, seq = 0;
      std::optional<lsn_type> scanned_last;
      std::optional<failure> bad;
      auto in_range = [&](std::uint64_t k) { return limit == 0 || k <= limit; };
      recovery_progress prog;
      std::uint64_t report_at = every;
      {
        std::vector<std::byte> ra;
        auto a = b.read_restart_area(ra);
        if (a) {
          detail::tm_record_header rec;
          if (detail::peek_tm_record_into(ra, rec) && in_range(rec.clock)) clock = std::max(clock, rec.clock);
        } else if (a.code() != make_error_code(errc::no_restart_area)) {
          return std::move(a).error();
        }
      }
      auto scanned = b.scan([&](lsn_type at, bool restart, std::span<const std::byte> payload) {
        if (bad) return;
        scanned_last = at;
        ++prog.records_scanned;
        prog.bytes_scanned += payload.size();
        if (prog.records_scanned == report_at) {
          progress(static_cast<const recovery_progress&>(prog));
          report_at += every;
        }
        detail::tm_record_header rec;  // filled in place (tm_record.hpp: walk_tm_record_into)
        if (!detail::peek_tm_record_into(payload, rec)) {
          if (restart) return;  // a restart area some other writer made: not ours to judge
          if constexpr (requires { at.raw(); }) bad = failure(errc::corrupt_record, position::at_lsn(at.raw()));
          else bad = failure(errc::corrupt_record);
          return;
        }
        if (!in_range(rec.clock)) return;
        clock = std::max(clock, rec.clock);
        switch (rec.type) {
          case detail::tm_record_type::commit:
            if (!prepared.empty() && prepared.erase(rec.id)) closed.insert(rec.id);
            else ++prog.transactions_rebuilt;
            found.push_back(rec.id);
            open.add(rec.id, at, seq++);
            break;
          case detail::tm_record_type::prepared:
            if (prepared.count(rec.id) || closed.count(rec.id)) break;
            ++prog.transactions_rebuilt;
            prepared.emplace(rec.id, detail::open_commit<lsn_type>{at, seq++});
            break;
          case detail::tm_record_type::end:
            if (!prepared.empty() && prepared.erase(rec.id)) closed.insert(rec.id);
            else open.end(rec.id);
            break;
          case detail::tm_record_type::heuristic:
            if (heur.insert_or_assign(rec.id, std::make_pair(rec, at)).second) heur_order.push_back(rec.id);
            break;
          case detail::tm_record_type::restart: break;
        }
      });
      if (!scanned) return std::move(scanned).error();
      if (bad) return *bad;
      prog.done = true;
      progress(static_cast<const recovery_progress&>(prog));
      // the open ones, in log order, decoded from their records
      std::vector<std::pair<guid, detail::open_commit<lsn_type>>> todo = open.take();
      todo.insert(todo.end(), prepared.begin(), prepared.end());
      std::sort(todo.begin(), todo.end(), [](const auto& x, const auto& y) { return x.second.seq < y.second.seq; });
      std::vector<detail::tm_record> recs;
      recs.reserve(todo.size());
      std::vector<std::byte> bytes;
      for (const auto& entry : todo) {
        // not a structured binding: clang 14 cannot name one in the requires-expression below
        const guid& uow = entry.first;
        const detail::open_commit<lsn_type>& oc = entry.second;
        auto r = b.read_record(oc.at, bytes);
        if (!r && r.code() != make_error_code(errc::end_of_stream)) return std::move(r).error();
        auto rec = detail::parse_tm_record(bytes);
        const auto want = prepared.count(uow) ? detail::tm_record_type::prepared : detail::tm_record_type::commit;
        if (!rec || rec->id != uow || rec->type != want) {
          if constexpr (requires { oc.at.raw(); }) return failure(errc::corrupt_record, position::at_lsn(oc.at.raw()));
          else return failure(errc::corrupt_record);
        }
        recs.push_back(std::move(*rec));
      }
      recovery_summary sum;
      sum.last_clock = clock;
      sum.in_doubt = todo.size();
      note_clock(clock);
      std::lock_guard l(m);
      if (scanned_last) note_last_locked(*scanned_last);
      for (const guid& uow : heur_order) {
        const auto& [h, at] = heur.at(uow);
        auto same = std::find_if(heuristics.begin(), heuristics.end(), [&](const auto& x) { return x.id == uow; });
        if (same != heuristics.end()) *same = h;
        else heuristics.push_back(h);
        if (h.superior_said == 0) heuristic_pins.try_emplace(uow, at);
        else heuristic_pins.erase(uow);
      }
      if (this->found.empty()) this->found = std::move(found);
      else this->found.insert(this->found.end(), found.begin(), found.end());
      for (std::size_t i = 0; i < todo.size(); ++i) {
        const guid& uow = todo[i].first;
        if (pending.count(uow)) continue;  // recovered by an earlier replay, or logged in this run
        pending[uow] = todo[i].second.at;
        if (recs[i].type == detail::tm_record_type::prepared) {
          in_doubt.insert(uow);
          recovered.push_back(
              std::make_unique<detail::recovered_transaction>(recs[i], &core::on_end, &core::on_force, this));
        } else {
          recovered.push_back(std::make_unique<detail::recovered_transaction>(uow, recs[i].clock, recs[i].enlistments,
                                                                             &core::on_end, this));
        }
      }
      return sum;
    }
  };

  std::unique_ptr<core> s_;
};

}  // namespace ktm::tm
