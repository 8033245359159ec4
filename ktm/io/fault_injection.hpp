// ktm/io/fault_injection.hpp: block devices and storage that fail on command.
//
// `fault_injection<Inner>` wraps any block_device, and
// `fault_injection_storage<InnerPolicy>` wraps any io_policy so that every
// device it opens is a fault_injection over the inner policy's device. All of
// them report to one shared fault_controller (ktm/io/fault_controller.hpp),
// which counts calls, journals unflushed writes, injects errors and crashes.
//
// A wrapped device obeys the block_device laws as long as no fault fires.
// Besides, it is dead (every call returns errc::device_failed, uncounted):
//   - after a crash of its controller, until reopened through the storage
//     (a standalone device: wrap the inner device again);
//   - after one of its flushes failed, injected or real (fail-stop).
// An injected failure happens before the inner call: nothing moves. A read,
// write or grow that fails by injection leaves the device usable.
//
// A flip rule (fault::action::flip, see ktm/io/fault_spec.hpp) corrupts
// without failing: a read it fires on succeeds with seeded random bits of the
// caller's buffer flipped (the stored bytes are intact, a later read is
// clean); a write it fires on stores the caller's bytes with seeded random
// bits flipped and reports success (the caller's buffer is not touched).
//
// A storage's open, remove, rename and sync_directory are counted calls too
// (call_kind::open, remove, rename, sync_directory; sync_directory on the
// entry "."), and a rule may fail them or crash before or after them.
//
// Names: a standalone device is given its name; a storage's devices are named
// by the storage. Rules and counters match names; a file keeps its journal
// and counters across rename (the name follows it), and remove drops its
// journal (the file is gone).
//
// Directory persistence (reliability row 3). By default a storage's
// create, rename and remove are durable on return (directory_sync::per_call,
// the io_policy law, what posix_directory does with its directory fsync).
// With directory_sync::explicit_only they model a file system whose parent
// directory was not fsync'd: each is visible at once but durable only once
// sync_directory() returns, and a crash undoes the ones not synced yet
// (crash_spec::unsynced_directory: all, a seeded subset, or none), newest
// first: a created file disappears, a removed one comes back with the bytes
// it had when removed, a rename is reversed (and the file it replaced comes
// back).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "ktm/concepts/block_device.hpp"
#include "ktm/concepts/io_policy.hpp"
#include "ktm/error.hpp"
#include "ktm/io/aligned_buffer.hpp"
#include "ktm/io/fault_controller.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/result.hpp"

namespace ktm::io {

template <class Inner>
class fault_injection {
  static_assert(check_block_device<Inner>());

 public:
  using inner_type = Inner;

  // Wraps `inner` as a file named `name` of `controller` (not null).
  fault_injection(Inner inner, std::shared_ptr<fault_controller> controller,
                  std::string name = "device")
      : inner_(std::make_shared<Inner>(std::move(inner))),
        access_(std::make_shared<detail::access_to<Inner>>(inner_)),
        ctl_(std::move(controller)) {
    auto g = ctl_->lock();
    file_ = ctl_->add_file_locked(std::move(name));
    file_->last_access = access_;
    epoch_ = ctl_->epoch_locked();
  }

  std::uint64_t size() const { return inner_ ? inner_->size() : 0; }
  std::size_t logical_block_size() const { return inner_ ? inner_->logical_block_size() : 1; }

  // A flip rule flips bits of `out` after a successful inner read.
  std::error_code read(std::uint64_t off, std::span<std::byte> out) {
    return call(call_kind::read, off, out.size(), [&](const flips& f) {
      auto ec = inner_->read(off, out);
      if (!ec) f.apply(out);
      return ec;
    });
  }

  // Journals the bytes it overwrites until a flush of this file completes.
  // A flip rule makes it write (and journal) a copy of `in` with bits
  // flipped, placed at the same address modulo the block size as `in`, so
  // the inner device judges its alignment as it would judge `in`'s.
  std::error_code write(std::uint64_t off, std::span<const std::byte> in) {
    return call(call_kind::write, off, in.size(), [&](const flips& f) -> std::error_code {
      if (in.empty()) return inner_->write(off, in);
      const std::size_t b = inner_->logical_block_size();
      std::span<const std::byte> data = in;
      aligned_buffer flipped;
      if (f.bits != 0) {
        const auto at = reinterpret_cast<std::uintptr_t>(in.data());
        const auto shift = static_cast<std::size_t>(at % b);
        flipped = aligned_buffer(in.size() + shift, b);
        auto copy = flipped.span().subspan(shift);
        std::memcpy(copy.data(), in.data(), in.size());
        f.apply(copy);
        data = copy;
      }
      aligned_buffer before(in.size(), b);
      if (auto ec = inner_->read(off, before.span())) return ec;
      auto ec = inner_->write(off, data);
      if (ec == errc::misaligned || ec == errc::out_of_range) return ec;  // nothing moved
      aligned_buffer after(in.size(), b);
      std::memcpy(after.data(), data.data(), data.size());
      file_->unflushed.push_back({access_, off, std::move(before), std::move(after)});
      return ec;
    });
  }

  // On success every journalled write of this file is durable. On failure
  // (injected or real) this handle is failed for good.
  std::error_code flush() {
    return call(call_kind::flush, 0, 0, [&](const flips&) {
      auto ec = inner_->flush();
      if (ec)
        failed_ = true;
      else
        file_->unflushed.clear();
      return ec;
    });
  }

  std::error_code grow(std::uint64_t n) {
    return call(call_kind::grow, n, 0, [&](const flips&) { return inner_->grow(n); });
  }

  Inner& inner() noexcept { return *inner_; }
  const Inner& inner() const noexcept { return *inner_; }
  std::string name() const {
    auto g = ctl_->lock();
    return file_->name;
  }
  // True once a flush of this handle failed.
  bool failed() const {
    if (!ctl_) return false;
    auto g = ctl_->lock();
    return failed_;
  }
  const std::shared_ptr<fault_controller>& controller() const noexcept { return ctl_; }

 private:
  template <class>
  friend class fault_injection_storage;

  // For fault_injection_storage; the controller's mutex is held.
  fault_injection(std::shared_ptr<Inner> inner, std::shared_ptr<fault_controller> controller,
                  std::shared_ptr<detail::file_state> file)
      : inner_(std::move(inner)),
        access_(std::make_shared<detail::access_to<Inner>>(inner_)),
        ctl_(std::move(controller)),
        file_(std::move(file)),
        epoch_(ctl_->epoch_locked()) {
    file_->last_access = access_;
  }

  using flips = fault_controller::flips;

  // One counted call: `op(flips)` does it, told what a flip rule corrupts
  // (nothing unless the decision is kind::flip).
  template <class Op>
  std::error_code call(call_kind k, std::uint64_t off, std::uint64_t len, Op&& op) {
    if (!ctl_) return make_error_code(errc::device_failed);
    auto g = ctl_->lock();
    if (failed_ || epoch_ != ctl_->epoch_locked()) return make_error_code(errc::device_failed);
    using dk = fault_controller::decision::kind;
    auto d = ctl_->on_call_locked(*file_, k, off, len);
    switch (d.what) {
      case dk::fail:
        if (k == call_kind::flush) failed_ = true;
        return d.error;
      case dk::crash_before:
        (void)ctl_->crash_locked(d.crash);
        return make_error_code(errc::device_failed);
      case dk::proceed:
      case dk::crash_after:
      case dk::flip: break;
    }
    auto ec = op(d.flip);
    if (d.what == dk::crash_after) {
      (void)ctl_->crash_locked(d.crash);
      return make_error_code(errc::device_failed);
    }
    return ec;
  }

  std::shared_ptr<Inner> inner_;
  std::shared_ptr<detail::access_to<Inner>> access_;
  std::shared_ptr<fault_controller> ctl_;
  std::shared_ptr<detail::file_state> file_;
  std::uint64_t epoch_ = 0;
  bool failed_ = false;
};

template <class InnerPolicy>
class fault_injection_storage {
  static_assert(check_io_policy<InnerPolicy>());

 public:
  using inner_device = typename InnerPolicy::device_type;
  using device_type = fault_injection<inner_device>;

  // Wraps `inner`; copies of this storage share it and the controller.
  explicit fault_injection_storage(
      InnerPolicy inner,
      std::shared_ptr<fault_controller> controller = std::make_shared<fault_controller>())
      : dir_(std::make_shared<directory>(std::move(inner))), ctl_(std::move(controller)) {
    auto g = ctl_->lock();
    ctl_->add_storage_locked(
        [p = std::shared_ptr<InnerPolicy>(dir_, &dir_->inner)](
            std::string_view n) -> std::shared_ptr<detail::device_access> {
          if (!p->exists(n)) return nullptr;
          auto d = p->open(n, open_mode::open_existing);
          if (!d) return nullptr;
          return std::make_shared<detail::access_to<inner_device>>(
              std::make_shared<inner_device>(std::move(*d)));
        },
        [w = std::weak_ptr<directory>(dir_)](const crash_spec& c, detail::splitmix64& rng) {
          if (auto d = w.lock()) undo_unsynced(*d, c, rng);
        });
  }

  enum class directory_sync : std::uint8_t { per_call, explicit_only };
  // How directory operations become durable (see the top of this file).
  void set_directory_sync(directory_sync m) {
    auto g = ctl_->lock();
    dir_->mode = m;
    if (m == directory_sync::per_call) dir_->unsynced.clear();
  }
  // The parent directory's fsync: every directory operation so far is
  // durable. Counted (directory_syncs()).
  // Counted as call_kind::sync_directory on the entry "."; a fault rule may
  // fail it (nothing becomes durable) or crash around it.
  std::error_code sync_directory() {
    auto g = ctl_->lock();
    return directory_call_locked(*file_locked("."), call_kind::sync_directory, [&] {
      dir_->unsynced.clear();
      ++dir_->syncs;
      return std::error_code{};
    });
  }
  // Test hooks: directory syncs so far; directory operations not yet durable.
  std::uint64_t directory_syncs() const {
    auto g = ctl_->lock();
    return dir_->syncs;
  }
  std::size_t unsynced_directory_ops() const {
    auto g = ctl_->lock();
    return dir_->unsynced.size();
  }

  // An open call: counted, and a fault rule may fail it or crash around it.
  result<device_type> open(std::string_view name, open_mode m) {
    auto g = ctl_->lock();
    auto file = file_locked(name);
    std::optional<result<inner_device>> r;
    auto ec = directory_call_locked(*file, call_kind::open, [&] {
      const bool created = m != open_mode::open_existing && !dir_->inner.exists(name);
      r.emplace(dir_->inner.open(name, m));
      if (*r && created) note_locked({dir_op::kind::created, std::string(name), {}, {}, false});
      return std::error_code{};
    });
    if (ec) return failure(ec, {}, std::string(name));
    if (!*r) return std::move(*r).error();
    return device_type(std::make_shared<inner_device>(std::move(**r)), ctl_, file);
  }

  bool exists(std::string_view name) {
    auto g = ctl_->lock();
    return dir_->inner.exists(name);
  }

  // Durable on success; the file's unflushed writes are dropped with it.
  // Counted; a fault rule may fail it (the file stays) or crash around it.
  std::error_code remove(std::string_view name) {
    auto g = ctl_->lock();
    return directory_call_locked(*file_locked(name), call_kind::remove, [&] {
      dir_op op{dir_op::kind::removed, std::string(name), {}, {}, false};
      if (dir_->mode == directory_sync::explicit_only) op.had_bytes = snapshot(dir_->inner, name, op.bytes);
      auto ec = dir_->inner.remove(name);
      if (!ec) {
        forget_locked(name);
        note_locked(std::move(op));
      }
      return ec;
    });
  }

  // Durable on success; the file keeps its journal and counters under `to`.
  // Counted on `from`; a fault rule may fail it (nothing moves) or crash
  // around it.
  std::error_code rename(std::string_view from, std::string_view to) {
    auto g = ctl_->lock();
    return directory_call_locked(*file_locked(from), call_kind::rename, [&] {
      dir_op op{dir_op::kind::renamed, std::string(to), std::string(from), {}, false};
      if (dir_->mode == directory_sync::explicit_only && from != to)
        op.had_bytes = snapshot(dir_->inner, to, op.bytes);
      auto ec = dir_->inner.rename(from, to);
      if (ec || from == to) return ec;
      note_locked(std::move(op));
      forget_locked(to);
      if (auto it = dir_->files.find(from); it != dir_->files.end()) {
        auto f = std::move(it->second);
        dir_->files.erase(it);
        f->name = std::string(to);
        dir_->files[std::string(to)] = std::move(f);
      }
      return ec;
    });
  }

  const std::shared_ptr<fault_controller>& controller() const noexcept { return ctl_; }
  InnerPolicy& inner() noexcept { return dir_->inner; }

 private:
  // A directory operation not yet durable, and what undoing it needs.
  struct dir_op {
    enum class kind : std::uint8_t { created, removed, renamed } what;
    std::string name;               // created / removed / the rename's target
    std::string from;               // the rename's source
    std::vector<std::byte> bytes;   // removed file, or the file a rename replaced
    bool had_bytes = false;
  };
  struct directory {
    explicit directory(InnerPolicy p) : inner(std::move(p)) {}
    InnerPolicy inner;
    std::map<std::string, std::shared_ptr<detail::file_state>, std::less<>> files;
    directory_sync mode = directory_sync::per_call;
    std::vector<dir_op> unsynced;
    std::uint64_t syncs = 0;
  };

  void note_locked(dir_op op) {
    if (dir_->mode == directory_sync::explicit_only) dir_->unsynced.push_back(std::move(op));
  }
  // The bytes of file `name` (whole logical blocks), if it exists.
  static bool snapshot(InnerPolicy& p, std::string_view name, std::vector<std::byte>& out) {
    if (!p.exists(name)) return false;
    auto d = p.open(name, open_mode::open_existing);
    if (!d) return false;
    const std::size_t b = d->logical_block_size();
    aligned_buffer buf(static_cast<std::size_t>(d->size() / b * b), b);
    if (buf.size() > 0 && d->read(0, buf.span())) return false;
    out.assign(buf.span().begin(), buf.span().end());
    return true;
  }
  static void restore(InnerPolicy& p, const std::string& name, const std::vector<std::byte>& bytes) {
    (void)p.remove(name);
    auto d = p.open(name, open_mode::create_new);
    if (!d) return;
    aligned_buffer buf(bytes.size(), d->logical_block_size());
    if (!bytes.empty()) std::memcpy(buf.data(), bytes.data(), bytes.size());
    if (d->grow(bytes.size())) return;
    if (!bytes.empty()) (void)d->write(0, buf.span());
    (void)d->flush();
  }
  // At a crash (controller mutex held): undoes the unsynced operations the
  // spec loses, newest first. The journals of the files involved were
  // reverted already; a file whose creation is undone loses its journal.
  static void undo_unsynced(directory& d, const crash_spec& c, detail::splitmix64& rng) {
    std::vector<bool> lose(d.unsynced.size());
    for (std::size_t i = 0; i < lose.size(); ++i)
      lose[i] = c.unsynced_directory == crash_spec::writes::lost ||
                (c.unsynced_directory == crash_spec::writes::random_subset && (rng.next() & 1u) == 0);
    for (std::size_t i = d.unsynced.size(); i-- > 0;) {
      if (!lose[i]) continue;
      auto& op = d.unsynced[i];
      switch (op.what) {
        case dir_op::kind::created:
          (void)d.inner.remove(op.name);
          if (auto it = d.files.find(op.name); it != d.files.end()) {
            it->second->unflushed.clear();
            d.files.erase(it);
          }
          break;
        case dir_op::kind::removed:
          if (op.had_bytes) restore(d.inner, op.name, op.bytes);
          break;
        case dir_op::kind::renamed:
          (void)d.inner.rename(op.name, op.from);
          if (auto it = d.files.find(op.name); it != d.files.end()) {
            auto f = std::move(it->second);
            d.files.erase(it);
            f->name = op.from;
            d.files[op.from] = std::move(f);
          }
          if (op.had_bytes) restore(d.inner, op.name, op.bytes);
          break;
      }
    }
    d.unsynced.clear();
  }

  // The counters and journal of file `name` (made on first use).
  std::shared_ptr<detail::file_state> file_locked(std::string_view name) {
    auto& file = dir_->files[std::string(name)];
    if (!file) file = ctl_->add_file_locked(std::string(name));
    return file;
  }

  // One call of kind `k` on the storage (an open or a directory operation),
  // counted on `file`: a fault rule may fail it before `op` runs (nothing
  // happens) or crash before or after `op` (the call returns
  // device_failed). Otherwise it returns what `op` returns.
  template <class Op>
  std::error_code directory_call_locked(detail::file_state& file, call_kind k, Op&& op) {
    using dk = fault_controller::decision::kind;
    auto d = ctl_->on_call_locked(file, k, 0, 0);
    if (d.what == dk::fail) return d.error;
    if (d.what == dk::crash_before) {
      (void)ctl_->crash_locked(d.crash);
      return make_error_code(errc::device_failed);
    }
    auto ec = op();
    if (d.what == dk::crash_after) {
      (void)ctl_->crash_locked(d.crash);
      return make_error_code(errc::device_failed);
    }
    return ec;
  }

  void forget_locked(std::string_view name) {
    if (auto it = dir_->files.find(name); it != dir_->files.end()) {
      it->second->unflushed.clear();
      dir_->files.erase(it);
    }
  }

  std::shared_ptr<directory> dir_;
  std::shared_ptr<fault_controller> ctl_;
};

static_assert(check_block_device<fault_injection<memory_device>>());
static_assert(check_io_policy<fault_injection_storage<memory_storage>>());

}  // namespace ktm::io
