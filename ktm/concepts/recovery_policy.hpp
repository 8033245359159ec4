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
// Models: no_recovery (volatile TM: nothing to replay). The replaying model
// arrives with the durable TM, once ktm/log exists.
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

template <class P, class Log>
consteval bool check_recovery_policy() {
  static_assert(std::default_initializable<P>, "recovery_policy: the policy must be default-constructible");
  static_assert(detail::has_needs_log<P>, "recovery_policy: missing `static constexpr bool needs_log`");
  static_assert(detail::has_recover<P, Log>,
                "recovery_policy: missing `result<recovery_summary> recover(Log&)` for the TM's log backend");
  return recovery_policy<P, Log>;
}

}  // namespace ktm::tm
