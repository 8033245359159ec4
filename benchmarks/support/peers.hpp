// benchmarks/support/peers.hpp: every durable-commit comparison in one
// include — RocksDB (sync Put), Berkeley DB (transactional put + commit) and
// the raw pwrite+fdatasync-per-committer baseline. Needs @rocksdb and
// @berkeleydb (the //benchmarks:peers library).
#pragma once

#include "benchmarks/support/peer_berkeleydb.hpp"
#include "benchmarks/support/peer_common.hpp"
#include "benchmarks/support/peer_rocksdb.hpp"
#include "benchmarks/support/raw_group_commit.hpp"
