// ktm/log/detail/recovery.hpp: opening a log and finding its true end.
// Included by log_core.hpp only.
//
// The base file's head is durable (it is written only after a full flush).
// From there the scan accepts block after block while each is the valid
// continuation: header of this log, expected seq and epoch, at its own
// position, every trailer and record checked. The first position that is not
// is either a clean end (no header of the expected block, no sector carrying
// its stamp: zeroes or stale data) or damage, handled per recovery_action.
// Every offset, size and id read from disk is checked before use.
#pragma once

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

template <io_policy Io>
result<std::shared_ptr<log_core<Io>>> log_core<Io>::open(Io& io, std::string name, const log_options& o,
                                                         recovery_action act) {
  if (name.empty() || o.write_buffers < 2) return errc::invalid_argument;
  const std::string base = base_file_name(name);
  auto bd = io.open(base, open_mode::open_existing);
  if (!bd) return std::move(bd).error();
  auto c = std::make_shared<log_core>(io, name, o);
  c->opt_.persist_on_close = false;
  c->base_dev_ = std::make_shared<device>(std::move(*bd));
  auto mr = load_base(*c->base_dev_, base);
  if (!mr) return std::move(mr).error();
  base_metadata& m = *mr;
  c->geo_ = m.geo;
  c->dedicated_ = m.dedicated;
  c->generation_ = m.generation;
  c->epoch_ = m.epoch;
  c->next_physical_ = m.next_physical;
  c->next_stream_id_ = m.next_stream_id;
  c->base_scratch_ = aligned_buffer(format::base_copy_size, m.geo.io_align);
  for (auto& e : m.streams) {
    auto s = std::make_shared<stream_state>();
    s->id = e.id;
    s->name = e.name;
    s->base = e.base;
    s->last = e.last;
    s->restart = e.restart;
    c->streams_.push_back(std::move(s));
  }
  c->next_pos_ = m.head();
  const std::uint32_t tail = c->tail_locked().container();
  c->cs_ = container_set<Io>(&io, name, m.geo);
  std::vector<std::optional<container_header>> headers;
  for (auto& e : m.containers) {
    const std::string file = container_file_name(name, e.physical_id);
    auto h = c->cs_.open(e.physical_id, e.logical_id, c->base_scratch_.span());
    if (!h) {
      if (h.code() == make_error_code(errc::not_found)) return failure(errc::corrupt_container, {}, file);
      return std::move(h).error();
    }
    const bool active = e.logical_id != format::no_logical && e.logical_id >= tail;
    if (active && (!*h || (*h)->logical_id != e.logical_id))
      return failure(errc::corrupt_container, position::at_offset(0), file);
    if (!active) c->cs_.slots().back().logical = format::no_logical;
    headers.push_back(*h);
  }
  KTM_TRY(c->init_buffers());
  std::lock_guard lk(c->mu_);
  KTM_TRY(c->recover(act, m, headers));
  c->epoch_ = std::max(m.epoch, m.epoch_hint) + 1;
  KTM_TRY(c->write_base_locked());
  c->opt_.persist_on_close = o.persist_on_close;
  if (o.on_tail) o.on_tail(c->report_);
  return c;
}

template <io_policy Io>
void log_core<Io>::apply_record(const log_record& r) {
  stream_state* s = nullptr;
  for (auto& p : streams_)
    if (p->id == r.stream_id) s = p.get();
  if (!s) return;  // a deleted stream
  if (s->last < s->base) s->base = r.at;
  if (r.at > s->last) s->last = r.at;
  if (r.type == record_type::restart && r.payload.size() >= 8) {
    s->restart = r.at;
    const lsn nb(format::load64(r.payload.data()));
    if (nb.is_valid() && nb > s->base && nb <= r.at) s->base = nb;
  }
}

template <io_policy Io>
result<void> log_core<Io>::recover(recovery_action act, base_metadata& m,
                                   std::vector<std::optional<container_header>>& headers) {
  // Blocks carry the epoch (open count) of the session that wrote them; along
  // the chain it never decreases, so a block left by an earlier session
  // beyond a cut point is not taken for a continuation.
  std::uint32_t E = m.epoch;
  std::uint32_t max_epoch = m.epoch;
  std::uint64_t seq = m.head_seq;
  lsn pos = m.head();
  aligned_buffer win(geo_.block_size, geo_.io_align);
  std::vector<std::byte> body;
  std::vector<std::uint32_t> offsets;
  tail_report rep;

  auto read_at = [&](typename container_set<Io>::slot& s, std::uint64_t off, std::size_t n) -> result<void> {
    if (auto ec = s.dev->read(off, win.span().first(n))) return failure(ec, position::at_offset(off), s.file);
    return {};
  };
  // Is there a later block of this session that says `seq` was durable?
  auto proves_durable = [&](typename container_set<Io>::slot& s, std::uint64_t from) -> result<bool> {
    for (std::uint64_t off = from; off + geo_.io_align <= geo_.container_size;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(geo_.block_size, geo_.container_size - off));
      KTM_TRY(read_at(s, off, n));
      for (std::size_t i = 0; i + geo_.io_align <= n; i += geo_.io_align) {
        auto h = parse_block_header(win.data() + i, geo_);
        if (h && h->epoch >= E && h->seq > seq && h->durable_seq >= seq) return true;
      }
      off += n;
    }
    return false;
  };

  for (;;) {
    if (!geo_.block_fits_at(pos.block_offset())) {
      const std::uint32_t L = pos.container() + 1;
      std::size_t found = headers.size();
      for (std::size_t i = 0; i < headers.size(); ++i) {
        auto& h = headers[i];
        if (h && h->logical_id == L && h->first_seq == seq && h->epoch >= E &&
            cs_.slots()[i].logical == format::no_logical)
          found = i;
      }
      if (found == headers.size()) break;  // the writer never moved on: clean end
      cs_.slots()[found].logical = L;
      pos = lsn(L, geo_.first_block_units(), 0);
    }
    auto* slot = cs_.by_logical(pos.container());
    if (!slot) return failure(errc::corrupt_base_file, position::at_lsn(pos.raw()), base_file_name(name_));
    const std::uint64_t off = pos.block_byte_offset();
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(geo_.block_size, geo_.container_size - off));
    KTM_TRY(read_at(*slot, off, n));
    auto h = parse_block_header(win.data(), geo_);
    const bool ours = h && h->seq == seq && h->epoch >= E;
    errc damage{};
    std::uint64_t dropped = geo_.io_align;
    if (ours && h->container == pos.container() && h->offset == pos.block_offset()) {
      damage = check_block(win.data(), *h, body, offsets);
      if (damage == errc{}) {
        for (std::uint32_t k = 0; k < h->count; ++k) apply_record(decode_record(body, offsets[k], *h, k));
        pos = lsn(pos.container(), pos.block_offset() + h->sectors, 0);
        ++seq;
        ++rep.blocks_recovered;
        E = h->epoch;
        max_epoch = std::max(max_epoch, E);
        continue;
      }
      dropped = std::uint64_t{h->sectors} * 512;
    } else if (ours) {
      damage = errc::corrupt_record;  // this session's next block, at the wrong place
    } else {
      std::size_t last = 0;
      bool torn = false;
      // a later session's torn block: epochs E .. E + 8
      for (std::size_t i = 0; i < n / 512; ++i)
        for (std::uint32_t e = E; e <= E + 8; ++e)
          if (trailer_matches(win.data(), i, seq, e)) torn = true, last = i;
      if (!torn) break;  // clean end
      damage = errc::torn_write;
      dropped = (last + 1) * 512;
    }
    rep.damaged = true;
    rep.reason = damage;
    rep.file = slot->file;
    rep.offset = off;
    rep.at = pos;
    rep.bytes_dropped = (dropped + geo_.io_align - 1) / geo_.io_align * geo_.io_align;
    if (act == recovery_action::fail) return failure(damage, position::at_offset(off), slot->file);
    if (act == recovery_action::tolerate_tail) {
      auto pr = proves_durable(*slot, off + geo_.io_align);
      if (!pr) return std::move(pr).error();
      bool proof = *pr;
      for (std::size_t i = 0; !proof && i < headers.size(); ++i) {
        auto& ch = headers[i];
        if (ch && ch->epoch >= E && ch->logical_id != format::no_logical && ch->logical_id > pos.container() &&
            cs_.slots()[i].logical == format::no_logical) {
          auto p2 = proves_durable(cs_.slots()[i], geo_.first_block_units() * 512ull);
          if (!p2) return std::move(p2).error();
          proof = *p2;
        }
      }
      if (proof) return failure(damage, position::at_offset(off), slot->file);
    }
    break;  // cut here
  }
  next_pos_ = durable_lsn_ = written_lsn_ = pos;
  next_seq_ = seq;
  sealed_seq_ = durable_seq_ = seq - 1;
  // records at or beyond the end are gone with it: keep the stream table consistent
  for (auto& s : streams_) {
    if (s->restart >= pos) s->restart = lsn::null();
    if (s->last >= pos) s->last = lsn::null();
  }
  report_ = rep;
  m.epoch = max_epoch;
  return {};
}

}  // namespace ktm::log::detail
