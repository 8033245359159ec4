// ktm/log/detail/crc32c_hw_tail.hpp: the last bytes of a CRC-32C by the
// SSE4.2 crc32 instruction, shared by the crc32 chains (ktm/log/crc32c.hpp)
// and the fold (crc32c_fold.hpp), which both end with it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define KTM_CRC32C_HAVE_SSE42 1
#include <nmmintrin.h>
#else
#define KTM_CRC32C_HAVE_SSE42 0
#endif

namespace ktm::log::detail {

#if KTM_CRC32C_HAVE_SSE42
// Chain r over [p, p + n): 8 bytes at a time, then one 4-, 2- and 1-byte
// step at most (a byte loop is latency-bound, ~3 cycles a byte). Returns the
// chain, not inverted.
__attribute__((target("sse4.2"), always_inline)) inline std::uint32_t crc32c_hw_tail(
    std::uint64_t r, const unsigned char* p, std::size_t n) noexcept {
  for (; n >= 8; p += 8, n -= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    r = _mm_crc32_u64(r, v);
  }
  auto r32 = static_cast<std::uint32_t>(r);
  if (n >= 4) {
    std::uint32_t v;
    std::memcpy(&v, p, 4);
    r32 = _mm_crc32_u32(r32, v);
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    std::uint16_t v;
    std::memcpy(&v, p, 2);
    r32 = _mm_crc32_u16(r32, v);
    p += 2;
    n -= 2;
  }
  if (n >= 1) r32 = _mm_crc32_u8(r32, *p);
  return r32;
}

#endif

}  // namespace ktm::log::detail
