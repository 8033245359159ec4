// ktm/log/base_file.hpp: the log's metadata and its two shadow copies.
//
// The base file holds two copies of the metadata (geometry, stream table,
// container table, the durable head of the log). Each write goes to the slot
// that does not hold the newest copy, with generation + 1, then the device is
// flushed; a crash mid-write leaves the other copy intact.
//
// Reading validates each copy on its own, completely: CRC, then every count,
// length, id and LSN against the geometry and the limits of the format. A
// copy that fails any check is not a candidate, whatever its generation; the
// newest valid copy wins. A zeroed or forged checksum therefore cannot steer
// the reader to a copy that is not itself valid (CVE-2023-28252), and no
// field is trusted because "the checksum was fine".
#pragma once

#include <algorithm>
#include <optional>
#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "ktm/concepts/block_device.hpp"
#include "ktm/log/block_codec.hpp"
#include "ktm/log/crc32c.hpp"
#include "ktm/log/detail/aligned_buffer.hpp"
#include "ktm/log/format.hpp"
#include "ktm/log/lsn.hpp"
#include "ktm/result.hpp"

namespace ktm::log::detail {

struct stream_entry {
  std::uint32_t id = 0;
  std::string name;
  lsn base, last, restart;
};

struct container_entry {
  std::uint32_t physical_id = 0;
  std::uint32_t logical_id = format::no_logical;
};

struct base_metadata {
  std::uint64_t generation = 0;
  geometry geo;
  bool dedicated = false;
  std::uint32_t next_stream_id = 1;
  std::uint32_t head_container = 0, head_offset = 0, epoch = 1;
  std::uint64_t head_seq = 1;
  std::uint32_t next_physical = 0, max_containers = 0;
  std::uint32_t epoch_hint = 0;  // not stored: the largest epoch either slot names
  // Not stored: containers the other copy (valid, one generation older) names
  // and this one does not, i.e. removed by the write that made this copy.
  std::vector<std::uint32_t> dropped_physical;
  std::vector<stream_entry> streams;
  std::vector<container_entry> containers;

  lsn head() const noexcept { return lsn(head_container, head_offset, 0); }
};

// Epochs (open counts) are below this; a base copy naming a larger one is
// corrupt. Keeps every epoch computation (one more than any seen, the window
// of the next few sessions the tail scan looks at) far from overflow.
inline constexpr std::uint32_t max_epoch = 1u << 30;

// Checks geometry fields (used at create and on open).
inline bool geometry_ok(const geometry& g) noexcept {
  if (g.io_align < 512 || g.io_align > format::max_io_align || (g.io_align & (g.io_align - 1)) != 0) return false;
  if (g.block_size < format::min_block_size || g.block_size > format::max_block_size ||
      g.block_size % g.io_align != 0)
    return false;
  if (g.container_size % g.io_align != 0 || g.container_size > 0xfffff000u) return false;
  return std::uint64_t{g.container_size} >= std::uint64_t{g.io_align} + 2ull * g.block_size;
}

inline std::size_t encoded_size(const base_metadata& m) noexcept {
  return format::bf::header_size + m.streams.size() * format::se::size + m.containers.size() * format::ce::size;
}

// Encodes `m` into `out` (resized to the used size rounded up to io_align).
inline void encode_base(const base_metadata& m, std::vector<std::byte>& out) {
  namespace bf = format::bf;
  namespace se = format::se;
  using format::store;
  const std::size_t used = encoded_size(m);
  out.assign((used + m.geo.io_align - 1) / m.geo.io_align * m.geo.io_align, std::byte{0});
  std::byte* p = out.data();
  store<std::uint64_t>(p + bf::magic, format::base_magic);
  store<std::uint32_t>(p + bf::version, format::version);
  store<std::uint32_t>(p + bf::copy_size, static_cast<std::uint32_t>(format::base_copy_size));
  store<std::uint64_t>(p + bf::generation, m.generation);
  store<std::uint64_t>(p + bf::log_id, m.geo.log_id);
  store<std::uint32_t>(p + bf::used, static_cast<std::uint32_t>(used));
  store<std::uint32_t>(p + bf::block_size, m.geo.block_size);
  store<std::uint32_t>(p + bf::container_size, m.geo.container_size);
  store<std::uint32_t>(p + bf::io_align, m.geo.io_align);
  store<std::uint32_t>(p + bf::flags, m.dedicated ? format::flag_dedicated : 0);
  store<std::uint32_t>(p + bf::stream_count, static_cast<std::uint32_t>(m.streams.size()));
  store<std::uint32_t>(p + bf::container_count, static_cast<std::uint32_t>(m.containers.size()));
  store<std::uint32_t>(p + bf::next_stream_id, m.next_stream_id);
  store<std::uint32_t>(p + bf::head_container, m.head_container);
  store<std::uint32_t>(p + bf::head_offset, m.head_offset);
  store<std::uint32_t>(p + bf::epoch, m.epoch);
  store<std::uint64_t>(p + bf::head_seq, m.head_seq);
  store<std::uint32_t>(p + bf::next_physical, m.next_physical);
  store<std::uint32_t>(p + bf::max_containers, m.max_containers);
  std::byte* s = p + bf::header_size;
  for (const auto& e : m.streams) {
    store<std::uint32_t>(s + se::id, e.id);
    store<std::uint32_t>(s + se::name_length, static_cast<std::uint32_t>(e.name.size()));
    store<std::uint64_t>(s + se::base, e.base.raw());
    store<std::uint64_t>(s + se::last, e.last.raw());
    store<std::uint64_t>(s + se::restart, e.restart.raw());
    std::memcpy(s + se::name, e.name.data(), e.name.size());
    s += se::size;
  }
  for (const auto& c : m.containers) {
    store<std::uint32_t>(s + format::ce::physical_id, c.physical_id);
    store<std::uint32_t>(s + format::ce::logical_id, c.logical_id);
    s += format::ce::size;
  }
  store<std::uint32_t>(p + bf::crc, crc32c(p, used));
}

// Decodes and validates one copy. `copy` is the whole slot (base_copy_size
// bytes); `where` is its offset in the base file, for error positions.
inline result<base_metadata> decode_base(std::span<const std::byte> copy, std::uint64_t where,
                                         const std::string& file) {
  namespace bf = format::bf;
  namespace se = format::se;
  using format::load32;
  using format::load64;
  auto bad = [&](std::size_t field) { return failure(errc::corrupt_base_file, position::at_offset(where + field), file); };
  if (copy.size() < bf::header_size) return bad(copy.size());
  const std::byte* p = copy.data();
  if (load64(p + bf::magic) != format::base_magic) return bad(bf::magic);
  if (load32(p + bf::version) != format::version)
    return failure(errc::unsupported_version, position::at_offset(where + bf::version), file);
  if (load32(p + bf::copy_size) != format::base_copy_size) return bad(bf::copy_size);
  const std::uint32_t used = load32(p + bf::used);
  // `copy` may be only the prefix that was read: `used` must lie within it
  if (used < bf::header_size || used > format::base_copy_size || used > copy.size()) return bad(bf::used);
  {
    const std::byte zero[4] = {};
    std::uint32_t c = crc32c(p, bf::crc);
    c = crc32c_extend(c, zero, sizeof zero);
    c = crc32c_extend(c, p + bf::crc + 4, used - bf::crc - 4);
    if (c != load32(p + bf::crc)) return bad(bf::crc);
  }
  base_metadata m;
  m.generation = load64(p + bf::generation);
  m.geo.log_id = load64(p + bf::log_id);
  m.geo.block_size = load32(p + bf::block_size);
  m.geo.container_size = load32(p + bf::container_size);
  m.geo.io_align = load32(p + bf::io_align);
  const std::uint32_t flags = load32(p + bf::flags);
  const std::uint32_t sc = load32(p + bf::stream_count), cc = load32(p + bf::container_count);
  m.next_stream_id = load32(p + bf::next_stream_id);
  m.head_container = load32(p + bf::head_container);
  m.head_offset = load32(p + bf::head_offset);
  m.epoch = load32(p + bf::epoch);
  m.head_seq = load64(p + bf::head_seq);
  m.next_physical = load32(p + bf::next_physical);
  m.max_containers = load32(p + bf::max_containers);
  if (!geometry_ok(m.geo)) return bad(bf::block_size);
  if ((flags & ~format::flag_dedicated) != 0) return bad(bf::flags);
  m.dedicated = (flags & format::flag_dedicated) != 0;
  if (sc > format::max_streams || (m.dedicated && sc != 1)) return bad(bf::stream_count);
  if (cc < 2 || cc > format::max_containers) return bad(bf::container_count);
  if (m.max_containers > format::max_containers) return bad(bf::max_containers);
  if (std::uint64_t{used} != bf::header_size + std::uint64_t{sc} * se::size + std::uint64_t{cc} * format::ce::size)
    return bad(bf::used);
  for (std::size_t i = 96; i < bf::header_size; ++i)
    if (p[i] != std::byte{0}) return bad(i);
  // epochs stay far below 2^32: the next session's is one more than any seen
  if (m.epoch == 0 || m.epoch >= max_epoch) return bad(bf::epoch);
  if (m.head_seq == 0 || m.head_seq > (1ull << 62)) return bad(bf::head_seq);
  if (m.head_container > lsn::max_container) return bad(bf::head_container);
  if (m.head_offset < m.geo.first_block_units() || std::uint64_t{m.head_offset} * 512 > m.geo.container_size)
    return bad(bf::head_offset);
  const lsn head = m.head();

  // containers
  const std::byte* c = p + bf::header_size + std::size_t{sc} * se::size;
  std::set<std::uint32_t> phys, logi;
  bool head_assigned = false;
  for (std::uint32_t i = 0; i < cc; ++i, c += format::ce::size) {
    container_entry e{load32(c + format::ce::physical_id), load32(c + format::ce::logical_id)};
    const std::size_t at = static_cast<std::size_t>(c - p);
    if (e.physical_id >= m.next_physical || !phys.insert(e.physical_id).second) return bad(at);
    if (e.logical_id != format::no_logical) {
      if (e.logical_id > m.head_container || !logi.insert(e.logical_id).second) return bad(at + 4);
      head_assigned |= e.logical_id == m.head_container;
    }
    m.containers.push_back(e);
  }
  if (!head_assigned) return bad(bf::head_container);

  // streams
  const std::byte* s = p + bf::header_size;
  std::set<std::uint32_t> ids;
  std::set<std::string> names;
  auto lsn_ok = [&](lsn l) { return l.is_null() || (l.is_valid() && l < head && logi.count(l.container())); };
  for (std::uint32_t i = 0; i < sc; ++i, s += se::size) {
    const std::size_t at = static_cast<std::size_t>(s - p);
    stream_entry e;
    e.id = load32(s + se::id);
    const std::uint32_t nl = load32(s + se::name_length);
    if (e.id == 0 || e.id >= m.next_stream_id || !ids.insert(e.id).second) return bad(at + se::id);
    if (nl == 0 || nl > format::max_stream_name) return bad(at + se::name_length);
    for (std::size_t k = nl; k < format::max_stream_name; ++k)
      if (s[se::name + k] != std::byte{0}) return bad(at + se::name + k);
    e.name.assign(reinterpret_cast<const char*>(s + se::name), nl);
    if (!names.insert(e.name).second) return bad(at + se::name);
    e.base = lsn(load64(s + se::base));
    e.last = lsn(load64(s + se::last));
    e.restart = lsn(load64(s + se::restart));
    // base may equal the head (nothing appended since); it is not a record
    if (!(e.base.is_valid() && e.base <= head)) return bad(at + se::base);
    // below the base, last and restart name nothing the stream holds (no
    // read goes there: before_base), so their containers may be recycled
    auto held_ok = [&](lsn l) { return lsn_ok(l) || (l.is_valid() && l < e.base); };
    if (!held_ok(e.last)) return bad(at + se::last);
    if (!held_ok(e.restart) || e.restart > e.last) return bad(at + se::restart);
    m.streams.push_back(std::move(e));
  }
  return m;
}

// Loads the newest valid copy. Errors: corrupt_base_file when neither copy
// is valid (the position and file name of the first copy's first bad field);
// io_align_below_device when the log's io_align is smaller than the
// device's logical block size (its blocks could not be written there).
//
// Reads only what it needs of each copy: the first device block, then the
// `used` bytes the copy claims (each bounded by the copy size).
template <block_device D>
result<base_metadata> load_base(D& dev, const std::string& file) {
  const std::uint64_t size = dev.size();
  if (size < 2 * format::base_copy_size)
    return failure(errc::corrupt_base_file, position::at_offset(size), file);
  std::size_t blk = std::max<std::size_t>(512, dev.logical_block_size());
  if (blk > format::base_copy_size || (blk & (blk - 1)) != 0) blk = format::base_copy_size;
  aligned_buffer buf(format::base_copy_size, std::max<std::size_t>(blk, 512));
  std::optional<result<base_metadata>> c[2];
  std::uint32_t hint = 0;
  for (std::size_t k = 0; k < 2; ++k) {
    const std::uint64_t where = k * format::base_copy_size;
    if (auto ec = dev.read(where, buf.span().first(blk))) return failure(ec, position::at_offset(where), file);
    const std::uint32_t used = format::load32(buf.data() + format::bf::used);
    std::size_t n = blk;
    if (used > blk && used <= format::base_copy_size) n = (used + blk - 1) / blk * blk;
    if (n > blk)
      if (auto ec = dev.read(where + blk, buf.span().subspan(blk, n - blk)))
        return failure(ec, position::at_offset(where + blk), file);
    // The next session's epoch must exceed any epoch a copy may have named,
    // even one that failed validation (a larger number is always safe).
    const std::uint32_t e = format::load32(buf.data() + format::bf::epoch);
    if (e < max_epoch) hint = std::max(hint, e);
    c[k] = decode_base(buf.span().first(n), where, file);
  }
  result<base_metadata>& c0 = *c[0];
  result<base_metadata>& c1 = *c[1];
  if (c0) c0->epoch_hint = std::max(hint, c0->epoch);
  if (c1) c1->epoch_hint = std::max(hint, c1->epoch);
  result<base_metadata>* w = nullptr;
  if (c0 && c1) {
    w = c0->generation >= c1->generation ? &c0 : &c1;
    const base_metadata& older = w == &c0 ? *c1 : *c0;
    if (older.generation + 1 == (*w)->generation)
      for (const auto& e : older.containers) {
        bool kept = false;
        for (const auto& n : (*w)->containers) kept = kept || n.physical_id == e.physical_id;
        if (!kept) (*w)->dropped_physical.push_back(e.physical_id);
      }
  } else if (c0) w = &c0;
  else if (c1) w = &c1;
  else return c0.error();
  if (dev.logical_block_size() > (*w)->geo.io_align)
    return failure(errc::io_align_below_device, position::at_offset(format::bf::io_align), file);
  return std::move(*w);
}

// Writes `m` (whose generation the caller has already incremented) into
// slot generation % 2 and flushes. `scratch` is an io_align-aligned buffer
// of base_copy_size bytes. A call that succeeds has completed exactly one
// device flush, and the log then takes m.generation as its own: the log
// counts its base-file flushes as the generations it has written since
// create or open returned (log_core::device_flushes).
template <block_device D>
result<void> store_base(D& dev, const base_metadata& m, std::span<std::byte> scratch, const std::string& file) {
  if (dev.logical_block_size() > m.geo.io_align)
    return failure(errc::io_align_below_device, position::at_offset(format::bf::io_align), file);
  std::vector<std::byte> enc;
  encode_base(m, enc);
  std::memcpy(scratch.data(), enc.data(), enc.size());
  const std::uint64_t off = (m.generation % 2) * format::base_copy_size;
  if (auto ec = dev.write(off, scratch.first(enc.size()))) return failure(ec, position::at_offset(off), file);
  if (auto ec = dev.flush()) return failure(ec, position::at_offset(off), file);
  return {};
}

}  // namespace ktm::log::detail
