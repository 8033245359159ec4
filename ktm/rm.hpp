// ktm/rm.hpp: helpers for durable resource managers: undo/redo logging over
// the RM's own log stream (change_log), its record layout, per-key locks,
// and a transactional map built on them. See doc/resource_managers.md.
#pragma once

#include "ktm/rm/change_log.hpp"
#include "ktm/rm/change_store.hpp"
#include "ktm/rm/lock_table.hpp"
#include "ktm/rm/map_store.hpp"
#include "ktm/rm/record.hpp"
#include "ktm/rm/transactional_map.hpp"
#include "ktm/rm/vocabulary.hpp"
