// benchmarks/support/raw_io.hpp: the raw-device baselines.
//
// What the log is compared with: plain pwrite to a preallocated file, with
// and without fdatasync, through the same file system as the log under test.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace ktm::bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// How a raw_file's first bytes are made ready before it is timed: reserved
// (fallocate: unwritten extents, so a flush after the first write to each
// also writes the extent map) or written with zeros (what the log's
// preformat_containers does to its containers).
enum class prealloc_mode { reserve, write_zeros };

class raw_file {
 public:
  raw_file(const std::string& path, std::uint64_t prealloc, prealloc_mode mode = prealloc_mode::reserve) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error("open " + path);
    if (mode == prealloc_mode::write_zeros) {
      const std::vector<std::byte> zeros(1 << 20, std::byte{0});
      for (std::uint64_t off = 0; off < prealloc; off += zeros.size())
        pwrite_all(zeros.data(), static_cast<std::size_t>(std::min<std::uint64_t>(zeros.size(), prealloc - off)), off);
    } else if (prealloc && ::posix_fallocate(fd_, 0, static_cast<off_t>(prealloc)) != 0) {
      throw std::runtime_error("fallocate " + path);
    }
    ::fdatasync(fd_);
  }
  raw_file(const raw_file&) = delete;
  raw_file& operator=(const raw_file&) = delete;
  ~raw_file() { ::close(fd_); }

  void pwrite_all(const std::byte* p, std::size_t n, std::uint64_t off) {
    while (n) {
      auto w = ::pwrite(fd_, p, n, static_cast<off_t>(off));
      if (w <= 0) throw std::runtime_error("pwrite");
      p += w, n -= static_cast<std::size_t>(w), off += static_cast<std::uint64_t>(w);
    }
  }
  void sync() {
    if (::fdatasync(fd_) != 0) throw std::runtime_error("fdatasync");
  }
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

// Bytes per second of sequential pwrite of `total` bytes in `record`-sized
// writes, without any flush (what an unforced log append is compared with).
inline double raw_sequential_write_rate(const std::string& path, std::size_t record,
                                        std::uint64_t total) {
  raw_file f(path, total);
  std::vector<std::byte> buf(record, std::byte{0x5a});
  auto t0 = clock_type::now();
  for (std::uint64_t off = 0; off + record <= total; off += record) f.pwrite_all(buf.data(), record, off);
  return static_cast<double>(total) / seconds_since(t0);
}

}  // namespace ktm::bench
