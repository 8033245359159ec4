// examples/bank/tm_glue.hpp: the bank's transaction manager.
//
// ktm's durable TM over the "tm" stream of the bank's one multiplexed log
// (ktm::tm::durable_transaction_manager: commit records forced with group
// commit, end records queued, restart areas that move the stream's base to
// the oldest unfinished commit, replay with presumed abort). Its RMs are
// registered at run time (dynamic_storage): one map per shard and the ledger.
#pragma once

#include "examples/bank/meta.hpp"
#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"
#include "ktm/tm/durable_transaction_manager.hpp"
#include "ktm/tm/log_stream_backend.hpp"

namespace bank {

using io_type = ktm::io::posix_storage;
using tm_backend = ktm::tm::log_stream_backend<io_type>;
// A TM restart area every 512 finished transactions keeps the TM's stream short.
using tm_type = ktm::tm::durable_transaction_manager<io_type, ktm::tm::with_recovery<ktm::tm::replay_recovery<512>>,
                                                     ktm::tm::with_storage<ktm::tm::dynamic_storage>>;

}  // namespace bank
