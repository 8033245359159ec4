// ktm/rm/detail/tx_entry.hpp: what a change_log holds of one live
// transaction: its changes (before- and after-images with their LSNs), its
// first and last record (the head of its undo-next chain) and its prepare
// record (null until prepared), whether it holds room for one outcome
// record, and whether recovery found it in doubt. A plain value; the
// change_log's lock guards it.
#pragma once

#include <vector>

#include "ktm/log/lsn.hpp"
#include "ktm/rm/vocabulary.hpp"

namespace ktm::rm::detail {

struct tx_entry {
  std::vector<change> changes;
  log::lsn first, last, prepare_at;
  bool reserved = false;   // holds room for one outcome record
  bool recovered = false;  // found in doubt by recover()
};

}  // namespace ktm::rm::detail
