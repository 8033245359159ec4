// ktm/tm/superior/heuristic_report.hpp: the record of a transaction a
// subordinate TM decided alone (its in-doubt policy: indoubt_policy.hpp).
//
// `decided` is what the subordinate did; `superior_outcome` stays
// undetermined until the superior's own outcome reaches the subordinate;
// damage() is true when the two differ (some RMs committed what others
// rolled back, or the reverse): the application must repair it.
#pragma once

#include "ktm/guid.hpp"
#include "ktm/tm/states.hpp"

namespace ktm::tm {

struct heuristic_report {
  guid uow;
  guid superior;
  transaction_outcome decided = transaction_outcome::undetermined;
  transaction_outcome superior_outcome = transaction_outcome::undetermined;

  bool damage() const noexcept {
    return superior_outcome != transaction_outcome::undetermined && superior_outcome != decided;
  }
  friend bool operator==(const heuristic_report&, const heuristic_report&) = default;
};

}  // namespace ktm::tm
