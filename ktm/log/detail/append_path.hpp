// ktm/log/detail/append_path.hpp: placing records: opening blocks (and the
// next container), append, reservations and restart areas.
// Part of log_core's write path; included by log_core.hpp only.
#pragma once

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

// Payloads of at least this many bytes are copied into the open block after
// append releases the log's mutex (a 64 KiB copy held it for microseconds
// while the writer thread waited to hand back a buffer); smaller ones are
// copied under it, where two more atomic operations would cost more.
inline constexpr std::size_t unlocked_copy_min = 4096;

template <io_policy Io>
typename log_core<Io>::step log_core<Io>::open_block_locked(std::unique_lock<std::mutex>& lk, result<void>& err) {
  assert(open_fills_.load(std::memory_order_relaxed) == 0 && "a copy outlived the block it was placed in");
  if (free_bufs_.empty()) {
    if (io_busy_) {
      cv_.wait(lk);
      return step::again;
    }
    err = run_io_locked(lk, false, false, true);
    return step::again;
  }
  lsn pos = next_pos_;
  if (!geo_.block_fits_at(pos.block_offset())) {
    const std::uint32_t L = pos.container() + 1;
    if (L > lsn::max_container) {
      err = failure(errc::log_full, position::at_lsn(pos.raw()), name_);
      return step::done;
    }
    const std::uint32_t tl = std::min(persisted_tail_, tail_locked().container());
    typename container_set<Io>::slot* pick = nullptr;
    for (auto& s : cs_.slots())
      if (slot_free(s, tl) && (!pick || s.logical == format::no_logical ||
                               (pick->logical != format::no_logical && s.logical < pick->logical)))
        pick = &s;
    if (!pick) {
      if (tail_locked().container() > persisted_tail_) {
        err = persist_locked(lk);
        return step::again;
      }
      return step::need_space;
    }
    pick->logical = L;
    pending_write w;
    w.dev = pick->dev;
    w.file = pick->file;
    w.header = aligned_buffer(geo_.io_align, geo_.io_align);
    encode_container_header({geo_.log_id, pick->physical, L, next_seq_, geo_.container_size, epoch_},
                            w.header.span());
    w.data = w.header.data();
    w.len = geo_.io_align;
    w.end = lsn::null();
    pending_.push_back(std::move(w));
    pos = next_pos_ = lsn(L, geo_.first_block_units(), 0);
  }
  open_buf_ = free_bufs_.back();
  free_bufs_.pop_back();
  open_pos_ = pos;
  open_seq_ = next_seq_++;
  builder_.reset(bufs_[static_cast<std::size_t>(open_buf_)].data(), geo_, open_seq_, epoch_);
  open_ = true;
  return step::done;
}

template <io_policy Io>
result<lsn> log_core<Io>::append(writer_state& w, std::span<const std::byte> payload, std::uint8_t type,
                                 append_flags flags, lsn undo_next) {
  if (payload.size() > geo_.max_payload()) return errc::record_too_large;
  if (!undo_next.is_null() && !undo_next.is_valid()) return errc::invalid_argument;
  const bool use_res = has_flag(flags, append_flags::use_reservation);
  const auto len = static_cast<std::int64_t>(payload.size());
  const std::int64_t cost = record_room(geo_, len);
  bool asked = false;
  std::unique_lock lk(mu_);
  for (;;) {
    KTM_TRY(writable());
    stream_state& s = *w.s;
    if (s.deleted) return failure(errc::stream_not_found, {}, s.name);
    // an undo-next link names an earlier record of the stream (one into
    // another stream is not caught here: a read along it ends with
    // corrupt_record)
    if (!undo_next.is_null() && !(undo_next <= s.last))
      return failure(errc::invalid_argument, position::at_lsn(undo_next.raw()), s.name);
    if (use_res && (w.reserved_records < 1 || w.reserved_bytes < len))
      return failure(errc::reservation_exceeded, {}, s.name);
    step st = step::done;
    if (!use_res && total_reserved_ > 0 && available_locked() - cost < total_reserved_) st = step::need_space;
    while (st == step::done) {
      if (!open_) {
        result<void> err;
        st = open_block_locked(lk, err);
        if (!err) return std::move(err).error();
        if (st != step::done) break;
      }
      if (builder_.fits(payload.size())) break;
      seal_locked();
      if (write_now_locked()) {
        result<void> err = run_io_locked(lk, false, false, true);
        if (!err) return std::move(err).error();
        st = step::again;
        break;
      }
      wake_writer_locked();
    }
    if (st == step::again) continue;
    if (st == step::need_space) {
      lk.unlock();
      bool retry = false;
      if (can_grow()) retry = static_cast<bool>(add_container());
      if (!retry && opt_.on_full && !asked) {
        asked = true;
        retry = opt_.on_full(full_info());
      }
      lk.lock();
      if (retry) continue;
      // closed or failed meanwhile (so the growth was refused): say that,
      // not log_full
      KTM_TRY(writable());
      auto fi = full_info_locked(static_cast<std::uint64_t>(cost));
      return failure(asked ? errc::tail_pinned : errc::log_full, position::at_lsn(fi.pinning_lsn.raw()),
                     fi.pinning_stream);
    }
    // place the record; a large one is copied in after mu_ is released, so
    // that the writer thread and other appenders need not wait for the copy
    // (the block is not sealed until the copy returns: seal_locked)
    const lsn prev = s.last;
    const bool copy_unlocked = payload.size() >= unlocked_copy_min;
    const block_builder::placement p = builder_.place(payload.size());
    if (copy_unlocked)
      open_fills_.fetch_add(1, std::memory_order_relaxed);
    else
      block_builder::fill(p, s.id, type, prev, undo_next, payload);
    const lsn l(open_pos_.container(), open_pos_.block_offset(), p.record_no);
    if (s.last < s.base) s.base = l;  // nothing of the stream lives in [base, l)
    s.last = l;
    if (use_res) {
      w.reserved_records -= 1;
      w.reserved_bytes -= len;
      // what is left still backs the rest (see reservation_room); the last
      // record hands back the remainder
      const std::int64_t back = w.reserved_records == 0 ? w.reserved_room : std::min(cost, w.reserved_room);
      w.reserved_room -= back;
      total_reserved_ -= back;
    }
    if (copy_unlocked) {
      const std::uint32_t id = s.id;
      lk.unlock();
      block_builder::fill(p, id, type, prev, undo_next, payload);
      if (open_fills_.fetch_sub(1, std::memory_order_release) == 1) open_fills_.notify_all();
      if (!has_flag(flags, append_flags::force)) return l;
      lk.lock();
      // a flush while the lock was released (another forcer, or close) may
      // have made it durable already: that is a success, even if the log
      // was closed meanwhile
      if (l < durable_lsn_) return l;
    }
    if (has_flag(flags, append_flags::force)) {
      auto r = flush_to_locked(lk, l, true);
      if (!r) return std::move(r).error();
    }
    return l;
  }
}

template <io_policy Io>
result<void> log_core<Io>::reserve(writer_state& w, std::int64_t records, std::int64_t bytes) {
  std::lock_guard lk(mu_);
  KTM_TRY(writable());
  if ((records < 0 && bytes > 0) || (records > 0 && bytes < 0)) return errc::invalid_argument;
  if (records < 0 || bytes < 0) {
    if (-records > w.reserved_records || -bytes > w.reserved_bytes) return errc::invalid_argument;
  }
  const std::int64_t room = reservation_room(geo_, w.reserved_records + records, w.reserved_bytes + bytes);
  const std::int64_t delta = room - w.reserved_room;
  if (delta > 0 && available_locked() - total_reserved_ < delta) {
    auto fi = full_info_locked(static_cast<std::uint64_t>(delta));
    return failure(errc::log_full, position::at_lsn(fi.pinning_lsn.raw()), fi.pinning_stream);
  }
  w.reserved_records += records;
  w.reserved_bytes += bytes;
  w.reserved_room = room;
  total_reserved_ += delta;
  return {};
}

template <io_policy Io>
result<lsn> log_core<Io>::write_restart(writer_state& w, std::span<const std::byte> data,
                                        std::optional<lsn> new_base) {
  lsn prev;
  {
    std::lock_guard lk(mu_);
    KTM_TRY(writable());
    if (new_base && (!new_base->is_valid() || *new_base < w.s->base || *new_base > end_lsn_locked()))
      return failure(errc::invalid_argument, position::at_lsn(new_base->raw()), w.s->name);
    prev = w.s->restart;
  }
  std::vector<std::byte> payload(8 + data.size());
  format::store<std::uint64_t>(payload.data(), new_base ? new_base->raw() : 0);
  if (!data.empty()) std::memcpy(payload.data() + 8, data.data(), data.size());
  auto l = append(w, payload, static_cast<std::uint8_t>(record_type::restart), append_flags::force, prev);
  if (!l) return l;
  std::lock_guard lk(mu_);
  if (*l > w.s->restart) w.s->restart = *l;
  if (new_base && *new_base > w.s->base) w.s->base = *new_base;
  return l;
}

}  // namespace ktm::log::detail
