// ktm/tm/detail/transaction_commit_log.hpp: a transaction's records in the
// TM's log.
//
// The definitions of basic_transaction's logging (its class is in
// ktm/tm/transaction.hpp, which includes this header at its end); both
// compile to nothing for a volatile TM:
//   log_record_locked  the commit record (or, with a superior, the prepared
//                      record that also names the superior TM) naming every
//                      prepared enlistment of a durable RM (is_logged_rm,
//                      rm_vtable.hpp) with its recovery information; forced;
//                      none when there is none (every enlistment read-only or
//                      of volatile RMs, which keep nothing across a restart
//                      and have a new identity in each process)
//   log_end_locked     every COMMIT answered: the end record, queued (lazy);
//                      a lost end record only means COMMIT is redelivered at
//                      recovery, which RMs tolerate
//   log_abort_locked   a prepared subordinate told to roll back: the end
//                      record, forced, before its RMs hear ROLLBACK (false:
//                      the log failed)
#pragma once

#include <string_view>

#include "ktm/tm/detail/tm_record.hpp"
#include "ktm/tm/transaction.hpp"

namespace ktm::tm {

template <class TM>
inline bool basic_transaction<TM>::log_record_locked(detail::tm_record_type type) {
  if constexpr (log_type::durable) {
    detail::tm_record_writer w(type, clock_, id_);
    if (type == detail::tm_record_type::prepared) w.set_superior(superior_);
    tm_->storage().for_each_slot(set_, [&](enlistment& e, const auto& inv) {
      if (e.status() == enlistment_status::prepared && inv.logged())
        w.add_enlistment(inv.rm_id(), e.key().value(), e.mask().bits(), e.recovery_information());
    });
    if (w.count() == 0) return true;  // all read-only or volatile
    w.set_description(std::string_view(desc_, desc_len_));
    if (auto r = tm_->log().append(w.bytes(), log_append_mode::force); !r) {
      record_in_doubt_ = r.code() == make_error_code(errc::in_doubt);
      return false;
    }
    logged_ = true;
  }
  return true;
}

template <class TM>
inline bool basic_transaction<TM>::log_abort_locked() {
  if constexpr (log_type::durable) {
    // a prepared record whose force failed may be durable: no abort can be
    // made durable now either (the TM is fail-stop)
    if (!logged_) return !record_in_doubt_;
    if (!append_end_locked(log_append_mode::force)) return false;
    logged_ = false;  // closed: no second end record
  }
  return true;
}

template <class TM>
inline void basic_transaction<TM>::log_end_locked() {
  if constexpr (log_type::durable) {
    if (logged_) (void)append_end_locked(log_append_mode::queue_only);
  }
}

template <class TM>
inline bool basic_transaction<TM>::append_end_locked(log_append_mode mode) {
  if constexpr (log_type::durable) {
    detail::tm_record_writer w(detail::tm_record_type::end, clock_, id_);
    return static_cast<bool>(tm_->log().append(w.bytes(), mode));
  }
  return true;
}

}  // namespace ktm::tm
