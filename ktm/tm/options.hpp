// ktm/tm/options.hpp: the named options of basic_transaction_manager and
// their composition.
//
// Options are given in any order; each names one policy kind:
//   with_dispatcher<D>  notification_dispatcher   default inline_dispatcher
//   with_storage<S>     enlistment_storage        default dynamic_storage
//   with_log<L>         log_backend               default no_log
//   with_recovery<P>    recovery_policy           default no_recovery
//   with_clock<C>       tm_clock                  default atomic_virtual_clock
//                                                 (single_threaded: plain_virtual_clock)
//   with_threading<P>   threading_policy          default thread_safe (threading.hpp)
//   with_transport<T>   superior_transport        default no_transport (no superior, no
//                                                 subordinates; see superior_transaction_manager.hpp)
// tm_config<Options...> folds them over the defaults with Boost.Hana (a
// hana::map from option kind to policy type, each option replacing its
// entry). can_compose<Options...> says whether the combination is valid,
// without a hard error, so a test can static_assert(!can_compose<...>); the
// host template turns each reason into a static_assert message.
#pragma once

#include <type_traits>

#include <boost/hana.hpp>

#include "ktm/concepts/enlistment_storage.hpp"
#include "ktm/concepts/log_backend.hpp"
#include "ktm/concepts/notification_dispatcher.hpp"
#include "ktm/concepts/recovery_policy.hpp"
#include "ktm/concepts/superior_transport.hpp"
#include "ktm/concepts/tm_clock.hpp"
#include "ktm/tm/dynamic_storage.hpp"
#include "ktm/tm/inline_dispatcher.hpp"
#include "ktm/tm/no_log.hpp"
#include "ktm/tm/no_recovery.hpp"
#include "ktm/tm/superior/indoubt_policy.hpp"
#include "ktm/tm/superior/no_transport.hpp"
#include "ktm/tm/threading.hpp"
#include "ktm/tm/virtual_clock.hpp"

namespace ktm::tm {

namespace option_kind {
struct dispatcher {};
struct storage {};
struct log {};
struct recovery {};
struct clock {};
struct threading {};
struct transport {};
}  // namespace option_kind

template <class D>
struct with_dispatcher {
  using kind = option_kind::dispatcher;
  using type = D;
};
template <class S>
struct with_storage {
  using kind = option_kind::storage;
  using type = S;
};
template <class L>
struct with_log {
  using kind = option_kind::log;
  using type = L;
};
template <class P>
struct with_recovery {
  using kind = option_kind::recovery;
  using type = P;
};
template <class C>
struct with_clock {
  using kind = option_kind::clock;
  using type = C;
};
template <class P>
struct with_threading {
  using kind = option_kind::threading;
  using type = P;
};
template <class T>
struct with_transport {
  using kind = option_kind::transport;
  using type = T;
};

namespace detail {

namespace hana = boost::hana;

template <class O>
concept tm_option = requires {
  typename O::kind;
  typename O::type;
} && (std::is_same_v<typename O::kind, option_kind::dispatcher> ||
      std::is_same_v<typename O::kind, option_kind::storage> ||
      std::is_same_v<typename O::kind, option_kind::log> ||
      std::is_same_v<typename O::kind, option_kind::recovery> ||
      std::is_same_v<typename O::kind, option_kind::clock> ||
      std::is_same_v<typename O::kind, option_kind::threading> ||
      std::is_same_v<typename O::kind, option_kind::transport>);

template <class O>
struct kind_of {
  using type = O;  // not an option: its own "kind", never equal to a real one
};
template <tm_option O>
struct kind_of<O> {
  using type = typename O::kind;
};

inline constexpr auto default_options = hana::make_map(
    hana::make_pair(hana::type_c<option_kind::dispatcher>, hana::type_c<inline_dispatcher>),
    hana::make_pair(hana::type_c<option_kind::storage>, hana::type_c<dynamic_storage>),
    hana::make_pair(hana::type_c<option_kind::log>, hana::type_c<no_log>),
    hana::make_pair(hana::type_c<option_kind::recovery>, hana::type_c<no_recovery>),
    hana::make_pair(hana::type_c<option_kind::clock>, hana::type_c<atomic_virtual_clock>),
    hana::make_pair(hana::type_c<option_kind::threading>, hana::type_c<thread_safe>),
    hana::make_pair(hana::type_c<option_kind::transport>, hana::type_c<no_transport>));

template <class P>
struct threading_default_clock {
  using type = typename P::default_clock;
};

template <class... Options>
struct tm_config {
  static constexpr bool all_options = (tm_option<Options> && ...);
  static constexpr bool unique_kinds =
      hana::size(hana::to_set(hana::tuple_t<typename kind_of<Options>::type...>)) ==
      hana::size_c<sizeof...(Options)>;

  static constexpr auto fold() {
    if constexpr (all_options) {
      return hana::fold_left(hana::tuple_t<Options...>, default_options, [](auto map, auto option) {
        using O = typename decltype(option)::type;
        auto key = hana::type_c<typename O::kind>;
        return hana::insert(hana::erase_key(map, key), hana::make_pair(key, hana::type_c<typename O::type>));
      });
    } else {
      return default_options;
    }
  }
  static constexpr auto policies = fold();

  template <class Kind>
  using get = typename decltype(+policies[hana::type_c<Kind>])::type;

  using dispatcher = get<option_kind::dispatcher>;
  using storage = get<option_kind::storage>;
  using log = get<option_kind::log>;
  using recovery = get<option_kind::recovery>;
  using threading = get<option_kind::threading>;
  using transport = get<option_kind::transport>;
  static constexpr bool has_transport = !std::is_same_v<transport, no_transport>;
  // with_clock<C> wins; without it the threading policy picks the clock.
  static constexpr bool explicit_clock =
      (std::is_same_v<typename kind_of<Options>::type, option_kind::clock> || ...);
  using clock = typename std::conditional_t<explicit_clock || !threading_policy<threading>,
                                            std::type_identity<get<option_kind::clock>>,
                                            threading_default_clock<threading>>::type;

  static constexpr bool policies_model_concepts =
      notification_dispatcher<dispatcher> && enlistment_storage<storage> && log_backend<log> &&
      recovery_policy<recovery, log> && tm_clock<clock> && threading_policy<threading> &&
      (!has_transport || superior_transport<transport>);

  // A volatile TM has no log and accepts only volatile RMs.
  static constexpr bool durable_rm_without_log = [] {
    if constexpr (enlistment_storage<storage> && log_backend<log>)
      return storage::is_static && storage::may_hold_durable && !log::durable;
    else
      return false;
  }();
  static constexpr bool recovery_without_log = [] {
    if constexpr (recovery_policy<recovery, log> && log_backend<log>)
      return recovery::needs_log && !log::durable;
    else
      return false;
  }();

  // A single-threaded TM has no other thread to run handlers on.
  static constexpr bool single_threaded_needs_inline = [] {
    if constexpr (threading_policy<threading> && notification_dispatcher<dispatcher>)
      return !threading::concurrent && !dispatcher::is_inline;
    else
      return false;
  }();

  // A TM with a superior transport may hold transactions in doubt: its
  // recovery policy says what to do with them (indoubt_policy.hpp).
  static constexpr bool transport_without_indoubt_policy =
      has_transport && !detail::names_indoubt_policy<recovery>;

  static constexpr bool valid = all_options && unique_kinds && policies_model_concepts &&
                                !durable_rm_without_log && !recovery_without_log &&
                                !single_threaded_needs_inline && !transport_without_indoubt_policy;
};

}  // namespace detail

// True when basic_transaction_manager<Options...> would compile.
template <class... Options>
concept can_compose = detail::tm_config<Options...>::valid;

}  // namespace ktm::tm
