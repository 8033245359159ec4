// ktm/tm.hpp: the transaction layer (transaction managers, resource
// managers, enlistments, notifications, two-phase commit). See
// doc/transactions.md.
#pragma once

#include "ktm/guid.hpp"
#include "ktm/tm/dynamic_storage.hpp"
#include "ktm/tm/durable_log.hpp"
#include "ktm/tm/durable_transaction_manager.hpp"
#include "ktm/tm/enlistment.hpp"
#include "ktm/tm/enlistment_handle.hpp"
#include "ktm/tm/inline_array_storage.hpp"
#include "ktm/tm/inline_dispatcher.hpp"
#include "ktm/tm/log_stream_backend.hpp"
#include "ktm/tm/no_log.hpp"
#include "ktm/tm/no_recovery.hpp"
#include "ktm/tm/notification.hpp"
#include "ktm/tm/notification_queue.hpp"
#include "ktm/tm/options.hpp"
#include "ktm/tm/queued_dispatcher.hpp"
#include "ktm/tm/reply.hpp"
#include "ktm/tm/replay_recovery.hpp"
#include "ktm/tm/resource_manager.hpp"
#include "ktm/tm/states.hpp"
#include "ktm/tm/static_storage.hpp"
#include "ktm/tm/thread_pool_dispatcher.hpp"
#include "ktm/tm/transaction.hpp"
#include "ktm/tm/transaction_manager.hpp"
#include "ktm/tm/virtual_clock.hpp"
