// tests/tm/durable_fixtures.hpp: what the durable TM tests share.
//
// journal_rm<Io>   a minimal durable RM: PREPARE appends a 100-byte prepare
//                  record to its own stream (queue-only when the TM shares
//                  the log, forced otherwise) and logs its LSN as recovery
//                  information; it remembers every notification it got
// durable_options  a log geometry for the durable tests (no container
//                  boundary is crossed by a short test)
// tm_records(st)   the TM records of a stream, decoded
// fault_journal    one journal RM over fault injection (the crash and
//                  recovery tests): rm_t, tm_t, log_t
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <set>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"

namespace ktm::test {

namespace kt = ktm::tm;

using fault_storage = ktm::io::fault_injection_storage<ktm::io::memory_storage>;

inline ktm::log::log_options durable_options() {
  ktm::log::log_options o;
  o.block_size = 16 * 1024;
  o.container_size = 1024 * 1024;
  o.containers = 2;
  o.write_buffers = 4;
  return o;
}

// Tag: distinct types for a static_storage of several journal RMs.
template <class Io, int Tag = 0>
class journal_rm : public kt::resource_manager_base<kt::rm_kind::durable_rm> {
 public:
  static constexpr std::size_t prepare_size = 100;

  // force_prepare: force the prepare record (the TM is in another log).
  journal_rm(ktm::log::stream<Io> s, bool force_prepare, ktm::guid id = ktm::guid::generate())
      : resource_manager_base(id), force_(force_prepare) {
    auto w = s.marshalling_area();
    if (w) ma_.emplace(std::move(*w));
  }

  kt::reply on_prepare(kt::enlistment& e, const kt::notification& n) {
    std::array<std::byte, prepare_size> rec{};
    rec[0] = std::byte{'P'};
    for (std::size_t i = 0; i < 16; ++i) rec[1 + i] = static_cast<std::byte>(n.transaction.bytes()[i]);
    auto l = ma_->append(rec, ktm::log::record_type::data,
                         force_ ? ktm::log::append_flags::force : ktm::log::append_flags::none);
    if (!l) return kt::reply::rollback();
    std::array<std::byte, 8> info;
    for (std::size_t i = 0; i < 8; ++i) info[i] = static_cast<std::byte>(l->raw() >> (8 * i));
    (void)e.set_recovery_information(info);
    std::lock_guard g(m_);
    prepared_.insert(n.transaction);
    last_prepare_ = *l;
    return kt::reply::done();
  }
  kt::reply on_commit(kt::enlistment&, const kt::notification& n) {
    std::lock_guard g(m_);
    committed_.insert(n.transaction);
    ++commits_;
    return kt::reply::done();
  }
  kt::reply on_rollback(kt::enlistment&, const kt::notification& n) {
    std::lock_guard g(m_);
    rolled_back_.insert(n.transaction);
    return kt::reply::done();
  }
  kt::reply on_recover(kt::enlistment& e, const kt::notification& n) {
    std::lock_guard g(m_);
    recovered_.insert(n.transaction);
    recovered_info_.assign(e.recovery_information().begin(), e.recovery_information().end());
    order_.push_back(kt::notify::recover);
    return kt::reply::done();
  }
  void on_last_recover(const kt::notification&) {
    std::lock_guard g(m_);
    ++last_recovers_;
    order_.push_back(kt::notify::last_recover);
  }

  bool committed(const ktm::guid& t) const { return locked([&] { return committed_.count(t) != 0; }); }
  bool rolled_back(const ktm::guid& t) const { return locked([&] { return rolled_back_.count(t) != 0; }); }
  bool prepared(const ktm::guid& t) const { return locked([&] { return prepared_.count(t) != 0; }); }
  bool recovered(const ktm::guid& t) const { return locked([&] { return recovered_.count(t) != 0; }); }
  int last_recovers() const { return locked([&] { return last_recovers_; }); }
  std::size_t commits() const { return locked([&] { return commits_; }); }
  ktm::log::lsn last_prepare() const { return locked([&] { return last_prepare_; }); }
  std::vector<std::byte> recovered_info() const { return locked([&] { return recovered_info_; }); }
  std::vector<kt::notify> order() const { return locked([&] { return order_; }); }

 private:
  template <class F>
  auto locked(F f) const {
    std::lock_guard g(m_);
    return f();
  }

  bool force_;
  std::optional<ktm::log::marshalling_area<Io>> ma_;
  mutable std::mutex m_;
  std::set<ktm::guid> prepared_, committed_, rolled_back_, recovered_;
  std::vector<std::byte> recovered_info_;
  std::vector<kt::notify> order_;
  ktm::log::lsn last_prepare_;
  std::size_t commits_ = 0;
  int last_recovers_ = 0;
};

// An RM that answers everything with done: volatile (plain_rm), or durable
// without a log of its own (plain_durable_rm: a durable TM's commit record
// names it; a volatile RM's enlistments are not logged).
template <kt::rm_kind Kind = kt::rm_kind::volatile_rm>
struct basic_plain_rm : kt::resource_manager_base<Kind> {
  int commits = 0, rollbacks = 0;
  kt::reply on_prepare(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_commit(kt::enlistment&, const kt::notification&) {
    ++commits;
    return kt::reply::done();
  }
  kt::reply on_rollback(kt::enlistment&, const kt::notification&) {
    ++rollbacks;
    return kt::reply::done();
  }
};
using plain_rm = basic_plain_rm<>;
using plain_durable_rm = basic_plain_rm<kt::rm_kind::durable_rm>;

// The TM records of a stream (restart areas included), decoded, in order.
template <class Io>
std::vector<kt::detail::tm_record> tm_records(const ktm::log::stream<Io>& st) {
  std::vector<kt::detail::tm_record> out;
  for (const auto& r : st.read_forward()) {
    auto p = r.payload;
    if (r.type == ktm::log::record_type::restart) p = p.subspan(8);
    auto rec = kt::detail::parse_tm_record(p);
    if (rec) out.push_back(std::move(*rec));
  }
  return out;
}

// One journal RM, its TM and its log over fault injection:
// `using namespace ktm::test::fault_journal;`
namespace fault_journal {
using rm_t = journal_rm<fault_storage>;
using tm_t = kt::durable_transaction_manager<fault_storage, kt::with_storage<kt::static_storage<rm_t>>>;
using log_t = ktm::log::log<fault_storage>;
}  // namespace fault_journal

}  // namespace ktm::test
