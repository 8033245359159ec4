// ktm/log/detail/crc32c_fold.hpp: CRC-32C of long ranges by carry-less
// multiplication (AVX-512 VPCLMULQDQ), optionally copying the bytes as it
// reads them. Included by ktm/log/crc32c.hpp only.
//
// Folding. Read as a polynomial over GF(2), a message M = A·x^d + B (B the
// last d bits) has the same CRC as any A' + B with A' ≡ A·x^d (mod P): the
// CRC register is linear and depends on M mod P only. A 128-bit lane L (its
// low quadword holds the earlier bytes, which are the higher-degree terms of
// a reflected CRC) is carried d bits forward as
//     lo64(L)·k(d + 32)  xor  hi64(L)·k(d - 32),   k(e) = reflect32(x^e mod P) << 1
// two 64x33-bit carry-less products whose xor fits in 128 bits and is
// congruent to L·x^d. Four 512-bit accumulators (sixteen lanes) take 256
// bytes a round, folded 2048 bits forward; at the end they are folded into
// one lane, which as a 16-byte message has the CRC of everything read so far
// (with the starting register xored into the first four bytes). The crc32
// instruction takes that lane and the last bytes (fewer than 64,
// crc32c_hw_tail).
//
// Every 64-byte piece the loop loads is also handed, in order, to a sink: a
// no-op for a plain CRC, or a copy (block_codec's striped copy into sector
// bodies), so a record's payload is read once for both.
//
// Measured on the development machine (AMD EPYC, Zen 5): 79 GB/s (0.83 us
// per 64 KiB), 0.89 us per 64 KiB with the striped copy, where the three
// interleaved crc32 chains of crc32c.hpp run at 36 GB/s and the CRC and a
// separate copy took 3-4 us. Eight accumulators instead of four ran at less
// than half the speed (spilled registers).
#pragma once

#include <cstddef>
#include <cstdint>

#include "ktm/log/detail/crc32c_hw_tail.hpp"

#if KTM_CRC32C_HAVE_SSE42
#define KTM_CRC32C_HAVE_FOLD 1
#include <immintrin.h>
#else
#define KTM_CRC32C_HAVE_FOLD 0
#endif

namespace ktm::log::detail {

// Polynomials of degree < 32 over GF(2), bit i the coefficient of x^i
// (not reflected), multiplied modulo P = x^32 + 0x1edc6f41.
consteval std::uint32_t crc32c_gf_mul(std::uint32_t a, std::uint32_t b) {
  std::uint64_t r = 0;
  for (int i = 0; i < 32; ++i)
    if ((b >> i) & 1) r ^= std::uint64_t{a} << i;
  for (int i = 62; i >= 32; --i)
    if ((r >> i) & 1) r ^= 0x11edc6f41ull << (i - 32);
  return static_cast<std::uint32_t>(r);
}

consteval std::uint32_t crc32c_gf_pow(std::uint32_t a, std::uint64_t e) {
  std::uint32_t r = 1;
  for (; e != 0; e >>= 1) {
    if (e & 1) r = crc32c_gf_mul(r, a);
    a = crc32c_gf_mul(a, a);
  }
  return r;
}

consteval std::uint32_t crc32c_reflect32(std::uint32_t v) {
  std::uint32_t r = 0;
  for (int i = 0; i < 32; ++i)
    if ((v >> i) & 1) r |= 1u << (31 - i);
  return r;
}

// k(e) = reflect32(x^e mod P) << 1, P = x^32 + 0x1edc6f41 (CRC-32C).
consteval std::uint64_t crc32c_fold_constant(unsigned e) {
  return std::uint64_t{crc32c_reflect32(crc32c_gf_pow(2, e))} << 1;  // 2: the polynomial x
}

// Below this many bytes the crc32 chains of crc32c.hpp are as fast.
inline constexpr std::size_t crc32c_fold_min = 256;

#if KTM_CRC32C_HAVE_FOLD

#define KTM_CRC32C_FOLD_TARGET __attribute__((target("avx512f,avx512bw,vpclmulqdq,pclmul,sse4.2")))

// A sink that drops the bytes (a plain CRC).
struct crc_no_copy {
  KTM_CRC32C_FOLD_TARGET void piece(__m512i) noexcept {}
  KTM_CRC32C_FOLD_TARGET void tail(const unsigned char*, std::size_t) noexcept {}
};

// Each 128-bit lane of x carried d bits forward (the pair of k for d in
// every lane of k), xor next.
KTM_CRC32C_FOLD_TARGET inline __m512i crc32c_fold_512(__m512i x, __m512i k, __m512i next) noexcept {
  return _mm512_ternarylogic_epi64(_mm512_clmulepi64_epi128(x, k, 0x00), _mm512_clmulepi64_epi128(x, k, 0x11),
                                   next, 0x96);
}

KTM_CRC32C_FOLD_TARGET inline __m128i crc32c_fold_128(__m128i x, __m128i k, __m128i next) noexcept {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
}

KTM_CRC32C_FOLD_TARGET inline __m512i crc32c_fold_k(std::uint64_t lo, std::uint64_t hi) noexcept {
  const auto l = static_cast<long long>(lo), h = static_cast<long long>(hi);
  return _mm512_set_epi64(h, l, h, l, h, l, h, l);
}

// A side task for the fold's rounds that does nothing.
struct no_side_work {
  void operator()(std::size_t) const noexcept {}
};

// The CRC register `reg` continued over [p, p + n - n % 64) (n >= 256),
// as a 64-bit crc32 register; each 64-byte piece also goes to `sink`, in
// order, and side(i) runs in round i (256 bytes) for i < side_rounds (the
// hybrid CRC's crc32 chains, crc32c_hybrid.hpp: other execution units).
template <class Sink, class Side>
KTM_CRC32C_FOLD_TARGET __attribute__((always_inline)) inline std::uint64_t crc32c_fold_pieces(
    std::uint32_t reg, const unsigned char* p, std::size_t n, Sink& sink, std::size_t side_rounds,
    Side&& side) noexcept {
  constexpr std::uint64_t k2048_lo = crc32c_fold_constant(2048 + 32), k2048_hi = crc32c_fold_constant(2048 - 32);
  constexpr std::uint64_t k512_lo = crc32c_fold_constant(512 + 32), k512_hi = crc32c_fold_constant(512 - 32);
  constexpr std::uint64_t k128_lo = crc32c_fold_constant(128 + 32), k128_hi = crc32c_fold_constant(128 - 32);
  const __m512i k2048 = crc32c_fold_k(k2048_lo, k2048_hi);
  const __m512i k512 = crc32c_fold_k(k512_lo, k512_hi);
  const __m128i k128 = _mm_set_epi64x(static_cast<long long>(k128_hi), static_cast<long long>(k128_lo));

  __m512i x0 = _mm512_loadu_si512(p), x1 = _mm512_loadu_si512(p + 64);
  __m512i x2 = _mm512_loadu_si512(p + 128), x3 = _mm512_loadu_si512(p + 192);
  sink.piece(x0);
  sink.piece(x1);
  sink.piece(x2);
  sink.piece(x3);
  x0 = _mm512_xor_si512(x0, _mm512_zextsi128_si512(_mm_cvtsi32_si128(static_cast<int>(reg))));
  std::size_t off = 256;
  for (std::size_t round = 0; n - off >= 256; off += 256, ++round) {
    const __m512i y0 = _mm512_loadu_si512(p + off), y1 = _mm512_loadu_si512(p + off + 64);
    const __m512i y2 = _mm512_loadu_si512(p + off + 128), y3 = _mm512_loadu_si512(p + off + 192);
    sink.piece(y0);
    sink.piece(y1);
    sink.piece(y2);
    sink.piece(y3);
    x0 = crc32c_fold_512(x0, k2048, y0);
    x1 = crc32c_fold_512(x1, k2048, y1);
    x2 = crc32c_fold_512(x2, k2048, y2);
    x3 = crc32c_fold_512(x3, k2048, y3);
    if (round < side_rounds) side(round);
  }
  // four accumulators into one: each is 64 bytes ahead of the one before
  x1 = crc32c_fold_512(x0, k512, x1);
  x2 = crc32c_fold_512(x1, k512, x2);
  x3 = crc32c_fold_512(x2, k512, x3);
  for (; n - off >= 64; off += 64) {
    const __m512i y = _mm512_loadu_si512(p + off);
    sink.piece(y);
    x3 = crc32c_fold_512(x3, k512, y);
  }
  // four lanes into one: each is 16 bytes ahead of the one before
  __m128i l = _mm512_maskz_extracti32x4_epi32(0xf, x3, 0);
  l = crc32c_fold_128(l, k128, _mm512_maskz_extracti32x4_epi32(0xf, x3, 1));
  l = crc32c_fold_128(l, k128, _mm512_maskz_extracti32x4_epi32(0xf, x3, 2));
  l = crc32c_fold_128(l, k128, _mm512_maskz_extracti32x4_epi32(0xf, x3, 3));
  const std::uint64_t r = _mm_crc32_u64(0, static_cast<std::uint64_t>(_mm_cvtsi128_si64(l)));
  return _mm_crc32_u64(r, static_cast<std::uint64_t>(_mm_extract_epi64(l, 1)));
}

// The CRC register `reg` (the inverted CRC, as crc32c_hw takes it) continued
// over [p, p + n), n >= crc32c_fold_min; every byte also goes to
// `sink` in order: piece() for each 64-byte piece, then tail() for the rest.
template <class Sink>
KTM_CRC32C_FOLD_TARGET inline std::uint32_t crc32c_fold(std::uint32_t reg, const unsigned char* p, std::size_t n,
                                                        Sink& to) noexcept {
  // A local copy of the sink: its cursor then lives in registers, where
  // through the reference it would be stored and reloaded around every
  // store of the copy (which might alias it), each reload waiting on that
  // store (with the masked stores striped_copy used then, a quarter of the
  // cycles of 64 KiB appends).
  Sink sink = to;
  const std::uint64_t r = crc32c_fold_pieces(reg, p, n, sink, 0, no_side_work{});
  const std::size_t off = n - n % 64;
  sink.tail(p + off, n - off);
  to = sink;
  return crc32c_hw_tail(r, p + off, n - off);
}

inline bool cpu_has_crc32c_fold() noexcept {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("vpclmulqdq") && __builtin_cpu_supports("pclmul") &&
                          __builtin_cpu_supports("sse4.2");
  return has;
}

#endif

}  // namespace ktm::log::detail
