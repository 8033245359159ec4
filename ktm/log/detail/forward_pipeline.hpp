// ktm/log/detail/forward_pipeline.hpp: the helper thread of a long forward
// read.
//
// The helper reads the log ahead, block after block from a given start, the
// way a forward reader does (log_core::frame_block_at: from a read-ahead
// window, or read alone where the window cannot give a block cleanly), and
// frames each block: trailers checked, body destriped, records delimited.
// It hands the blocks over in batches ("slots" of about read_ahead_bytes of
// body each; three slots, so the helper fills one while the reader consumes
// another). The reader checks the record CRCs of each block before it
// yields any of its records, so the checks are split between the two
// threads and every record still passes all of them before it is seen.
//
// The helper stops at the first block past `last` (end_of_stream) or at the
// first failure (which it reports after the blocks before it), exactly where
// a reader on one thread would stop. It never runs ahead by more than the
// three slots. cancel() (also run by the destructor) stops and joins it.
//
// Memory: three slots of up to read_ahead_bytes + block_size of body plus
// their record offsets, and the helper's block_view (one read-ahead window,
// one block buffer).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

// Whether the calling thread may run on more than one CPU (its affinity
// mask on Linux, else the machine's count; true if unknown). On one CPU a
// helper thread only adds hand-offs to the same work, so a forward read
// started there stays on the caller's thread.
inline bool helper_can_overlap() noexcept {
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) return CPU_COUNT(&set) > 1;
#endif
  return std::thread::hardware_concurrency() != 1;
}

template <class Io>
class forward_pipeline {
 public:
  struct block_entry {
    lsn start;
    block_info info;
    std::size_t body_off = 0;  // the block's body in slot::body
    std::size_t first = 0;     // its first record offset in slot::offsets
    std::size_t count = 0;     // records framed (info.count on success)
    std::size_t end = 0;       // where the last of them ends, body-relative
    bool crc_checked = false;  // read alone and checked whole already
  };
  struct slot {
    std::vector<std::byte> body;  // body[0, used) holds the blocks' bodies (never shrunk)
    std::size_t used = 0;
    std::vector<std::uint32_t> offsets;
    std::vector<block_entry> blocks;
    std::optional<failure> stop;  // after these blocks: why the helper stopped
    // per block: who checks its record CRCs, and what they found
    std::unique_ptr<std::atomic<std::uint8_t>[]> check;
    std::size_t check_cap = 0;
    std::size_t help_next = 0;  // the helper checks blocks from the end: blocks[0, help_next) are left

    const std::byte* body_of(const block_entry& e) const { return body.data() + e.body_off; }
    const std::uint32_t* offsets_of(const block_entry& e) const { return offsets.data() + e.first; }
    bool crcs_sound(const block_entry& e) const { return check_record_crcs(body_of(e), offsets_of(e), e.count, e.end); }
  };

  // True if the record CRCs of block b of s (a slot handed out by
  // next_slot) are sound: checked here, or by the helper if it got there
  // first (then this waits for its answer).
  bool crcs_ok(slot& s, std::size_t b) {
    const block_entry& e = s.blocks[b];
    std::atomic<std::uint8_t>& st = s.check[b];
    std::uint8_t v = unchecked;
    if (st.compare_exchange_strong(v, by_reader, std::memory_order_acq_rel)) return s.crcs_sound(e);
    while (v == by_helper) {
      std::this_thread::yield();
      v = st.load(std::memory_order_acquire);
    }
    return v == sound;
  }

  forward_pipeline() = default;
  forward_pipeline(const forward_pipeline&) = delete;
  forward_pipeline& operator=(const forward_pipeline&) = delete;
  ~forward_pipeline() { cancel(); }

  // Starts the helper at the block `from` (a block start), stopping past
  // `last`. False if no thread could be started (the caller reads on).
  bool start(std::shared_ptr<log_core<Io>> core, lsn from, lsn last) noexcept {
    core_ = std::move(core);
    next_ = from;
    last_ = last;
    try {
      helper_ = std::thread([this] { run(); });
    } catch (...) {
      return false;
    }
    return true;
  }
  bool running() const noexcept { return helper_.joinable(); }

  // The next filled slot (blocking until the helper has one); the previous
  // one handed out goes back to the helper.
  slot& next_slot() {
    if (consuming_ >= 0) set_state(consuming_, slot_state::free);
    const int i = filled_order_;
    await_state(i, slot_state::filled);
    set_state(i, slot_state::consuming);
    consuming_ = i;
    filled_order_ = (i + 1) % slot_count;
    return slots_[static_cast<std::size_t>(i)];
  }

  void cancel() noexcept {
    if (!helper_.joinable()) return;
    {
      std::lock_guard lk(mu_);
      cancel_.store(true);
    }
    cv_.notify_all();
    helper_.join();
  }

 private:
  static constexpr int slot_count = 3;
  enum class slot_state : std::uint8_t { free, filled, consuming };
  // slot::check values
  static constexpr std::uint8_t unchecked = 0, by_reader = 1, by_helper = 2, sound = 3, unsound = 4;

  // A slot changes hands under mu_ (so a sleeper cannot miss it) and is
  // awaited by spinning a little first: a hand-off every read_ahead_bytes
  // should not cost a sleep and a wake-up when the other side is about to
  // deliver.
  void set_state(int i, slot_state v) {
    {
      std::lock_guard lk(mu_);
      state_[i].store(v, std::memory_order_release);
    }
    cv_.notify_all();
  }
  // Waits until slot i is in state v; false if cancelled first.
  bool await_state(int i, slot_state v) {
    for (int spin = 0; spin < spin_limit; ++spin) {
      if (state_[i].load(std::memory_order_acquire) == v) return true;
      if (cancel_requested()) return false;
      std::this_thread::yield();
    }
    std::unique_lock lk(mu_);
    cv_.wait(lk, [&] { return cancel_.load() || state_[i].load() == v; });
    return state_[i].load() == v;
  }

  void run() noexcept {
    typename log_core<Io>::block_view bv;
    bv.read_ahead = true;
    bool stopped = false;
    for (int i = 0; !stopped; i = (i + 1) % slot_count) {
      if (!wait_free(i)) return;
      slot& s = slots_[static_cast<std::size_t>(i)];
      s.used = 0;
      s.offsets.clear();
      s.blocks.clear();
      s.stop.reset();
      try {
        stopped = fill(s, bv);
        if (s.check_cap < s.blocks.size()) {
          s.check = std::make_unique<std::atomic<std::uint8_t>[]>(s.blocks.size());
          s.check_cap = s.blocks.size();
        }
      } catch (const std::bad_alloc&) {
        s.stop = failure(std::make_error_code(std::errc::not_enough_memory), position::at_lsn(next_.raw()));
        s.blocks.clear();
        stopped = true;
      }
      for (std::size_t b = 0; b < s.blocks.size(); ++b)
        s.check[b].store(s.blocks[b].crc_checked ? sound : unchecked, std::memory_order_relaxed);
      s.help_next = s.blocks.size();
      if (cancel_requested()) return;
      set_state(i, slot_state::filled);
    }
  }

  // Waits until slot i is free (false: cancelled). While every slot is
  // full, the helper checks the record CRCs of blocks the reader has not
  // reached, from the newest slot's end backwards (the reader checks from
  // the front of the oldest, so they seldom meet).
  bool wait_free(int i) {
    for (;;) {
      if (cancel_requested()) return false;
      if (state_[i].load(std::memory_order_acquire) == slot_state::free) return true;
      int order[slot_count];
      int n = 0;
      for (int j = 1; j <= slot_count; ++j) {  // newest first: the slot filled last is i - 1
        const int k = (i - j + slot_count) % slot_count;
        if (state_[k].load(std::memory_order_acquire) != slot_state::free) order[n++] = k;
      }
      if (!help(order, n)) return await_state(i, slot_state::free);
    }
  }
  // Checks one block's record CRCs for the reader; false if none is left.
  bool help(const int* order, int n) {
    for (int j = 0; j < n; ++j) {
      slot& s = slots_[static_cast<std::size_t>(order[j])];
      while (s.help_next > 0) {
        const std::size_t b = --s.help_next;
        std::uint8_t v = unchecked;
        if (!s.check[b].compare_exchange_strong(v, by_helper, std::memory_order_acq_rel)) continue;
        s.check[b].store(s.crcs_sound(s.blocks[b]) ? sound : unsound, std::memory_order_release);
        return true;
      }
    }
    return false;
  }

  // Frames blocks into s until it holds read_ahead_bytes of body; true once
  // the helper has stopped (s.stop says why).
  bool fill(slot& s, typename log_core<Io>::block_view& bv) {
    // the most a slot holds: it stops once read_ahead_bytes are in, and the
    // last block adds up to one block's body; reserved once, so growing it
    // never holds two buffers (nor a doubled one)
    const std::size_t most = log_core<Io>::read_ahead_bytes + core_->geo().max_body();
    if (s.body.capacity() < most) s.body.reserve(most);
    while (s.used < log_core<Io>::read_ahead_bytes) {
      if (cancel_requested()) return true;
      if (next_ > last_) {
        s.stop = failure(errc::end_of_stream, position::at_lsn(next_.raw()));
        return true;
      }
      block_entry e;
      e.start = next_;
      e.body_off = s.used;
      e.first = s.offsets.size();
      typename log_core<Io>::frame_target t{s.body, s.used, s.offsets};
      if (auto r = core_->frame_block_at(next_, bv, t); !r) {
        s.stop = std::move(r).error();
        return true;
      }
      e.info = bv.info;
      e.count = s.offsets.size() - e.first;
      e.end = t.end;
      e.crc_checked = t.crc_checked;
      s.blocks.push_back(e);
      next_ = core_->next_block(next_, bv.info.sectors);
    }
    return false;
  }

  bool cancel_requested() const noexcept { return cancel_.load(std::memory_order_relaxed); }

  std::shared_ptr<log_core<Io>> core_;
  lsn next_, last_;
  std::thread helper_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> cancel_{false};  // set under mu_ (the waits read it there)
  slot slots_[slot_count];
  std::atomic<slot_state> state_[slot_count] = {slot_state::free, slot_state::free, slot_state::free};
  static constexpr int spin_limit = 2000;  // yields before a hand-off sleeps
  int consuming_ = -1, filled_order_ = 0;
};

}  // namespace ktm::log::detail
