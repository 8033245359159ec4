// ktm/tm/no_recovery.hpp: the recovery policy of a volatile TM: there is
// nothing to replay, recover() succeeds at once with an empty summary.
#pragma once

#include "ktm/concepts/recovery_policy.hpp"
#include "ktm/tm/superior/indoubt_policy.hpp"

namespace ktm::tm {

struct no_recovery {
  static constexpr bool needs_log = false;
  using indoubt_policy = wait_in_doubt;  // a volatile subordinate waits for its superior

  template <class Log>
  result<recovery_summary> recover(Log&) noexcept {
    return recovery_summary{};
  }
};

}  // namespace ktm::tm
