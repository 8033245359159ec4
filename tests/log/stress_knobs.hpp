// tests/log/stress_knobs.hpp: what the log's concurrency stress tests share.
//
// stress_rounds()          KTM_LOG_STRESS_ROUNDS (default 1): how many times
//                          a test repeats its rounds (longer torture runs)
// stress_log_options(c)    blocks of 64 KiB (room for the 30000-byte stamped
//                          records, stamped_record.hpp), four containers of
//                          c bytes, three write buffers; over files, with
//                          the writer thread (write_behind), which the
//                          tests' titles name
#pragma once

#include <cstdint>
#include <cstdlib>

#include "ktm/log/log_options.hpp"

namespace ktm::test {

inline int stress_rounds() {
  const char* v = std::getenv("KTM_LOG_STRESS_ROUNDS");
  const int n = v ? std::atoi(v) : 1;
  return n > 0 ? n : 1;
}

inline ktm::log::log_options stress_log_options(std::uint32_t container_size) {
  ktm::log::log_options o;
  o.block_size = 64 * 1024;
  o.container_size = container_size;
  o.containers = 4;
  o.write_buffers = 3;
  o.write_behind = true;
  return o;
}

}  // namespace ktm::test
