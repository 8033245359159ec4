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

#include "ktm/io/directory_sync.hpp"
#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

template <io_policy Io>
result<std::shared_ptr<log_core<Io>>> log_core<Io>::open(Io& io, std::string name, const log_options& o,
                                                         recovery_action act) {
  if (name.empty() || o.write_buffers < 2) return errc::invalid_argument;
  if (o.max_containers > format::max_containers) return errc::too_many_containers;
  const std::string base = base_file_name(name);
  // leftovers of an unfinished create (see log_create.hpp) are no log
  if (!io.exists(base) && io.exists(staged_base_file_name(name))) return failure(errc::incomplete_log, {}, base);
  auto bd = io.open(base, open_mode::open_existing);
  if (!bd) return std::move(bd).error();
  if (bd->size() == 0) return failure(errc::incomplete_log, {}, base);
  auto c = std::make_shared<log_core>(io, name, o);
  c->opt_.persist_on_close = false;
  c->base_dev_ = std::make_shared<device>(std::move(*bd));
  auto mr = load_base(*c->base_dev_, base);
  if (!mr && mr.code() == make_error_code(errc::corrupt_base_file) && unfinished_base_file(io, base))
    return failure(errc::incomplete_log, {}, base);
  if (!mr) return std::move(mr).error();
  base_metadata& m = *mr;
  c->geo_ = m.geo;
  c->dedicated_ = m.dedicated;
  c->generation_ = m.generation;
  c->epoch_ = m.epoch;
  c->next_physical_ = m.next_physical;
  c->next_stream_id_ = m.next_stream_id;
  // room for the largest base copy this session can write: every stream,
  // every container it may grow to (and at least one io_align unit)
  {
    const std::size_t most = format::bf::header_size + format::max_streams * format::se::size +
                             std::max<std::size_t>({m.containers.size(), o.max_containers, 2}) * format::ce::size;
    const std::size_t a = m.geo.io_align;
    c->base_scratch_ = aligned_buffer(std::min(format::base_copy_size, std::max(a, (most + a - 1) / a * a)), a);
  }
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
  std::unique_lock lk(c->mu_);
  KTM_TRY(c->recover(act, m, headers));
  if (act == recovery_action::fail) {
    // absolute_consistency: damage anywhere is an error, also before the
    // base file's head, where the scan above does not look. Every block a
    // stream still needs, from the tail to the end, is read and checked as
    // a reader checks it (header, trailers, every record's CRC); nothing is
    // written before this passes. (No one else holds c yet.)
    lsn b = c->tail_locked().block_start();
    const lsn end = c->end_lsn_locked();
    lk.unlock();
    block_view bv;
    bv.read_ahead = true;
    while (b < end) {
      KTM_TRY(c->fetch_block(b, bv));
      b = c->next_block(b, bv.info.sectors);
    }
    lk.lock();
  }
  // This session's epoch (one more than any seen) goes into the base copy
  // written below and into every block it seals, so it must itself be valid
  // (below max_epoch): the next open rejects a copy naming a larger one and
  // does not take such a block for part of the chain. When the largest epoch
  // seen is already max_epoch - 1 (valid, but no real log gets through 2^30
  // opens: a damaged or forged base file or block), no epoch is left. The
  // session is then read-only: it recovers and reads as usual but writes
  // nothing, not even the base file. Every write is refused (see writable()),
  // so it acknowledges nothing that a later open could not return, and the
  // disk stays as it was, so every later open sees the same log.
  if (std::max(m.epoch, m.epoch_hint) >= max_epoch - 1) {
    c->read_only_ = true;
  } else {
    c->epoch_ = std::max(m.epoch, m.epoch_hint) + 1;
    // Containers the older base copy names and this one dropped: a
    // remove_container that crashed after its base-file write and before
    // deleting the file left them (container_ops.hpp). Deleted before the
    // base write below overwrites the older copy.
    for (std::uint32_t p : m.dropped_physical)
      if (!c->cs_.by_physical(p) && p < c->next_physical_) c->orphans_.push_back(container_file_name(name, p));
    c->report_.orphans_removed = c->remove_orphans_locked();
    KTM_TRY(c->write_base_locked());
  }
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
  std::uint32_t max_epoch_seen = m.epoch;
  std::uint64_t seq = m.head_seq;
  lsn pos = m.head();
  aligned_buffer win(geo_.block_size, geo_.io_align);
  std::vector<std::byte> body;
  std::vector<std::uint32_t> offsets;
  tail_report rep;
  using slot_t = typename container_set<Io>::slot;

  auto read_at = [&](slot_t& s, std::uint64_t off, std::size_t n) -> result<void> {
    if (auto ec = s.dev->read(off, win.span().first(n))) return failure(ec, position::at_offset(off), s.file);
    return {};
  };
  // A block header of this log, of this epoch chain (epoch in [E, max_epoch)).
  auto chain_header = [&](const std::byte* p) -> std::optional<block_info> {
    auto h = parse_block_header(p, geo_);
    if (h && h->epoch >= E && h->epoch < max_epoch) return h;
    return std::nullopt;
  };
  // Does any block header in `s` (from byte `from` on) satisfy `pred`?
  auto any_block = [&](slot_t& s, std::uint64_t from, auto&& pred) -> result<bool> {
    for (std::uint64_t off = from; off + geo_.io_align <= geo_.container_size;) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(geo_.block_size, geo_.container_size - off));
      KTM_TRY(read_at(s, off, n));
      for (std::size_t i = 0; i + geo_.io_align <= n; i += geo_.io_align)
        if (auto h = chain_header(win.data() + i); h && pred(*h)) return true;
      off += n;
    }
    return false;
  };
  // Is there a later block of this chain that says `seq` was durable? Looks
  // after the damage in its container, then in every container not in use
  // (whatever its header says: a damaged header hides nothing).
  auto proves_durable = [&](slot_t* s, std::uint64_t from) -> result<bool> {
    auto later = [&](const block_info& h) { return h.seq > seq && h.durable_seq >= seq; };
    if (s) {
      auto r = any_block(*s, from, later);
      if (!r || *r) return r;
    }
    for (auto& other : cs_.slots()) {
      if (&other == s || other.logical != format::no_logical) continue;
      auto r = any_block(other, geo_.first_block_units() * 512ull, later);
      if (!r || *r) return r;
    }
    return false;
  };
  // Damage at `at` (block at `off` of `s`, `dropped` bytes): an error, or a
  // cut here (report filled), per the recovery mode.
  auto damaged = [&](errc damage, slot_t& s, std::uint64_t off, lsn at, std::uint64_t dropped,
                     std::uint64_t scan_from) -> result<void> {
    rep.damaged = true;
    rep.reason = damage;
    rep.file = s.file;
    rep.offset = off;
    rep.at = at;
    rep.bytes_dropped = (dropped + geo_.io_align - 1) / geo_.io_align * geo_.io_align;
    if (act == recovery_action::fail) return failure(damage, position::at_offset(off), s.file);
    if (act == recovery_action::tolerate_tail) {
      auto pr = proves_durable(&s, scan_from);
      if (!pr) return std::move(pr).error();
      if (*pr) return failure(damage, position::at_offset(off), s.file);
    }
    return {};
  };

  for (;;) {
    if (!geo_.block_fits_at(pos.block_offset())) {
      // The writer moved on to logical container L: the container whose
      // header says so (L, first block seq, this epoch chain) holds it.
      if (pos.container() >= lsn::max_container) break;  // no L to move to
      const std::uint32_t L = pos.container() + 1;
      std::size_t found = headers.size();
      bool ambiguous = false;
      for (std::size_t i = 0; i < headers.size(); ++i) {
        auto& h = headers[i];
        if (!h || h->logical_id != L || h->first_seq != seq || h->epoch < E || h->epoch >= max_epoch ||
            cs_.slots()[i].logical != format::no_logical)
          continue;
        if (found == headers.size() || h->epoch > headers[found]->epoch) {
          found = i;
          ambiguous = false;
        } else if (h->epoch == headers[found]->epoch) {
          ambiguous = true;  // one session never assigns L twice
        }
      }
      if (found != headers.size() && ambiguous) {
        auto& s = cs_.slots()[found];
        KTM_TRY(damaged(errc::corrupt_container, s, 0, lsn(L, geo_.first_block_units(), 0), geo_.io_align,
                        geo_.first_block_units() * 512ull));
        break;
      }
      if (found == headers.size()) {
        // No header says the writer moved on. It did if a container whose
        // header is damaged holds a block of L in this chain: damage, not
        // an end.
        slot_t* hit = nullptr;
        for (std::size_t i = 0; i < headers.size() && !hit; ++i) {
          auto& s = cs_.slots()[i];
          if (headers[i] || s.logical != format::no_logical) continue;
          auto r = any_block(s, geo_.first_block_units() * 512ull,
                             [&](const block_info& h) { return h.container == L && h.seq >= seq; });
          if (!r) return std::move(r).error();
          if (*r) hit = &s;
        }
        if (hit)
          KTM_TRY(damaged(errc::corrupt_container, *hit, 0, lsn(L, geo_.first_block_units(), 0), geo_.io_align,
                          geo_.first_block_units() * 512ull));
        break;  // the writer never moved on: a clean end (or the cut)
      }
      cs_.slots()[found].logical = L;
      pos = lsn(L, geo_.first_block_units(), 0);
    }
    auto* slot = cs_.by_logical(pos.container());
    if (!slot) return failure(errc::corrupt_base_file, position::at_lsn(pos.raw()), base_file_name(name_));
    const std::uint64_t off = pos.block_byte_offset();
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(geo_.block_size, geo_.container_size - off));
    KTM_TRY(read_at(*slot, off, n));
    auto h = chain_header(win.data());
    const bool ours = h && h->seq == seq;
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
        max_epoch_seen = std::max(max_epoch_seen, E);
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
        for (std::uint64_t e = E; e <= std::uint64_t{E} + 8; ++e)
          if (trailer_matches(win.data(), i, seq, static_cast<std::uint32_t>(e))) torn = true, last = i;
      if (!torn) break;  // clean end
      damage = errc::torn_write;
      dropped = (last + 1) * 512;
    }
    KTM_TRY(damaged(damage, *slot, off, pos, dropped, off + geo_.io_align));
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
  m.epoch = max_epoch_seen;
  return {};
}

}  // namespace ktm::log::detail
