// ktm/log/lsn.hpp: log sequence numbers.
//
// An LSN names one record of a log by its place on disk, packed in 64 bits:
//
//   bits 63..32  logical container id (the n-th container the log filled)
//   bits 31..9   block offset in the container, in 512-byte units
//   bits  8..0   record number within the block (0..511)
//
// Because logical container ids only grow and blocks are laid out in order,
// numeric order is log order: the LSNs of one stream are strictly increasing,
// and so are all the LSNs of a multiplexed log. null() (all zero) is below
// every record (offset 0 is a container header, never a block); invalid()
// is an exclusive upper bound above every record.
#pragma once

#include <compare>
#include <cstdint>
#include <string>

namespace ktm::log {

class lsn {
 public:
  static constexpr unsigned record_bits = 9;
  static constexpr unsigned offset_bits = 23;
  static constexpr std::uint32_t max_record = (1u << record_bits) - 1;   // 511
  static constexpr std::uint32_t max_offset = (1u << offset_bits) - 1;   // in 512-byte units
  static constexpr std::uint32_t max_container = 0xfffffffeu;           // 0xffffffff is invalid()

  constexpr lsn() noexcept = default;  // null
  constexpr explicit lsn(std::uint64_t raw) noexcept : v_(raw) {}
  // Precondition: offset_units <= max_offset, record <= max_record.
  constexpr lsn(std::uint32_t container, std::uint32_t offset_units, std::uint32_t record) noexcept
      : v_((std::uint64_t{container} << 32) |
           (std::uint64_t{offset_units & max_offset} << record_bits) | (record & max_record)) {}

  static constexpr lsn null() noexcept { return lsn{}; }
  static constexpr lsn invalid() noexcept { return lsn{0xffffffff00000000ull}; }

  constexpr std::uint32_t container() const noexcept { return static_cast<std::uint32_t>(v_ >> 32); }
  constexpr std::uint32_t block_offset() const noexcept {
    return static_cast<std::uint32_t>(v_ >> record_bits) & max_offset;
  }
  constexpr std::uint64_t block_byte_offset() const noexcept { return std::uint64_t{block_offset()} * 512; }
  constexpr std::uint32_t record() const noexcept { return static_cast<std::uint32_t>(v_) & max_record; }
  constexpr std::uint64_t raw() const noexcept { return v_; }

  constexpr bool is_null() const noexcept { return v_ == 0; }
  // True for an LSN that could name a record: not null, below invalid().
  constexpr bool is_valid() const noexcept { return v_ != 0 && v_ < invalid().v_; }

  // The first LSN of the block this LSN is in.
  constexpr lsn block_start() const noexcept { return lsn{v_ & ~std::uint64_t{max_record}}; }

  friend constexpr auto operator<=>(lsn, lsn) noexcept = default;

  std::string to_string() const {
    return std::to_string(container()) + ":" + std::to_string(block_offset()) + ":" +
           std::to_string(record());
  }

 private:
  std::uint64_t v_ = 0;
};

static_assert(lsn(1, 2, 3) < lsn(1, 2, 4) && lsn(1, 2, 511) < lsn(1, 3, 0) && lsn(1, lsn::max_offset, 511) < lsn(2, 0, 0));
static_assert(lsn(lsn::max_container, lsn::max_offset, lsn::max_record) < lsn::invalid());

}  // namespace ktm::log
