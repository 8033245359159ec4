// ktm/io/unique_fd.hpp: an owned POSIX file descriptor.
//
// `unique_fd` closes its descriptor when destroyed. It is movable, not
// copyable; a moved-from or default-constructed unique_fd holds -1.
#pragma once

#include <unistd.h>

#include <utility>

namespace ktm::io {

class unique_fd {
 public:
  unique_fd() noexcept = default;
  // Adopts `fd` (which may be -1).
  explicit unique_fd(int fd) noexcept : fd_(fd) {}
  unique_fd(const unique_fd&) = delete;
  unique_fd& operator=(const unique_fd&) = delete;
  unique_fd(unique_fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~unique_fd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }

  // Gives up ownership without closing.
  int release() noexcept { return std::exchange(fd_, -1); }

  // Closes the held descriptor (errors of close are ignored: on Linux the
  // descriptor is gone either way, and durability comes from flush()).
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

}  // namespace ktm::io
