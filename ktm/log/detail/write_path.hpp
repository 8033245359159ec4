// ktm/log/detail/write_path.hpp: the parts of log_core's write path, one
// header each. Included by log_core.hpp only.
//
//   log_create.hpp        creating a new log
//   base_persistence.hpp  writing the base file
//   io_run.hpp            sealing blocks, running one batch of writes/flush
//   group_commit.hpp      flush_to_locked: forcers sharing device flushes
//   write_behind.hpp      the writer thread for full blocks
//   append_path.hpp       append, reserve, restart areas, opening blocks
//   container_ops.hpp     adding and removing containers
//   block_fetch.hpp       reading one block for the readers
#pragma once

#include "ktm/log/detail/log_core.hpp"
#include "ktm/log/detail/log_create.hpp"
#include "ktm/log/detail/base_persistence.hpp"
#include "ktm/log/detail/io_run.hpp"
#include "ktm/log/detail/group_commit.hpp"
#include "ktm/log/detail/write_behind.hpp"
#include "ktm/log/detail/append_path.hpp"
#include "ktm/log/detail/container_ops.hpp"
#include "ktm/log/detail/block_fetch.hpp"
