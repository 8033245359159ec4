// ktm/log/detail/log_core.hpp: the shared state of an open log and its write
// path. Public handles (log, stream, marshalling_area, readers) hold a
// shared_ptr to one log_core.
//
// Write path. All streams append into one open block (a buffer of the
// log); a full or forced block is sealed and queued. One thread at a time
// owns the I/O (io_busy_): it takes every queued block, writes them and, for
// a flush, flushes every container written since the last flush, then wakes
// the others. A forcer whose LSN is already durable returns at once; one that
// finds a flush in flight waits for it and, if still not covered, leads the
// next one, which seals every record appended meanwhile (group commit).
// A failed write or flush makes the log fail-stop: no acknowledgement is
// given for it and every later call returns errc::log_failed.
//
// Invariants (under mu_):
//   - blocks are sealed in seq order and written at increasing positions;
//   - every record with LSN < durable_lsn_ is on stable storage;
//   - every block starting below written_lsn_ is on the device;
//   - a container is reassigned only when the persisted base file no longer
//     needs it (its logical id is below persisted_tail_).
//   - a copy made without mu_ (a large record's payload, open_fills_ > 0)
//     writes only into the open block's buffer, at the bytes append placed
//     for it under mu_; nothing else writes or reads those bytes until the
//     block is sealed, and sealing waits for open_fills_ == 0. So a block is
//     opened only with open_fills_ == 0.
#pragma once

#include <algorithm>
#include <atomic>
#include <cassert>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/log/base_file.hpp"
#include "ktm/log/block_codec.hpp"
#include "ktm/log/container_set.hpp"
#include "ktm/log/detail/aligned_buffer.hpp"
#include "ktm/log/detail/flush_gate.hpp"
#include "ktm/log/log_options.hpp"
#include "ktm/log/lsn.hpp"
#include "ktm/log/record.hpp"
#include "ktm/log/recovery_mode.hpp"
#include "ktm/result.hpp"

namespace ktm::log::detail {

struct stream_state {
  std::uint32_t id = 0;
  std::string name;
  lsn base, last, restart;
  bool deleted = false;
  bool has_writer = false;
};

struct writer_state {
  std::shared_ptr<stream_state> s;
  std::int64_t reserved_records = 0;
  std::int64_t reserved_bytes = 0;
  std::int64_t reserved_room = 0;  // this writer's part of log_core's total_reserved_
};

// Room accounting for reservations (bytes of the log's room, as
// available_locked counts it). A record of n payload bytes takes at most
// ceil((bh + rh + n) / 504) sectors of 512 bytes plus io_align - 512: placed
// in the open block, the block's sealed size grows by at most its sectors
// (ceil(a + b) <= ceil(a) + ceil(b)) and the rounding to io_align; alone in
// a new block, it takes its sectors rounded up to io_align; a block that
// moves to the next container gives back the old container's negative rest.
// With ceil(x / 504) <= x / 504 + 1 and 512 / 504 = 1 + 1/63,
// record_room(n) = n + ceil(n / 63) + record_fixed_room bounds that from
// above, and it adds up: a reservation of r records and b bytes is backed by
// b + ceil(b / 63) + r * (record_fixed_room + 1), which covers any r records
// of b bytes in all (the + 1 absorbs each record's ceil).
inline std::int64_t record_fixed_room(const geometry& g) {
  constexpr std::int64_t head = format::bh::size + format::rh::size;
  return head + (head + 62) / 63 + static_cast<std::int64_t>(g.io_align);
}
inline std::int64_t record_room(const geometry& g, std::int64_t n) {
  return n + (n + 62) / 63 + record_fixed_room(g);
}
inline std::int64_t reservation_room(const geometry& g, std::int64_t records, std::int64_t bytes) {
  if (records <= 0) return 0;  // bytes no record may use need no room
  return bytes + (bytes + 62) / 63 + records * (record_fixed_room(g) + 1);
}

template <io_policy Io>
class log_core {
 public:
  using device = typename Io::device_type;

  log_core(Io& io, std::string name, const log_options& o) : io_(&io), name_(std::move(name)), opt_(o) {}
  log_core(const log_core&) = delete;
  log_core& operator=(const log_core&) = delete;
  ~log_core() {
    if (opt_.persist_on_close) (void)close();
    stop_writer();
  }

  // ---- lifetime -----------------------------------------------------------
  static result<std::shared_ptr<log_core>> create(Io& io, std::string name, const log_options& o);
  static result<std::shared_ptr<log_core>> open(Io& io, std::string name, const log_options& o,
                                                recovery_action act);
  // Flushes everything and writes the base file. Idempotent.
  result<void> close() {
    std::unique_lock lk(mu_);
    if (failed_ || closed_) return failed_ ? fail_ : result<void>{};
    if (read_only_) {  // nothing was written: nothing to persist
      closed_ = true;
      return {};
    }
    auto r = persist_locked(lk);
    if (r) (void)remove_orphans_locked();
    closed_ = true;
    return r;
  }

  // ---- streams --------------------------------------------------------------
  result<std::shared_ptr<stream_state>> create_stream(std::string_view name) {
    if (name.empty() || name.size() > format::max_stream_name) return errc::invalid_argument;
    std::unique_lock lk(mu_);
    KTM_TRY(writable());
    if (find_locked(name)) return failure(errc::stream_exists, {}, std::string(name));
    if (dedicated_ && !streams_.empty()) return errc::too_many_streams;
    if (streams_.size() >= format::max_streams) return errc::too_many_streams;
    auto s = std::make_shared<stream_state>();
    s->id = next_stream_id_++;
    s->name = std::string(name);
    s->base = end_lsn_locked();
    streams_.push_back(s);
    auto r = persist_locked(lk);
    if (!r) return std::move(r).error();
    return s;
  }
  result<std::shared_ptr<stream_state>> find_stream(std::string_view name) {
    std::lock_guard lk(mu_);
    KTM_TRY(usable());
    if (auto s = find_locked(name)) return s;
    return failure(errc::stream_not_found, {}, std::string(name));
  }
  result<void> delete_stream(std::string_view name) {
    std::unique_lock lk(mu_);
    KTM_TRY(writable());
    auto s = find_locked(name);
    if (!s) return failure(errc::stream_not_found, {}, std::string(name));
    s->deleted = true;
    std::erase(streams_, s);
    return persist_locked(lk);
  }
  std::vector<std::string> stream_names() {
    std::lock_guard lk(mu_);
    std::vector<std::string> v;
    for (auto& s : streams_) v.push_back(s->name);
    return v;
  }

  // ---- writing --------------------------------------------------------------
  result<lsn> append(writer_state& w, std::span<const std::byte> payload, std::uint8_t type,
                     append_flags flags, lsn undo_next);
  // Makes every record < target (and the one at target) durable if `durable`,
  // else only written to the device. Returns durable_lsn_ (or written_lsn_).
  //
  // A durable flush also writes the base file if a base was advanced since
  // it was last written (see advance_base).
  result<lsn> flush_to(lsn target, bool durable) {
    std::unique_lock lk(mu_);
    auto r = flush_to_locked(lk, target, durable);
    if (!lk.owns_lock()) lk.lock();  // a durable flush may return unlocked
    if (r && durable) KTM_TRY(persist_advanced_base_locked(lk));
    return r;
  }
  result<lsn> flush_all() { return flush_to(lsn(lsn::invalid().raw() - 1), true); }
  result<void> reserve(writer_state& w, std::int64_t records, std::int64_t bytes);
  result<lsn> write_restart(writer_state& w, std::span<const std::byte> data, std::optional<lsn> new_base);
  // Moves the base in memory at once (space becomes reclaimable once the base
  // file records it). Durable when the next durable flush (forced append,
  // flush_to_lsn, flush_all, write_restart_area) returns: that flush writes
  // the base file too; see persist_advanced_base.
  result<void> advance_base(stream_state& s, lsn new_base) {
    std::lock_guard lk(mu_);
    KTM_TRY(writable());
    if (s.deleted) return failure(errc::stream_not_found, {}, s.name);
    if (!new_base.is_valid() || new_base < s.base || new_base > end_lsn_locked())
      return failure(errc::invalid_argument, position::at_lsn(new_base.raw()), s.name);
    if (new_base != s.base) {  // the latest advance counts: a base write since an earlier one lacks it
      base_dirty_ = true;
      base_dirty_gen_ = generation_;
    }
    s.base = new_base;
    return {};
  }
  // Writes the base file if a base was advanced since it was last written
  // (flushing every record first, as every base-file write does).
  result<void> persist_advanced_base() {
    std::unique_lock lk(mu_);
    return persist_advanced_base_locked(lk);
  }
  // As append, then, for a forced append, persist_advanced_base.
  result<lsn> append_durable_base(writer_state& w, std::span<const std::byte> payload, std::uint8_t type,
                                  append_flags flags, lsn undo_next) {
    auto l = append(w, payload, type, flags, undo_next);
    if (l && has_flag(flags, append_flags::force)) KTM_TRY(persist_advanced_base());
    return l;
  }
  // As write_restart, then persist_advanced_base.
  result<lsn> write_restart_durable_base(writer_state& w, std::span<const std::byte> data,
                                         std::optional<lsn> new_base) {
    auto l = write_restart(w, data, new_base);
    if (l) KTM_TRY(persist_advanced_base());
    return l;
  }
  // As reserve, but when the log is short of room it does what append does:
  // grows the log (log_options::grow) and then asks on_full once; still
  // short after the callback: tail_pinned.
  result<void> reserve_or_grow(writer_state& w, std::int64_t records, std::int64_t bytes) {
    bool asked = false;
    for (;;) {
      auto r = reserve(w, records, bytes);
      if (r || r.code() != make_error_code(errc::log_full)) return r;
      bool retry = false;
      if (can_grow()) retry = static_cast<bool>(add_container());
      if (!retry && opt_.on_full && !asked) {
        asked = true;
        retry = opt_.on_full(full_info());
      }
      if (!retry) {
        {
          std::lock_guard lk(mu_);  // closed or failed meanwhile: say that, not log_full
          KTM_TRY(writable());
        }
        if (!asked) return r;
        failure f = std::move(r).error();
        f.code = make_error_code(errc::tail_pinned);
        return f;
      }
    }
  }

  // ---- containers -----------------------------------------------------------
  result<void> add_container() {
    std::unique_lock lk(mu_);
    return add_container_locked(lk);
  }
  result<void> remove_container(std::uint32_t physical);
  std::uint32_t remove_orphans_locked();
  std::vector<std::pair<std::uint32_t, std::uint32_t>> container_map() {
    std::lock_guard lk(mu_);
    std::vector<std::pair<std::uint32_t, std::uint32_t>> v;
    for (auto& s : cs_.slots()) v.emplace_back(s.physical, s.logical);
    return v;
  }

  // ---- reading (see reader.hpp) ---------------------------------------------
  struct block_view {
    block_info info;
    std::vector<std::byte> body;
    std::vector<std::uint32_t> offsets;
    aligned_buffer raw;  // one block, read alone
    lsn start = lsn::invalid();
    // Forward readers: a window of the log read ahead (block_fetch.hpp).
    bool read_ahead = false;
    aligned_buffer win;
    std::shared_ptr<device> win_dev;
    std::string win_file;
    std::uint32_t win_container = 0;
    std::uint64_t win_off = 0, win_len = 0;
  };
  // Bytes a forward reader reads ahead per device read.
  static constexpr std::size_t read_ahead_bytes = std::size_t{1} << 20;
  // Where a pipelined forward reader (forward_pipeline.hpp) takes a block:
  // its body is destriped at body[used] on (body grows as needed, and
  // `used` moves past it), the offsets of its records (relative to that)
  // are appended to `offsets`, `end` is where the last record framed ends,
  // and crc_checked says whether the record CRCs have been checked yet.
  struct frame_target {
    std::vector<std::byte>& body;
    std::size_t& used;
    std::vector<std::uint32_t>& offsets;
    std::size_t end = 0;
    bool crc_checked = false;
  };
  // Reads and checks the block starting at `start` into `bv`.
  result<void> fetch_block(lsn start, block_view& bv);
  // From bv's window: the block checked into bv or, with a target, only
  // framed into it (see block_fetch.hpp).
  std::optional<result<void>> fetch_from_window(lsn start, block_view& bv, frame_target* t = nullptr);
  // The block at `start` into `t`: framed from bv's window, or read alone
  // and checked whole (crc_checked) where the window cannot give it.
  result<void> frame_block_at(lsn start, block_view& bv, frame_target& t);
  // Whether long forward reads may use a helper thread (log_options).
  bool read_thread() const noexcept { return opt_.read_thread; }
  // The LSN after the last record written so far (not necessarily durable).
  lsn end_lsn() {
    std::lock_guard lk(mu_);
    return end_lsn_locked();
  }
  // The start of the block after the block at `b` (with `sectors` sectors).
  lsn next_block(lsn b, std::uint32_t sectors) const {
    std::uint32_t off = b.block_offset() + sectors;
    if (geo_.block_fits_at(off)) return lsn(b.container(), off, 0);
    return lsn(b.container() + 1, geo_.first_block_units(), 0);
  }
  struct stream_snapshot {
    lsn base, last, restart;
    bool deleted;
  };
  stream_snapshot snapshot(const stream_state& s) {
    std::lock_guard lk(mu_);
    return {s.base, s.last, s.restart, s.deleted};
  }
  result<void> usable_now() {
    std::lock_guard lk(mu_);
    return usable();
  }
  lsn durable_lsn() {
    std::lock_guard lk(mu_);
    return durable_lsn_;
  }
  const geometry& geo() const { return geo_; }
  const std::string& name() const { return name_; }
  const tail_report& last_report() const { return report_; }
  bool dedicated() const { return dedicated_; }
  // Device flushes this log has completed since count_flushes_from_now()
  // (log::create and log::open call it as they return): the write path's
  // flushes of the containers (device_flushes_, io_run.hpp), the base-file
  // writes (each one flush of the base file: the generations written since,
  // see store_base) and the flushes of container files created by
  // add_container (container_set::create). A flush that fails is not
  // counted (the log is fail-stop then, or add_container failed).
  std::uint64_t device_flushes() {
    std::lock_guard lk(mu_);
    return device_flushes_ + (generation_ - flushes_from_.generation) + (cs_.flushes() - flushes_from_.created);
  }
  // Starts device_flushes() from zero: the flushes made so far (those of
  // create or open: container files, base file) are not counted.
  void count_flushes_from_now() {
    std::lock_guard lk(mu_);
    device_flushes_ = 0;
    flushes_from_ = {generation_, cs_.flushes()};
  }
  log_full_info full_info() {
    std::lock_guard lk(mu_);
    return full_info_locked(0);
  }
  std::mutex& state_mutex() { return mu_; }
  bool can_grow() {
    std::lock_guard lk(mu_);
    return opt_.grow && cs_.slots().size() < opt_.max_containers;
  }

 private:
  struct pending_write {
    std::shared_ptr<device> dev;
    std::string file;
    std::uint64_t offset = 0;
    std::byte* data = nullptr;
    std::size_t len = 0;
    int buf = -1;              // write buffer to free once written
    aligned_buffer header;     // owned bytes of a container header
    lsn end;                   // for a block: LSN after it
  };
  enum class step { done, again, need_space };

  result<void> usable() const {
    if (failed_) return failure(errc::log_failed, fail_.where, fail_.file);
    if (closed_) return errc::invalid_argument;
    return {};
  }
  // usable(), and a call that writes may be made: not in a read-only
  // session (the log's epochs are used up; see open in recovery.hpp).
  result<void> writable() const {
    KTM_TRY(usable());
    if (read_only_)
      return failure(errc::corrupt_base_file, position::at_offset(format::bf::epoch), base_file_name(name_));
    return {};
  }
  std::shared_ptr<stream_state> find_locked(std::string_view name) const {
    for (auto& s : streams_)
      if (s->name == name) return s;
    return nullptr;
  }
  lsn end_lsn_locked() const {
    if (open_) return lsn(open_pos_.container(), open_pos_.block_offset(), builder_.count());
    return next_pos_;
  }
  // The oldest LSN some stream still needs; the head if none.
  lsn tail_locked(std::string* who = nullptr) const {
    lsn t = end_lsn_locked().block_start();
    for (auto& s : streams_) {
      lsn pin = lsn::invalid();
      if (!s->last.is_null() && s->last >= s->base) pin = s->base;
      // a restart area below the base is no longer the stream's (read_restart_area: before_base)
      if (!s->restart.is_null() && s->restart >= s->base) pin = std::min(pin, s->restart);
      if (pin < t) {
        t = pin;
        if (who) *who = s->name;
      }
    }
    return t;
  }
  log_full_info full_info_locked(std::uint64_t need) const {
    log_full_info fi;
    fi.bytes_needed = need;
    fi.containers = static_cast<std::uint32_t>(cs_.slots().size());
    fi.pinning_lsn = tail_locked(&fi.pinning_stream);
    return fi;
  }
  bool slot_free(const typename container_set<Io>::slot& s, std::uint32_t tail_container) const {
    return s.logical == format::no_logical || s.logical < tail_container;
  }
  std::int64_t free_container_room() const {  // what one free container adds
    return static_cast<std::int64_t>(geo_.container_size) - geo_.io_align - geo_.block_size;
  }
  // Room the log has now (in containers that exist): reservations are
  // backed by it, so a reservation never depends on a later grow succeeding.
  // When short, reserve and append grow the log (log_options::grow). The
  // open block's bytes so far (as sealed) are taken; a block must start
  // block_size before its container's end.
  std::int64_t available_locked() const {
    const std::uint32_t tl = tail_locked().container();
    const std::int64_t per = free_container_room();
    const std::int64_t open_bytes = open_ ? static_cast<std::int64_t>(geo_.sealed_size(builder_.used())) : 0;
    std::int64_t a = static_cast<std::int64_t>(geo_.container_size) -
                     static_cast<std::int64_t>(end_lsn_locked().block_byte_offset()) - open_bytes - geo_.block_size;
    for (auto& s : cs_.slots())
      if (slot_free(s, tl)) a += per;
    return a;
  }

  result<lsn> flush_to_locked(std::unique_lock<std::mutex>& lk, lsn target, bool durable);
  result<void> run_io_locked(std::unique_lock<std::mutex>& lk, bool seal, bool durable, bool unlock,
                             std::size_t max_items = static_cast<std::size_t>(-1));
  void wake_writer_locked();  // write-behind (see write_behind.hpp)
  bool write_now_locked() const;  // write-behind (see write_behind.hpp)
  void writer_loop();
  void stop_writer();
  step open_block_locked(std::unique_lock<std::mutex>& lk, result<void>& err);
  void seal_locked();
  result<void> persist_locked(std::unique_lock<std::mutex>& lk);
  result<void> write_base_locked();
  result<void> add_container_locked(std::unique_lock<std::mutex>& lk);
  result<void> persist_advanced_base_locked(std::unique_lock<std::mutex>& lk) {
    if (!base_dirty_) return {};
    if (generation_ > base_dirty_gen_) {  // written since the advance
      base_dirty_ = false;
      return {};
    }
    KTM_TRY(persist_locked(lk));
    base_dirty_ = false;
    return {};
  }
  failure fail_stop(failure f) {
    if (!failed_) {
      failed_ = true;
      fail_ = f;
    }
    gate_.fail();
    cv_.notify_all();
    return failure(errc::log_failed, f.where, f.file);
  }
  result<void> recover(recovery_action act, base_metadata& m,
                       std::vector<std::optional<container_header>>& headers);
  void apply_record(const log_record& r);
  result<void> init_buffers();

  // configuration
  Io* io_;
  std::string name_;
  log_options opt_;
  geometry geo_;
  bool dedicated_ = false;
  std::shared_ptr<device> base_dev_;
  aligned_buffer base_scratch_;
  std::uint64_t generation_ = 0;
  std::uint32_t epoch_ = 1, next_physical_ = 0, next_stream_id_ = 1;
  tail_report report_;
  std::vector<std::string> orphans_;  // container files no base copy names, not deleted yet

  // guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  container_set<Io> cs_;
  std::vector<std::shared_ptr<stream_state>> streams_;
  std::vector<aligned_buffer> bufs_;
  std::vector<int> free_bufs_;
  block_builder builder_;
  // Records of the open block that append placed under mu_ and is copying
  // in without it (large records: append_path.hpp); sealing waits for 0.
  std::atomic<std::uint32_t> open_fills_{0};
  bool open_ = false;
  int open_buf_ = -1;
  lsn open_pos_;
  std::uint64_t open_seq_ = 0;
  lsn next_pos_;                 // where the next block opens
  std::uint64_t next_seq_ = 1;   // seq of the next block opened
  std::uint64_t sealed_seq_ = 0, durable_seq_ = 0;
  lsn durable_lsn_, written_lsn_;
  std::vector<pending_write> pending_;
  std::vector<std::shared_ptr<device>> dirty_devs_;  // written, not flushed
  bool io_busy_ = false;
  bool inflight_durable_ = false;  // the I/O in flight ends with a device flush
  lsn inflight_end_;               // what the I/O in flight covers (records below it)
  std::uint64_t flush_gen_ = 0;    // durable flushes started (generations)
  bool next_leader_ = false;       // a waiter will lead generation flush_gen_ + 1
  flush_gate gate_;                // forcers sleep here (see group_commit.hpp)
  std::thread writer_;             // write-behind of full blocks (see write_behind.hpp)
  std::condition_variable writer_cv_;
  bool writer_stop_ = false;
  bool failed_ = false, closed_ = false;
  bool read_only_ = false;  // set at open only: no epoch left for this session
  failure fail_;
  std::uint32_t persisted_tail_ = 0;  // logical container of the persisted tail
  std::int64_t total_reserved_ = 0;
  std::uint64_t device_flushes_ = 0;  // by run_io_locked: the write path's container flushes
  struct {
    std::uint64_t generation = 0, created = 0;
  } flushes_from_;  // generation_ and cs_.flushes() when device_flushes() started from zero
  bool base_dirty_ = false;          // a base advanced since base_dirty_gen_ ...
  std::uint64_t base_dirty_gen_ = 0; // ... the generation then on disk
};

}  // namespace ktm::log::detail

#include "ktm/log/detail/write_path.hpp"
#include "ktm/log/detail/recovery.hpp"
