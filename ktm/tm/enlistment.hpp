// ktm/tm/enlistment.hpp: one resource manager's membership in one
// transaction.
//
// An enlistment lives inside its transaction (in the storage policy's
// per-transaction set) and has the transaction's lifetime: a reference to it
// stays valid until the transaction object is destroyed, and the destructor
// waits until every notification it sent has been answered. RM handlers get
// it by reference; an RM that answers later keeps the reference and calls
// one of the reply functions from any thread.
//
// Reply functions return errc::invalid_state when the enlistment is not
// waiting for that reply (wrong phase, answered already, or the transaction
// rolled back meanwhile; always for an enlistment of a static transaction,
// whose handlers answer only by returning), never undefined behaviour:
//   preprepare_complete  after PREPREPARE
//   prepare_complete     after PREPARE
//   commit_complete      after COMMIT or SINGLE_PHASE_COMMIT
//   rollback_complete    after ROLLBACK
//   read_only            any time before prepare_complete (drops out; also
//                        commits a single-phase enlistment, it changed nothing)
//   single_phase_reject  after SINGLE_PHASE_COMMIT (switches to two-phase)
//   rollback             any time before prepare_complete (rollback_enlistment)
//   request_outcome      prepared, in a transaction with a superior TM: asks
//                        the superior for the outcome (REQUEST_OUTCOME); it
//                        arrives as COMMIT or ROLLBACK (else errc::invalid_state)
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <span>

#include "ktm/guid.hpp"
#include "ktm/result.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/reply.hpp"
#include "ktm/tm/states.hpp"

namespace ktm::tm {

class transaction_core;
namespace detail {
struct rm_vtable;
struct enlistment_access;
}  // namespace detail

// The bound on an enlistment's recovery information, in bytes.
inline constexpr std::size_t max_recovery_information = 256;

class enlistment {
 public:
  enlistment() noexcept : vt_(nullptr), rm_(nullptr) {}  // an unused slot; recovery_ deliberately uninitialised
  enlistment(const enlistment&) = delete;
  enlistment& operator=(const enlistment&) = delete;

  enlistment_key key() const noexcept { return key_; }
  notification_mask mask() const noexcept { return mask_; }
  enlistment_status status() const noexcept { return status_.load(std::memory_order_acquire); }
  // False for an enlistment of a static transaction (static_transaction.hpp),
  // which has no transaction_core: transaction() must not be called on it.
  bool has_transaction() const noexcept { return core_ != nullptr; }
  transaction_core& transaction() const noexcept { return *core_; }
  const guid& transaction_id() const noexcept { return *uow_; }

  // Opaque bytes the TM logs for the RM with the commit record (a durable
  // TM). At most max_recovery_information bytes, else errc::too_large; only
  // before prepare_complete, else errc::invalid_state.
  result<void> set_recovery_information(std::span<const std::byte> info);
  // Valid until the next set_recovery_information; read it from the RM only.
  std::span<const std::byte> recovery_information() const noexcept {
    return {recovery_.data(), recovery_size_};
  }

  result<void> preprepare_complete(std::uint64_t clock = 0) { return answer(reply_kind::preprepare_complete, clock); }
  result<void> prepare_complete(std::uint64_t clock = 0) { return answer(reply_kind::prepare_complete, clock); }
  result<void> commit_complete(std::uint64_t clock = 0) { return answer(reply_kind::commit_complete, clock); }
  result<void> rollback_complete(std::uint64_t clock = 0) { return answer(reply_kind::rollback_complete, clock); }
  result<void> read_only(std::uint64_t clock = 0) { return answer(reply_kind::read_only, clock); }
  result<void> single_phase_reject(std::uint64_t clock = 0) { return answer(reply_kind::single_phase_reject, clock); }
  result<void> rollback(std::uint64_t clock = 0) { return answer(reply_kind::rollback_enlistment, clock); }
  result<void> request_outcome();

 private:
  friend class transaction_core;
  friend struct detail::enlistment_access;

  // An enlistment of a static transaction: no core, enlisted (active).
  enlistment(const guid* uow, notification_mask m, enlistment_key k) noexcept
      : uow_(uow), mask_(m), key_(k), status_(enlistment_status::active) {}

  result<void> answer(reply_kind k, std::uint64_t clock);
  void set_status(enlistment_status s) noexcept { status_.store(s, std::memory_order_release); }

  transaction_core* core_ = nullptr;
  const guid* uow_ = nullptr;
  const detail::rm_vtable* vt_;  // erased storages only (a static transaction's: unset)
  void* rm_;                     // erased storages only
  notification_mask mask_{};
  enlistment_key key_{};
  std::atomic<enlistment_status> status_{enlistment_status::unused};
  std::uint16_t recovery_size_ = 0;
  std::array<std::byte, max_recovery_information> recovery_;
};

namespace detail {
// What storage policies and the transaction use to set up a slot.
struct enlistment_access {
  static void bind(enlistment& e, transaction_core& c, notification_mask m, enlistment_key k) noexcept {
    e.core_ = &c;
    e.uow_ = &core_id(c);
    e.mask_ = m;
    e.key_ = k;
    e.set_status(enlistment_status::active);
  }
  // Builds a static transaction's enlistment (no core) in raw storage p.
  static enlistment* construct(void* p, const guid* uow, notification_mask m, enlistment_key k) noexcept {
    return ::new (p) enlistment(uow, m, k);
  }
  static const guid& core_id(const transaction_core& c) noexcept;
  static void set_rm(enlistment& e, const rm_vtable* vt, void* rm) noexcept {
    e.vt_ = vt;
    e.rm_ = rm;
  }
  static const rm_vtable* vtable(const enlistment& e) noexcept { return e.vt_; }
  static void* rm(const enlistment& e) noexcept { return e.rm_; }
  static void set_status(enlistment& e, enlistment_status s) noexcept { e.set_status(s); }
};
}  // namespace detail

}  // namespace ktm::tm

#include "ktm/tm/transaction_core.hpp"  // the reply functions' definitions
