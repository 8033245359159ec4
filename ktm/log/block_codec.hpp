// ktm/log/block_codec.hpp: building and checking log blocks.
//
// A block is a run of 512-byte sectors; each sector holds 504 bytes of body
// and an 8-byte trailer (stamp, index, begin/end flags) so that a block not
// written whole is detected. The bodies, concatenated, hold the block header
// and the records. `block_builder` writes that layout into a buffer; the
// free functions check it. Nothing here does I/O or takes a lock.
#pragma once

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "ktm/error.hpp"
#include "ktm/log/crc32c.hpp"
#include "ktm/log/detail/striped_copy.hpp"
#include "ktm/log/format.hpp"
#include "ktm/log/lsn.hpp"
#include "ktm/log/record.hpp"

namespace ktm::log::detail {

// Geometry shared by writer and reader. Invariant (checked by base_file):
// io_align is a power of two in [512, 65536]; block_size and container_size
// are multiples of io_align; 2 blocks fit in a container after its header.
struct geometry {
  std::uint32_t block_size = 0;
  std::uint32_t container_size = 0;
  std::uint32_t io_align = 512;
  std::uint64_t log_id = 0;

  std::uint32_t align_units() const noexcept { return io_align / 512; }
  std::uint32_t first_block_units() const noexcept { return io_align / 512; }
  // Can a block start at `off_units`? (writer and reader use the same rule)
  bool block_fits_at(std::uint32_t off_units) const noexcept {
    return std::uint64_t{off_units} * 512 + block_size <= container_size;
  }
  std::size_t max_body() const noexcept { return block_size / 512 * format::sector_body; }
  // The bytes a block whose body holds `used` bytes takes on disk: its
  // sectors (a trailer each), rounded up to io_align.
  std::size_t sealed_size(std::size_t used) const noexcept {
    const std::size_t sectors = (used + format::sector_body - 1) / format::sector_body;
    return (sectors + align_units() - 1) / align_units() * align_units() * format::sector_size;
  }
  std::size_t max_payload() const noexcept { return max_body() - format::bh::size - format::rh::size; }
};

// Header fields of a block.
struct block_info {
  std::uint64_t seq = 0, durable_seq = 0, log_id = 0;
  std::uint32_t container = 0, offset = 0, sectors = 0, used = 0, epoch = 0, count = 0;
};

// The trailer stamp of every sector of a block: mixes seq and epoch, so a
// sector left over from an earlier session or cycle does not match.
inline std::uint32_t sector_stamp(std::uint64_t seq, std::uint32_t epoch) noexcept {
  return static_cast<std::uint32_t>((seq * 0x9e3779b97f4a7c15ull ^ (std::uint64_t{epoch} * 0xc2b2ae3d27d4eb4full)) >> 32);
}

inline std::size_t raw_of_body(std::size_t body_off) noexcept {
  return body_off / format::sector_body * format::sector_size + body_off % format::sector_body;
}

// Writes records into a block buffer of geometry.block_size bytes.
class block_builder {
 public:
  // A new block in `buf`: block number `seq` of the session `epoch` (its
  // trailers are stamped as the records are copied in).
  void reset(std::byte* buf, const geometry& g, std::uint64_t seq, std::uint32_t epoch) noexcept {
    buf_ = buf;
    cap_ = g.max_body();
    used_ = format::bh::size;
    count_ = 0;
    seq_ = seq;
    epoch_ = epoch;
    stamp_ = sector_stamp(seq, epoch);
  }
  std::uint32_t count() const noexcept { return count_; }
  std::size_t used() const noexcept { return used_; }
  bool fits(std::size_t payload) const noexcept {
    return count_ < format::max_records_per_block && used_ + format::rh::size + payload <= cap_;
  }

  // Where a record goes: add() is place() then fill(). place() takes the
  // room (and the record number) and writes nothing; fill() writes the
  // record there and reads nothing of the builder, so a caller may run it
  // outside the lock that guards the builder, as long as the block is not
  // sealed (or the builder reset) before every fill of it has returned.
  struct placement {
    std::byte* buf;
    std::size_t body_off;
    std::uint32_t record_no;
    std::uint32_t stamp;
  };

  // Precondition: fits(n).
  placement place(std::size_t n) noexcept {
    const placement p{buf_, used_, count_, stamp_};
    used_ += format::rh::size + n;
    ++count_;
    return p;
  }

  static void fill(const placement& p, std::uint32_t stream, std::uint8_t type, lsn prev, lsn undo_next,
                   std::span<const std::byte> payload) noexcept {
    namespace rh = format::rh;
    std::byte h[rh::size] = {};
    format::store<std::uint32_t>(h + rh::length, static_cast<std::uint32_t>(payload.size()));
    format::store<std::uint32_t>(h + rh::stream, stream);
    format::store<std::uint8_t>(h + rh::type, type);
    format::store<std::uint16_t>(h + rh::record_no, static_cast<std::uint16_t>(p.record_no));
    format::store<std::uint64_t>(h + rh::previous, prev.raw());
    format::store<std::uint64_t>(h + rh::undo_next, undo_next.raw());
    striped_copy out = striped_at(p, p.body_off + rh::size);
    std::uint32_t c = crc32c(h, rh::size);
#if KTM_CRC32C_HAVE_FOLD
    if (payload.size() >= crc32c_fold_min && cpu_has_crc32c_fold()) {  // one read for the CRC and the copy
      c = ~crc32c_fold(~c, reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), out);
    } else
#endif
    {
      c = crc32c_extend(c, payload);
      out.put(payload.data(), payload.size());
    }
    format::store<std::uint32_t>(h + rh::crc, c);
    striped_at(p, p.body_off).put(h, rh::size);
  }

  // Precondition: fits(payload.size()). Returns the record number.
  std::uint32_t add(std::uint32_t stream, std::uint8_t type, lsn prev, lsn undo_next,
                    std::span<const std::byte> payload) noexcept {
    const placement p = place(payload.size());
    fill(p, stream, type, prev, undo_next, payload);
    return p.record_no;
  }

  // Fills the header, padding and the trailers no record's copy wrote (the
  // last used sector's and the padding's; the last one flagged as the end);
  // returns the block's length in bytes (a multiple of io_align). The buffer
  // is then ready to write.
  std::size_t seal(const geometry& g, std::uint64_t durable_seq, std::uint32_t container,
                   std::uint32_t offset) noexcept {
    namespace bh = format::bh;
    const std::size_t sectors = g.sealed_size(used_) / format::sector_size;
    // zero the padding: rest of the last used body, then whole sectors
    std::size_t raw_used = raw_of_body(used_);
    std::size_t end_of_body = (used_ + format::sector_body - 1) / format::sector_body * format::sector_size;
    if (used_ % format::sector_body != 0)
      std::memset(buf_ + raw_used, 0, end_of_body - format::trailer_size - raw_used);
    if (sectors * format::sector_size > end_of_body)
      std::memset(buf_ + end_of_body, 0, sectors * format::sector_size - end_of_body);
    std::byte* h = buf_;
    std::memset(h, 0, bh::size);
    format::store<std::uint32_t>(h + bh::magic, format::block_magic);
    format::store<std::uint16_t>(h + bh::version, static_cast<std::uint16_t>(format::version));
    format::store<std::uint16_t>(h + bh::record_count, static_cast<std::uint16_t>(count_));
    format::store<std::uint64_t>(h + bh::seq, seq_);
    format::store<std::uint64_t>(h + bh::durable_seq, durable_seq);
    format::store<std::uint64_t>(h + bh::log_id, g.log_id);
    format::store<std::uint32_t>(h + bh::container, container);
    format::store<std::uint32_t>(h + bh::offset, offset);
    format::store<std::uint32_t>(h + bh::sectors, static_cast<std::uint32_t>(sectors));
    format::store<std::uint32_t>(h + bh::used, static_cast<std::uint32_t>(used_));
    format::store<std::uint32_t>(h + bh::epoch, epoch_);
    format::store<std::uint32_t>(h + bh::crc, crc32c(h, bh::size));
    // sectors before used_ / sector_body end inside some record, whose copy
    // stamped them (striped_copy.hpp)
    for (std::size_t i = std::min(used_ / format::sector_body, sectors - 1); i < sectors; ++i) {
      const auto flags = static_cast<std::uint16_t>((i == 0 ? format::sector_begin : 0) |
                                                    (i + 1 == sectors ? format::sector_end : 0));
      format::store<std::uint64_t>(buf_ + i * format::sector_size + format::sector_body,
                                   sector_trailer(stamp_, i, flags));
    }
    return sectors * format::sector_size;
  }

 private:
  static striped_copy striped_at(const placement& p, std::size_t body_off) noexcept {
    return {p.buf + raw_of_body(body_off), format::sector_body - body_off % format::sector_body, p.buf, p.stamp};
  }

  std::byte* buf_ = nullptr;
  std::size_t cap_ = 0, used_ = 0;
  std::uint32_t count_ = 0;
  std::uint64_t seq_ = 0;
  std::uint32_t epoch_ = 0, stamp_ = 0;
};

// Parses and checks a block header in the first sector; nullopt if it is not
// a well-formed header of this log (bad magic, CRC, version, or a field out of
// its domain for geometry g).
inline std::optional<block_info> parse_block_header(const std::byte* sector0, const geometry& g) {
  namespace bh = format::bh;
  if (format::load32(sector0 + bh::magic) != format::block_magic) return std::nullopt;
  std::byte h[bh::size];
  std::memcpy(h, sector0, bh::size);
  std::uint32_t c = format::load32(h + bh::crc);
  format::store<std::uint32_t>(h + bh::crc, 0);
  if (crc32c(h, bh::size) != c) return std::nullopt;
  block_info b;
  b.seq = format::load64(h + bh::seq);
  b.durable_seq = format::load64(h + bh::durable_seq);
  b.log_id = format::load64(h + bh::log_id);
  b.container = format::load32(h + bh::container);
  b.offset = format::load32(h + bh::offset);
  b.sectors = format::load32(h + bh::sectors);
  b.used = format::load32(h + bh::used);
  b.epoch = format::load32(h + bh::epoch);
  b.count = format::load16(h + bh::record_count);
  if (format::load16(h + bh::version) != format::version) return std::nullopt;
  if (format::load32(h + bh::reserved) != 0 || format::load32(h + bh::reserved2) != 0) return std::nullopt;
  if (b.log_id != g.log_id || b.seq == 0 || b.durable_seq >= b.seq) return std::nullopt;
  if (b.count == 0 || b.count > format::max_records_per_block) return std::nullopt;
  if (b.sectors == 0 || b.sectors > g.block_size / 512 || b.sectors % g.align_units() != 0) return std::nullopt;
  if (b.used < bh::size + format::rh::size || b.used > b.sectors * format::sector_body) return std::nullopt;
  if (b.offset < g.first_block_units() || b.offset > lsn::max_offset ||
      std::uint64_t{b.offset} * 512 + std::uint64_t{b.sectors} * 512 > g.container_size)
    return std::nullopt;
  return b;
}

// Does sector i of `raw` carry a trailer of block (seq, epoch) at index i?
inline bool trailer_matches(const std::byte* raw, std::size_t i, std::uint64_t seq, std::uint32_t epoch) noexcept {
  const std::byte* t = raw + i * format::sector_size + format::sector_body;
  std::uint16_t flags = format::load16(t + 6);
  return format::load32(t) == sector_stamp(seq, epoch) && format::load16(t + 4) == i &&
         ((flags & format::sector_begin) != 0) == (i == 0);
}

// The CRC32C of the record at `h` of `n` bytes (header, then payload) with
// its header's crc field taken as zero, as the writer computed it.
inline std::uint32_t record_crc(const std::byte* h, std::size_t n) noexcept {
  namespace rh = format::rh;
  std::byte z[4] = {};
  std::uint32_t c = crc32c(h, rh::crc);
  c = crc32c_extend(c, z, 4);
  return crc32c_extend(c, h + rh::crc + 4, n - rh::crc - 4);
}

#if KTM_CRC32C_HAVE_SSE42
static_assert(format::rh::crc == 28 && format::rh::size == 32, "record_crc3_hw masks the crc field in word 3");

// record_crc of three records at once, on three interleaved chains (the
// crc32 instruction's latency is three times its throughput; a record is
// ~100 bytes, too short for crc32c's own interleaving). Little-endian only:
// the header's crc field is the high half of its fourth 8-byte word. The
// chains are plain locals: held in an array, they went through memory.
__attribute__((target("sse4.2"))) inline void record_crc3_hw(const std::byte* const* p, const std::size_t* n,
                                                              std::uint32_t* out) noexcept {
  const std::byte *p0 = p[0], *p1 = p[1], *p2 = p[2];
  std::uint64_t r0 = 0xffffffffu, r1 = 0xffffffffu, r2 = 0xffffffffu;
  r0 = _mm_crc32_u64(r0, format::load64(p0)), r1 = _mm_crc32_u64(r1, format::load64(p1)),
  r2 = _mm_crc32_u64(r2, format::load64(p2));
  r0 = _mm_crc32_u64(r0, format::load64(p0 + 8)), r1 = _mm_crc32_u64(r1, format::load64(p1 + 8)),
  r2 = _mm_crc32_u64(r2, format::load64(p2 + 8));
  r0 = _mm_crc32_u64(r0, format::load64(p0 + 16)), r1 = _mm_crc32_u64(r1, format::load64(p1 + 16)),
  r2 = _mm_crc32_u64(r2, format::load64(p2 + 16));
  r0 = _mm_crc32_u64(r0, format::load32(p0 + 24)), r1 = _mm_crc32_u64(r1, format::load32(p1 + 24)),
  r2 = _mm_crc32_u64(r2, format::load32(p2 + 24));
  const std::size_t common = std::min({n[0], n[1], n[2]}) & ~std::size_t{7};
  std::size_t i = 32;
  for (; i < common; i += 8) {
    r0 = _mm_crc32_u64(r0, format::load64(p0 + i));
    r1 = _mm_crc32_u64(r1, format::load64(p1 + i));
    r2 = _mm_crc32_u64(r2, format::load64(p2 + i));
  }
  auto* const u0 = reinterpret_cast<const unsigned char*>(p0 + i);
  auto* const u1 = reinterpret_cast<const unsigned char*>(p1 + i);
  auto* const u2 = reinterpret_cast<const unsigned char*>(p2 + i);
  out[0] = ~crc32c_hw_tail(r0, u0, n[0] - i);
  out[1] = ~crc32c_hw_tail(r1, u1, n[1] - i);
  out[2] = ~crc32c_hw_tail(r2, u2, n[2] - i);
}
#endif

// Copies one sector's body (format::sector_body bytes) from a raw block to
// its place in the destriped body. With SSE2, as unrolled 16-byte moves:
// for a copy of this size gcc emits `rep movsq`, whose start-up cost per
// sector was 40% of frame_block.
inline void copy_sector_body(std::byte* dst, const std::byte* src) noexcept {
#if defined(__SSE2__)
  static_assert(format::sector_body == 31 * 16 + 8);
#pragma GCC unroll 31
  for (std::size_t k = 0; k < 31 * 16; k += 16)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + k), _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k)));
  std::memcpy(dst + 31 * 16, src + 31 * 16, 8);
#else
  std::memcpy(dst, src, format::sector_body);
#endif
}

// The first half of check_block: checks every trailer of a block whose
// header parsed as `b` (`raw` holds b.sectors sectors), destripes its body
// into body[0, b.used) (the caller provides at least b.used bytes) and walks
// the framing of its records, appending the body offset of each record
// framed cleanly to `offsets` and setting `end` to where the last of them
// ends. Returns torn_write (a trailer does not match; nothing is framed),
// corrupt_record (a length or number out of place; the records before it
// are framed) or no error.
inline errc frame_block(const std::byte* raw, const block_info& b, std::byte* body,
                        std::vector<std::uint32_t>& offsets, std::size_t& end) {
  namespace rh = format::rh;
  end = format::bh::size;
  for (std::size_t i = 0; i < b.sectors; ++i) {
    if (!trailer_matches(raw, i, b.seq, b.epoch)) return errc::torn_write;
    std::uint16_t flags = format::load16(raw + i * format::sector_size + format::sector_body + 6);
    if (((flags & format::sector_end) != 0) != (i + 1 == b.sectors)) return errc::torn_write;
  }
  // whole sector bodies first, each a copy of constant size
  const std::size_t whole = b.used / format::sector_body;
  for (std::size_t i = 0; i < whole; ++i) copy_sector_body(body + i * format::sector_body, raw + i * format::sector_size);
  if (const std::size_t rest = b.used - whole * format::sector_body; rest > 0)
    std::memcpy(body + whole * format::sector_body, raw + whole * format::sector_size, rest);
  std::size_t pos = format::bh::size;
  for (std::uint32_t k = 0; k < b.count; ++k) {
    const std::byte* h = body + pos;
    if (b.used - pos < rh::size || format::load32(h + rh::length) > b.used - pos - rh::size ||
        format::load16(h + rh::record_no) != k || format::load<std::uint8_t>(h + rh::type) == 0 ||
        format::load<std::uint8_t>(h + rh::flags) != 0) {
      end = pos;
      return errc::corrupt_record;
    }
    offsets.push_back(static_cast<std::uint32_t>(pos));
    pos += rh::size + format::load32(h + rh::length);
  }
  end = pos;
  return pos == b.used ? errc{} : errc::corrupt_record;
}

// Records of at least this many bytes have their CRC checked one at a time
// (see check_record_crcs).
inline constexpr std::size_t crc_alone_min = 1024;

// The second half of check_block: true if every record framed by
// frame_block (offsets[0, m), the last ending at `end`) carries its CRC.
// Checked three at a time on interleaved crc32 chains where the CPU has them;
// one or two left over (a small block has a few records) go on the same
// chains, the last one repeated. A large record (or a triple holding one)
// goes alone through record_crc, which folds it (crc32c.hpp) at twice the
// speed of its chain of three.
inline bool check_record_crcs(const std::byte* body, const std::uint32_t* offsets, std::size_t m, std::size_t end) {
  namespace rh = format::rh;
  auto size_of = [&](std::size_t k) { return (k + 1 < m ? offsets[k + 1] : end) - offsets[k]; };
  auto stored = [&](std::size_t k) { return format::load32(body + offsets[k] + rh::crc); };
  std::size_t k = 0;
#if KTM_CRC32C_HAVE_SSE42
  if (std::endian::native == std::endian::little && cpu_has_sse42())
    while (k < m) {
      const std::size_t k1 = std::min(k + 1, m - 1), k2 = std::min(k + 2, m - 1);
      const std::size_t n[3] = {size_of(k), size_of(k1), size_of(k2)};
      if (std::max({n[0], n[1], n[2]}) >= crc_alone_min) {
        if (record_crc(body + offsets[k], n[0]) != stored(k)) return false;
        ++k;
        continue;
      }
      const std::byte* p[3] = {body + offsets[k], body + offsets[k1], body + offsets[k2]};
      std::uint32_t c[3];
      record_crc3_hw(p, n, c);
      if (c[0] != stored(k) || c[1] != stored(k1) || c[2] != stored(k2)) return false;
      k += 3;
    }
#endif
  for (; k < m; ++k)
    if (record_crc(body + offsets[k], size_of(k)) != stored(k)) return false;
  return true;
}

// Checks every trailer and record of a block whose header parsed as `b`;
// `raw` holds b.sectors sectors. On success the first b.used bytes of `body`
// (grown to at least that, never shrunk) hold the destriped body and
// `offsets` the body offset of each record.
// Errors: torn_write (a trailer does not match), corrupt_record (a length or
// number out of place), checksum_mismatch (a record CRC). Records are
// checked in order and the first failing one decides: the framing of every
// record is walked first (it needs only the lengths before it), then the
// CRCs of the records framed cleanly; a CRC failure before the first
// framing failure wins, as it would record by record.
inline errc check_block(const std::byte* raw, const block_info& b, std::vector<std::byte>& body,
                        std::vector<std::uint32_t>& offsets) {
  if (body.size() < b.used) body.resize(b.used);  // grown only: a smaller block leaves it as is
  offsets.clear();
  std::size_t end = 0;
  const errc framing = frame_block(raw, b, body.data(), offsets, end);
  if (framing == errc::torn_write) return framing;
  if (!check_record_crcs(body.data(), offsets.data(), offsets.size(), end)) return errc::checksum_mismatch;
  return framing;
}

// Decodes record k of a checked block body. Precondition: check_block passed.
inline void decode_record_into(log_record& r, const std::byte* body, std::uint32_t offset, const block_info& b,
                               std::uint32_t k) {
  namespace rh = format::rh;
  const std::byte* h = body + offset;
  r.at = lsn(b.container, b.offset, k);
  r.previous = lsn(format::load64(h + rh::previous));
  r.undo_next = lsn(format::load64(h + rh::undo_next));
  r.type = static_cast<record_type>(format::load<std::uint8_t>(h + rh::type));
  r.stream_id = format::load32(h + rh::stream);
  r.payload = std::span<const std::byte>(h + rh::size, format::load32(h + rh::length));
}
inline log_record decode_record(const std::byte* body, std::uint32_t offset, const block_info& b,
                                std::uint32_t k) {
  log_record r;
  decode_record_into(r, body, offset, b, k);
  return r;
}

inline log_record decode_record(const std::vector<std::byte>& body, std::uint32_t offset,
                                const block_info& b, std::uint32_t k) {
  return decode_record(body.data(), offset, b, k);
}

}  // namespace ktm::log::detail
