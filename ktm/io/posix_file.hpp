// ktm/io/posix_file.hpp: a block device on a POSIX file, and a directory of them.
//
// `posix_file` is a regular file or a block device opened read-write. Reads
// and writes use pread/pwrite in a loop (EINTR and short transfers handled),
// flush() is fdatasync, grow() is fallocate (so ENOSPC shows up at grow time,
// not at the next write), or ftruncate where fallocate is not supported.
// The logical block size is 1: the page cache absorbs any alignment.
//
// Range checks use the size this handle last saw (from open, grow or
// size()) and ask the file again only when that says "out of range": files
// only grow, so a write costs one pwrite and no fstat (a stat per write was a
// third of the syscalls of a forced log append).
//
// Fail-stop: once flush() has failed, the kernel may have dropped the dirty
// pages and marked them clean, so a later fdatasync that "succeeds" proves
// nothing (PostgreSQL, "fsyncgate" 2018). From then on every read, write,
// flush and grow of this posix_file returns errc::device_failed. The state
// belongs to this handle; reopen the file to try again after recovery.
//
// A block device cannot grow: grow(n) beyond its size returns errc::no_space.
//
// `posix_storage` is an io_policy rooted at a directory (see posix_directory
// for the naming rules and the directory fsyncs after create/rename/remove).
//
// Thread safety: distinct calls on one posix_file may run concurrently (pread
// and pwrite are positional); moving or destroying it needs exclusive access.
#pragma once

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/fs.h>
#endif

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include "ktm/concepts/block_device.hpp"
#include "ktm/concepts/io_policy.hpp"
#include "ktm/error.hpp"
#include "ktm/io/posix_directory.hpp"
#include "ktm/io/posix_io.hpp"
#include "ktm/io/unique_fd.hpp"
#include "ktm/result.hpp"

namespace ktm::io {

class posix_file {
 public:
  // A closed file: every call fails.
  posix_file() noexcept = default;

  // Adopts an open, read-write descriptor.
  explicit posix_file(unique_fd fd) noexcept : fd_(std::move(fd)) {
    struct ::stat st {};
    if (fd_ && ::fstat(fd_.get(), &st) == 0) blk_ = S_ISBLK(st.st_mode);
    (void)size();
  }

  posix_file(posix_file&& o) noexcept
      : fd_(std::move(o.fd_)), blk_(o.blk_), failed_(o.failed_.exchange(false)),
        known_size_(o.known_size_.exchange(0)) {}
  posix_file& operator=(posix_file&& o) noexcept {
    fd_ = std::move(o.fd_);
    blk_ = o.blk_;
    failed_ = o.failed_.exchange(false);
    known_size_ = o.known_size_.exchange(0);
    return *this;
  }

  // Opens `path` (a file or a block device). `extra_flags` are added to
  // O_RDWR | O_CLOEXEC. A file that this call creates has its parent
  // directory fsync'd (see posix_directory::open).
  static result<posix_file> open(std::string_view path, open_mode m = open_mode::open_existing,
                                 int extra_flags = 0) {
    auto [dir, name] = split(path);
    auto fd = posix_directory(std::move(dir)).open(name, m, extra_flags);
    if (!fd) return failure(fd.error().code, {}, std::string(path));
    return posix_file(std::move(*fd));
  }

  // Bytes addressable now; 0 if the descriptor is closed or unusable.
  std::uint64_t size() const {
    if (!fd_) return 0;
    std::uint64_t n = 0;
#if defined(__linux__)
    if (blk_) {
      if (::ioctl(fd_.get(), BLKGETSIZE64, &n) != 0) n = 0;
      known_size_ = n;
      return n;
    }
#endif
    struct ::stat st {};
    if (::fstat(fd_.get(), &st) == 0) n = static_cast<std::uint64_t>(st.st_size);
    known_size_ = n;
    return n;
  }

  std::size_t logical_block_size() const noexcept { return 1; }

  std::error_code read(std::uint64_t off, std::span<std::byte> out) {
    if (failed_) return make_error_code(errc::device_failed);
    if (!within(off, out.size())) return make_error_code(errc::out_of_range);
    return detail::pread_full(fd_.get(), off, out);
  }

  std::error_code write(std::uint64_t off, std::span<const std::byte> in) {
    if (failed_) return make_error_code(errc::device_failed);
    if (!within(off, in.size())) return make_error_code(errc::out_of_range);
    return detail::pwrite_full(fd_.get(), off, in);
  }

  // fdatasync. A failure is final: see "Fail-stop" above.
  std::error_code flush() {
    if (failed_) return make_error_code(errc::device_failed);
    auto ec = detail::datasync(fd_.get());
    if (ec) failed_ = true;
    return ec;
  }

  // Extends the file to `n` bytes of zeros; n <= size() does nothing.
  std::error_code grow(std::uint64_t n) {
    if (failed_) return make_error_code(errc::device_failed);
    if (!fd_) return make_error_code(errc::io_error);
    const std::uint64_t cur = size();
    if (n <= cur) return {};
    if (blk_) return make_error_code(errc::no_space);
    if (n > static_cast<std::uint64_t>(INT64_MAX)) return make_error_code(errc::out_of_range);
#if defined(__linux__)
    for (;;) {
      if (::fallocate(fd_.get(), 0, static_cast<::off_t>(cur), static_cast<::off_t>(n - cur)) == 0) {
        (void)size();
        return {};
      }
      if (errno == EINTR) continue;
      if (errno != EOPNOTSUPP && errno != ENOSYS) return from_errno(errno);
      break;  // the file system cannot preallocate: extend sparsely
    }
#endif
    for (;;) {
      if (::ftruncate(fd_.get(), static_cast<::off_t>(n)) == 0) {
        (void)size();
        return {};
      }
      if (errno != EINTR) return from_errno(errno);
    }
  }

  int fd() const noexcept { return fd_.get(); }
  bool is_block_device() const noexcept { return blk_; }
  // True once a flush has failed (see "Fail-stop").
  bool failed() const noexcept { return failed_; }

 private:
  static std::pair<std::string, std::string_view> split(std::string_view path) {
    const auto slash = path.rfind('/');
    if (slash == std::string_view::npos) return {".", path};
    return {slash == 0 ? std::string("/") : std::string(path.substr(0, slash)),
            path.substr(slash + 1)};
  }

  bool within(std::uint64_t off, std::size_t len) const {
    std::uint64_t n = known_size_.load(std::memory_order_relaxed);
    if (off <= n && len <= n - off) return true;
    n = size();  // grown since (through another handle)?
    return off <= n && len <= n - off;
  }

  unique_fd fd_;
  bool blk_ = false;
  std::atomic<bool> failed_{false};
  mutable std::atomic<std::uint64_t> known_size_{0};  // last size seen
};

static_assert(check_block_device<posix_file>());

// A directory of named posix_files. Copies share the directory-sync counter.
class posix_storage {
 public:
  using device_type = posix_file;
  // A write is a copy into the page cache: the log writes full blocks from a
  // thread of its own (see ktm/log/detail/write_behind.hpp).
  static constexpr bool write_behind = true;

  // `root` must be an existing directory; it is not created here.
  explicit posix_storage(std::string root) : dir_(std::move(root)) {}

  result<posix_file> open(std::string_view name, open_mode m) {
    auto fd = dir_.open(name, m);
    if (!fd) return std::move(fd).error();
    return posix_file(std::move(*fd));
  }
  bool exists(std::string_view name) { return dir_.exists(name); }
  std::error_code remove(std::string_view name) { return dir_.remove(name); }
  std::error_code rename(std::string_view from, std::string_view to) {
    return dir_.rename(from, to);
  }

  const posix_directory& directory() const noexcept { return dir_; }

 private:
  posix_directory dir_;
};

static_assert(check_io_policy<posix_storage>());

}  // namespace ktm::io
