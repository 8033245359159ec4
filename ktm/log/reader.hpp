// ktm/log/reader.hpp: reading a stream as range-v3 views.
//
//   read_forward(from)     records of the stream with LSN >= from, in order
//   read_backward(from)    from, then along previous LSNs
//   read_undo_next(from)   from, then along undo-next LSNs
//
// The views are lazy input ranges with bounded memory, whatever the log's
// size: a forward view holds a read-ahead window of 1 MiB or one
// container, whichever is smaller
// (log_core::read_ahead_bytes; one device read brings in the blocks it
// covers, each then checked once) plus one block's body and record offsets
// (block_size bytes, max_records_per_block entries), and one block buffer
// more only if a block must be read alone (block_fetch.hpp); the chain views
// hold one block buffer and one block's body.
//
// A forward read that goes past its first read_ahead_bytes continues with a
// helper thread (log_options::read_thread, on by default): the helper reads
// and frames the blocks ahead, the caller's thread checks the record CRCs of
// each block before it yields any of its records (the helper checks some
// too when it is ahead), and the records, their order, where the read ends
// and the error that stops it are the same as on one thread
// (forward_pipeline.hpp). The helper adds at most three slots of about
// read_ahead_bytes + block_size of body (with their record offsets) and a
// window and block buffer of its own; it stops when the view ends or is
// destroyed. If no thread can be started, or the calling thread may run on
// one CPU only (its affinity), the read goes on on the caller's thread.
//
// Elements are references to the view's current log_record; it and its
// payload stay valid until the iterator moves on. When iteration ends,
// status() says why: errc::end_of_stream (the stream's last record, or a
// null link, was reached), errc::before_base (the next record is before the
// stream's base), or the error that stopped it (corrupt_record,
// checksum_mismatch, I/O..., with the LSN). Forward reads stop at the
// stream's last LSN as of the view's creation. Every link read from disk
// must point strictly backwards and into the same stream, so a corrupt
// chain cannot loop.
#pragma once

#include <cstdint>
#include <memory>

#include <range/v3/view/facade.hpp>

#include "ktm/log/detail/forward_pipeline.hpp"
#include "ktm/log/detail/log_core.hpp"
#include "ktm/log/record.hpp"

namespace ktm::log {

enum class read_mode : std::uint8_t { forward, backward, undo_next };

namespace detail {

template <class Io>
struct reader_state {
  std::shared_ptr<log_core<Io>> core;
  std::uint32_t stream_id = 0;
  read_mode mode = read_mode::forward;
  lsn base, last;
  typename log_core<Io>::block_view bv;
  log_record cur;
  bool done = false;
  failure stop{errc::end_of_stream};
  lsn next;          // chain modes: next LSN to read; forward: next block start
  std::uint32_t k = 0;  // forward: next record index in the block below
  // forward: the block being read (in bv, in a pipeline slot, or in `alone`)
  const std::byte* fb_body = nullptr;
  const std::uint32_t* fb_offsets = nullptr;
  block_info fb_info;
  // forward: past read_ahead_bytes read on this thread, a helper thread
  // reads and frames the blocks ahead (forward_pipeline.hpp)
  std::uint64_t sync_bytes = 0;
  bool pipe_tried = false;
  std::unique_ptr<forward_pipeline<Io>> pipe;
  typename forward_pipeline<Io>::slot* ps = nullptr;
  std::size_t pb = 0;                          // next block of *ps
  typename log_core<Io>::block_view alone;     // a slot's block re-read alone

  void finish(failure f) {
    done = true;
    stop = std::move(f);
    if (pipe) pipe->cancel();
  }
  void take(const typename log_core<Io>::block_view& v) {
    fb_body = v.body.data();
    fb_offsets = v.offsets.data();
    fb_info = v.info;
  }
  // Moves the forward read to the block after the current one; false once
  // the read has finished (end of stream or a failure).
  bool next_forward_block() {
    if (!pipe) {
      const lsn nb = core->next_block(bv.start, bv.info.sectors);
      if (nb > last) return finish(errc::end_of_stream, nb), false;
      sync_bytes += std::uint64_t{bv.info.sectors} * 512;
      if (sync_bytes >= log_core<Io>::read_ahead_bytes && !pipe_tried) {
        pipe_tried = true;  // decided once per read (helper_can_overlap is a system call)
        if (core->read_thread() && helper_can_overlap()) {
          pipe = std::make_unique<forward_pipeline<Io>>();
          if (pipe->start(core, nb, last)) return next_slot_block();
          pipe.reset();
        }
      }
      if (auto r = core->fetch_block(nb, bv); !r) return finish(std::move(r).error()), false;
      take(bv);
      return true;
    }
    return next_slot_block();
  }
  bool next_slot_block() {
    for (;;) {
      if (ps && pb < ps->blocks.size()) {
        const auto& e = ps->blocks[pb];
        if (pipe->crcs_ok(*ps, pb++)) {
          fb_body = ps->body_of(e);
          fb_offsets = ps->offsets_of(e);
          fb_info = e.info;
          return true;
        }
        // a record CRC failed: read the block alone and report what that
        // finds, as a reader on one thread does
        if (auto r = core->fetch_block(e.start, alone); !r) return finish(std::move(r).error()), false;
        take(alone);
        return true;
      }
      if (ps && ps->stop) return finish(*ps->stop), false;
      ps = &pipe->next_slot();
      pb = 0;
    }
  }
  void finish(errc e, lsn at) { finish(failure(e, position::at_lsn(at.raw()))); }

  void start(lsn from) {
    auto u = core->usable_now();
    if (!u) return finish(u.error());
    if (mode == read_mode::forward) {
      if (from.is_null()) from = base;
      if (!from.is_valid()) return finish(errc::invalid_lsn, from);
      if (from < base) return finish(errc::before_base, from);
      if (last.is_null() || from > last) return finish(errc::end_of_stream, from);
      next = from.block_start();
      k = from.record();
      bv.read_ahead = true;
      if (auto r = core->fetch_block(next, bv); !r) return finish(std::move(r).error());
      take(bv);
    } else {
      if (from.is_null()) from = last;
      next = from;
    }
    advance(true);
  }

  void advance(bool first = false) {
    if (done) return;
    if (mode == read_mode::forward) {
      if (!first) ++k;
      for (;;) {
        if (k < fb_info.count) {
          decode_record_into(cur, fb_body, fb_offsets[k], fb_info, k);  // in place: no copy to stall on
          if (cur.at > last) return finish(errc::end_of_stream, cur.at);
          if (cur.stream_id == stream_id) return;
          ++k;
          continue;
        }
        if (!next_forward_block()) return;
        k = 0;
      }
    }
    const lsn l = first ? next : (mode == read_mode::backward ? cur.previous : cur.undo_next);
    if (!first && !l.is_null() && l >= cur.at) return finish(errc::corrupt_record, cur.at);
    if (l.is_null()) return finish(errc::end_of_stream, l);
    if (!l.is_valid() || (!last.is_null() && l > last) || last.is_null())
      return finish(errc::invalid_lsn, l);
    if (l < base) return finish(errc::before_base, l);
    if (auto r = core->fetch_block(l.block_start(), bv); !r) return finish(std::move(r).error());
    if (l.record() >= bv.info.count) return finish(first ? errc::invalid_lsn : errc::corrupt_record, l);
    log_record r = decode_record(bv.body, bv.offsets[l.record()], bv.info, l.record());
    if (r.stream_id != stream_id) return finish(first ? errc::invalid_lsn : errc::corrupt_record, l);
    cur = r;
  }
};

}  // namespace detail

// A lazy input range of the records of one stream.
template <class Io>
class record_view : public ranges::view_facade<record_view<Io>, ranges::unknown> {
  friend ranges::range_access;
  using state = detail::reader_state<Io>;

 public:
  record_view() = default;
  record_view(std::shared_ptr<detail::log_core<Io>> core, std::uint32_t stream_id, read_mode mode, lsn base,
              lsn last, lsn from)
      : s_(std::make_shared<state>()), from_(from) {
    s_->core = std::move(core);
    s_->stream_id = stream_id;
    s_->mode = mode;
    s_->base = base;
    s_->last = last;
  }

  // Why iteration ended (valid once it has): end_of_stream, before_base,
  // or the failure that stopped it.
  const failure& status() const { return s_->stop; }
  // True if iteration ended at the end of the stream or chain.
  bool ok() const { return s_->stop.code == make_error_code(errc::end_of_stream); }

 private:
  struct cursor {
    using single_pass = std::true_type;
    std::shared_ptr<state> s;
    const log_record& read() const { return s->cur; }
    void next() { s->advance(); }
    bool equal(ranges::default_sentinel_t) const { return !s || s->done; }
  };
  cursor begin_cursor() {
    if (s_ && !started_) {
      started_ = true;
      s_->start(from_);
    }
    return cursor{s_};
  }

  std::shared_ptr<state> s_;
  lsn from_;
  bool started_ = false;
};

}  // namespace ktm::log
