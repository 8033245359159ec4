// ktm/rm/change_log.hpp: undo/redo logging for a durable resource manager,
// over the RM's own log stream (the seed's recipe, KTM "Using Log Streams").
//
//   ktm::rm::map_store store;                        // the permanent store
//   auto w = stream.marshalling_area();              // result<marshalling_area>: check it
//   ktm::rm::change_log<Io, map_store> cl(stream, std::move(*w), store);
//   auto rep = cl.recover();                         // always first, also on a new stream
//   cl.log_change(uow, "k", before, after);          // the caller changes a private copy
//   cl.prepare(uow);                                 // forced (or durability::queue_only)
//   cl.commit(uow);                                  // after-images -> store; commit record (lazy)
//   cl.rollback(uow);                                // discard; abort record (reserved room)
//
// A transaction is named by its UOW guid. log_change appends a before-image
// and an after-image record (queue only), chained per transaction through
// undo-next LSNs (each record's undo-next is the transaction's previous
// record), and never touches the store: the caller keeps the new value in a
// private copy. The first log_change of a transaction reserves room for one
// outcome record (commit or abort), so rollback and commit never fail with
// log_full. Record layout: record.hpp.
//
// Outcomes take effect whatever the log says afterwards: commit applies the
// after-images (in log order) and rollback forgets the changes even if the
// outcome record cannot be appended (the log failed); the returned failure
// only reports the missing record, which recovery tolerates (presumed abort;
// a prepared transaction without an outcome comes back in doubt and the TM
// resolves it).
//
// Restart areas: checkpoint() writes a checkpoint record, one snapshot record
// per object of the store, then a restart area naming them, and moves the
// stream's base to the oldest record still needed: the checkpoint record or
// the first record of any unfinished (active or prepared) transaction. So a
// restart area is written at any time; transactions between prepare and
// outcome are kept by the base and found again by the scan. Automatic every
// `checkpoint_every` completed transactions (0: on demand only).
//
// recover(): clears the store, then scans forward from the latest restart
// area's base: loads its snapshot, redoes (in commit order) the transactions
// whose commit record follows the restart area, discards those without a
// prepare record (presumed abort), and returns the prepared ones without an
// outcome as in doubt; they stay held until commit, rollback or resolve.
// Idempotent: recovering again rebuilds the same store and the same set.
// Call it once before new work (a new stream recovers to empty); errc::
// invalid_state if a transaction other than a recovered one is live.
//
// Errors: transaction_not_found (unknown UOW), invalid_state (log_change or
// prepare after prepare / on a recovered transaction), the log's errors
// (log_full, record_too_large, log_failed...), and on reading back
// corrupt_record / corrupt_restart_area naming the LSN. Thread-safe: one
// recursive lock (a log-full callback may call checkpoint() from inside an
// append); forced flushes of prepare happen outside it, so concurrent
// prepares share a device flush.
//
// Pieces (ktm/rm/detail/): tx_entry.hpp (a live transaction), undo_chain.hpp
// (rollback's before-images), write_checkpoint.hpp (a restart area),
// scan_change_log.hpp (recovery's forward pass).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/log/marshalling_area.hpp"
#include "ktm/log/stream.hpp"
#include "ktm/rm/change_store.hpp"
#include "ktm/rm/detail/scan_change_log.hpp"
#include "ktm/rm/detail/tx_entry.hpp"
#include "ktm/rm/detail/undo_chain.hpp"
#include "ktm/rm/detail/write_checkpoint.hpp"
#include "ktm/rm/record.hpp"
#include "ktm/rm/vocabulary.hpp"

namespace ktm::rm {

struct change_log_options {
  std::size_t checkpoint_every = 0;  // completed transactions between checkpoints; 0 = on demand only
};

template <io_policy Io, class Store>
class change_log {
  static_assert(check_change_store<Store>());

 public:
  using stream_type = log::stream<Io>;
  using writer_type = log::marshalling_area<Io>;

  // `writer` must be `stream`'s marshalling area; `store` must outlive this.
  change_log(stream_type stream, writer_type writer, Store& store, change_log_options o = {})
      : stream_(std::move(stream)), writer_(std::move(writer)), store_(&store), opt_(o) {}
  change_log(const change_log&) = delete;
  change_log& operator=(const change_log&) = delete;

  result<recovery_report> recover();

  // Logs one change of `tx`: before-image, then after-image (nullopt: the
  // object does not exist / is erased). errc::invalid_state once prepared.
  result<void> log_change(const guid& tx, std::string_view key, image_view before, image_view after) {
    std::lock_guard l(mu_);
    auto it = txs_.find(tx);
    const bool fresh = it == txs_.end();
    if (!fresh && !it->second.prepare_at.is_null()) return errc::invalid_state;
    if (fresh) KTM_TRY(writer_.reserve(1, record_fixed_size));
    const log::lsn prev = fresh ? log::lsn::null() : it->second.last;
    auto b = writer_.append(encode_record(change_kind::before_image, tx, key, before), log::record_type::data,
                            log::append_flags::none, prev);
    if (!b) {
      if (fresh) (void)writer_.reserve(-1, -static_cast<std::int64_t>(record_fixed_size));
      return std::move(b).error();
    }
    if (fresh) {
      it = txs_.emplace(tx, entry{}).first;
      it->second.first = *b;
      it->second.reserved = true;
    }
    entry& e = it->second;
    e.last = *b;
    e.changes.push_back({std::string(key), to_image(before), std::nullopt, *b, log::lsn::null()});
    auto a = writer_.append(encode_record(change_kind::after_image, tx, key, after), log::record_type::data,
                            log::append_flags::none, *b);
    if (!a) return std::move(a).error();  // the change stays before-only: roll back
    e.last = *a;
    e.changes.back().after = to_image(after);
    e.changes.back().after_at = *a;
    return {};
  }

  // Appends tx's prepare record and returns its LSN; with durability::force
  // it is durable on return. Again on a prepared tx: its LSN (forced again
  // if asked). Errors leave tx unprepared: roll it back.
  result<log::lsn> prepare(const guid& tx, durability d = durability::force) {
    log::lsn at;
    {
      std::lock_guard l(mu_);
      auto it = txs_.find(tx);
      if (it == txs_.end()) return errc::transaction_not_found;
      entry& e = it->second;
      if (e.prepare_at.is_null()) {
        auto p = writer_.append(encode_record(change_kind::prepare, tx), log::record_type::data,
                                log::append_flags::none, e.last);
        if (!p) return std::move(p).error();
        e.last = e.prepare_at = *p;
      }
      at = e.prepare_at;
    }
    if (d == durability::force) KTM_TRY(writer_.flush_to_lsn(at));
    return at;
  }

  // Applies tx's after-images to the store in log order, forgets tx and
  // appends its commit record (queued, from the reservation). Returns the
  // record's LSN; a failure means only that the record is missing.
  result<log::lsn> commit(const guid& tx) {
    std::lock_guard l(mu_);
    auto it = txs_.find(tx);
    if (it == txs_.end()) return errc::transaction_not_found;
    entry e = std::move(it->second);
    txs_.erase(it);
    for (const change& c : e.changes)
      if (!c.after_at.is_null()) store_->apply(c.key, c.after);
    return finish_locked(change_kind::commit, tx, e);
  }

  // Forgets tx (nothing of it reached the store) and appends an abort record
  // from the reservation. `undo(std::string_view key, const image& before)`
  // is called for each before-image, newest first, read back along tx's
  // undo-next chain (from memory if the log cannot be read): a caller whose
  // private copy is not a separate write set restores it this way.
  template <class Undo>
  result<log::lsn> rollback(const guid& tx, Undo&& undo) {
    std::lock_guard l(mu_);
    auto it = txs_.find(tx);
    if (it == txs_.end()) return errc::transaction_not_found;
    entry e = std::move(it->second);
    txs_.erase(it);
    if constexpr (!std::is_same_v<std::decay_t<Undo>, no_undo>) detail::undo_chain(stream_, tx, e, undo);
    return finish_locked(change_kind::abort, tx, e);
  }
  result<log::lsn> rollback(const guid& tx) { return rollback(tx, no_undo{}); }

  // The outcome of an in-doubt (or any live) transaction: commit or rollback.
  result<log::lsn> resolve(const guid& tx, outcome o) { return o == outcome::commit ? commit(tx) : rollback(tx); }

  // Writes a restart area (see above); returns its LSN.
  result<log::lsn> checkpoint() {
    std::lock_guard l(mu_);
    return checkpoint_locked();
  }

  // Every record appended so far becomes durable.
  result<log::lsn> flush() { return writer_.flush_all(); }

  // ---- inspection ----
  bool contains(const guid& tx) const {
    std::lock_guard l(mu_);
    return txs_.count(tx) != 0;
  }
  bool is_prepared(const guid& tx) const {
    std::lock_guard l(mu_);
    auto it = txs_.find(tx);
    return it != txs_.end() && !it->second.prepare_at.is_null();
  }
  std::vector<change> changes(const guid& tx) const {
    std::lock_guard l(mu_);
    auto it = txs_.find(tx);
    return it == txs_.end() ? std::vector<change>{} : it->second.changes;
  }
  // tx's newest record: the head of its undo-next chain (null if unknown).
  log::lsn last_lsn(const guid& tx) const {
    std::lock_guard l(mu_);
    auto it = txs_.find(tx);
    return it == txs_.end() ? log::lsn::null() : it->second.last;
  }
  // Transactions recovery returned in doubt that are still unresolved.
  std::vector<in_doubt_transaction> in_doubt() const {
    std::lock_guard l(mu_);
    std::vector<in_doubt_transaction> v;
    for (const auto& [g, e] : txs_)
      if (e.recovered) v.push_back({g, e.prepare_at, e.changes});
    return v;
  }
  std::size_t live_transactions() const {
    std::lock_guard l(mu_);
    return txs_.size();
  }
  std::uint64_t checkpoints() const {
    std::lock_guard l(mu_);
    return checkpoints_;
  }
  // The failure of the last automatic checkpoint, if it failed.
  std::optional<failure> last_checkpoint_failure() const {
    std::lock_guard l(mu_);
    return checkpoint_failure_;
  }
  const stream_type& stream() const noexcept { return stream_; }
  writer_type& writer() noexcept { return writer_; }

 private:
  using entry = detail::tx_entry;

  struct no_undo {
    void operator()(std::string_view, const image&) const noexcept {}
  };
  static image to_image(image_view v) { return v ? image(std::string(*v)) : std::nullopt; }

  result<log::lsn> finish_locked(change_kind k, const guid& tx, entry& e) {
    auto flags = e.reserved ? log::append_flags::use_reservation : log::append_flags::none;
    auto r = writer_.append(encode_record(k, tx), log::record_type::data, flags, e.last);
    if (!r && e.reserved) (void)writer_.reserve(-1, -static_cast<std::int64_t>(record_fixed_size));
    if (opt_.checkpoint_every != 0 && ++since_checkpoint_ >= opt_.checkpoint_every) {
      auto c = checkpoint_locked();
      if (!c) checkpoint_failure_ = c.error();
      else checkpoint_failure_.reset();
    }
    return r;
  }

  result<log::lsn> checkpoint_locked() {
    if (in_checkpoint_) return errc::invalid_state;  // from a log-full callback inside a checkpoint
    in_checkpoint_ = true;
    struct reset {
      bool& b;
      ~reset() { b = false; }
    } guard{in_checkpoint_};
    auto ra = detail::write_checkpoint(writer_, stream_, *store_, txs_);
    if (!ra) return ra;
    since_checkpoint_ = 0;
    ++checkpoints_;
    return ra;
  }

  stream_type stream_;
  writer_type writer_;
  Store* store_;
  change_log_options opt_;
  mutable std::recursive_mutex mu_;
  std::map<guid, entry> txs_;
  std::size_t since_checkpoint_ = 0;
  std::uint64_t checkpoints_ = 0;
  std::optional<failure> checkpoint_failure_;
  bool in_checkpoint_ = false;
};

template <io_policy Io, class Store>
result<recovery_report> change_log<Io, Store>::recover() {
  std::lock_guard l(mu_);
  for (const auto& [g, e] : txs_)
    if (!e.recovered) return errc::invalid_state;
  for (auto& [g, e] : txs_)
    if (e.reserved) (void)writer_.reserve(-1, -static_cast<std::int64_t>(record_fixed_size));
  txs_.clear();
  store_->clear();
  recovery_report rep;
  std::map<guid, entry> live;
  std::vector<std::pair<guid, entry>> committed;
  if (auto r = detail::scan_change_log(stream_, *store_, rep, live, committed); !r) {
    store_->clear();
    return std::move(r).error();
  }
  for (const auto& [g, e] : committed) {
    for (const change& c : e.changes)
      if (!c.after_at.is_null()) store_->apply(c.key, c.after);
    ++rep.redone;
  }
  for (auto& [g, e] : live) {
    if (e.prepare_at.is_null()) {
      ++rep.discarded;
      continue;
    }
    e.recovered = true;
    // room for its outcome record; without it the outcome is appended plainly
    e.reserved = static_cast<bool>(writer_.reserve(1, record_fixed_size));
    rep.in_doubt.push_back({g, e.prepare_at, e.changes});
    txs_.emplace(g, std::move(e));
  }
  return rep;
}

}  // namespace ktm::rm
