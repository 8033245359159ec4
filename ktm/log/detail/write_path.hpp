// ktm/log/detail/write_path.hpp: log_core's write path, flush (group
// commit), base-file persistence, containers and block reads. Included by
// log_core.hpp only.
#pragma once

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

template <io_policy Io>
result<void> log_core<Io>::init_buffers() {
  if (opt_.write_buffers < 2) return errc::invalid_argument;
  bufs_.clear();
  free_bufs_.clear();
  for (std::uint32_t i = 0; i < opt_.write_buffers; ++i) {
    bufs_.emplace_back(geo_.block_size, geo_.io_align);
    free_bufs_.push_back(static_cast<int>(i));
  }
  return {};
}

template <io_policy Io>
result<std::shared_ptr<log_core<Io>>> log_core<Io>::create(Io& io, std::string name, const log_options& o) {
  geometry g{o.block_size, o.container_size, o.io_align, 0};
  if (!geometry_ok(g) || o.write_buffers < 2 || name.empty()) return errc::invalid_argument;
  if (o.containers < 2) return errc::too_few_containers;
  if (o.containers > format::max_containers || o.max_containers > format::max_containers)
    return errc::too_many_containers;
  const std::string base = base_file_name(name);
  if (io.exists(base)) return failure(errc::already_exists, {}, base);
  std::random_device rd;
  g.log_id = (std::uint64_t{rd()} << 32) ^ rd() ^
             static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  if (g.log_id == 0) g.log_id = 1;

  auto c = std::make_shared<log_core>(io, name, o);
  c->opt_.persist_on_close = false;  // until fully created
  c->geo_ = g;
  c->dedicated_ = o.dedicated;
  auto bd = io.open(base, open_mode::create_new);
  if (!bd) return std::move(bd).error();
  c->base_dev_ = std::make_shared<device>(std::move(*bd));
  if (auto ec = c->base_dev_->grow(2 * format::base_copy_size)) return failure(ec, {}, base);
  c->base_scratch_ = aligned_buffer(format::base_copy_size, g.io_align);
  c->cs_ = container_set<Io>(&io, name, g);
  for (std::uint32_t i = 0; i < o.containers; ++i) KTM_TRY(c->cs_.create(i, c->base_scratch_.span()));
  c->next_physical_ = o.containers;
  // container 0 holds logical 0 from the start
  auto& s0 = c->cs_.slots()[0];
  s0.logical = 0;
  encode_container_header({g.log_id, 0, 0, 1, g.container_size, 1}, c->base_scratch_.span().first(g.io_align));
  if (auto ec = s0.dev->write(0, c->base_scratch_.span().first(g.io_align))) return failure(ec, {}, s0.file);
  if (auto ec = s0.dev->flush()) return failure(ec, {}, s0.file);
  c->next_pos_ = c->durable_lsn_ = c->written_lsn_ = lsn(0, g.first_block_units(), 0);
  if (o.dedicated) {
    auto s = std::make_shared<stream_state>();
    s->id = c->next_stream_id_++;
    s->name = "default";
    s->base = c->next_pos_;
    c->streams_.push_back(s);
  }
  KTM_TRY(c->init_buffers());
  {
    std::lock_guard lk(c->mu_);
    KTM_TRY(c->write_base_locked());
  }
  c->opt_.persist_on_close = o.persist_on_close;
  return c;
}

template <io_policy Io>
result<void> log_core<Io>::write_base_locked() {
  base_metadata m;
  m.generation = generation_ + 1;
  m.geo = geo_;
  m.dedicated = dedicated_;
  m.next_stream_id = next_stream_id_;
  m.head_container = next_pos_.container();
  m.head_offset = next_pos_.block_offset();
  m.head_seq = next_seq_;
  m.epoch = epoch_;
  m.next_physical = next_physical_;
  m.max_containers = opt_.max_containers;
  for (auto& s : streams_) m.streams.push_back({s->id, s->name, s->base, s->last, s->restart});
  for (auto& s : cs_.slots()) m.containers.push_back({s.physical, s.logical});
  auto r = store_base(*base_dev_, m, base_scratch_.span(), base_file_name(name_));
  if (!r) return fail_stop(std::move(r).error());
  generation_ = m.generation;
  persisted_tail_ = tail_locked().container();
  return {};
}

template <io_policy Io>
void log_core<Io>::seal_locked() {
  const std::size_t len =
      builder_.seal(geo_, open_seq_, durable_seq_, open_pos_.container(), open_pos_.block_offset(), epoch_);
  auto* slot = cs_.by_logical(open_pos_.container());
  const lsn end(open_pos_.container(), open_pos_.block_offset() + static_cast<std::uint32_t>(len / 512), 0);
  pending_write w;
  w.dev = slot->dev;
  w.file = slot->file;
  w.offset = open_pos_.block_byte_offset();
  w.data = bufs_[static_cast<std::size_t>(open_buf_)].data();
  w.len = len;
  w.buf = open_buf_;
  w.end = end;
  pending_.push_back(std::move(w));
  sealed_seq_ = open_seq_;
  next_pos_ = end;
  open_ = false;
}

// Takes every sealed block (sealing the open one first if `seal`), writes
// them and, if `durable`, flushes every container written since the last
// flush. With `unlock` the mutex is released during the I/O, and a durable
// run that succeeds returns with it released (the waiters of its generation
// are woken after the mutex is dropped, so neither they nor the appenders
// wait on it for the wake-ups). A failure returns with the mutex held.
template <io_policy Io>
result<void> log_core<Io>::run_io_locked(std::unique_lock<std::mutex>& lk, bool seal, bool durable, bool unlock,
                                         std::size_t max_items) {
  io_busy_ = true;
  inflight_durable_ = durable;
  if (seal && open_ && builder_.count() > 0) seal_locked();
  std::vector<pending_write> items;
  if (pending_.size() <= max_items) {
    items = std::move(pending_);
    pending_.clear();
  } else {  // the oldest max_items (write-behind, one block at a time)
    const auto n = static_cast<std::ptrdiff_t>(max_items);
    items.assign(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.begin() + n));
    pending_.erase(pending_.begin(), pending_.begin() + n);
  }
  const std::uint64_t grabbed_seq = sealed_seq_;
  std::uint64_t gen = 0;
  if (durable) {
    gen = ++flush_gen_;
    next_leader_ = false;  // whoever was to lead this generation need not
  }
  inflight_end_ = written_lsn_;
  for (auto& it : items)
    if (it.end > inflight_end_) inflight_end_ = it.end;
  // every container written since the last flush (a write-only run keeps
  // them all, not just its own, for the next flush)
  std::vector<std::shared_ptr<device>> to_flush = std::move(dirty_devs_);
  dirty_devs_.clear();
  for (auto& it : items)
    if (std::find(to_flush.begin(), to_flush.end(), it.dev) == to_flush.end()) to_flush.push_back(it.dev);
  if (unlock) lk.unlock();
  std::optional<failure> err;
  for (auto& it : items) {
    if (auto ec = it.dev->write(it.offset, std::span<const std::byte>(it.data, it.len))) {
      err = failure(ec, position::at_offset(it.offset), it.file);
      break;
    }
  }
  std::uint64_t flushes = 0;
  if (!err && durable) {
    for (auto& d : to_flush) {
      if (auto ec = d->flush()) {
        err = failure(ec, {}, name_);
        break;
      }
      ++flushes;
    }
  }
  if (unlock) lk.lock();
  io_busy_ = false;
  inflight_durable_ = false;
  if (err) return fail_stop(*err);
  device_flushes_ += flushes;
  for (auto& it : items) {
    if (it.buf >= 0) free_bufs_.push_back(it.buf);
    if (it.end > written_lsn_) written_lsn_ = it.end;
  }
  if (durable) {
    durable_lsn_ = written_lsn_;
    durable_seq_ = std::max(durable_seq_, grabbed_seq);
  } else {
    dirty_devs_ = std::move(to_flush);
  }
  cv_.notify_all();
  if (!pending_.empty() && writer_.joinable()) writer_cv_.notify_one();
  if (durable) {
    const std::uint64_t d = durable_lsn_.raw();
    if (unlock) lk.unlock();
    gate_.complete(gen, d);
  }
  return {};
}

// Group commit. A forcer whose record is durable returns. If no I/O is in
// flight it leads: seals the open block (so the flush takes every record
// appended so far), writes the sealed blocks, flushes once, wakes the
// waiters of its generation. If a flush (generation g) is in flight, a
// forcer whose record it covers sleeps until g completes; one whose record
// came later belongs to g + 1: the first of those sleeps on g too and then
// leads g + 1 (or finds it started), the others sleep until g + 1 completes.
// So the records that arrive during a flush all go into the next one, each
// forcer is woken once, and each batch costs one device flush. A durable
// call may return with `lk` released (a woken forcer does not retake it).
template <io_policy Io>
result<lsn> log_core<Io>::flush_to_locked(std::unique_lock<std::mutex>& lk, lsn target, bool durable) {
  for (;;) {
    KTM_TRY(usable());
    const lsn bound = durable ? durable_lsn_ : written_lsn_;
    // covered already, or nothing exists beyond what is covered
    if (target < bound || bound >= end_lsn_locked()) return bound;
    if (!io_busy_) {
      if (!durable) {
        KTM_TRY(run_io_locked(lk, open_ && target >= open_pos_, false, true));
        continue;
      }
      // leader: one write + flush covers every record appended so far
      KTM_TRY(run_io_locked(lk, true, true, true));  // returns unlocked
      const lsn d(gate_.durable());
      if (target < d) return d;
      lk.lock();
      continue;
    }
    if (!durable || !inflight_durable_) {  // a write-only I/O in flight: wait for it
      cv_.wait(lk);
      continue;
    }
    std::uint64_t g = flush_gen_;
    bool lead = false;
    if (!(target < inflight_end_)) {  // not in the flush in flight: in the next one
      if (!next_leader_) {
        next_leader_ = lead = true;
      } else {
        ++g;
      }
    }
    lk.unlock();
    gate_.wait(g);
    if (!lead && !gate_.failed()) {
      const lsn d(gate_.durable());
      if (target < d) return d;
    }
    lk.lock();
  }
}

// Write-behind. For I/O policies that declare `static constexpr bool
// write_behind = true` (posix_storage: a write is a copy into the page
// cache, as costly as encoding the block), a block sealed because it is
// full is written by a writer thread of the log, one block at a time, while
// appenders fill the next buffer; an appender waits only when every buffer
// is sealed and unwritten. The thread starts with the first full block, is
// one more I/O owner under the io_busy_ protocol (a forcer finding it busy
// waits for its one block, then leads), and stops when the log_core is
// destroyed. A failed write makes the log fail-stop like any other. Other
// policies (memory, fault injection: tests, fuzzing) keep writing in the
// caller's thread, deterministically.
template <class Io>
inline constexpr bool write_behind_v = requires { requires Io::write_behind; };

template <io_policy Io>
void log_core<Io>::wake_writer_locked() {
  if constexpr (write_behind_v<Io>) {
    if (writer_.joinable()) {
      if (!io_busy_) writer_cv_.notify_one();
      return;
    }
    if (writer_stop_ || failed_ || closed_) return;
    try {
      writer_ = std::thread([this] { writer_loop(); });
    } catch (...) {
      writer_stop_ = true;  // no thread: write in the callers' threads as before
    }
  }
}

template <io_policy Io>
void log_core<Io>::writer_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    writer_cv_.wait(lk, [&] { return writer_stop_ || (!failed_ && !io_busy_ && !pending_.empty()); });
    if (writer_stop_) return;
    (void)run_io_locked(lk, false, false, true, 1);  // a failure is fail-stop; callers see it
  }
}

template <io_policy Io>
void log_core<Io>::stop_writer() {
  {
    std::lock_guard lk(mu_);
    writer_stop_ = true;
  }
  writer_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
}

template <io_policy Io>
typename log_core<Io>::step log_core<Io>::open_block_locked(std::unique_lock<std::mutex>& lk, result<void>& err) {
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
  builder_.reset(bufs_[static_cast<std::size_t>(open_buf_)].data(), geo_);
  open_pos_ = pos;
  open_seq_ = next_seq_++;
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
  const std::int64_t cost = len + reservation_overhead(geo_);
  bool asked = false;
  std::unique_lock lk(mu_);
  for (;;) {
    KTM_TRY(writable());
    stream_state& s = *w.s;
    if (s.deleted) return failure(errc::stream_not_found, {}, s.name);
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
      auto fi = full_info_locked(static_cast<std::uint64_t>(cost));
      return failure(asked ? errc::tail_pinned : errc::log_full, position::at_lsn(fi.pinning_lsn.raw()),
                     fi.pinning_stream);
    }
    // place the record
    const std::uint32_t k = builder_.add(s.id, type, s.last, undo_next, payload);
    const lsn l(open_pos_.container(), open_pos_.block_offset(), k);
    if (s.last < s.base) s.base = l;  // nothing of the stream lives in [base, l)
    s.last = l;
    if (use_res) {
      w.reserved_records -= 1;
      w.reserved_bytes -= len;
      total_reserved_ -= cost;
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
  const std::int64_t delta = bytes + records * reservation_overhead(geo_);
  if (delta > 0 && available_locked() - total_reserved_ < delta) {
    auto fi = full_info_locked(static_cast<std::uint64_t>(delta));
    return failure(errc::log_full, position::at_lsn(fi.pinning_lsn.raw()), fi.pinning_stream);
  }
  w.reserved_records += records;
  w.reserved_bytes += bytes;
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

template <io_policy Io>
result<void> log_core<Io>::persist_locked(std::unique_lock<std::mutex>& lk) {
  while (io_busy_) cv_.wait(lk);
  if (failed_) return usable();
  if (read_only_) return writable();  // never writes the base file
  KTM_TRY(run_io_locked(lk, true, true, false));
  return write_base_locked();
}

template <io_policy Io>
result<void> log_core<Io>::add_container_locked(std::unique_lock<std::mutex>& lk) {
  KTM_TRY(writable());
  if (cs_.slots().size() >= std::min<std::uint32_t>(opt_.max_containers, format::max_containers))
    return errc::too_many_containers;
  while (io_busy_) cv_.wait(lk);
  auto r = cs_.create(next_physical_, base_scratch_.span());
  if (!r) {
    (void)io_->remove(container_file_name(name_, next_physical_));
    return r;
  }
  ++next_physical_;
  return persist_locked(lk);
}

template <io_policy Io>
result<void> log_core<Io>::remove_container(std::uint32_t physical) {
  std::unique_lock lk(mu_);
  KTM_TRY(writable());
  auto* s = cs_.by_physical(physical);
  if (!s) return errc::invalid_argument;
  if (cs_.slots().size() <= 2) return errc::too_few_containers;
  const std::uint32_t tl = std::min(persisted_tail_, tail_locked().container());
  if (!slot_free(*s, tl) || s->logical == next_pos_.container())
    return failure(errc::container_in_use, {}, s->file);
  std::string file = s->file;
  cs_.erase_physical(physical);
  KTM_TRY(persist_locked(lk));
  if (auto ec = io_->remove(file)) return failure(ec, {}, file);
  return {};
}

template <io_policy Io>
result<void> log_core<Io>::fetch_block(lsn start, block_view& bv) {
  if (bv.start == start) return {};
  bv.start = lsn::invalid();
  std::shared_ptr<device> dev;
  std::string file;
  {
    std::unique_lock lk(mu_);
    KTM_TRY(usable());
    if (start >= written_lsn_) {
      if (start >= end_lsn_locked()) return failure(errc::invalid_lsn, position::at_lsn(start.raw()), name_);
      auto r = flush_to_locked(lk, start, false);
      if (!r) return std::move(r).error();
    }
    auto* s = cs_.by_logical(start.container());
    if (!s) return failure(errc::invalid_lsn, position::at_lsn(start.raw()), name_);
    dev = s->dev;
    file = s->file;
  }
  const std::uint64_t off = start.block_byte_offset();
  if (start.block_offset() < geo_.first_block_units() || off + geo_.io_align > geo_.container_size ||
      off % geo_.io_align != 0)
    return failure(errc::invalid_lsn, position::at_lsn(start.raw()), file);
  if (bv.raw.size() < geo_.block_size) bv.raw = aligned_buffer(geo_.block_size, geo_.io_align);
  if (auto ec = dev->read(off, bv.raw.span().first(geo_.io_align)))
    return failure(ec, position::at_lsn(start.raw()), file);
  auto b = parse_block_header(bv.raw.data(), geo_);
  if (!b || b->container != start.container() || b->offset != start.block_offset())
    return failure(errc::corrupt_record, position::at_lsn(start.raw()), file);
  const std::size_t bytes = std::size_t{b->sectors} * 512;
  if (bytes > geo_.io_align)
    if (auto ec = dev->read(off + geo_.io_align, bv.raw.span().subspan(geo_.io_align, bytes - geo_.io_align)))
      return failure(ec, position::at_lsn(start.raw()), file);
  if (errc e = check_block(bv.raw.data(), *b, bv.body, bv.offsets); e != errc{})
    return failure(e, position::at_lsn(start.raw()), file);
  bv.info = *b;
  bv.start = start;
  return {};
}

}  // namespace ktm::log::detail
