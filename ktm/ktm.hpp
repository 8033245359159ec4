// ktm/ktm.hpp: the whole library.
#pragma once

#include "ktm/error.hpp"
#include "ktm/result.hpp"
#include "ktm/concepts/block_device.hpp"
#include "ktm/concepts/io_policy.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"
#include "ktm/rm.hpp"
