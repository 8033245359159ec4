// ktm/log/detail/aligned_buffer.hpp: an owned byte buffer at an alignment
// (direct I/O devices need buffer addresses aligned to their block size).
#pragma once

#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace ktm::log::detail {

class aligned_buffer {
 public:
  aligned_buffer() = default;
  // Zeroed unless `zero` is false (a buffer only ever read into).
  aligned_buffer(std::size_t size, std::size_t align, bool zero = true)
      : p_(static_cast<std::byte*>(::operator new(size, std::align_val_t(align)))), n_(size), a_(align) {
    if (zero) std::memset(p_, 0, n_);
  }
  aligned_buffer(aligned_buffer&& o) noexcept
      : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), a_(o.a_) {}
  aligned_buffer& operator=(aligned_buffer&& o) noexcept {
    if (this != &o) {
      release();
      p_ = std::exchange(o.p_, nullptr);
      n_ = std::exchange(o.n_, 0);
      a_ = o.a_;
    }
    return *this;
  }
  ~aligned_buffer() { release(); }

  std::byte* data() const noexcept { return p_; }
  std::size_t size() const noexcept { return n_; }
  std::span<std::byte> span() const noexcept { return {p_, n_}; }

 private:
  void release() noexcept {
    if (p_) ::operator delete(p_, std::align_val_t(a_));
    p_ = nullptr;
  }
  std::byte* p_ = nullptr;
  std::size_t n_ = 0;
  std::size_t a_ = 1;
};

}  // namespace ktm::log::detail
