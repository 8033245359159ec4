// ktm/io/posix_io.hpp: whole-buffer positional I/O on a file descriptor.
//
// pread and pwrite may move fewer bytes than asked (signals, pipes, the 2 GiB
// per-call cap, direct I/O limits) or fail with EINTR. These helpers loop until
// the whole span has moved, so callers see "all bytes or an error".
//
// Contract: `granule` is the alignment every partial transfer must keep (1 for
// buffered files, the logical block size for O_DIRECT); a partial transfer
// that breaks it, or one that makes no progress (end of file), is reported as
// errc::short_io. Other errors are errno values mapped by from_errno, except
// that the caller may ask to see the raw errno through `raw_errno`.
#pragma once

#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

#include "ktm/error.hpp"

namespace ktm::io::detail {

// Moves exactly `len` bytes at `off` with `op(done)` (one pread or pwrite of
// the rest, starting `done` bytes in), retrying EINTR and partial transfers.
// On failure `*raw_errno` (if given) receives the errno of the failing call,
// or 0 for a short transfer: no progress, or a partial transfer that is not a
// multiple of `granule`.
template <class Op>
inline std::error_code transfer_full(std::size_t len, std::size_t granule, int* raw_errno, Op op) {
  std::size_t done = 0;
  while (done < len) {
    const ::ssize_t n = op(done);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (raw_errno) *raw_errno = errno;
      return from_errno(errno);
    }
    const auto moved = static_cast<std::size_t>(n);
    if (moved == 0 || (done + moved < len && moved % granule != 0)) {
      if (raw_errno) *raw_errno = 0;
      return make_error_code(errc::short_io);
    }
    done += moved;
  }
  return {};
}

// Reads exactly out.size() bytes at `off`; see transfer_full for failures.
inline std::error_code pread_full(int fd, std::uint64_t off, std::span<std::byte> out,
                                  std::size_t granule = 1, int* raw_errno = nullptr) {
  return transfer_full(out.size(), granule, raw_errno, [&](std::size_t done) {
    return ::pread(fd, out.data() + done, out.size() - done, static_cast<::off_t>(off + done));
  });
}

// Writes exactly in.size() bytes at `off`; same contract as pread_full.
inline std::error_code pwrite_full(int fd, std::uint64_t off, std::span<const std::byte> in,
                                   std::size_t granule = 1, int* raw_errno = nullptr) {
  return transfer_full(in.size(), granule, raw_errno, [&](std::size_t done) {
    return ::pwrite(fd, in.data() + done, in.size() - done, static_cast<::off_t>(off + done));
  });
}

// fdatasync, retried on EINTR only. Any other failure is final for the caller
// (see the fail-stop law in ktm/concepts/block_device.hpp).
inline std::error_code datasync(int fd) {
  for (;;) {
#if defined(__APPLE__)
    const int r = ::fsync(fd);
#else
    const int r = ::fdatasync(fd);
#endif
    if (r == 0) return {};
    if (errno != EINTR) return from_errno(errno);
  }
}

}  // namespace ktm::io::detail
