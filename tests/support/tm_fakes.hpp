// tests/support/tm_fakes.hpp: recording resource managers and a recording
// log backend for the transaction-layer tests.
//
// recording_rm<Id, Kind> records every notification it gets (kind, UOW,
// key, clock) and answers as scripted: per notification kind a reply to
// return (default done), or reply::later() to keep the enlistment for an
// answer from the test (deferred()). Distinct Ids make distinct types, as
// static_storage needs. Thread-safe.
//
// two_rm_world<TM>  two recording RMs `a` (rm_a) and `b` (rm_b) and a TM
// `tm` over them (TM{a, b}: static storage): the set-up of most protocol
// tests, as a TEST_CASE_METHOD fixture.
// registered_two_rm_world<TM>  the same for a TM with registered storage:
// `a`, then `b`, added to a default-constructed `tm`.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "ktm/tm.hpp"

namespace ktm::test {

namespace kt = ktm::tm;

struct event {
  kt::notify kind;
  ktm::guid transaction;
  kt::enlistment_key key;
  std::uint64_t clock;
};

template <int Id = 0, kt::rm_kind Kind = kt::rm_kind::volatile_rm>
class recording_rm : public kt::resource_manager_base<Kind> {
 public:
  kt::reply on_preprepare(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  kt::reply on_prepare(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  kt::reply on_commit(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  kt::reply on_rollback(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  kt::reply on_single_phase_commit(kt::enlistment& e, const kt::notification& n) { return handle(e, n); }
  void on_rm_disconnected(kt::enlistment& e, const kt::notification& n) { (void)handle(e, n); }
  void on_tm_online(const kt::notification& n) { record(n); }

  // Scripts the answer to notification k (for every transaction).
  void answer(kt::notify k, kt::reply r) {
    std::lock_guard l(m_);
    script_.insert_or_assign(k, r);
  }

  std::vector<event> events() const {
    std::lock_guard l(m_);
    return events_;
  }
  std::vector<kt::notify> kinds() const {
    std::lock_guard l(m_);
    std::vector<kt::notify> v;
    for (const auto& e : events_) v.push_back(e.kind);
    return v;
  }
  std::size_t count(kt::notify k) const {
    std::lock_guard l(m_);
    return static_cast<std::size_t>(std::count_if(events_.begin(), events_.end(), [&](const event& e) { return e.kind == k; }));
  }
  // Enlistments whose last notification was answered with reply::later().
  std::vector<kt::enlistment*> deferred() {
    std::lock_guard l(m_);
    return std::exchange(deferred_, {});
  }
  void clear() {
    std::lock_guard l(m_);
    events_.clear();
  }

  std::atomic<std::size_t> commits{0}, rollbacks{0};

 private:
  void record(const kt::notification& n) {
    std::lock_guard l(m_);
    events_.push_back({n.kind, n.transaction, n.key, n.virtual_clock});
  }
  kt::reply handle(kt::enlistment& e, const kt::notification& n) {
    if (n.kind == kt::notify::commit || n.kind == kt::notify::single_phase_commit) ++commits;
    if (n.kind == kt::notify::rollback) ++rollbacks;
    std::lock_guard l(m_);
    events_.push_back({n.kind, n.transaction, n.key, n.virtual_clock});
    auto it = script_.find(n.kind);
    const kt::reply r = it == script_.end() ? kt::reply::done() : it->second;
    if (r.is_later()) deferred_.push_back(&e);
    return r;
  }

  mutable std::mutex m_;
  std::vector<event> events_;
  std::map<kt::notify, kt::reply> script_;
  std::vector<kt::enlistment*> deferred_;
};

using rm_a = recording_rm<1>;
using rm_b = recording_rm<2>;
using rm_c = recording_rm<3>;
using durable_rm = recording_rm<9, kt::rm_kind::durable_rm>;

template <class TM>
struct two_rm_world {
  rm_a a;
  rm_b b;
  TM tm{a, b};
};

template <class TM>
struct registered_two_rm_world {
  rm_a a;
  rm_b b;
  TM tm;
  registered_two_rm_world() {
    REQUIRE(tm.add_resource_manager(a));
    REQUIRE(tm.add_resource_manager(b));
  }
};

// A log backend that keeps records in memory and remembers how each was
// appended. fail_forces makes forced appends fail with errc::log_failed.
class memory_log {
 public:
  using lsn_type = std::uint64_t;
  static constexpr bool durable = true;

  struct record {
    std::vector<std::byte> bytes;
    kt::log_append_mode mode;
  };

  ktm::result<lsn_type> append(std::span<const std::byte> b, kt::log_append_mode m) {
    std::lock_guard l(*m_);
    if (m == kt::log_append_mode::force && fail_forces) return ktm::errc::log_failed;
    records.push_back({{b.begin(), b.end()}, m});
    return lsn_type{records.size()};
  }
  ktm::result<lsn_type> flush_to(lsn_type l) { return l + 1; }
  ktm::result<lsn_type> write_restart_area(std::span<const std::byte> b) {
    std::lock_guard l(*m_);
    restart.assign(b.begin(), b.end());
    return lsn_type{records.size()};
  }
  ktm::result<lsn_type> read_restart_area(std::vector<std::byte>& out) {
    std::lock_guard l(*m_);
    if (restart.empty()) return ktm::errc::no_restart_area;
    out = restart;
    return lsn_type{0};
  }
  ktm::result<lsn_type> read_record(lsn_type at, std::vector<std::byte>& out) {
    std::lock_guard l(*m_);
    if (at == 0 || at > records.size()) return ktm::errc::end_of_stream;
    out = records[at - 1].bytes;
    return at + 1;
  }

  std::vector<record> records;
  std::vector<std::byte> restart;
  bool fail_forces = false;

 private:
  std::shared_ptr<std::mutex> m_ = std::make_shared<std::mutex>();
};
static_assert(kt::check_log_backend<memory_log>());

// Spins until pred() or the deadline; for replies that arrive on other threads.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  return true;
}

}  // namespace ktm::test
