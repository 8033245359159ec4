// ktm/tm/states.hpp: the state machines of transactions, enlistments and
// transaction managers, as enumerations plus their transition tables.
//
// Transaction (internal):
//
//   from \ to              legal successors
//   active                 prepreparing, single_phase_committing, rolling_back
//   prepreparing           preprepared, rolling_back
//   preprepared            preparing, rolling_back
//   preparing              prepared, rolling_back
//   prepared               committing (commit point), rolling_back (log failed)
//   single_phase_committing committed, aborted, prepreparing (reject), in_doubt
//   committing             committed
//   rolling_back           aborted
//   committed, aborted, in_doubt   (final for a volatile TM)
//
// Public view (KTM's TRANSACTION_STATE / TRANSACTION_OUTCOME):
//   committing -> state committed_notify, outcome committed
//   committed  -> state normal, outcome committed
//   rolling_back, aborted -> state normal, outcome aborted
//   in_doubt   -> state indoubt, outcome undetermined
//   otherwise  -> state normal, outcome undetermined
#pragma once

#include <cstdint>

namespace ktm::tm {

enum class tx_state : std::uint8_t {
  active,
  prepreparing,
  preprepared,
  preparing,
  prepared,
  single_phase_committing,
  committing,
  committed,
  rolling_back,
  aborted,
  in_doubt,
};

enum class transaction_state : std::uint8_t { normal, indoubt, committed_notify };
enum class transaction_outcome : std::uint8_t { undetermined, committed, aborted };

// Why a transaction rolled back.
enum class abort_reason : std::uint8_t {
  none,
  client,            // rollback() by the client
  resource_manager,  // an RM answered rollback / called rollback()
  timeout,           // the timeout expired before the transaction prepared
  destroyed,         // the transaction object was destroyed undecided
  enlistment_dropped,  // an enlistment handle was dropped before it prepared
  log_failure,       // the commit record could not be forced
  tm_offline,        // the TM went offline
  superior,          // the transaction's superior TM decided rollback
};

constexpr bool is_legal_transition(tx_state from, tx_state to) noexcept {
  using s = tx_state;
  switch (from) {
    case s::active:
      return to == s::prepreparing || to == s::single_phase_committing || to == s::rolling_back;
    case s::prepreparing: return to == s::preprepared || to == s::rolling_back;
    case s::preprepared: return to == s::preparing || to == s::rolling_back;
    case s::preparing: return to == s::prepared || to == s::rolling_back;
    case s::prepared: return to == s::committing || to == s::rolling_back || to == s::in_doubt;
    case s::single_phase_committing:
      return to == s::committed || to == s::aborted || to == s::prepreparing || to == s::in_doubt;
    case s::committing: return to == s::committed;
    case s::rolling_back: return to == s::aborted;
    case s::committed:
    case s::aborted:
    case s::in_doubt: return false;
  }
  return false;
}

// The outcome is decided (or cannot be, for in_doubt) and no notification of
// a deciding phase is outstanding.
constexpr bool is_final(tx_state s) noexcept {
  return s == tx_state::committed || s == tx_state::aborted || s == tx_state::in_doubt;
}

// Before the commit point: a timeout, an RM or the client may still roll back.
constexpr bool is_before_prepared(tx_state s) noexcept {
  return s == tx_state::active || s == tx_state::prepreparing || s == tx_state::preprepared ||
         s == tx_state::preparing;
}

constexpr transaction_state public_state(tx_state s) noexcept {
  if (s == tx_state::committing) return transaction_state::committed_notify;
  if (s == tx_state::in_doubt) return transaction_state::indoubt;
  return transaction_state::normal;
}

constexpr transaction_outcome public_outcome(tx_state s) noexcept {
  switch (s) {
    case tx_state::committing:
    case tx_state::committed: return transaction_outcome::committed;
    case tx_state::rolling_back:
    case tx_state::aborted: return transaction_outcome::aborted;
    default: return transaction_outcome::undetermined;
  }
}

// An enlistment's own progress through the protocol.
enum class enlistment_status : std::uint8_t {
  unused,                // slot not enlisted
  active,                // enlisted, no notification outstanding
  read_only,             // dropped out (read_only before prepare_complete)
  awaiting_preprepare,   // PREPREPARE sent, no answer yet
  preprepared,
  awaiting_prepare,
  prepared,
  awaiting_single_phase,
  awaiting_commit,
  committed,
  needs_rollback,        // ROLLBACK about to be sent
  awaiting_rollback,
  rolled_back,
};

// Transaction manager: uninitialized is the state before construction ends.
enum class tm_state : std::uint8_t { initialized, recovering, online, offline };

constexpr bool is_legal_transition(tm_state from, tm_state to) noexcept {
  switch (from) {
    case tm_state::initialized: return to == tm_state::recovering || to == tm_state::offline;
    case tm_state::recovering: return to == tm_state::online || to == tm_state::offline;
    case tm_state::online: return to == tm_state::offline;
    case tm_state::offline: return false;
  }
  return false;
}

}  // namespace ktm::tm
