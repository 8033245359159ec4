// ktm/log/crc32c.hpp: CRC-32C (Castagnoli), the checksum of every log
// structure on disk.
//
// crc32c(data)             the CRC of a byte range (initial value 0)
// crc32c_extend(crc, data) continues a CRC over more bytes, so that
//                          crc32c_extend(crc32c(a), b) == crc32c(a ++ b)
//
// Software: slicing-by-8 over tables built at compile time. On x86-64 with
// GCC or Clang the SSE4.2 crc32 instruction is used when the CPU has it
// (checked once at run time). Both give the same values; tests check the
// known vectors of RFC 3720 against both.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define KTM_CRC32C_HAVE_SSE42 1
#include <nmmintrin.h>
#else
#define KTM_CRC32C_HAVE_SSE42 0
#endif

namespace ktm::log {
namespace detail {

inline constexpr std::uint32_t crc32c_poly = 0x82f63b78u;  // reflected 0x1edc6f41

using crc_tables = std::array<std::array<std::uint32_t, 256>, 8>;

consteval crc_tables make_crc_tables() {
  crc_tables t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ crc32c_poly : c >> 1;
    t[0][i] = c;
  }
  for (std::size_t s = 1; s < 8; ++s)
    for (std::size_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
  return t;
}

inline constexpr crc_tables crc_table = make_crc_tables();

// Works on the inverted register (~crc), as both implementations do.
inline std::uint32_t crc32c_soft(std::uint32_t reg, const unsigned char* p, std::size_t n) noexcept {
  const auto& t = crc_table;
  while (n >= 8) {
    std::uint32_t lo, hi;
    std::memcpy(&lo, p, 4);
    std::memcpy(&hi, p + 4, 4);
    if constexpr (std::endian::native == std::endian::big) {
      lo = __builtin_bswap32(lo);
      hi = __builtin_bswap32(hi);
    }
    lo ^= reg;
    reg = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
          t[3][hi & 0xff] ^ t[2][(hi >> 8) & 0xff] ^ t[1][(hi >> 16) & 0xff] ^ t[0][hi >> 24];
    p += 8;
    n -= 8;
  }
  while (n--) reg = (reg >> 8) ^ t[0][(reg ^ *p++) & 0xff];
  return reg;
}

#if KTM_CRC32C_HAVE_SSE42
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_hw(std::uint32_t reg,
                                                                   const unsigned char* p,
                                                                   std::size_t n) noexcept {
  std::uint64_t r = reg;
  while (n >= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    r = _mm_crc32_u64(r, v);
    p += 8;
    n -= 8;
  }
  auto r32 = static_cast<std::uint32_t>(r);
  while (n--) r32 = _mm_crc32_u8(r32, *p++);
  return r32;
}

inline bool cpu_has_sse42() noexcept {
  static const bool has = __builtin_cpu_supports("sse4.2");
  return has;
}
#endif

}  // namespace detail

// Continues `crc` (a value returned by crc32c or crc32c_extend) over `data`.
inline std::uint32_t crc32c_extend(std::uint32_t crc, const void* data, std::size_t n) noexcept {
  const auto* p = static_cast<const unsigned char*>(data);
#if KTM_CRC32C_HAVE_SSE42
  if (detail::cpu_has_sse42()) return ~detail::crc32c_hw(~crc, p, n);
#endif
  return ~detail::crc32c_soft(~crc, p, n);
}

inline std::uint32_t crc32c_extend(std::uint32_t crc, std::span<const std::byte> data) noexcept {
  return crc32c_extend(crc, data.data(), data.size());
}

inline std::uint32_t crc32c(const void* data, std::size_t n) noexcept {
  return crc32c_extend(0, data, n);
}

inline std::uint32_t crc32c(std::span<const std::byte> data) noexcept {
  return crc32c_extend(0, data.data(), data.size());
}

// The portable implementation alone (tests compare it with the default).
inline std::uint32_t crc32c_portable(const void* data, std::size_t n) noexcept {
  return ~detail::crc32c_soft(~0u, static_cast<const unsigned char*>(data), n);
}

}  // namespace ktm::log
