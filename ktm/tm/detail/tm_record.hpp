// ktm/tm/detail/tm_record.hpp: the records a durable TM writes in its log
// stream (only built when the log backend is durable).
//
// All integers little-endian. A record is
//   u8  type            1 = commit, 2 = end, 3 = restart area,
//                       4 = prepared (a subordinate of a superior TM),
//                       5 = heuristic (a subordinate decided alone)
//   u8  version         1
//   u16 count           enlistments that follow (commit), else 0
//   u64 virtual clock   the TM clock stamped on the transaction
//   16  uow / tm id     the transaction's UOW guid (restart: the TM's guid)
// then, for a prepared or heuristic record only, the superior:
//   16  superior TM id
// then, for a heuristic record only, two outcomes (1 = committed,
// 2 = aborted, 0 = undetermined):
//   u8  decided         what this TM decided alone (never 0)
//   u8  superior said   the superior's outcome, 0 until it is known
// then, for a commit or prepared record, `count` times:
//   16  rm id | u64 enlistment key | u32 notification mask | u16 n |
//   n bytes recovery information
// and, only when the transaction has a description, a trailer:
//   u8 d | d bytes description (d <= 64)
// Presumed abort: nothing is logged for a transaction that aborts, so a
// commit record without an end record means "redeliver COMMIT". A prepared
// record without a commit or end record means "in doubt: ask the superior".
// A heuristic record is forced before the decision reaches any RM; the last
// one of a UOW is its report (heuristic_report.hpp), and one that follows
// an open prepared record means "decided: apply it again".
// walk_tm_record validates every count and length against the record's
// size (errc::corrupt_record) without copying; parse_tm_record copies what
// it decodes.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/result.hpp"

namespace ktm::tm::detail {

enum class tm_record_type : std::uint8_t { commit = 1, end = 2, restart = 3, prepared = 4, heuristic = 5 };
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
  // A prepared or heuristic record's superior; call before the first
  // add_enlistment.
  void set_superior(const guid& superior) { put(superior); }
  // A heuristic record's outcomes (after set_superior).
  void set_outcomes(std::uint8_t decided, std::uint8_t superior_said) {
    put8(decided);
    put8(superior_said);
  }
  std::uint16_t count() const noexcept { return count_; }

  void add_enlistment(const guid& rm, std::uint64_t key, std::uint32_t mask, std::span<const std::byte> info) {
    put(rm);
    put64(key);
    put32(mask);
    put16(static_cast<std::uint16_t>(info.size()));
    bytes_.insert(bytes_.end(), info.begin(), info.end());
    ++count_;
    bytes_[2] = static_cast<std::byte>(count_ & 0xff);
    bytes_[3] = static_cast<std::byte>(count_ >> 8);
  }
  // The description trailer; call after the last add_enlistment, and only
  // for a non-empty description (at most 255 bytes are kept).
  void set_description(std::string_view d) {
    if (d.empty()) return;
    if (d.size() > 255) d = d.substr(0, 255);
    put8(static_cast<std::uint8_t>(d.size()));
    for (char c : d) put8(static_cast<std::uint8_t>(c));
  }
  std::span<const std::byte> bytes() const noexcept { return bytes_; }

 private:
  void put8(std::uint8_t v) { bytes_.push_back(static_cast<std::byte>(v)); }
  void put16(std::uint16_t v) {
    put8(static_cast<std::uint8_t>(v));
    put8(static_cast<std::uint8_t>(v >> 8));
  }
  void put32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) put8(static_cast<std::uint8_t>(v >> (8 * i)));
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

// One enlistment of a decoded commit record.
struct tm_record_enlistment {
  guid rm;
  std::uint64_t key = 0;
  std::uint32_t mask = 0;  // the enlistment's notification mask
  std::vector<std::byte> recovery_information;
};

// A decoded TM record.
struct tm_record {
  tm_record_type type = tm_record_type::commit;
  std::uint64_t clock = 0;
  guid id;  // UOW (commit, end, prepared, heuristic) or TM id (restart)
  guid superior;  // prepared and heuristic records only
  std::uint8_t decided = 0, superior_said = 0;  // heuristic records only
  std::vector<tm_record_enlistment> enlistments;
  std::string description;
};

// The fixed part of a TM record (and a prepared record's superior).
struct tm_record_header {
  tm_record_type type = tm_record_type::commit;
  std::uint64_t clock = 0;
  guid id;
  guid superior;  // prepared and heuristic records only
  std::uint8_t decided = 0, superior_said = 0;  // heuristic records only
};

// Validates one TM record (type, version, every count and length against
// the record's size), decodes its fixed part into h and calls
// on_enlistment(rm, key, mask, info) for each enlistment and on_description(text)
// for the trailer, without copying. False when it does not fit (h is then
// unspecified). Filling the caller's h, rather than returning a copy of it,
// keeps the replay's per-record path free of a store-forwarding stall.
template <class E, class D>
bool walk_tm_record_into(std::span<const std::byte> b, tm_record_header& h, E&& on_enlistment, D&& on_description) {
  if (b.size() < tm_record_header_size) return false;
  auto u8 = [&](std::size_t at) { return static_cast<std::uint8_t>(b[at]); };
  auto u16 = [&](std::size_t at) { return static_cast<std::uint16_t>(u8(at) | (u8(at + 1) << 8)); };
  auto u64 = [&](std::size_t at) {
    std::uint64_t v;
    std::memcpy(&v, b.data() + at, 8);
    if constexpr (std::endian::native == std::endian::big) {
      std::uint64_t r = 0;
      for (int i = 0; i < 8; ++i) r = (r << 8) | ((v >> (8 * i)) & 0xff);
      v = r;
    }
    return v;
  };
  auto id = [&](std::size_t at) {
    guid::bytes_type g;
    std::memcpy(g.data(), b.data() + at, 16);
    return guid(g);
  };
  const std::uint8_t t = u8(0);
  if (t < 1 || t > 5 || u8(1) != tm_record_version) return false;
  h.type = static_cast<tm_record_type>(t);
  const std::uint16_t count = u16(2);
  h.clock = u64(4);
  h.id = id(12);
  std::size_t at = tm_record_header_size;
  const bool lists = h.type == tm_record_type::commit || h.type == tm_record_type::prepared;
  if (!lists && count != 0) return false;
  if (h.type == tm_record_type::prepared || h.type == tm_record_type::heuristic) {
    if (b.size() - at < 16) return false;
    h.superior = id(at);
    at += 16;
  } else {
    h.superior = guid();
  }
  h.decided = h.superior_said = 0;
  if (h.type == tm_record_type::heuristic) {
    if (b.size() - at < 2) return false;
    h.decided = u8(at);
    h.superior_said = u8(at + 1);
    if (h.decided < 1 || h.decided > 2 || h.superior_said > 2) return false;
    at += 2;
  }
  for (std::uint16_t i = 0; i < count; ++i) {
    if (b.size() - at < 16 + 8 + 4 + 2) return false;
    const std::uint32_t mask = static_cast<std::uint32_t>(u16(at + 24)) | (static_cast<std::uint32_t>(u16(at + 26)) << 16);
    const std::size_t n = u16(at + 28);
    if (b.size() - at - 30 < n) return false;
    on_enlistment(id(at), u64(at + 16), mask, b.subspan(at + 30, n));
    at += 30 + n;
  }
  if (at < b.size()) {  // the description trailer (commit and prepared records only)
    if (!lists) return false;
    const std::size_t d = u8(at);
    if (b.size() - at - 1 != d || d == 0) return false;
    on_description(std::string_view(reinterpret_cast<const char*>(b.data() + at + 1), d));
  }
  return true;
}

// walk_tm_record_into, returning the fixed part; errc::corrupt_record when
// the record does not fit.
template <class E, class D>
result<tm_record_header> walk_tm_record(std::span<const std::byte> b, E&& on_enlistment, D&& on_description) {
  tm_record_header h;
  if (!walk_tm_record_into(b, h, std::forward<E>(on_enlistment), std::forward<D>(on_description)))
    return errc::corrupt_record;
  return h;
}

// Validates one TM record and decodes its fixed part into h, copying
// nothing else (walk_tm_record_into).
inline bool peek_tm_record_into(std::span<const std::byte> b, tm_record_header& h) {
  return walk_tm_record_into(
      b, h, [](const guid&, std::uint64_t, std::uint32_t, std::span<const std::byte>) {}, [](std::string_view) {});
}

// Decodes and validates one TM record (walk_tm_record) and copies what it
// decodes.
inline result<tm_record> parse_tm_record(std::span<const std::byte> b) {
  tm_record r;
  auto h = walk_tm_record(
      b,
      [&](const guid& rm, std::uint64_t key, std::uint32_t mask, std::span<const std::byte> info) {
        r.enlistments.push_back({rm, key, mask, std::vector<std::byte>(info.begin(), info.end())});
      },
      [&](std::string_view d) { r.description.assign(d); });
  if (!h) return std::move(h).error();
  r.type = h->type;
  r.clock = h->clock;
  r.id = h->id;
  r.superior = h->superior;
  r.decided = h->decided;
  r.superior_said = h->superior_said;
  return r;
}

}  // namespace ktm::tm::detail
