// ktm/tm/reply.hpp: what a resource manager's handler answers.
//
// A handler answers synchronously by returning a reply, or returns
// reply::later() and answers afterwards, from any thread, through the
// enlistment (enlistment::prepare_complete() and friends). `done` means the
// completion that matches the notification (PREPARE -> prepare_complete,
// COMMIT -> commit_complete, ...). Each reply may carry a virtual clock
// value; the TM adopts it if it is larger than its own (max-merge).
//
// Legal returned replies per notification:
//   PREPREPARE, PREPARE      done | read_only | rollback
//   SINGLE_PHASE_COMMIT      done (committed) | read_only (committed) |
//                            rollback (aborted) | reject (fall back to 2PC)
//   COMMIT, ROLLBACK         done
//   RM_DISCONNECTED, TM_ONLINE  ignored
// Anything else is a protocol error: it is counted
// (basic_transaction::protocol_errors()) and read safely: `reject` to a
// prepare-phase notification as rollback, any non-done reply to COMMIT or
// ROLLBACK as done (the outcome is decided already).
#pragma once

#include <cstdint>

namespace ktm::tm {

// The reply calls of the reference, as one enumeration (enlistment.hpp).
enum class reply_kind : std::uint8_t {
  preprepare_complete,
  prepare_complete,
  commit_complete,
  rollback_complete,
  read_only,
  single_phase_reject,
  rollback_enlistment,
};

class reply {
 public:
  enum class kind : std::uint8_t { later, done, read_only, rollback, reject };

  static constexpr reply done(std::uint64_t clock = 0) noexcept { return {kind::done, clock}; }
  static constexpr reply later() noexcept { return {kind::later, 0}; }
  static constexpr reply read_only(std::uint64_t clock = 0) noexcept { return {kind::read_only, clock}; }
  static constexpr reply rollback(std::uint64_t clock = 0) noexcept { return {kind::rollback, clock}; }
  static constexpr reply reject(std::uint64_t clock = 0) noexcept { return {kind::reject, clock}; }

  constexpr kind what() const noexcept { return kind_; }
  constexpr std::uint64_t clock() const noexcept { return clock_; }
  constexpr bool is_later() const noexcept { return kind_ == kind::later; }

 private:
  constexpr reply(kind k, std::uint64_t c) noexcept : kind_(k), clock_(c) {}
  kind kind_;
  std::uint64_t clock_;
};

}  // namespace ktm::tm
