// ktm/rm/detail/undo_chain.hpp: hands a rolled-back transaction's
// before-images to an undo callback, newest first.
//
//   undo_chain(stream, uow, entry, undo);   // undo(std::string_view key, const image& before)
//
// Reads the transaction's undo-next chain back from `stream`, starting at
// its newest record; where the log cannot be read (a read error, a record
// that does not decode or names another UOW) it gives the same images from
// the entry's in-memory changes instead, again newest first, so every key
// ends at its oldest before-image either way. Nothing for a transaction
// without changes. Reads only; never fails.
#pragma once

#include <string_view>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/guid.hpp"
#include "ktm/log/stream.hpp"
#include "ktm/rm/detail/tx_entry.hpp"
#include "ktm/rm/record.hpp"

namespace ktm::rm::detail {

template <io_policy Io, class Undo>
void undo_chain(const log::stream<Io>& stream, const guid& tx, const tx_entry& e, Undo& undo) {
  if (e.changes.empty()) return;
  bool ok = true;
  auto view = stream.read_undo_next(e.last);
  for (const log::log_record& r : view) {
    auto d = decode_record(r.payload, r.at);
    if (!d || d->uow != tx) {
      ok = false;
      break;
    }
    if (d->kind == change_kind::before_image) undo(std::string_view(d->key), d->value);
  }
  if (ok && view.ok()) return;
  // the log could not be read back: the same images from memory (restoring
  // newest first again leaves every key at its oldest before-image)
  for (auto c = e.changes.rbegin(); c != e.changes.rend(); ++c) undo(std::string_view(c->key), c->before);
}

}  // namespace ktm::rm::detail
