// ktm/tm/detail/tm_record.hpp: the records a durable TM writes in its log
// stream (only built when the log backend is durable).
//
// All integers little-endian. A record is
//   u8  type            1 = commit, 2 = end, 3 = restart area
//   u8  version         1
//   u16 count           enlistments that follow (commit), else 0
//   u64 virtual clock   the TM clock stamped on the transaction
//   16  uow / tm id     the transaction's UOW guid (restart: the TM's guid)
// then, for a commit record, `count` times:
//   16  rm id | u64 enlistment key | u16 n | n bytes recovery information
// Presumed abort: nothing is logged for a transaction that aborts, so a
// commit record without an end record means "redeliver COMMIT".
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ktm/guid.hpp"

namespace ktm::tm::detail {

enum class tm_record_type : std::uint8_t { commit = 1, end = 2, restart = 3 };
inline constexpr std::uint8_t tm_record_version = 1;
inline constexpr std::size_t tm_record_header_size = 1 + 1 + 2 + 8 + 16;

class tm_record_writer {
 public:
  tm_record_writer(tm_record_type t, std::uint64_t clock, const guid& id) {
    bytes_.reserve(64);
    put8(static_cast<std::uint8_t>(t));
    put8(tm_record_version);
    put16(0);
    put64(clock);
    put(id);
  }
  void add_enlistment(const guid& rm, std::uint64_t key, std::span<const std::byte> info) {
    put(rm);
    put64(key);
    put16(static_cast<std::uint16_t>(info.size()));
    bytes_.insert(bytes_.end(), info.begin(), info.end());
    ++count_;
    bytes_[2] = static_cast<std::byte>(count_ & 0xff);
    bytes_[3] = static_cast<std::byte>(count_ >> 8);
  }
  std::span<const std::byte> bytes() const noexcept { return bytes_; }

 private:
  void put8(std::uint8_t v) { bytes_.push_back(static_cast<std::byte>(v)); }
  void put16(std::uint16_t v) {
    put8(static_cast<std::uint8_t>(v));
    put8(static_cast<std::uint8_t>(v >> 8));
  }
  void put64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) put8(static_cast<std::uint8_t>(v >> (8 * i)));
  }
  void put(const guid& g) {
    for (std::uint8_t b : g.bytes()) put8(b);
  }

  std::vector<std::byte> bytes_;
  std::uint16_t count_ = 0;
};

}  // namespace ktm::tm::detail
