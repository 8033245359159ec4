// ktm/concepts/recovery_policy.hpp: the concept of a recovery policy, what
// a TM does between `initialized` and `online` (basic_transaction_manager::
// recover()).
//
// Minimal complete definition (p a P&, log a Log&):
//   P::needs_log                   constexpr bool: only for a durable log
//   p.recover(log) -> result<recovery_summary>
//       replays the TM's stream from its last restart area: rebuilds
//       prepared transactions and redelivers outcomes (presumed abort: what
//       did not prepare is aborted); returns the last virtual clock logged
//
// Laws: recover() on an empty log succeeds with last_clock 0 and nothing in
// doubt; running it twice gives the same summary (idempotent replay).
// Models: no_recovery (volatile TM: nothing to replay), replay_recovery<N,
// Parts...> (the durable TM's replay, with an optional in-doubt policy and
// progress callback: ktm/tm/replay_recovery.hpp).
//
// Progress of a long recovery: a recovery_progress_callback F is a
// default-constructible callable taking `const recovery_progress&`; it may
// declare `static constexpr std::uint64_t every_records` (calls at most once
// per that many records scanned, plus a final call with done = true).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>

#include "ktm/result.hpp"

namespace ktm::tm {

struct recovery_summary {
  std::uint64_t last_clock = 0;    // the TM adopts it (max-merge)
  std::size_t in_doubt = 0;        // prepared transactions awaiting an outcome
  std::size_t redelivered = 0;     // outcomes sent again
};

namespace detail {

template <class P>
concept has_needs_log = requires {
  { P::needs_log } -> std::convertible_to<bool>;
};
template <class P, class Log>
concept has_recover = requires(P& p, Log& log) {
  { p.recover(log) } -> std::same_as<result<recovery_summary>>;
};

}  // namespace detail

template <class P, class Log>
concept recovery_policy = std::default_initializable<P> && detail::has_needs_log<P> && detail::has_recover<P, Log>;

// How far a recovery got (the argument of a progress callback).
struct recovery_progress {
  std::uint64_t records_scanned = 0;       // log records read so far
  std::uint64_t transactions_rebuilt = 0;  // commit and prepared records found so far
  std::uint64_t bytes_scanned = 0;         // record payload bytes read so far
  bool done = false;                       // the final call: the scan is complete
};

namespace detail {
template <class F>
concept has_every_records = requires {
  { F::every_records } -> std::convertible_to<std::uint64_t>;
};
}  // namespace detail

template <class F>
concept recovery_progress_callback =
    std::default_initializable<F> && std::invocable<F&, const recovery_progress&> &&
    (!detail::has_every_records<F> || requires { requires F::every_records > 0; });

template <class F>
consteval bool check_recovery_progress() {
  static_assert(std::default_initializable<F>,
                "recovery progress callback: the callable type must be default-constructible (the recovery "
                "policy holds one; reach it through tm.recovery().progress())");
  static_assert(std::invocable<F&, const recovery_progress&>,
                "recovery progress callback: missing `operator()(const recovery_progress&)`");
  if constexpr (detail::has_every_records<F>)
    static_assert(F::every_records > 0, "recovery progress callback: `every_records` must be at least 1");
  return recovery_progress_callback<F>;
}

template <class P, class Log>
consteval bool check_recovery_policy() {
  static_assert(std::default_initializable<P>, "recovery_policy: the policy must be default-constructible");
  static_assert(detail::has_needs_log<P>, "recovery_policy: missing `static constexpr bool needs_log`");
  static_assert(detail::has_recover<P, Log>,
                "recovery_policy: missing `result<recovery_summary> recover(Log&)` for the TM's log backend");
  return recovery_policy<P, Log>;
}

}  // namespace ktm::tm
