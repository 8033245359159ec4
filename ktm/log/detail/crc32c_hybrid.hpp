// ktm/log/detail/crc32c_hybrid.hpp: CRC-32C of long ranges (no copy) by the
// fold and four crc32 chains at once. Included by ktm/log/crc32c.hpp only.
//
// The fold (crc32c_fold.hpp) is bound by VPCLMULQDQ: 256 bytes a round take
// 16 cycles on the development machine, while the crc32 instruction, a
// different unit, sits idle. Here the range is cut into a head of
// 256 + 256·m + 64·j bytes for the fold, then four chains of 32·m bytes for
// crc32 (each started from a zero register, 32 bytes of each in each of the
// fold's first m rounds), then fewer than 64 bytes:
//
//   [ fold: head ........................ ][ c0 ][ c1 ][ c2 ][ c3 ][ tail ]
//
// The register after the head followed by chain c is the register after the
// head shifted over c's length in zero bytes, xor c's own register (the
// update is linear). Shifting a register R over L bytes multiplies it by
// x^(8L) mod P. With a and b reflected 32-bit values, crc32_u64(0,
// clmul(a, b)) is a·b·x^33 mod P (the carry-less product of reflected values
// is x·a·b, and crc32 of 64 bits multiplies by x^32), so R·x^(8L) is
// crc32_u64(0, clmul(R, x^(8L-33) mod P)), and x^(256·m - 33) is a product
// of table entries x^(256·2^k - 33) under the same multiplication (in which
// x^-33 is the unit). Measured on the development machine: 64 KiB in 0.56
// us against the fold's 0.83.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ktm/log/detail/crc32c_fold.hpp"

namespace ktm::log::detail {

// Below this many bytes the fold alone is as fast (the combination costs
// about 60 cycles, a round saves 8).
inline constexpr std::size_t crc32c_hybrid_min = 4096;

// x^(256·2^k - 33) mod P, reflected, for k = 0..47 (chains of up to 2^47
// rounds). x^-1 = (P - 1) / x, since P has a constant term.
struct crc32c_shift_table {
  std::uint32_t power[48];
};
consteval crc32c_shift_table crc32c_make_shift_table() {
  crc32c_shift_table t{};
  const std::uint32_t x_inv_33 = crc32c_gf_pow(0x8f6e37a0u, 33);
  std::uint32_t x_256_2k = crc32c_gf_pow(2, 256);  // x^(256·2^k), k = 0
  for (auto& e : t.power) {
    e = crc32c_reflect32(crc32c_gf_mul(x_256_2k, x_inv_33));
    x_256_2k = crc32c_gf_mul(x_256_2k, x_256_2k);
  }
  return t;
}
inline constexpr crc32c_shift_table crc32c_shift_powers = crc32c_make_shift_table();

#if KTM_CRC32C_HAVE_FOLD

// a·b·x^33 mod P, reflected.
KTM_CRC32C_FOLD_TARGET inline std::uint32_t crc32c_mul33(std::uint32_t a, std::uint32_t b) noexcept {
  const __m128i c =
      _mm_clmulepi64_si128(_mm_cvtsi32_si128(static_cast<int>(a)), _mm_cvtsi32_si128(static_cast<int>(b)), 0);
  return static_cast<std::uint32_t>(_mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(c))));
}

// x^(256·m - 33) mod P, reflected; m >= 1.
KTM_CRC32C_FOLD_TARGET inline std::uint32_t crc32c_shift_factor(std::size_t m) noexcept {
  unsigned k = static_cast<unsigned>(__builtin_ctzll(m));
  std::uint32_t acc = crc32c_shift_powers.power[k];
  for (m >>= k + 1, ++k; m != 0; m >>= 1, ++k)
    if (m & 1) acc = crc32c_mul33(acc, crc32c_shift_powers.power[k]);
  return acc;
}

// The CRC register `reg` (inverted, as crc32c_hw takes it) continued over
// [p, p + n), n >= crc32c_hybrid_min.
KTM_CRC32C_FOLD_TARGET inline std::uint32_t crc32c_hybrid(std::uint32_t reg, const unsigned char* p,
                                                          std::size_t n) noexcept {
  const std::size_t m = (n - 256) / 384;  // rounds with chains: 256 bytes folded, 4 x 32 on the chains
  const std::size_t t = (n - 256 - 384 * m) % 64;
  const std::size_t len = 32 * m, head = n - 4 * len - t;
  const unsigned char* const q = p + head;
  std::uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  auto chains = [&](std::size_t round) KTM_CRC32C_FOLD_TARGET {
    const unsigned char* c = q + 32 * round;
#pragma GCC unroll 4
    for (std::size_t w = 0; w < 32; w += 8) {
      std::uint64_t v0, v1, v2, v3;
      std::memcpy(&v0, c + w, 8);
      std::memcpy(&v1, c + len + w, 8);
      std::memcpy(&v2, c + 2 * len + w, 8);
      std::memcpy(&v3, c + 3 * len + w, 8);
      s0 = _mm_crc32_u64(s0, v0);
      s1 = _mm_crc32_u64(s1, v1);
      s2 = _mm_crc32_u64(s2, v2);
      s3 = _mm_crc32_u64(s3, v3);
    }
  };
  crc_no_copy none;
  std::uint64_t r = crc32c_fold_pieces(reg, p, head, none, m, chains);
  const std::uint32_t f = crc32c_shift_factor(m);  // m >= 10: n >= crc32c_hybrid_min
  r = crc32c_mul33(static_cast<std::uint32_t>(r), f) ^ s0;
  r = crc32c_mul33(static_cast<std::uint32_t>(r), f) ^ s1;
  r = crc32c_mul33(static_cast<std::uint32_t>(r), f) ^ s2;
  r = crc32c_mul33(static_cast<std::uint32_t>(r), f) ^ s3;
  return crc32c_hw_tail(r, p + n - t, t);
}

#endif

}  // namespace ktm::log::detail
