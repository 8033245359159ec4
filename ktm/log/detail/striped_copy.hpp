// ktm/log/detail/striped_copy.hpp: copying a record's bytes into a block's
// sector bodies (504 bytes each, then an 8-byte trailer), as a sink of
// crc32c_fold, so that a payload is read once for its CRC and its copy.
// Included by ktm/log/block_codec.hpp only.
//
// Trailers. The copy that writes the last body byte of a sector also writes
// that sector's trailer (stamp, index, and the begin flag for sector 0),
// while the line is in the cache: every body byte is written by exactly one
// copy, so every sector that a record ends past gets its trailer once, and
// block_builder::seal writes only the trailers of the last used sector and
// of the padding (the end flag). A block's bytes are the same as if seal had
// stamped every sector; sealing 1 MiB no longer walks 2,048 cold lines.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "ktm/log/detail/crc32c_fold.hpp"
#include "ktm/log/format.hpp"

namespace ktm::log::detail {

// The 8 trailer bytes of sector i of a block whose stamp is `stamp`.
inline std::uint64_t sector_trailer(std::uint32_t stamp, std::size_t i, std::uint16_t flags) noexcept {
  return std::uint64_t{stamp} | std::uint64_t{static_cast<std::uint16_t>(i)} << 32 | std::uint64_t{flags} << 48;
}

// Copies to `dst`, which has `room` bytes (1..sector_body) left in its
// sector's body; the bytes past them go on after the trailer. `block` is the
// start of the block (sector 0), `stamp` its trailer stamp.
struct striped_copy {
  std::byte* dst;
  std::size_t room;
  std::byte* block;
  std::uint32_t stamp;

  // Scalar: n bytes from s.
  void put(const void* src, std::size_t n) noexcept {
    auto* s = static_cast<const std::byte*>(src);
    while (n > 0) {
      const std::size_t k = std::min(n, room);
      std::memcpy(dst, s, k);
      s += k;
      n -= k;
      dst += k;
      room -= k;
      if (room == 0) next_sector();
    }
  }

#if KTM_CRC32C_HAVE_FOLD
  // One 64-byte piece v: a whole store when the body has more room than
  // that. Otherwise three plain stores, in this order: v 8 bytes further on
  // (right for the bytes past the trailer), then at dst v's first `room`
  // bytes followed by v moved up 8 bytes (right everywhere but the trailer),
  // then the trailer. Masked stores would write only the right bytes but
  // stall the loads that follow them (on AMD Zen, tens of cycles each).
  KTM_CRC32C_FOLD_TARGET __attribute__((always_inline)) void piece(__m512i v) noexcept {
    static_assert(format::sector_body > 64 && format::trailer_size == 8);
    if (room > 64) {
      _mm512_storeu_si512(dst, v);
      dst += 64;
      room -= 64;
      return;
    }
    const __mmask64 first = room == 64 ? ~__mmask64{0} : (__mmask64{1} << room) - 1;
    _mm512_storeu_si512(dst + format::trailer_size, v);
    // (the maskz form of valignq: g++ 12 warns that the plain form's
    // undefined pass-through vector may be used uninitialized)
    _mm512_storeu_si512(dst, _mm512_mask_blend_epi8(first, _mm512_maskz_alignr_epi64(0xff, v, v, 7), v));
    dst += room;
    write_trailer();
    dst += 64 - room + format::trailer_size;
    room += format::sector_body - 64;
  }
  void tail(const unsigned char* s, std::size_t n) noexcept { put(s, n); }
#endif

 private:
  // dst is at the end of a sector's body.
  void write_trailer() noexcept {
    const auto i = static_cast<std::size_t>(dst - block) / format::sector_size;
    const std::uint64_t t = sector_trailer(stamp, i, i == 0 ? format::sector_begin : std::uint16_t{0});
    format::store<std::uint64_t>(dst, t);
  }
  void next_sector() noexcept {
    write_trailer();
    dst += format::trailer_size;
    room = format::sector_body;
  }
};

}  // namespace ktm::log::detail
