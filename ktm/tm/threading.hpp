// ktm/tm/threading.hpp: the concurrency policies of a transaction manager
// (the with_threading<P> option, options.hpp).
//
//   thread_safe      (default) any number of threads may run transactions on
//                    one TM; RMs may answer from any thread; every dispatcher
//                    and timeouts work. Each transaction has a spin lock and
//                    the virtual clock is one atomic.
//   single_threaded  the TM, its transactions and its RMs are used from one
//                    thread at a time (hand-overs need the caller's own
//                    synchronisation). No transaction lock, and unless
//                    with_clock<C> says otherwise a plain (non-atomic-RMW)
//                    virtual clock. Only the inline dispatcher; no
//                    set_timeout (it needs the timer thread). An RM that
//                    returns reply::later() must answer on the same thread,
//                    so a blocking commit()/rollback() cannot wait for it:
//                    use commit_async() / rollback_async() then.
//
// Minimal complete definition of a policy P:
//   P::concurrent             constexpr bool
//   typename P::default_clock the clock used when with_clock is not given
#pragma once

#include "ktm/tm/virtual_clock.hpp"

namespace ktm::tm {

struct thread_safe {
  static constexpr bool concurrent = true;
  using default_clock = atomic_virtual_clock;
};

struct single_threaded {
  static constexpr bool concurrent = false;
  using default_clock = plain_virtual_clock;
};

template <class P>
concept threading_policy = requires {
  { P::concurrent } -> std::convertible_to<bool>;
  typename P::default_clock;
} && tm_clock<typename P::default_clock>;

template <class P>
consteval bool check_threading_policy() {
  static_assert(requires { { P::concurrent } -> std::convertible_to<bool>; },
                "threading_policy: missing `static constexpr bool concurrent` (use thread_safe or single_threaded)");
  static_assert(requires { typename P::default_clock; }, "threading_policy: missing member type `default_clock`");
  return threading_policy<P>;
}

}  // namespace ktm::tm
