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
#pragma once

#include <algorithm>
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
#include <vector>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/log/base_file.hpp"
#include "ktm/log/block_codec.hpp"
#include "ktm/log/container_set.hpp"
#include "ktm/log/detail/aligned_buffer.hpp"
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
};

// The bytes one reserved record may take in the log beyond its payload.
inline std::int64_t reservation_overhead(const geometry& g) {
  return static_cast<std::int64_t>(format::rh::size + format::bh::size + 2 * format::trailer_size + g.io_align);
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
  }

  // ---- lifetime -----------------------------------------------------------
  static result<std::shared_ptr<log_core>> create(Io& io, std::string name, const log_options& o);
  static result<std::shared_ptr<log_core>> open(Io& io, std::string name, const log_options& o,
                                                recovery_action act);
  // Flushes everything and writes the base file. Idempotent.
  result<void> close() {
    std::unique_lock lk(mu_);
    if (failed_ || closed_) return failed_ ? fail_ : result<void>{};
    auto r = persist_locked(lk);
    closed_ = true;
    return r;
  }

  // ---- streams --------------------------------------------------------------
  result<std::shared_ptr<stream_state>> create_stream(std::string_view name) {
    if (name.empty() || name.size() > format::max_stream_name) return errc::invalid_argument;
    std::unique_lock lk(mu_);
    KTM_TRY(usable());
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
    KTM_TRY(usable());
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
  result<lsn> flush_to(lsn target, bool durable) {
    std::unique_lock lk(mu_);
    return flush_to_locked(lk, target, durable);
  }
  result<lsn> flush_all() { return flush_to(lsn(lsn::invalid().raw() - 1), true); }
  result<void> reserve(writer_state& w, std::int64_t records, std::int64_t bytes);
  result<lsn> write_restart(writer_state& w, std::span<const std::byte> data, std::optional<lsn> new_base);
  result<void> advance_base(stream_state& s, lsn new_base) {
    std::lock_guard lk(mu_);
    KTM_TRY(usable());
    if (s.deleted) return failure(errc::stream_not_found, {}, s.name);
    if (!new_base.is_valid() || new_base < s.base || new_base > end_lsn_locked())
      return failure(errc::invalid_argument, position::at_lsn(new_base.raw()), s.name);
    s.base = new_base;
    return {};
  }

  // ---- containers -----------------------------------------------------------
  result<void> add_container() {
    std::unique_lock lk(mu_);
    return add_container_locked(lk);
  }
  result<void> remove_container(std::uint32_t physical);
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
    aligned_buffer raw;
    lsn start = lsn::invalid();
  };
  // Reads and checks the block starting at `start` into `bv`.
  result<void> fetch_block(lsn start, block_view& bv);
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
  // Test hook: flushes of the container devices issued by the write path.
  std::uint64_t device_flushes() {
    std::lock_guard lk(mu_);
    return device_flushes_;
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
      if (!s->restart.is_null()) pin = std::min(pin, s->restart);
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
  std::int64_t available_locked() const {
    const std::uint32_t tl = tail_locked().container();
    std::int64_t per = static_cast<std::int64_t>(geo_.container_size) - geo_.io_align - geo_.block_size;
    std::int64_t a = static_cast<std::int64_t>(geo_.container_size) -
                     static_cast<std::int64_t>(end_lsn_locked().block_byte_offset()) - geo_.block_size;
    for (auto& s : cs_.slots())
      if (slot_free(s, tl)) a += per;
    if (opt_.grow && opt_.max_containers > cs_.slots().size())
      a += per * static_cast<std::int64_t>(opt_.max_containers - cs_.slots().size());
    return a;
  }

  result<lsn> flush_to_locked(std::unique_lock<std::mutex>& lk, lsn target, bool durable);
  result<void> run_io_locked(std::unique_lock<std::mutex>& lk, bool seal, bool durable, bool unlock);
  step open_block_locked(std::unique_lock<std::mutex>& lk, result<void>& err);
  void seal_locked();
  result<void> persist_locked(std::unique_lock<std::mutex>& lk);
  result<void> write_base_locked();
  result<void> add_container_locked(std::unique_lock<std::mutex>& lk);
  failure fail_stop(failure f) {
    if (!failed_) {
      failed_ = true;
      fail_ = f;
    }
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

  // guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  container_set<Io> cs_;
  std::vector<std::shared_ptr<stream_state>> streams_;
  std::vector<aligned_buffer> bufs_;
  std::vector<int> free_bufs_;
  block_builder builder_;
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
  bool failed_ = false, closed_ = false;
  failure fail_;
  std::uint32_t persisted_tail_ = 0;  // logical container of the persisted tail
  std::int64_t total_reserved_ = 0;
  std::uint64_t device_flushes_ = 0;
};

}  // namespace ktm::log::detail

#include "ktm/log/detail/write_path.hpp"
#include "ktm/log/detail/recovery.hpp"
