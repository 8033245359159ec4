// ktm/io/aligned_buffer.hpp: a zero-filled byte buffer at a chosen alignment.
//
// Direct I/O (O_DIRECT, raw devices) needs buffers whose address is a multiple
// of the device's logical block size. `aligned_buffer` owns such memory: its
// data() is aligned to alignment(), and size() bytes are usable. Copies are
// deep; a moved-from buffer is empty.
#pragma once

#include <cassert>
#include <cstddef>
#include <cstring>
#include <new>
#include <span>
#include <utility>

namespace ktm::io {

class aligned_buffer {
 public:
  aligned_buffer() noexcept = default;

  // `size` zero bytes at `alignment`, which must be a power of two.
  explicit aligned_buffer(std::size_t size, std::size_t alignment = 4096)
      : size_(size), align_(alignment < alignof(std::max_align_t) ? alignof(std::max_align_t)
                                                                  : alignment) {
    assert(alignment != 0 && (alignment & (alignment - 1)) == 0);
    if (size_ != 0) {
      data_ = static_cast<std::byte*>(
          ::operator new(round_up(size_, align_), std::align_val_t(align_)));
      std::memset(data_, 0, size_);
    }
  }

  aligned_buffer(const aligned_buffer& o) : aligned_buffer(o.size_, o.align_) {
    if (size_ != 0) std::memcpy(data_, o.data_, size_);
  }
  aligned_buffer(aligned_buffer&& o) noexcept
      : data_(std::exchange(o.data_, nullptr)),
        size_(std::exchange(o.size_, 0)),
        align_(o.align_) {}
  aligned_buffer& operator=(aligned_buffer o) noexcept {
    swap(o);
    return *this;
  }
  ~aligned_buffer() {
    if (data_) ::operator delete(data_, std::align_val_t(align_));
  }

  void swap(aligned_buffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(align_, o.align_);
  }

  std::byte* data() noexcept { return data_; }
  const std::byte* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  // The guaranteed alignment of data() (at least alignof(std::max_align_t)).
  std::size_t alignment() const noexcept { return align_; }

  std::span<std::byte> span() noexcept { return {data_, size_}; }
  std::span<const std::byte> span() const noexcept { return {data_, size_}; }
  std::byte& operator[](std::size_t i) noexcept { return data_[i]; }
  const std::byte& operator[](std::size_t i) const noexcept { return data_[i]; }

  // The least multiple of `a` (a power of two) that is >= n.
  static constexpr std::size_t round_up(std::size_t n, std::size_t a) noexcept {
    return (n + a - 1) & ~(a - 1);
  }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t align_ = alignof(std::max_align_t);
};

}  // namespace ktm::io
