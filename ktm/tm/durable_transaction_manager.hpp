// ktm/tm/durable_transaction_manager.hpp: a durable TM over a stream of a
// ktm::log log (see doc/transactions.md, "The durable TM").
//
//   using tm_type = ktm::tm::durable_transaction_manager<Io,
//       ktm::tm::with_storage<ktm::tm::static_storage<my_rm>>>;   // options as for a volatile TM
//   auto lg = ktm::log::log<Io>::open(storage, "txlog");         // or create
//   auto ts = lg->open_stream("tm");                             // the TM's own stream
//   tm_type tm{ktm::tm::log_arg, *ts, tm_id, rm};                 // the TM takes the stream's writer
//   tm.recover();                                                 // replay, redeliver, online
//
// It is basic_transaction_manager<with_log<durable_log<log_stream_backend<
// Io>>>, with_recovery<replay_recovery<>>, Options...>: the recovery option
// may be given (e.g. with_recovery<replay_recovery<100>> for a restart area
// every 100 transactions); the log option may not. Accepts durable and
// volatile RMs.
#pragma once

#include <type_traits>

#include "ktm/tm/durable_log.hpp"
#include "ktm/tm/log_stream_backend.hpp"
#include "ktm/tm/options.hpp"
#include "ktm/tm/replay_recovery.hpp"
#include "ktm/tm/transaction_manager.hpp"

namespace ktm::tm {

// The log type of a durable TM over ktm::log with I/O policy Io.
template <class Io>
using durable_log_for = durable_log<log_stream_backend<Io>>;

namespace detail {
template <class Io, class... Options>
struct make_durable_tm {
  static constexpr bool has_recovery =
      (std::is_same_v<typename kind_of<Options>::type, option_kind::recovery> || ...);
  using type = std::conditional_t<
      has_recovery, basic_transaction_manager<with_log<durable_log_for<Io>>, Options...>,
      basic_transaction_manager<with_log<durable_log_for<Io>>, with_recovery<replay_recovery<>>, Options...>>;
};
}  // namespace detail

template <class Io, class... Options>
using durable_transaction_manager = typename detail::make_durable_tm<Io, Options...>::type;

}  // namespace ktm::tm
