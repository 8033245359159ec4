// ktm/log/detail/io_run.hpp: sealing the open block and running one batch
// of I/O (the queued blocks' writes, then one flush per container written
// since the last flush). One thread at a time owns the I/O (io_busy_).
// Part of log_core's write path; included by log_core.hpp only.
#pragma once

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

template <io_policy Io>
void log_core<Io>::seal_locked() {
  // the block's bytes are complete once its unlocked copies have returned
  for (std::uint32_t n; (n = open_fills_.load(std::memory_order_acquire)) != 0;)
    open_fills_.wait(n, std::memory_order_acquire);
  const std::size_t len =
      builder_.seal(geo_, durable_seq_, open_pos_.container(), open_pos_.block_offset());
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
  device_flushes_ += flushes;  // those that completed, even if a later one failed
  if (err) return fail_stop(*err);
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

}  // namespace ktm::log::detail
