// ktm/tm/replay_recovery.hpp: the recovery policy of a durable TM.
//
// recover(log) replays the TM's stream (durable_log::replay): commit records
// without an end record become recovered transactions, redelivered to their
// RMs as COMMIT when the RMs are recovered (basic_transaction_manager::
// recover_resource_manager, automatic for a static storage); everything else
// is aborted (presumed abort); the summary's last_clock is the largest clock
// logged, which the TM adopts.
//
// Parts (optional, in any order): an in-doubt policy and a progress callback.
//
// InDoubt: what a subordinate TM does with a transaction still in doubt
// (prepared, no outcome from its superior): wait_in_doubt (default),
// heuristic_commit_after<Ms> or heuristic_abort_after<Ms>
// (superior/indoubt_policy.hpp).
//
// CheckpointEvery: the TM writes a restart area every that many completed
// (ended) transactions; 0 = only on demand (tm.checkpoint()). The TM can
// change it at run time (set_checkpoint_every).
//
// Progress: a recovery_progress_callback (concepts/recovery_policy.hpp),
// called in the recovering thread with the records scanned, the commit
// records found and the payload bytes read so far: at most once per
// Progress::every_records records (default 65536), then once with done =
// true. The policy holds one Progress (default-constructed); reach it before
// recover() through tm.recovery().progress() to connect it to the caller.
// no_recovery_progress (the default) compiles to nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ktm/concepts/recovery_policy.hpp"
#include "ktm/tm/superior/indoubt_policy.hpp"

namespace ktm::tm {

// The default progress callback: none.
struct no_recovery_progress {
  static constexpr bool is_null = true;
  void operator()(const recovery_progress&) const noexcept {}
};

namespace detail {
// The first of Parts that satisfies Pick, else Default.
template <template <class> class Pick, class Default, class... Parts>
struct pick_part {
  using type = Default;
};
template <template <class> class Pick, class Default, class P, class... Parts>
struct pick_part<Pick, Default, P, Parts...> {
  using type = std::conditional_t<Pick<P>::value, P, typename pick_part<Pick, Default, Parts...>::type>;
};
template <class P>
struct is_indoubt_part : std::bool_constant<models_indoubt_policy<P>> {};
template <class P>
struct is_progress_part : std::bool_constant<!models_indoubt_policy<P> && recovery_progress_callback<P>> {};
}  // namespace detail

// Parts, in any order, at most one of each: an in-doubt policy and a
// progress callback.
template <std::size_t CheckpointEvery = 1024, class... Parts>
struct replay_recovery {
  static_assert(((detail::is_indoubt_part<Parts>::value || detail::is_progress_part<Parts>::value) && ...),
                "replay_recovery<N, Parts...>: each part must be an in-doubt policy (wait_in_doubt, "
                "heuristic_commit_after<Ms>, heuristic_abort_after<Ms>) or a recovery progress callback "
                "(callable with const recovery_progress&, default-constructible)");
  static_assert((std::size_t{detail::is_indoubt_part<Parts>::value} + ... + 0) <= 1,
                "replay_recovery<N, Parts...>: at most one in-doubt policy");
  static_assert((std::size_t{detail::is_progress_part<Parts>::value} + ... + 0) <= 1,
                "replay_recovery<N, Parts...>: at most one progress callback");
  using InDoubt = typename detail::pick_part<detail::is_indoubt_part, wait_in_doubt, Parts...>::type;
  using Progress = typename detail::pick_part<detail::is_progress_part, no_recovery_progress, Parts...>::type;
  static_assert(check_recovery_progress<Progress>());

  static constexpr bool needs_log = true;
  using indoubt_policy = InDoubt;
  static constexpr std::size_t checkpoint_every = CheckpointEvery;
  using progress_type = Progress;
  static constexpr std::uint64_t progress_every = [] {
    if constexpr (detail::has_every_records<Progress>) return std::uint64_t{Progress::every_records};
    else return std::uint64_t{65536};
  }();

  template <class Log>
    requires requires(Log& l, std::uint64_t c) {
      { l.replay(c) } -> std::same_as<result<recovery_summary>>;
    }
  result<recovery_summary> recover(Log& log) {
    return recover_until(log, 0);
  }
  // Only records with a clock <= clock (rollforward); 0 = everything.
  template <class Log>
  result<recovery_summary> recover_until(Log& log, std::uint64_t clock) {
    if constexpr (requires { requires Progress::is_null; }) return log.replay(clock);
    else return log.replay(clock, progress_, progress_every);
  }

  Progress& progress() noexcept { return progress_; }

 private:
  [[no_unique_address]] Progress progress_{};
};

}  // namespace ktm::tm
