// ktm/tm/no_log.hpp: the null log backend of a volatile TM.
//
// durable == false: the TM compiles its log calls away (if constexpr), so
// these members exist only to model log_backend; each succeeds doing
// nothing. A TM with no_log accepts only volatile RMs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ktm/concepts/log_backend.hpp"

namespace ktm::tm {

struct no_log {
  using lsn_type = std::uint64_t;
  static constexpr bool durable = false;

  result<lsn_type> append(std::span<const std::byte>, log_append_mode) noexcept { return lsn_type{0}; }
  result<lsn_type> flush_to(lsn_type l) noexcept { return l; }
  result<lsn_type> write_restart_area(std::span<const std::byte>) noexcept { return lsn_type{0}; }
  result<lsn_type> read_restart_area(std::vector<std::byte>&) noexcept { return errc::no_restart_area; }
  result<lsn_type> read_record(lsn_type, std::vector<std::byte>&) noexcept { return errc::end_of_stream; }
};

static_assert(check_log_backend<no_log>());

}  // namespace ktm::tm
