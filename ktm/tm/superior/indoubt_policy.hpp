// ktm/tm/superior/indoubt_policy.hpp: what a subordinate TM does with a
// transaction left in doubt (prepared, its superior's outcome unknown).
//
// A recovery policy names one as `using indoubt_policy = P;`
// (replay_recovery<N, P>, no_recovery uses wait_in_doubt). A TM with a
// superior transport requires it (check_indoubt_policy names what is
// missing).
//   wait_in_doubt               keep it prepared until the superior answers
//   heuristic_commit_after<Ms>  commit it alone once it has been in doubt
//                               for Ms milliseconds
//   heuristic_abort_after<Ms>   roll it back alone after Ms milliseconds
// A heuristic outcome is never silent: the subordinate TM records it
// (heuristic_report), counts it and calls its heuristic callback; when the
// superior's outcome arrives later and differs, the record says so
// (basic_superior_transaction_manager::heuristics()).
//
// Minimal complete definition of an in-doubt policy P:
//   P::action  constexpr indoubt_action
//   P::after   constexpr std::chrono::milliseconds
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>

namespace ktm::tm {

enum class indoubt_action : std::uint8_t { wait, heuristic_commit, heuristic_abort };

struct wait_in_doubt {
  static constexpr indoubt_action action = indoubt_action::wait;
  static constexpr std::chrono::milliseconds after{0};
};
template <std::uint64_t Ms>
struct heuristic_commit_after {
  static constexpr indoubt_action action = indoubt_action::heuristic_commit;
  static constexpr std::chrono::milliseconds after{Ms};
};
template <std::uint64_t Ms>
struct heuristic_abort_after {
  static constexpr indoubt_action action = indoubt_action::heuristic_abort;
  static constexpr std::chrono::milliseconds after{Ms};
};

template <class P>
concept models_indoubt_policy = requires {
  { P::action } -> std::convertible_to<indoubt_action>;
  { P::after } -> std::convertible_to<std::chrono::milliseconds>;
};

namespace detail {
template <class R>
concept names_indoubt_policy = requires { typename R::indoubt_policy; };
}  // namespace detail

// The in-doubt policy of recovery policy R (a TM with a superior transport).
template <class R>
consteval bool check_indoubt_policy() {
  static_assert(detail::names_indoubt_policy<R>,
                "recovery_policy: a TM with a superior transport needs `using indoubt_policy = ...;` in its "
                "recovery policy (wait_in_doubt, heuristic_commit_after<Ms> or heuristic_abort_after<Ms>)");
  if constexpr (detail::names_indoubt_policy<R>) {
    static_assert(models_indoubt_policy<typename R::indoubt_policy>,
                  "indoubt_policy: missing `static constexpr indoubt_action action` or "
                  "`static constexpr std::chrono::milliseconds after`");
    return models_indoubt_policy<typename R::indoubt_policy>;
  }
  return false;
}

}  // namespace ktm::tm
