// ktm/rm/detail/scan_change_log.hpp: the forward pass of change_log
// recovery over an RM's stream.
//
//   scan_change_log(stream, store, report, live, committed);   // result<void>
//
// Reads from the latest restart area's scan base (or the stream's base):
// the snapshot the restart area names goes into `store` as it is met;
// every transaction met is collected in `live` (changes, first/last and
// prepare LSNs); a commit record moves its transaction to `committed` (in
// commit order) if it follows the restart area, else drops it (the snapshot
// holds it already); an abort record drops it. `report` gets the restart
// area's LSN, the scan base, the records scanned and the snapshot entries.
// The caller redoes `committed`, discards unprepared `live` transactions
// and keeps the prepared ones in doubt. Errors: corrupt_record (a record
// that is not data or does not decode, an after-image without its
// before-image), corrupt_restart_area (the restart area, its checkpoint
// record or its snapshot do not match), the log's read errors; each names
// the LSN and the stream. `store` may be left half loaded on error.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/error.hpp"
#include "ktm/guid.hpp"
#include "ktm/log/stream.hpp"
#include "ktm/result.hpp"
#include "ktm/rm/detail/tx_entry.hpp"
#include "ktm/rm/record.hpp"
#include "ktm/rm/vocabulary.hpp"

namespace ktm::rm::detail {

template <io_policy Io, class Store>
result<void> scan_change_log(const log::stream<Io>& stream, Store& store, recovery_report& rep,
                             std::map<guid, tx_entry>& live, std::vector<std::pair<guid, tx_entry>>& committed) {
  std::optional<checkpoint_info> ck;
  if (auto ra = stream.read_restart_area()) {
    auto c = decode_restart(ra->data, ra->at);
    if (!c) return std::move(c).error();
    ck = *c;
    rep.restart_at = ra->at;
    rep.scan_from = c->scan_from;
  } else if (ra.code() != make_error_code(errc::no_restart_area)) {
    return std::move(ra).error();
  }
  const failure bad_restart(errc::corrupt_restart_area, position::at_lsn(rep.restart_at.raw()), stream.name());
  bool marker_seen = false;
  std::uint64_t entries_left = 0;
  auto view = stream.read_forward(rep.scan_from);
  for (const log::log_record& r : view) {
    ++rep.records_scanned;
    if (r.type == log::record_type::restart) continue;
    if (r.type != log::record_type::data)
      return failure(errc::corrupt_record, position::at_lsn(r.at.raw()), stream.name());
    auto d = decode_record(r.payload, r.at);
    if (!d) return failure(d.error().code, d.error().where, stream.name());
    if (entries_left > 0) {  // the snapshot's records follow its checkpoint record
      if (d->kind != change_kind::snapshot || d->uow != ck->id) return bad_restart;
      store.apply(d->key, d->value);
      ++rep.snapshot_entries;
      --entries_left;
      continue;
    }
    switch (d->kind) {
      case change_kind::checkpoint:
        if (ck && r.at == ck->checkpoint_at) {
          if (d->uow != ck->id) return bad_restart;
          marker_seen = true;
          entries_left = ck->entries;
        }
        break;
      case change_kind::snapshot: break;  // an older or unfinished checkpoint's
      case change_kind::before_image: {
        tx_entry& e = live[d->uow];
        if (e.first.is_null()) e.first = r.at;
        e.last = r.at;
        e.changes.push_back({std::move(d->key), std::move(d->value), std::nullopt, r.at, log::lsn::null()});
        break;
      }
      case change_kind::after_image: {
        auto it = live.find(d->uow);
        if (it == live.end() || it->second.changes.empty() || !it->second.changes.back().after_at.is_null() ||
            it->second.changes.back().key != d->key)
          return failure(errc::corrupt_record, position::at_lsn(r.at.raw()), stream.name());
        it->second.last = r.at;
        it->second.changes.back().after = std::move(d->value);
        it->second.changes.back().after_at = r.at;
        break;
      }
      case change_kind::prepare: {
        tx_entry& e = live[d->uow];
        if (e.first.is_null()) e.first = r.at;
        e.last = e.prepare_at = r.at;
        break;
      }
      case change_kind::commit: {
        auto it = live.find(d->uow);
        if (it == live.end()) break;
        if (!ck || r.at > rep.restart_at) committed.emplace_back(it->first, std::move(it->second));
        live.erase(it);  // before the restart area: in its snapshot already
        break;
      }
      case change_kind::abort: live.erase(d->uow); break;
    }
  }
  if (!view.ok()) {
    failure f = view.status();
    if (f.file.empty()) f.file = stream.name();
    return f;
  }
  if (ck && (!marker_seen || entries_left != 0)) return bad_restart;
  return {};
}

}  // namespace ktm::rm::detail
