// ktm/log/detail/block_fetch.hpp: reading and checking one block for the
// readers (a block not yet written is written first).
// Part of log_core's write path; included by log_core.hpp only.
//
// A forward reader (block_view::read_ahead set) reads the log in windows of
// up to read_ahead_bytes: one device read brings in the blocks that follow,
// which are then checked one by one from memory. A window holds only bytes
// below written_lsn_ as of its read (blocks there are never rewritten while
// their container keeps its logical id), of one container, from the device
// that container still maps to when each block is taken. A failed window
// read is reported as the failure of the block wanted (an I/O error is never
// retried away). Any other answer a window cannot give cleanly (a block
// running past it, a header or check that fails) falls back to reading that
// block alone, as a reader without a window does, so the error a corrupt
// block gives (and its position) is the same with or without read-ahead.
#pragma once

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

// Can a block of geometry g start at `start` (past the container header,
// aligned, its first io_align bytes inside the container)?
inline bool block_place_ok(lsn start, const geometry& g) noexcept {
  const std::uint64_t off = start.block_byte_offset();
  return start.block_offset() >= g.first_block_units() && off + g.io_align <= g.container_size &&
         off % g.io_align == 0;
}

template <io_policy Io>
result<void> log_core<Io>::fetch_block(lsn start, block_view& bv) {
  if (bv.start == start) return {};
  bv.start = lsn::invalid();
  if (bv.read_ahead)
    if (auto r = fetch_from_window(start, bv)) return std::move(*r);
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
  if (!block_place_ok(start, geo_)) return failure(errc::invalid_lsn, position::at_lsn(start.raw()), file);
  if (bv.raw.size() < geo_.block_size) bv.raw = aligned_buffer(geo_.block_size, geo_.io_align, false);  // read into only
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

// The block at `start` from bv's window (read anew if it does not hold the
// block), or the failure of that read; nullopt if the window cannot give a
// clean block (the caller then reads the block alone and reports what that
// finds).
template <io_policy Io>
std::optional<result<void>> log_core<Io>::fetch_from_window(lsn start, block_view& bv, frame_target* t) {
  const std::uint64_t off = start.block_byte_offset();
  if (!block_place_ok(start, geo_)) return std::nullopt;
  std::shared_ptr<device> dev;
  std::uint64_t limit = 0;  // bytes of the container below written_lsn_
  {
    std::lock_guard lk(mu_);
    if (!usable() || start >= written_lsn_) return std::nullopt;
    auto* s = cs_.by_logical(start.container());
    if (!s) return std::nullopt;
    if (s->dev != bv.win_dev) {  // the window is not of this device (any more)
      dev = s->dev;
      bv.win_file = s->file;
    }
    limit = written_lsn_.container() == start.container() ? written_lsn_.block_byte_offset() : geo_.container_size;
  }
  auto in_window = [&](std::uint64_t n) {
    return !dev && bv.win_container == start.container() && off >= bv.win_off && off + n <= bv.win_off + bv.win_len;
  };
  // Reads the window from `off` on; false if it would not hold `need` bytes.
  std::error_code ec;
  auto load = [&](std::uint64_t need) {
    std::uint64_t n = std::min<std::uint64_t>(read_ahead_bytes, std::min<std::uint64_t>(limit, geo_.container_size) - off);
    n -= n % geo_.io_align;
    if (n < need) return false;
    // never more than one container: a small log's reader keeps a small window
    if (bv.win.size() < n)
      bv.win = aligned_buffer(std::min<std::uint64_t>(read_ahead_bytes, geo_.container_size), geo_.io_align, false);
    if (dev) bv.win_dev = std::move(dev);
    bv.win_len = 0;
    if ((ec = bv.win_dev->read(off, bv.win.span().first(n)))) return false;
    bv.win_container = start.container();
    bv.win_off = off;
    bv.win_len = n;
    return true;
  };
  auto failed_read = [&]() -> std::optional<result<void>> {
    if (!ec) return std::nullopt;
    return result<void>(failure(ec, position::at_lsn(start.raw()), bv.win_file));
  };
  if (off >= limit) return std::nullopt;
  if (!in_window(geo_.io_align) && !load(geo_.io_align)) return failed_read();
  auto b = parse_block_header(bv.win.data() + (off - bv.win_off), geo_);
  if (!b || b->container != start.container() || b->offset != start.block_offset()) return std::nullopt;
  const std::uint64_t bytes = std::uint64_t{b->sectors} * 512;
  if (!in_window(bytes) && !load(bytes)) return failed_read();
  const std::byte* raw = bv.win.data() + (off - bv.win_off);
  if (t) {  // framed only: the caller checks the CRCs
    const std::size_t offsets0 = t->offsets.size();
    if (t->body.size() < t->used + b->used) t->body.resize(t->used + b->used);  // grown only
    if (frame_block(raw, *b, t->body.data() + t->used, t->offsets, t->end) != errc{}) {
      t->offsets.resize(offsets0);
      return std::nullopt;
    }
    t->used += b->used;
    t->crc_checked = false;
  } else if (check_block(raw, *b, bv.body, bv.offsets) != errc{}) {
    return std::nullopt;
  }
  bv.info = *b;
  bv.start = start;
  return result<void>{};
}

template <io_policy Io>
result<void> log_core<Io>::frame_block_at(lsn start, block_view& bv, frame_target& t) {
  if (bv.start == start) bv.start = lsn::invalid();  // taken before: take it again
  if (auto r = fetch_from_window(start, bv, &t)) return std::move(*r);
  bv.read_ahead = false;  // read alone, as a reader without a window would
  auto r = fetch_block(start, bv);
  bv.read_ahead = true;
  if (!r) return r;
  if (t.body.size() < t.used + bv.info.used) t.body.resize(t.used + bv.info.used);
  std::memcpy(t.body.data() + t.used, bv.body.data(), bv.info.used);
  t.used += bv.info.used;
  t.offsets.insert(t.offsets.end(), bv.offsets.begin(), bv.offsets.end());
  t.end = bv.info.used;
  t.crc_checked = true;
  return {};
}

}  // namespace ktm::log::detail
