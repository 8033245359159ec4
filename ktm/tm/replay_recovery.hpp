// ktm/tm/replay_recovery.hpp: the recovery policy of a durable TM.
//
// recover(log) replays the TM's stream (durable_log::replay): commit records
// without an end record become recovered transactions, redelivered to their
// RMs as COMMIT when the RMs are recovered (basic_transaction_manager::
// recover_resource_manager, automatic for a static storage); everything else
// is aborted (presumed abort); the summary's last_clock is the largest clock
// logged, which the TM adopts.
//
// InDoubt: what a subordinate TM does with a transaction still in doubt
// (prepared, no outcome from its superior): wait_in_doubt (default),
// heuristic_commit_after<Ms> or heuristic_abort_after<Ms>
// (superior/indoubt_policy.hpp).
//
// CheckpointEvery: the TM writes a restart area every that many completed
// (ended) transactions; 0 = only on demand (tm.checkpoint()). The TM can
// change it at run time (set_checkpoint_every).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ktm/concepts/recovery_policy.hpp"
#include "ktm/tm/superior/indoubt_policy.hpp"

namespace ktm::tm {

template <std::size_t CheckpointEvery = 1024, class InDoubt = wait_in_doubt>
struct replay_recovery {
  static_assert(models_indoubt_policy<InDoubt>,
                "replay_recovery<N, P>: P must be an in-doubt policy (wait_in_doubt, heuristic_commit_after<Ms>, "
                "heuristic_abort_after<Ms>)");
  static constexpr bool needs_log = true;
  using indoubt_policy = InDoubt;
  static constexpr std::size_t checkpoint_every = CheckpointEvery;

  template <class Log>
    requires requires(Log& l, std::uint64_t c) {
      { l.replay(c) } -> std::same_as<result<recovery_summary>>;
    }
  result<recovery_summary> recover(Log& log) {
    return log.replay(0);
  }
  // Only records with a clock <= clock (rollforward); 0 = everything.
  template <class Log>
  result<recovery_summary> recover_until(Log& log, std::uint64_t clock) {
    return log.replay(clock);
  }
};

}  // namespace ktm::tm
