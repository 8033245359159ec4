// ktm/io/posix_directory.hpp: the directory under a file-backed I/O policy.
//
// `posix_directory` names files inside one directory and makes every change
// to that directory durable: after a file is created, renamed or removed, the
// directory itself is fsync'd before the call returns (without it a crash may
// forget the new name even though the file's data was flushed; see ALICE,
// OSDI'14, and LevelDB bugs #189/#193).
//
// Names are single path components: not empty, not "." or "..", no '/' and no
// NUL (errc::invalid_argument otherwise), so a name read from a damaged or
// hostile log can never reach outside the directory.
//
// Copies share one counter of directory syncs (a test hook).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/error.hpp"
#include "ktm/io/unique_fd.hpp"
#include "ktm/result.hpp"

namespace ktm::io {

class posix_directory {
 public:
  // `root` is the directory's path; it is not created here.
  explicit posix_directory(std::string root)
      : root_(root.empty() ? std::string(".") : std::move(root)),
        syncs_(std::make_shared<std::atomic<std::uint64_t>>(0)) {}

  const std::string& root() const noexcept { return root_; }

  static bool valid_name(std::string_view n) noexcept {
    return !n.empty() && n != "." && n != ".." && n.find('/') == std::string_view::npos &&
           n.find('\0') == std::string_view::npos;
  }

  std::string path_of(std::string_view name) const {
    std::string p = root_;
    if (p.back() != '/') p += '/';
    p += name;
    return p;
  }

  // Opens `name` read-write with `extra_flags` added (O_DIRECT, O_DSYNC...).
  // A file this call creates is first created (mode 0644) without the extra
  // flags and the directory is fsync'd; then it is opened with them. If that
  // second open fails, the new file is removed again, so a refused open never
  // leaves a stray file. The failure names the file.
  result<unique_fd> open(std::string_view name, open_mode m, int extra_flags = 0) const {
    if (!valid_name(name)) return failure(errc::invalid_argument, {}, std::string(name));
    const std::string path = path_of(name);
    for (int attempt = 0; attempt < 8; ++attempt) {
      if (m != open_mode::create_new) {
        unique_fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | extra_flags));
        if (fd) return fd;
        if (errno != ENOENT || m == open_mode::open_existing)
          return failure(from_errno(errno), {}, std::string(name));
      }
      unique_fd created(::open(path.c_str(), O_RDWR | O_CLOEXEC | O_CREAT | O_EXCL, 0644));
      if (!created) {
        if (errno == EEXIST && m == open_mode::open_or_create) continue;  // lost a race
        return failure(from_errno(errno), {}, std::string(name));
      }
      if (auto ec = sync()) {
        created.reset();
        ::unlink(path.c_str());
        return failure(ec, {}, std::string(name));
      }
      if (extra_flags == 0) return created;
      created.reset();
      unique_fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC | extra_flags));
      if (fd) return fd;
      const int e = errno;
      ::unlink(path.c_str());
      (void)sync();
      return failure(from_errno(e), {}, std::string(name));
    }
    return failure(errc::io_error, {}, std::string(name));
  }

  bool exists(std::string_view name) const {
    if (!valid_name(name)) return false;
    struct ::stat st {};
    return ::stat(path_of(name).c_str(), &st) == 0;
  }

  // Unlinks `name`, then fsyncs the directory.
  std::error_code remove(std::string_view name) const {
    if (!valid_name(name)) return make_error_code(errc::invalid_argument);
    if (::unlink(path_of(name).c_str()) != 0) return from_errno(errno);
    return sync();
  }

  // Renames `from` to `to` (replacing `to` if it exists), then fsyncs.
  std::error_code rename(std::string_view from, std::string_view to) const {
    if (!valid_name(from) || !valid_name(to)) return make_error_code(errc::invalid_argument);
    if (::rename(path_of(from).c_str(), path_of(to).c_str()) != 0) return from_errno(errno);
    return sync();
  }

  // fsyncs the directory itself.
  std::error_code sync() const {
    unique_fd d(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d) return from_errno(errno);
    for (;;) {
      if (::fsync(d.get()) == 0) break;
      if (errno != EINTR) return from_errno(errno);
    }
    syncs_->fetch_add(1, std::memory_order_relaxed);
    return {};
  }

  // Test hook: how many directory fsyncs succeeded (shared by copies).
  std::uint64_t sync_count() const noexcept { return syncs_->load(std::memory_order_relaxed); }

 private:
  std::string root_;
  std::shared_ptr<std::atomic<std::uint64_t>> syncs_;
};

}  // namespace ktm::io
