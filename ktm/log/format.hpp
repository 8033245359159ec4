// ktm/log/format.hpp: the on-disk format of a log, as constants.
//
// doc/log_format.md is the prose spec; this header is the one place the
// numbers live. All integers are little-endian. Nothing on disk is a pointer:
// every position is an offset or an LSN, and every one is validated before
// use.
//
//   base file   := copy[0] copy[1]                (each base_copy_size bytes)
//   container   := header(io_align bytes) block*  (all containers equal size)
//   block       := sector+                        (512 bytes each)
//   sector      := body(504) trailer(8)
//   block body  := block_header record* zero-padding   (the bodies, concatenated)
//   record      := record_header payload
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace ktm::log::format {

inline constexpr std::uint32_t version = 1;

// ---- sectors ---------------------------------------------------------------
inline constexpr std::size_t sector_size = 512;
inline constexpr std::size_t trailer_size = 8;
inline constexpr std::size_t sector_body = sector_size - trailer_size;  // 504
// trailer: u32 stamp (of the block's seq and epoch) | u16 sector index | u16 flags
inline constexpr std::uint16_t sector_begin = 1;  // first sector of a block
inline constexpr std::uint16_t sector_end = 2;    // last sector of a block

// ---- block header (first bytes of the block body), 64 bytes ----------------
inline constexpr std::uint32_t block_magic = 0x424d544bu;  // "KTMB"
namespace bh {
inline constexpr std::size_t magic = 0;         // u32
inline constexpr std::size_t version = 4;       // u16
inline constexpr std::size_t record_count = 6;  // u16, 1..512
inline constexpr std::size_t seq = 8;           // u64, 1 for the first block of a log, +1 per block
inline constexpr std::size_t durable_seq = 16;  // u64, highest seq known durable when sealed
inline constexpr std::size_t log_id = 24;       // u64, the log this block belongs to
inline constexpr std::size_t container = 32;    // u32, logical container id (= LSN bits 63..32)
inline constexpr std::size_t offset = 36;       // u32, block offset in 512-byte units
inline constexpr std::size_t sectors = 40;      // u32, number of sectors of the block
inline constexpr std::size_t used = 44;         // u32, body bytes used (header + records)
inline constexpr std::size_t epoch = 48;        // u32, open count of the log when written
inline constexpr std::size_t reserved = 52;     // u32, zero
inline constexpr std::size_t reserved2 = 56;    // u32, zero
inline constexpr std::size_t crc = 60;          // u32, CRC32C of bytes [0, 64) with this field zero
inline constexpr std::size_t size = 64;
}  // namespace bh

// ---- record header, 32 bytes -----------------------------------------------
namespace rh {
inline constexpr std::size_t length = 0;     // u32, payload bytes
inline constexpr std::size_t stream = 4;     // u32, stream id
inline constexpr std::size_t type = 8;       // u8, record_type
inline constexpr std::size_t flags = 9;      // u8, zero
inline constexpr std::size_t record_no = 10; // u16, = LSN bits 8..0
inline constexpr std::size_t previous = 12;  // u64, previous LSN of the same stream
inline constexpr std::size_t undo_next = 20; // u64
inline constexpr std::size_t crc = 28;       // u32, CRC32C of header (this field zero) and payload
inline constexpr std::size_t size = 32;
}  // namespace rh

inline constexpr std::uint32_t max_records_per_block = 512;

// ---- container header, at offset 0, 64 bytes used of io_align --------------
inline constexpr std::uint64_t container_magic = 0x0043474f4c4d544bull;  // "KTMLOGC\0"
namespace ch {
inline constexpr std::size_t magic = 0;           // u64
inline constexpr std::size_t version = 8;         // u32
inline constexpr std::size_t crc = 12;            // u32, CRC32C of [0, 64) with this field zero
inline constexpr std::size_t log_id = 16;         // u64
inline constexpr std::size_t physical_id = 24;    // u32, the container's file number
inline constexpr std::size_t logical_id = 28;     // u32, 0xffffffff = not assigned
inline constexpr std::size_t first_seq = 32;      // u64, seq of its first block (0 = none)
inline constexpr std::size_t container_size = 40; // u32, bytes
inline constexpr std::size_t epoch = 44;          // u32
inline constexpr std::size_t size = 64;           // bytes 48..63 zero
}  // namespace ch
inline constexpr std::uint32_t no_logical = 0xffffffffu;

// ---- base file copy -------------------------------------------------------
inline constexpr std::uint64_t base_magic = 0x0042474f4c4d544bull;  // "KTMLOGB\0"
inline constexpr std::size_t base_copy_size = 65536;
namespace bf {
inline constexpr std::size_t magic = 0;            // u64
inline constexpr std::size_t version = 8;          // u32
inline constexpr std::size_t copy_size = 12;       // u32, = base_copy_size
inline constexpr std::size_t generation = 16;      // u64, +1 per write; the newest valid copy wins
inline constexpr std::size_t log_id = 24;          // u64, random at create
inline constexpr std::size_t used = 32;            // u32, bytes covered by crc
inline constexpr std::size_t crc = 36;             // u32, CRC32C of [0, used) with this field zero
inline constexpr std::size_t block_size = 40;      // u32, largest block in bytes
inline constexpr std::size_t container_size = 44;  // u32
inline constexpr std::size_t io_align = 48;        // u32
inline constexpr std::size_t flags = 52;           // u32, bit 0: dedicated
inline constexpr std::size_t stream_count = 56;    // u32
inline constexpr std::size_t container_count = 60; // u32
inline constexpr std::size_t next_stream_id = 64;  // u32
inline constexpr std::size_t head_container = 68;  // u32, logical id where the next block goes
inline constexpr std::size_t head_offset = 72;     // u32, in 512-byte units
inline constexpr std::size_t epoch = 76;           // u32
inline constexpr std::size_t head_seq = 80;        // u64, seq of the next block
inline constexpr std::size_t next_physical = 88;   // u32, file number for the next added container
inline constexpr std::size_t max_containers = 92;  // u32, growth limit
inline constexpr std::size_t header_size = 128;    // bytes 96..127 zero
}  // namespace bf
inline constexpr std::uint32_t flag_dedicated = 1;

// stream entry, 96 bytes
namespace se {
inline constexpr std::size_t id = 0;            // u32, >= 1
inline constexpr std::size_t name_length = 4;   // u32, 1..max_stream_name
inline constexpr std::size_t base = 8;          // u64 LSN
inline constexpr std::size_t last = 16;         // u64 LSN (null = no record yet)
inline constexpr std::size_t restart = 24;      // u64 LSN (null = none)
inline constexpr std::size_t name = 32;         // name_length bytes, rest zero
inline constexpr std::size_t size = 96;
}  // namespace se
inline constexpr std::size_t max_stream_name = 64;

// container entry, 8 bytes
namespace ce {
inline constexpr std::size_t physical_id = 0;  // u32
inline constexpr std::size_t logical_id = 4;   // u32 (no_logical = free)
inline constexpr std::size_t size = 8;
}  // namespace ce

inline constexpr std::uint32_t max_streams = 256;
inline constexpr std::uint32_t max_containers = 4096;
static_assert(bf::header_size + max_streams * se::size + max_containers * ce::size <= base_copy_size);

// Limits on geometry (checked at create and on open).
inline constexpr std::uint32_t min_block_size = 1024;
inline constexpr std::uint32_t max_block_size = 8u << 20;
inline constexpr std::uint32_t max_io_align = 65536;

// ---- little-endian access --------------------------------------------------
template <class T>
constexpr T byte_swap(T v) noexcept {
  T r = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) r = static_cast<T>((r << 8) | ((v >> (8 * i)) & 0xff));
  return r;
}
template <class T>
inline T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof v);
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) v = byte_swap(v);
  return v;
}
template <class T>
inline void store(std::byte* p, T v) noexcept {
  if constexpr (std::endian::native == std::endian::big && sizeof(T) > 1) v = byte_swap(v);
  std::memcpy(p, &v, sizeof v);
}
inline std::uint16_t load16(const std::byte* p) noexcept { return load<std::uint16_t>(p); }
inline std::uint32_t load32(const std::byte* p) noexcept { return load<std::uint32_t>(p); }
inline std::uint64_t load64(const std::byte* p) noexcept { return load<std::uint64_t>(p); }

}  // namespace ktm::log::format
