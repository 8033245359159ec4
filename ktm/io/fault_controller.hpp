// ktm/io/fault_controller.hpp: the shared brain of fault injection.
//
// One `fault_controller` is shared (std::shared_ptr) by every fault_injection
// device and fault_injection_storage of a test, so one crash hits every file.
// It does four things:
//
//   1. Counts calls of each kind (open, read, write, flush, grow) per file and
//      in total. Calls rejected with errc::device_failed (a dead device) are
//      not counted; calls that fail by injection are.
//   2. Keeps, per file, a journal of the writes not yet covered by a completed
//      flush of that file (from any handle: fdatasync covers the inode), with
//      the bytes each write overwrote and the bytes it wrote.
//   3. Injects errors from `fault` rules: on the Nth matching call, by
//      predicate, or at random from a seed; once or persistently; or a crash
//      just before or just after the matching call; or seeded random bit
//      flips in the bytes a read returns or a write stores (action::flip).
//   4. Crashes: crash(spec) reverts every journalled write on the inner
//      devices, newest first, and re-applies the ones the spec keeps (none, a
//      seeded random subset, or all), oldest first; the newest unflushed write
//      of each file may instead be torn (a seeded subset of its sectors, at
//      max(512, logical block size) granularity, survives) or replaced by
//      garbage. Afterwards every device opened before the crash fails with
//      errc::device_failed; reopen through the storage.
//
// Besides, it damages stored bytes on command: a given bit (flip_bit), seeded
// random bits (flip_random_bits) or a region of seeded garbage (garbage).
//
// Determinism: every random choice comes from splitmix64 seeded by the caller,
// files are visited in the order they were first opened, so a seed replays
// exactly on every platform.
//
// Persistence model and its limits: grow() is taken as durable at once (the
// block_device concept has no truncate to undo it), but bytes written into a
// grown region are journalled with zeros as their old contents, so a crash
// restores zeros. Directory operations (create, rename, remove) are durable on
// return, as the io_policy laws demand, unless a storage is told otherwise
// (fault_injection_storage::set_directory_sync): then a crash asks it to undo
// the ones not yet synced, after the writes are reverted. A flush that fails (injected or real)
// leaves its file's writes in the journal: a later crash loses them.
//
// Thread safety: every method takes the controller's mutex; devices hold it
// for the whole of each call, so concurrent calls are serialised.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <numeric>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "ktm/error.hpp"
#include "ktm/io/aligned_buffer.hpp"
#include "ktm/io/fault_journal.hpp"
#include "ktm/io/fault_spec.hpp"

namespace ktm::io {

template <class Inner>
class fault_injection;
template <class InnerPolicy>
class fault_injection_storage;

class fault_controller {
 public:
  using fault_id = std::size_t;

  // ---- fault rules -------------------------------------------------------

  fault_id inject(fault f) {
    std::lock_guard g(mutex_);
    rules_.push_back(rule{std::move(f)});
    rules_.back().rng.state = rules_.back().f.seed;
    return rules_.size() - 1;
  }
  // Fail the nth call of kind `k` (counted from now, over all files or on `device`).
  fault_id fail_nth(call_kind k, std::uint64_t n, errc e = errc::io_error,
                    persistence p = persistence::once, std::string device = {}) {
    fault f;
    f.kinds = k;
    f.nth = n;
    f.error = e;
    f.lasting = p;
    f.device = std::move(device);
    return inject(std::move(f));
  }
  // Fail the nth read/write/flush/grow counted from now: loop n over a
  // workload's call count to fail "every I/O call in turn".
  fault_id fail_nth_io_call(std::uint64_t n, errc e = errc::io_error,
                            persistence p = persistence::once) {
    fault f;
    f.nth = n;
    f.error = e;
    f.lasting = p;
    return inject(std::move(f));
  }
  fault_id fail_when(std::function<bool(const call_info&)> pred, errc e = errc::io_error,
                     persistence p = persistence::once, kind_set kinds = kind_set::all()) {
    fault f;
    f.kinds = kinds;
    f.when = std::move(pred);
    f.error = e;
    f.lasting = p;
    return inject(std::move(f));
  }
  // Each matching call fails with probability per_million / 10^6 (seeded).
  fault_id fail_randomly(std::uint64_t seed, std::uint32_t per_million,
                         kind_set kinds = kind_set::io(), errc e = errc::io_error) {
    fault f;
    f.kinds = kinds;
    f.seed = seed;
    f.per_million = per_million;
    f.error = e;
    f.lasting = persistence::every_match;
    return inject(std::move(f));
  }
  // Crash at the nth call of kind `k`, before it or (after = true) after it.
  fault_id crash_at(call_kind k, std::uint64_t n, crash_spec s = {}, bool after = false) {
    fault f;
    f.kinds = k;
    f.nth = n;
    f.what = after ? fault::action::crash_after : fault::action::crash_before;
    f.crash = std::move(s);
    return inject(std::move(f));
  }
  // How many calls the rule has failed (or crashed, or flipped bits of).
  std::uint64_t fired(fault_id id) const {
    std::lock_guard g(mutex_);
    return id < rules_.size() ? rules_[id].fired : 0;
  }
  void remove_fault(fault_id id) {
    std::lock_guard g(mutex_);
    if (id < rules_.size()) rules_[id].removed = true;
  }
  void clear_faults() {
    std::lock_guard g(mutex_);
    for (auto& r : rules_) r.removed = true;
  }

  // ---- crashes -----------------------------------------------------------

  // Simulates power loss (see the header comment). Returns the first error
  // met while reverting an inner device (the crash still takes effect).
  std::error_code crash(const crash_spec& s = {}) {
    std::lock_guard g(mutex_);
    return crash_locked(s);
  }
  // How many crashes happened.
  std::uint64_t crashes() const {
    std::lock_guard g(mutex_);
    return epoch_;
  }
  // Test hook: journalled writes of `device` ("" = all files).
  std::size_t unflushed_writes(std::string_view device = {}) const {
    std::lock_guard g(mutex_);
    std::size_t n = 0;
    for (auto& f : files_)
      if (device.empty() || f->name == device) n += f->unflushed.size();
    return n;
  }

  // ---- damage to stored bytes ---------------------------------------------

  // Flips bit `bit` (0..7) of the byte at `offset` of `device`, in its
  // current bytes on the inner device (not journalled: do it after a flush or
  // a crash for a durable flip). The first storage holding the name wins.
  std::error_code flip_bit(std::string_view device, std::uint64_t offset, unsigned bit) {
    return edit(device, offset, 1, [bit](std::span<std::byte> b) {
      b[0] ^= std::byte(1u << (bit & 7u));
    });
  }
  // Flips min(count, bits stored) distinct bits (never one bit twice), in the
  // current bytes on the inner devices (not journalled, as flip_bit), chosen
  // by splitmix64 seeded with `seed`. The bits are those of `device`, or (""):
  // of every file the controller knows, each name once, in the order first
  // opened. A name resolves as in flip_bit; one that resolves to no device
  // (a removed file's, once no handle on it is left) or to an empty one is
  // skipped. The files' bits are laid end to end and the flipped ones are a
  // uniform draw of distinct positions among them, so the same seed over the
  // same names and sizes flips the same bits (the bytes' values play no
  // part); count >= the bits stored flips every bit. Each byte hit is one
  // read-modify-write as in flip_bit. Returns how many bits were flipped: 0
  // when there are no bytes (or no such device); the bits of a byte whose
  // read-modify-write failed on the inner device are not counted.
  std::uint64_t flip_random_bits(std::uint64_t seed, std::size_t count,
                                 std::string_view device = {}) {
    std::lock_guard g(mutex_);
    struct target {
      std::string name;
      std::shared_ptr<detail::device_access> dev;
      std::uint64_t bits;
    };
    std::vector<target> targets;
    std::uint64_t total = 0;
    auto add = [&](std::string_view name) {
      for (auto& t : targets)
        if (t.name == name) return;
      auto dev = find_locked(name);
      if (!dev || dev->size() == 0) return;
      targets.push_back({std::string(name), dev, dev->size() * 8});
      total += targets.back().bits;
    };
    if (!device.empty())
      add(device);
    else
      for (auto& f : files_) add(f->name);
    detail::splitmix64 rng{seed};
    const auto picks = pick_distinct(rng, total, count);  // sorted
    std::uint64_t flipped = 0;
    std::size_t t = 0;
    std::uint64_t start = 0;  // the first bit of targets[t]
    for (std::size_t i = 0; i < picks.size();) {
      while (picks[i] >= start + targets[t].bits) start += targets[t++].bits;
      const std::uint64_t byte = (picks[i] - start) / 8;
      unsigned mask = 0, n = 0;  // the picked bits of this byte
      for (; i < picks.size() && picks[i] - start < (byte + 1) * 8; ++i, ++n)
        mask |= 1u << ((picks[i] - start) % 8);
      if (!rewrite(*targets[t].dev, byte, 1, [mask](std::span<std::byte> b) {
            b[0] ^= std::byte(mask);
          }))
        flipped += n;
    }
    return flipped;
  }
  // Overwrites [offset, offset + length) of `device` with seeded garbage.
  std::error_code garbage(std::string_view device, std::uint64_t offset, std::size_t length,
                          std::uint64_t seed) {
    return edit(device, offset, length, [seed](std::span<std::byte> b) {
      detail::splitmix64 r{seed};
      fill_random(b, r);
    });
  }

  // ---- counters ----------------------------------------------------------

  call_counts counts() const {
    std::lock_guard g(mutex_);
    return total_;
  }
  // Calls on files now or last named `device` (summed over storages).
  call_counts counts(std::string_view device) const {
    std::lock_guard g(mutex_);
    call_counts c;
    for (auto& f : files_)
      if (f->name == device)
        for (std::size_t k = 0; k < call_kind_count; ++k) c.by_kind[k] += f->counts.by_kind[k];
    return c;
  }
  void reset_counts() {
    std::lock_guard g(mutex_);
    total_ = {};
    for (auto& f : files_) f->counts = {};
  }

 private:
  template <class>
  friend class fault_injection;
  template <class>
  friend class fault_injection_storage;

  struct rule {
    fault f;
    std::uint64_t matched = 0;
    std::uint64_t fired = 0;
    bool tripped = false;
    bool removed = false;
    detail::splitmix64 rng{0};
  };

  // The bits a flip rule corrupts in one call's bytes (none when bits == 0).
  struct flips {
    std::uint64_t seed = 0;
    std::uint32_t bits = 0;
    // Flips min(bits, 8 * b.size()) distinct bits of `b`, drawn from `seed`.
    void apply(std::span<std::byte> b) const {
      if (bits == 0) return;
      detail::splitmix64 rng{seed};
      for (auto p : pick_distinct(rng, std::uint64_t(b.size()) * 8, bits))
        b[static_cast<std::size_t>(p / 8)] ^= std::byte(1u << (p % 8));
    }
  };

  struct decision {
    enum class kind : std::uint8_t { proceed, fail, crash_before, crash_after, flip } what =
        kind::proceed;
    std::error_code error{};
    crash_spec crash{};
    flips flip{};  // kind::flip
  };

  using opener = std::function<std::shared_ptr<detail::device_access>(std::string_view)>;
  using crash_hook = std::function<void(const crash_spec&, detail::splitmix64&)>;

  // -- used by fault_injection / fault_injection_storage, mutex held --

  std::unique_lock<std::mutex> lock() const { return std::unique_lock(mutex_); }
  std::uint64_t epoch_locked() const noexcept { return epoch_; }

  std::shared_ptr<detail::file_state> add_file_locked(std::string name) {
    files_.push_back(std::make_shared<detail::file_state>());
    files_.back()->name = std::move(name);
    return files_.back();
  }
  void add_storage_locked(opener o, crash_hook h) {
    openers_.push_back(std::move(o));
    hooks_.push_back(std::move(h));
  }

  decision on_call_locked(detail::file_state& file, call_kind k, std::uint64_t off,
                          std::uint64_t len) {
    ++file.counts.by_kind[std::size_t(k)];
    ++total_.by_kind[std::size_t(k)];
    const call_info info{k, file.name, off, len, total_.of(k), total_.total()};
    decision d;
    for (auto& r : rules_) {
      if (r.removed || !r.f.kinds.has(k) || (!r.f.device.empty() && r.f.device != file.name))
        continue;
      if (r.f.what == fault::action::flip && k != call_kind::read && k != call_kind::write)
        continue;  // a flip rule matches reads and writes only
      ++r.matched;
      bool fire = r.tripped && r.f.lasting == persistence::persistent;
      if (!fire && (!r.tripped || r.f.lasting == persistence::every_match)) {
        fire = (r.f.nth == 0 || r.matched == r.f.nth) && (!r.f.when || r.f.when(info)) &&
               (r.f.per_million >= 1'000'000 || r.rng.next() % 1'000'000 < r.f.per_million);
      }
      if (!fire || d.what != decision::kind::proceed) continue;
      r.tripped = true;
      ++r.fired;
      switch (r.f.what) {
        case fault::action::fail:
          d.what = decision::kind::fail;
          d.error = make_error_code(r.f.error);
          break;
        case fault::action::crash_before: d.what = decision::kind::crash_before; break;
        case fault::action::crash_after: d.what = decision::kind::crash_after; break;
        case fault::action::flip:
          d.what = decision::kind::flip;
          d.flip = flips{r.rng.next(), r.f.flip_bits};
          break;
      }
      d.crash = r.f.crash;
    }
    return d;
  }

  std::error_code crash_locked(const crash_spec& s) {
    ++epoch_;
    detail::splitmix64 rng{s.seed};
    std::error_code first;
    auto note = [&first](std::error_code ec) {
      if (ec && !first) first = ec;
    };
    for (auto& f : files_) {
      auto& j = f->unflushed;
      if (j.empty()) continue;
      for (auto it = j.rbegin(); it != j.rend(); ++it)
        note(it->dev->write(it->offset, it->before.span()));
      const bool special = s.device.empty() || s.device == f->name;
      for (std::size_t i = 0; i < j.size(); ++i) {
        auto& e = j[i];
        const bool last = i + 1 == j.size() && special;
        if (last && s.last_write == crash_spec::last::torn) {
          note(tear(e, rng));
        } else if (last && s.last_write == crash_spec::last::garbage) {
          aligned_buffer junk(e.after.size(), e.dev->block());
          fill_random(junk.span(), rng);
          note(e.dev->write(e.offset, junk.span()));
        } else if (s.unflushed == crash_spec::writes::kept ||
                   (s.unflushed == crash_spec::writes::random_subset && (rng.next() & 1u))) {
          note(e.dev->write(e.offset, e.after.span()));
        }
      }
      note(j.back().dev->flush());
      j.clear();
    }
    for (auto& h : hooks_) h(s, rng);
    return first;
  }

  // Keeps a seeded subset of the write's sectors: never all and never none
  // when the write spans two or more sectors.
  static std::error_code tear(detail::journal_entry& e, detail::splitmix64& rng) {
    const std::uint64_t g = std::max<std::uint64_t>(512, e.dev->block());
    const std::uint64_t begin = e.offset, end = e.offset + e.after.size();
    std::vector<std::pair<std::uint64_t, std::uint64_t>> pieces;  // [from, to)
    for (std::uint64_t p = begin; p < end;) {
      const std::uint64_t q = std::min(end, (p / g + 1) * g);
      pieces.emplace_back(p, q);
      p = q;
    }
    std::vector<bool> keep(pieces.size());
    std::size_t kept = 0;
    for (std::size_t i = 0; i < keep.size(); ++i) kept += (keep[i] = (rng.next() & 1u) != 0);
    if (keep.size() >= 2 && (kept == 0 || kept == keep.size())) {
      const auto i = static_cast<std::size_t>(rng.next() % keep.size());
      keep[i] = !keep[i];
    }
    std::error_code first;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      if (!keep[i]) continue;
      const auto [p, q] = pieces[i];
      auto ec = e.dev->write(p, e.after.span().subspan(p - begin, q - p));
      if (ec && !first) first = ec;
    }
    return first;
  }

  static void fill_random(std::span<std::byte> b, detail::splitmix64& r) {
    for (std::size_t i = 0; i < b.size(); i += 8) {
      std::uint64_t v = r.next();
      for (std::size_t k = i; k < b.size() && k < i + 8; ++k, v >>= 8) b[k] = std::byte(v & 0xff);
    }
  }

  // `count` distinct numbers below `total` (all of them when count >= total),
  // sorted. Floyd's sampling: one draw per number, uniform over the subsets.
  static std::vector<std::uint64_t> pick_distinct(detail::splitmix64& rng, std::uint64_t total,
                                                  std::uint64_t count) {
    std::vector<std::uint64_t> out;
    if (count >= total) {
      out.resize(static_cast<std::size_t>(total));
      std::iota(out.begin(), out.end(), std::uint64_t{0});
      return out;
    }
    std::set<std::uint64_t> s;
    for (std::uint64_t j = total - count; j < total; ++j)
      if (!s.insert(rng.next() % (j + 1)).second) s.insert(j);
    out.assign(s.begin(), s.end());
    return out;
  }

  // The inner device of file `device`: the first storage holding the name,
  // else the newest live handle of a standalone device so named.
  std::shared_ptr<detail::device_access> find_locked(std::string_view device) {
    std::shared_ptr<detail::device_access> dev;
    for (auto& o : openers_)
      if ((dev = o(device))) break;
    for (auto it = files_.rbegin(); !dev && it != files_.rend(); ++it)
      if ((*it)->name == device) dev = (*it)->last_access.lock();
    return dev;
  }

  // Applies `how` to [offset, offset + length) of file `device` (found by
  // find_locked; errc::not_found if none), through rewrite.
  template <class Edit>
  std::error_code edit(std::string_view device, std::uint64_t offset, std::size_t length,
                       Edit&& how) {
    std::lock_guard g(mutex_);
    auto dev = find_locked(device);
    if (!dev) return make_error_code(errc::not_found);
    return rewrite(*dev, offset, length, std::forward<Edit>(how));
  }
  // Read-modify-write of the inner blocks of `dev` covering [offset, offset +
  // length): `how` edits the range in place, then the blocks are written back
  // and flushed. errc::out_of_range if the blocks pass the end.
  template <class Edit>
  static std::error_code rewrite(detail::device_access& dev, std::uint64_t offset,
                                 std::size_t length, Edit&& how) {
    const std::uint64_t b = dev.block();
    const std::uint64_t n = dev.size();
    if (offset > n || length > n - offset) return make_error_code(errc::out_of_range);
    const std::uint64_t from = offset / b * b;
    const std::uint64_t to = (offset + length + b - 1) / b * b;
    if (to > n) return make_error_code(errc::out_of_range);
    aligned_buffer buf(static_cast<std::size_t>(to - from), static_cast<std::size_t>(b));
    if (auto ec = dev.read(from, buf.span())) return ec;
    how(buf.span().subspan(static_cast<std::size_t>(offset - from), length));
    if (auto ec = dev.write(from, buf.span())) return ec;
    return dev.flush();
  }

  mutable std::mutex mutex_;
  std::vector<rule> rules_;
  std::vector<std::shared_ptr<detail::file_state>> files_;
  std::vector<opener> openers_;
  std::vector<crash_hook> hooks_;  // one per storage: undoes its unsynced directory operations
  call_counts total_{};
  std::uint64_t epoch_ = 0;
};

}  // namespace ktm::io
