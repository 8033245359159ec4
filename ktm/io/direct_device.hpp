// ktm/io/direct_device.hpp: unbuffered I/O (O_DIRECT) on a file or raw disk.
//
// `direct_device` bypasses the page cache. Every buffer address, offset and
// length must be a multiple of logical_block_size(); anything else is
// rejected with errc::misaligned before the kernel is called (and an EINVAL
// the kernel still returns on a read or write is reported as misaligned too:
// it means the real alignment is stricter than detected). Use aligned_buffer
// (ktm/io/aligned_buffer.hpp) for buffers.
//
// Durability: O_DIRECT only skips the page cache; the data may still sit in
// the drive's volatile cache. flush() is always fdatasync, which on Linux
// sends a cache flush to the device. With direct_options::dsync the file is
// also opened O_DSYNC, so each write is durable when it returns (FUA where the
// device has it); flush() remains correct and cheap.
//
// Logical block size, detected at open:
//   - a block device: BLKSSZGET (its logical sector size: 512 or 4096).
//   - a regular file: statx(STATX_DIOALIGN) where the kernel has it (Linux
//     6.1+): the larger of the memory and offset alignments. If the kernel
//     says direct I/O is not supported for the file: errc::unsupported.
//   - otherwise the file system block size (st_blksize, clamped to a power of
//     two in [512, 65536], else 4096). We prefer it over 512 because it is
//     always a multiple of the underlying device's logical sector, so it is
//     safe on 4Kn disks, at the cost of coarser alignment on 512e disks.
// direct_options::logical_block_size may raise it (any power-of-two multiple
// of the detected size is valid for direct I/O; useful to emulate 4 KiB
// sectors on a 512-byte device).
//
// A file system that refuses O_DIRECT (open fails with EINVAL, e.g. tmpfs on
// older kernels, procfs) yields errc::unsupported; a file created by that
// failed open is removed again.
//
// Fail-stop and grow as for posix_file; grow(n) also needs n aligned.
#pragma once

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#if defined(__linux__)
#include <linux/fs.h>
#endif

#include <algorithm>
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
#include "ktm/io/posix_file.hpp"
#include "ktm/io/posix_io.hpp"
#include "ktm/io/unique_fd.hpp"
#include "ktm/result.hpp"

namespace ktm::io {

struct direct_options {
  bool dsync = false;                  // also open O_DSYNC: each write durable on return
  std::size_t logical_block_size = 0;  // 0: detect; else a power-of-two multiple of it
};

class direct_device {
 public:
  direct_device() noexcept = default;

  // Adopts `f`, which the caller opened with O_DIRECT, and whose alignment
  // requirement `logical_block_size` (a power of two) satisfies.
  direct_device(posix_file f, std::size_t logical_block_size) noexcept
      : file_(std::move(f)), lbs_(logical_block_size) {}

  // Opens a file or raw block device at `path` for direct I/O.
  static result<direct_device> open(std::string_view path, open_mode m = open_mode::open_existing,
                                    direct_options o = {}) {
    auto f = posix_file::open(path, m, flags(o));
    if (!f) return failure(refusal(f.error().code), {}, std::string(path));
    return adopt(std::move(*f), o, path);
  }

  // The logical block size direct I/O on `fd` needs (see the header comment).
  static result<std::size_t> detect_logical_block_size(int fd) {
    struct ::stat st {};
    if (::fstat(fd, &st) != 0) return from_errno(errno);
#if defined(__linux__)
    if (S_ISBLK(st.st_mode)) {
      int ss = 0;
      if (::ioctl(fd, BLKSSZGET, &ss) != 0) return from_errno(errno);
      if (!power_of_two(static_cast<std::size_t>(ss))) return errc::unsupported;
      return static_cast<std::size_t>(ss);
    }
#endif
#if defined(STATX_DIOALIGN)
    struct ::statx sx {};
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) == 0 &&
        (sx.stx_mask & STATX_DIOALIGN) != 0) {
      if (sx.stx_dio_offset_align == 0) return errc::unsupported;  // no direct I/O here
      const std::size_t a = std::max<std::size_t>(sx.stx_dio_mem_align, sx.stx_dio_offset_align);
      if (!power_of_two(a)) return errc::unsupported;
      return a;
    }
#endif
    const auto bs = static_cast<std::size_t>(st.st_blksize);
    return power_of_two(bs) && bs >= 512 && bs <= 65536 ? bs : std::size_t{4096};
  }

  std::uint64_t size() const { return file_.size(); }
  std::size_t logical_block_size() const noexcept { return lbs_; }

  std::error_code read(std::uint64_t off, std::span<std::byte> out) {
    if (file_.failed()) return make_error_code(errc::device_failed);
    if (!aligned(off, out.size(), out.data())) return make_error_code(errc::misaligned);
    if (!within(off, out.size())) return make_error_code(errc::out_of_range);
    int e = 0;
    auto ec = detail::pread_full(file_.fd(), off, out, lbs_, &e);
    return e == EINVAL ? make_error_code(errc::misaligned) : ec;
  }

  std::error_code write(std::uint64_t off, std::span<const std::byte> in) {
    if (file_.failed()) return make_error_code(errc::device_failed);
    if (!aligned(off, in.size(), in.data())) return make_error_code(errc::misaligned);
    if (!within(off, in.size())) return make_error_code(errc::out_of_range);
    int e = 0;
    auto ec = detail::pwrite_full(file_.fd(), off, in, lbs_, &e);
    return e == EINVAL ? make_error_code(errc::misaligned) : ec;
  }

  // fdatasync (see "Durability"); a failure is final (fail-stop).
  std::error_code flush() { return file_.flush(); }

  std::error_code grow(std::uint64_t n) {
    if (file_.failed()) return make_error_code(errc::device_failed);
    if (n % lbs_ != 0) return make_error_code(errc::misaligned);
    return file_.grow(n);
  }

  posix_file& file() noexcept { return file_; }
  const posix_file& file() const noexcept { return file_; }

 private:
  friend class direct_storage;

  static int flags(const direct_options& o) {
#if defined(O_DIRECT)
    return O_DIRECT | (o.dsync ? O_DSYNC : 0);
#else
    (void)o;
    return -1;
#endif
  }

  // EINVAL from an O_DIRECT open means the file system refuses direct I/O.
  static std::error_code refusal(std::error_code ec) {
    return ec == make_error_code(errc::invalid_argument) ? make_error_code(errc::unsupported) : ec;
  }

  static result<direct_device> adopt(posix_file f, const direct_options& o, std::string_view name) {
    auto lbs = detect_logical_block_size(f.fd());
    if (!lbs) return failure(lbs.code(), {}, std::string(name));
    std::size_t b = *lbs;
    if (o.logical_block_size != 0) {
      if (!power_of_two(o.logical_block_size) || o.logical_block_size % b != 0)
        return failure(errc::invalid_argument, {}, std::string(name));
      b = o.logical_block_size;
    }
    return direct_device(std::move(f), b);
  }

  static bool power_of_two(std::size_t n) noexcept { return n != 0 && (n & (n - 1)) == 0; }

  bool aligned(std::uint64_t off, std::size_t len, const void* p) const noexcept {
    return (off | len | reinterpret_cast<std::uintptr_t>(p)) % lbs_ == 0;
  }
  bool within(std::uint64_t off, std::size_t len) const {
    const std::uint64_t n = size();
    return off <= n && len <= n - off;
  }

  posix_file file_;
  std::size_t lbs_ = 1;
};

static_assert(check_block_device<direct_device>());

// A directory of named direct_devices, all opened with the same options.
class direct_storage {
 public:
  using device_type = direct_device;

  // `root` must be an existing directory.
  explicit direct_storage(std::string root, direct_options o = {})
      : dir_(std::move(root)), opts_(o) {}

  // As posix_storage::open; errc::unsupported when the file system refuses
  // O_DIRECT (a file created by this call is then removed again).
  result<direct_device> open(std::string_view name, open_mode m) {
    const int fl = direct_device::flags(opts_);
    if (fl < 0) return failure(errc::unsupported, {}, std::string(name));
    auto fd = dir_.open(name, m, fl);
    if (!fd) return failure(direct_device::refusal(fd.error().code), {}, std::string(name));
    return direct_device::adopt(posix_file(std::move(*fd)), opts_, name);
  }
  bool exists(std::string_view name) { return dir_.exists(name); }
  std::error_code remove(std::string_view name) { return dir_.remove(name); }
  std::error_code rename(std::string_view from, std::string_view to) {
    return dir_.rename(from, to);
  }

  const posix_directory& directory() const noexcept { return dir_; }
  const direct_options& options() const noexcept { return opts_; }

 private:
  posix_directory dir_;
  direct_options opts_;
};

static_assert(check_io_policy<direct_storage>());

}  // namespace ktm::io
