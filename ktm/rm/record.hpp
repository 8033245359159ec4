// ktm/rm/record.hpp: the on-disk layout of a resource manager's log stream
// (what change_log writes), with encoders and validating decoders.
//
// Every record of the stream is a log record of type record_type::data whose
// payload is (all integers little-endian):
//
//   u8   kind          change_kind below
//   16   uow           the transaction's UOW guid (checkpoint records: the
//                      checkpoint's id); never nil
//   u32  key length    k
//   k    key bytes
//   u32  value length  v, or 0xffffffff: no value (the object does not exist)
//   v    value bytes
//
// The payload is exactly 25 + k + v bytes; anything else is corrupt. Which
// kinds carry what:
//
//   before_image 1  key, value = the object before the change (may be absent)
//   after_image  2  key, value = the object after the change (absent = erased)
//   prepare      3  no key, no value
//   commit       4  no key, no value
//   abort        5  no key, no value
//   checkpoint   6  no key, no value; starts a snapshot (uow = checkpoint id)
//   snapshot     7  key, value (present): one object of the permanent store
//
// A restart area written by change_log::checkpoint carries
//
//   u32  magic "KRM1" (0x314d524b)
//   16   checkpoint id (the uow of its checkpoint and snapshot records)
//   u64  checkpoint LSN (the checkpoint record that starts the snapshot)
//   u64  scan-from LSN (the new base: the oldest record recovery needs)
//   u64  snapshot entry count
//
// Decoders trust no byte: every length is checked against what is left, and
// a failure is errc::corrupt_record (records) or errc::corrupt_restart_area
// carrying the record's LSN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ktm/guid.hpp"
#include "ktm/log/lsn.hpp"
#include "ktm/result.hpp"

namespace ktm::rm {

enum class change_kind : std::uint8_t {
  before_image = 1,
  after_image = 2,
  prepare = 3,
  commit = 4,
  abort = 5,
  checkpoint = 6,
  snapshot = 7,
};

// An object's contents, or nullopt when the object does not exist.
using image = std::optional<std::string>;
using image_view = std::optional<std::string_view>;

inline constexpr std::uint32_t absent_length = 0xffffffffu;
inline constexpr std::size_t record_fixed_size = 1 + 16 + 4 + 4;  // 25
inline constexpr std::uint32_t restart_magic = 0x314d524bu;        // "KRM1"
inline constexpr std::size_t restart_payload_size = 4 + 16 + 8 + 8 + 8;

// A decoded record; owns its bytes.
struct change_record {
  change_kind kind = change_kind::prepare;
  guid uow;
  std::string key;
  image value;
};

// A decoded restart area.
struct checkpoint_info {
  guid id;
  log::lsn checkpoint_at;  // the checkpoint record
  log::lsn scan_from;      // the base it set
  std::uint64_t entries = 0;
};

namespace detail {
inline void put32(std::vector<std::byte>& b, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<std::byte>(v >> (8 * i)));
}
inline void put64(std::vector<std::byte>& b, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) b.push_back(static_cast<std::byte>(v >> (8 * i)));
}
inline std::uint32_t get32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint32_t>(p[i]);
  return v;
}
inline std::uint64_t get64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}
inline void put_guid(std::vector<std::byte>& b, const guid& g) {
  for (std::uint8_t x : g.bytes()) b.push_back(static_cast<std::byte>(x));
}
inline guid get_guid(const std::byte* p) {
  guid::bytes_type g;
  std::memcpy(g.data(), p, 16);
  return guid(g);
}
inline constexpr bool has_key(change_kind k) noexcept {
  return k == change_kind::before_image || k == change_kind::after_image || k == change_kind::snapshot;
}
}  // namespace detail

// The payload of one record. Precondition: key and value each < 4 GiB - 1.
inline std::vector<std::byte> encode_record(change_kind kind, const guid& uow, std::string_view key = {},
                                            image_view value = std::nullopt) {
  std::vector<std::byte> b;
  b.reserve(record_fixed_size + key.size() + (value ? value->size() : 0));
  b.push_back(static_cast<std::byte>(kind));
  detail::put_guid(b, uow);
  detail::put32(b, static_cast<std::uint32_t>(key.size()));
  const auto* kp = reinterpret_cast<const std::byte*>(key.data());
  b.insert(b.end(), kp, kp + key.size());
  if (!value) {
    detail::put32(b, absent_length);
  } else {
    detail::put32(b, static_cast<std::uint32_t>(value->size()));
    const auto* vp = reinterpret_cast<const std::byte*>(value->data());
    b.insert(b.end(), vp, vp + value->size());
  }
  return b;
}

// Decodes and validates the payload of the record at `at` (named in errors).
inline result<change_record> decode_record(std::span<const std::byte> p, log::lsn at) {
  const failure bad(errc::corrupt_record, position::at_lsn(at.raw()));
  if (p.size() < record_fixed_size) return bad;
  const auto kind_byte = std::to_integer<std::uint8_t>(p[0]);
  if (kind_byte < 1 || kind_byte > 7) return bad;
  change_record r;
  r.kind = static_cast<change_kind>(kind_byte);
  r.uow = detail::get_guid(p.data() + 1);
  if (r.uow.is_nil()) return bad;
  std::size_t off = 17;
  const std::uint32_t klen = detail::get32(p.data() + off);
  off += 4;
  // what is left must hold the key and the value-length field
  if (klen > p.size() - off || p.size() - off - klen < 4) return bad;
  r.key.assign(reinterpret_cast<const char*>(p.data() + off), klen);
  off += klen;
  const std::uint32_t vlen = detail::get32(p.data() + off);
  off += 4;
  if (vlen == absent_length) {
    if (off != p.size()) return bad;
  } else {
    if (vlen != p.size() - off) return bad;
    r.value.emplace(reinterpret_cast<const char*>(p.data() + off), vlen);
  }
  if (!detail::has_key(r.kind) && (klen != 0 || r.value)) return bad;
  if (r.kind == change_kind::snapshot && !r.value) return bad;
  return r;
}

inline std::vector<std::byte> encode_restart(const checkpoint_info& c) {
  std::vector<std::byte> b;
  b.reserve(restart_payload_size);
  detail::put32(b, restart_magic);
  detail::put_guid(b, c.id);
  detail::put64(b, c.checkpoint_at.raw());
  detail::put64(b, c.scan_from.raw());
  detail::put64(b, c.entries);
  return b;
}

// Decodes the caller bytes of the restart area at `at`. The checkpoint
// record and the scan start must lie before the restart area, the scan start
// no later than the checkpoint record.
inline result<checkpoint_info> decode_restart(std::span<const std::byte> p, log::lsn at) {
  const failure bad(errc::corrupt_restart_area, position::at_lsn(at.raw()));
  if (p.size() != restart_payload_size || detail::get32(p.data()) != restart_magic) return bad;
  checkpoint_info c;
  c.id = detail::get_guid(p.data() + 4);
  c.checkpoint_at = log::lsn(detail::get64(p.data() + 20));
  c.scan_from = log::lsn(detail::get64(p.data() + 28));
  c.entries = detail::get64(p.data() + 36);
  if (c.id.is_nil() || !c.checkpoint_at.is_valid() || !c.scan_from.is_valid()) return bad;
  if (!(c.checkpoint_at < at) || c.scan_from > c.checkpoint_at) return bad;
  // each entry is a record of its own, so no more entries than LSNs between
  if (c.entries > at.raw() - c.checkpoint_at.raw()) return bad;
  return c;
}

}  // namespace ktm::rm
