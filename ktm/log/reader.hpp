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
// hold one block buffer and one block's body. Elements are log_record whose
// payload stays valid until the iterator moves on. When iteration ends, status() says why:
// errc::end_of_stream (the stream's last record, or a null link, was
// reached), errc::before_base (the next record is before the stream's base),
// or the error that stopped it (corrupt_record, checksum_mismatch, I/O...,
// with the LSN). Forward reads stop at the stream's last LSN as of the
// view's creation. Every link read from disk must point strictly backwards
// and into the same stream, so a corrupt chain cannot loop.
#pragma once

#include <cstdint>
#include <memory>

#include <range/v3/view/facade.hpp>

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
  std::uint32_t k = 0;  // forward: next record index in bv

  void finish(failure f) {
    done = true;
    stop = std::move(f);
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
        if (k < bv.info.count) {
          log_record r = decode_record(bv.body, bv.offsets[k], bv.info, k);
          if (r.at > last) return finish(errc::end_of_stream, r.at);
          if (r.stream_id == stream_id) {
            cur = r;
            return;
          }
          ++k;
          continue;
        }
        const lsn nb = core->next_block(bv.start, bv.info.sectors);
        if (nb > last) return finish(errc::end_of_stream, nb);
        if (auto r = core->fetch_block(nb, bv); !r) return finish(std::move(r).error());
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
    log_record read() const { return s->cur; }
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
