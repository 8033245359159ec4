// ktm/rm/detail/write_checkpoint.hpp: writes one change_log checkpoint.
//
//   auto ra = write_checkpoint(writer, stream, store, live);   // result<log::lsn>
//
// Appends a checkpoint record (a fresh id), one snapshot record per object
// of `store` (in the store's for_each order), then a restart area naming
// them, and moves the stream's base to the oldest record still needed: the
// checkpoint record or the first record of any transaction in `live`
// (never below the stream's current base). Returns the restart area's LSN,
// or the first append's failure (nothing after it is written; a snapshot
// cut short is not named by any restart area, so recovery ignores it).
// `writer` must be `stream`'s marshalling area; the caller holds the lock
// that guards `store` and `live`.
#pragma once

#include <algorithm>
#include <map>
#include <optional>
#include <string_view>
#include <utility>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/guid.hpp"
#include "ktm/log/marshalling_area.hpp"
#include "ktm/log/stream.hpp"
#include "ktm/result.hpp"
#include "ktm/rm/detail/tx_entry.hpp"
#include "ktm/rm/record.hpp"

namespace ktm::rm::detail {

template <io_policy Io, class Store>
result<log::lsn> write_checkpoint(log::marshalling_area<Io>& writer, const log::stream<Io>& stream, Store& store,
                                  const std::map<guid, tx_entry>& live) {
  checkpoint_info info;
  info.id = guid::generate();
  auto marker = writer.append(encode_record(change_kind::checkpoint, info.id));
  if (!marker) return std::move(marker).error();
  info.checkpoint_at = *marker;
  std::optional<failure> err;
  store.for_each([&](std::string_view k, std::string_view v) {
    if (err) return;
    auto r = writer.append(encode_record(change_kind::snapshot, info.id, k, v));
    if (!r) err = std::move(r).error();
    else ++info.entries;
  });
  if (err) return *err;
  info.scan_from = *marker;
  for (const auto& [g, e] : live)
    if (!e.first.is_null()) info.scan_from = std::min(info.scan_from, e.first);
  info.scan_from = std::max(info.scan_from, stream.base_lsn());
  return writer.write_restart_area(encode_restart(info), info.scan_from);
}

}  // namespace ktm::rm::detail
