// ktm/log.hpp: the log layer (CLFS-style logs over any ktm::io_policy).
// See doc/log.md for use and doc/log_format.md for the on-disk format.
#pragma once

#include "ktm/log/crc32c.hpp"
#include "ktm/log/log.hpp"
#include "ktm/log/log_options.hpp"
#include "ktm/log/lsn.hpp"
#include "ktm/log/marshalling_area.hpp"
#include "ktm/log/reader.hpp"
#include "ktm/log/record.hpp"
#include "ktm/log/recovery_mode.hpp"
#include "ktm/log/restart_area.hpp"
#include "ktm/log/stream.hpp"
