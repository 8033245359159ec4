// ktm/log/detail/striped_copy.hpp: copying a record's bytes into a block's
// sector bodies (504 bytes each, then an 8-byte trailer the copy skips),
// as a sink of crc32c_fold, so that a payload is read once for its CRC and
// its copy. Included by ktm/log/block_codec.hpp only.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "ktm/log/detail/crc32c_fold.hpp"
#include "ktm/log/format.hpp"

namespace ktm::log::detail {

// Copies to `dst`, which has `room` bytes (1..sector_body) left in its
// sector's body; the bytes past them go on after the trailer.
struct striped_copy {
  std::byte* dst;
  std::size_t room;

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
      if (room == 0) {
        dst += format::trailer_size;
        room = format::sector_body;
      }
    }
  }

#if KTM_CRC32C_HAVE_FOLD
  // One 64-byte piece: a whole store when the body has more room than that,
  // otherwise two masked stores, the second 8 bytes further on (past the
  // trailer) for the bytes that did not fit.
  KTM_CRC32C_FOLD_TARGET void piece(__m512i v) noexcept {
    static_assert(format::sector_body > 64);
    if (room > 64) {
      _mm512_storeu_si512(dst, v);
      dst += 64;
      room -= 64;
      return;
    }
    const __mmask64 first = room == 64 ? ~__mmask64{0} : (__mmask64{1} << room) - 1;
    _mm512_mask_storeu_epi8(dst, first, v);
    _mm512_mask_storeu_epi8(dst + format::trailer_size, ~first, v);
    dst += 64 + format::trailer_size;
    room += format::sector_body - 64;
  }
  void tail(const unsigned char* s, std::size_t n) noexcept { put(s, n); }
#endif
};

}  // namespace ktm::log::detail
