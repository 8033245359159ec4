// ktm/rm/transactional_map.hpp: a durable resource manager holding a
// std::map<std::string, std::string>, built on change_log.
//
//   auto st = lg->create_stream("map");                  // the RM's own stream
//   auto w = st->marshalling_area();                     // its writer (check the result)
//   ktm::rm::transactional_map<Io> map(*st, std::move(*w), {}, rm_id);
//   map.recover();                                       // before new work
//   tm_type tm{map};                                     // a TM that accepts durable RMs
//   auto tx = tm.begin();
//   map.put(tx, "k", "v");                               // enlists the map in tx at the first write
//   map.get(tx, "k");                                    // "v": reads its own writes
//   tx.commit();                                         // PREPARE -> prepare record; COMMIT -> apply
//
// Isolation: strict two-phase locking on writes. put/erase take the key's
// lock for the transaction (waiting at most options.lock_timeout, then
// errc::timed_out: the caller rolls back) and keep it until the outcome.
// Reads take no lock: get sees the transaction's own writes, else the
// committed value (other transactions' writes are invisible until commit);
// get_for_update takes the write lock first (read-modify-write without lost
// updates; a lock taken by a transaction that then writes nothing is dropped
// at PREPARE, when the map answers read_only).
// Writes go to the transaction's private write set and to the change log
// (before- and after-image), never to the committed map before COMMIT.
//
// Handlers (the TM calls them; they are idempotent, recovery may redeliver):
//   PREPARE   nothing written: read_only. Else the prepare record (forced,
//             or queued with options.prepare = durability::queue_only when
//             the TM's stream shares the log), the recovery information set
//             to the prepare LSN (8 bytes, little-endian), done. If the
//             record cannot be written: rolls back itself, answers rollback.
//   COMMIT    after-images into the committed map, commit record, locks
//             released, done. Unknown or finished transaction: done.
//   ROLLBACK  write set discarded, abort record, locks released, done.
// Recovery hooks for the durable TM (its RECOVER / LAST_RECOVER delivery):
//   on_recover(e, n)     the TM reopened n.transaction's enlistment: done
//                        (recover_enlistment); the outcome follows as COMMIT
//                        or ROLLBACK through the handlers above
//   on_last_recover(n)   recovery finished: every in-doubt transaction the
//                        TM did not mention is aborted (presumed abort)
//
// The RM id must be the same on every run: the durable TM logs it with its
// commit records and finds the RM by it at recovery.
// Thread-safe; one thread at a time per transaction.
#pragma once

#include <array>
#include <chrono>
#include <concepts>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <utility>

#include "ktm/log/marshalling_area.hpp"
#include "ktm/log/stream.hpp"
#include "ktm/rm/change_log.hpp"
#include "ktm/rm/lock_table.hpp"
#include "ktm/rm/map_store.hpp"
#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/reply.hpp"
#include "ktm/tm/resource_manager.hpp"

namespace ktm::rm {

struct transactional_map_options {
  std::chrono::milliseconds lock_timeout{1000};
  durability prepare = durability::force;
  std::size_t checkpoint_every = 0;  // completed transactions between restart areas; 0 = on demand
};

template <io_policy Io>
class transactional_map : public tm::resource_manager_base<tm::rm_kind::durable_rm> {
  using base = tm::resource_manager_base<tm::rm_kind::durable_rm>;

 public:
  using change_log_type = change_log<Io, map_store>;

  transactional_map(log::stream<Io> stream, log::marshalling_area<Io> writer, transactional_map_options o = {},
                    guid id = guid::generate())
      : base(id), opt_(o), log_(std::move(stream), std::move(writer), store_, {o.checkpoint_every}) {}

  // Rebuilds the committed map from the log; in-doubt transactions keep
  // their locks and write sets until resolved. See change_log::recover.
  result<recovery_report> recover() {
    std::lock_guard l(mu_);
    auto rep = log_.recover();
    if (!rep) return rep;
    txs_.clear();
    recovered_.clear();
    for (const auto& t : rep->in_doubt) {
      auto& s = txs_[t.uow];
      for (const change& c : t.changes) {
        if (c.after_at.is_null()) continue;
        (void)locks_.try_lock(c.key, t.uow);  // only recovered transactions hold locks now
        s.writes.insert_or_assign(c.key, c.after);
      }
    }
    return rep;
  }

  // ---- inside a transaction (named by its UOW) ----
  result<image> get(const guid& tx, std::string_view key) const {
    {
      std::lock_guard l(mu_);
      // ended (a timeout rolled it back, or its outcome came): its writes are gone
      if (finished_set_.count(tx)) return errc::transaction_aborted;
      if (auto t = txs_.find(tx); t != txs_.end())
        if (auto w = t->second.writes.find(key); w != t->second.writes.end()) return w->second;
    }
    return store_.get(key);
  }
  // As get, after taking key's write lock for tx (held until the outcome):
  // read-modify-write without lost updates. errc::timed_out as put.
  result<image> get_for_update(const guid& tx, std::string_view key) {
    KTM_TRY(lock(tx, key));
    return get(tx, key);
  }
  result<void> put(const guid& tx, std::string_view key, std::string_view value) {
    return write(tx, key, image_view(value));
  }
  result<void> erase(const guid& tx, std::string_view key) { return write(tx, key, std::nullopt); }

  // The same with a transaction object: put/erase enlist the map at the
  // first write (the enlistment handle is released: the map answers from
  // its handlers). errc from enlist (tm_not_online, transaction_aborted...).
  template <class Tx>
    requires requires(Tx& t) { { t.id() } -> std::convertible_to<guid>; }
  result<image> get(Tx& tx, std::string_view key) const {
    return get(guid(tx.id()), key);
  }
  template <class Tx>
    requires requires(Tx& t) { { t.id() } -> std::convertible_to<guid>; }
  result<image> get_for_update(Tx& tx, std::string_view key) {
    KTM_TRY(join(tx));
    return get_for_update(guid(tx.id()), key);
  }
  template <class Tx>
    requires requires(Tx& t) { { t.id() } -> std::convertible_to<guid>; }
  result<void> put(Tx& tx, std::string_view key, std::string_view value) {
    KTM_TRY(join(tx));
    return put(guid(tx.id()), key, value);
  }
  template <class Tx>
    requires requires(Tx& t) { { t.id() } -> std::convertible_to<guid>; }
  result<void> erase(Tx& tx, std::string_view key) {
    KTM_TRY(join(tx));
    return erase(guid(tx.id()), key);
  }
  // Enlists this map in tx once (already enlisted: success).
  template <class Tx>
  result<void> join(Tx& tx) {
    const guid id = tx.id();
    {
      std::lock_guard l(mu_);
      if (auto t = txs_.find(id); t != txs_.end() && t->second.enlisted) return {};
    }
    auto h = tx.enlist(*this, tm::default_mask);
    if (!h && h.code() != make_error_code(errc::already_enlisted)) return std::move(h).error();
    if (h) (void)h->release();
    std::lock_guard l(mu_);
    txs_[id].enlisted = true;
    return {};
  }

  // ---- outside transactions ----
  std::map<std::string, std::string> snapshot() const { return store_.copy(); }
  result<log::lsn> checkpoint() { return log_.checkpoint(); }
  std::vector<in_doubt_transaction> in_doubt() const { return log_.in_doubt(); }
  // Gives an in-doubt (or any live) transaction its outcome; errc::
  // transaction_not_found if it has none pending.
  result<void> resolve(const guid& tx, outcome o) {
    if (!log_.contains(tx)) return errc::transaction_not_found;
    finish(tx, o);
    return {};
  }
  change_log_type& changes() noexcept { return log_; }
  const lock_table& locks() const noexcept { return locks_; }

  // ---- handlers ----
  tm::reply on_prepare(tm::enlistment& e, const tm::notification& n) {
    const guid& tx = n.transaction;
    bool wrote;
    {
      std::lock_guard l(mu_);
      auto t = txs_.find(tx);
      wrote = t != txs_.end() && !t->second.writes.empty();
    }
    if (!wrote && !log_.contains(tx)) {
      forget(tx);
      return tm::reply::read_only();
    }
    auto p = log_.prepare(tx, opt_.prepare);
    if (!p) {
      finish(tx, outcome::abort);  // the TM sends no ROLLBACK to an RM that rolls back itself
      return tm::reply::rollback();
    }
    std::array<std::byte, 8> info;
    for (std::size_t i = 0; i < 8; ++i) info[i] = static_cast<std::byte>(p->raw() >> (8 * i));
    (void)e.set_recovery_information(info);
    return tm::reply::done();
  }
  tm::reply on_commit(tm::enlistment&, const tm::notification& n) {
    finish(n.transaction, outcome::commit);
    return tm::reply::done();
  }
  tm::reply on_rollback(tm::enlistment&, const tm::notification& n) {
    finish(n.transaction, outcome::abort);
    return tm::reply::done();
  }
  tm::reply on_recover(tm::enlistment&, const tm::notification& n) {
    std::lock_guard l(mu_);
    recovered_.insert(n.transaction);
    return tm::reply::done();
  }
  void on_last_recover(const tm::notification&) {
    std::set<guid> mentioned;
    {
      std::lock_guard l(mu_);
      mentioned.swap(recovered_);
    }
    for (const auto& t : log_.in_doubt())
      if (!mentioned.count(t.uow)) finish(t.uow, outcome::abort);
  }

 private:
  struct tx_state {
    std::map<std::string, image, std::less<>> writes;  // the private copy
    bool enlisted = false;
  };

  // key's write lock for tx. An outcome that came while it waited (a
  // timeout's rollback released tx's locks) releases it again: a finished
  // transaction holds no lock.
  result<void> lock(const guid& tx, std::string_view key) {
    {
      std::lock_guard l(mu_);
      if (finished_set_.count(tx)) return errc::transaction_aborted;
    }
    KTM_TRY(locks_.lock(key, tx, lock_table::clock::now() + opt_.lock_timeout));
    bool finished;
    {
      std::lock_guard l(mu_);
      finished = finished_set_.count(tx) != 0;
    }
    if (finished) {
      locks_.release_all(tx);
      return errc::transaction_aborted;
    }
    return {};
  }

  result<void> write(const guid& tx, std::string_view key, image_view value) {
    KTM_TRY(lock(tx, key));
    image before;
    {
      std::lock_guard l(mu_);
      auto& t = txs_[tx];
      if (auto w = t.writes.find(key); w != t.writes.end()) before = w->second;
      else before = store_.get(key);
    }
    const image_view before_view = before ? image_view(*before) : std::nullopt;
    KTM_TRY(log_.log_change(tx, key, before_view, value));
    std::lock_guard l(mu_);
    auto t = txs_.find(tx);
    if (t == txs_.end() || finished_set_.count(tx)) {  // its outcome came meanwhile (a timeout)
      (void)log_.rollback(tx);
      locks_.release_all(tx);
      txs_.erase(tx);
      return errc::transaction_aborted;
    }
    t->second.writes.insert_or_assign(std::string(key), value ? image(std::string(*value)) : std::nullopt);
    return {};
  }

  // Applies the outcome (idempotent: an unknown transaction is a no-op).
  // Marked finished first, so that a write racing the outcome (a timeout's
  // rollback from the timer thread) sees it after its change-log entry and
  // rolls that back itself (write) instead of leaving it live.
  void finish(const guid& tx, outcome o) {
    {
      std::lock_guard l(mu_);
      mark_finished_locked(tx);
    }
    if (o == outcome::commit) (void)log_.commit(tx);
    else (void)log_.rollback(tx);
    forget(tx);
  }
  void forget(const guid& tx) {
    {
      std::lock_guard l(mu_);
      txs_.erase(tx);
      mark_finished_locked(tx);
    }
    locks_.release_all(tx);
  }
  void mark_finished_locked(const guid& tx) {
    if (finished_set_.insert(tx).second) {
      finished_.push_back(tx);
      if (finished_.size() > finished_memory) {
        finished_set_.erase(finished_.front());
        finished_.pop_front();
      }
    }
  }

  static constexpr std::size_t finished_memory = 4096;  // recent outcomes remembered

  transactional_map_options opt_;
  map_store store_;
  change_log_type log_;
  lock_table locks_;
  mutable std::mutex mu_;
  std::map<guid, tx_state> txs_;
  std::deque<guid> finished_;
  std::set<guid> finished_set_;
  std::set<guid> recovered_;  // UOWs the TM sent RECOVER for
};

}  // namespace ktm::rm
