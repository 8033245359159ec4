// ktm/log/detail/block_fetch.hpp: reading and checking one block for the
// readers (a block not yet written is written first).
// Part of log_core's write path; included by log_core.hpp only.
#pragma once

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

template <io_policy Io>
result<void> log_core<Io>::fetch_block(lsn start, block_view& bv) {
  if (bv.start == start) return {};
  bv.start = lsn::invalid();
  std::shared_ptr<device> dev;
  std::string file;
  {
    std::unique_lock lk(mu_);
    KTM_TRY(usable());
    if (start >= written_lsn_) {
      if (start >= end_lsn_locked()) return failure(errc::invalid_lsn, position::at_lsn(start.raw()), name_);
      auto r = flush_to_locked(lk, start, false);
      if (!r) return std::move(r).error();
    }
    auto* s = cs_.by_logical(start.container());
    if (!s) return failure(errc::invalid_lsn, position::at_lsn(start.raw()), name_);
    dev = s->dev;
    file = s->file;
  }
  const std::uint64_t off = start.block_byte_offset();
  if (start.block_offset() < geo_.first_block_units() || off + geo_.io_align > geo_.container_size ||
      off % geo_.io_align != 0)
    return failure(errc::invalid_lsn, position::at_lsn(start.raw()), file);
  if (bv.raw.size() < geo_.block_size) bv.raw = aligned_buffer(geo_.block_size, geo_.io_align);
  if (auto ec = dev->read(off, bv.raw.span().first(geo_.io_align)))
    return failure(ec, position::at_lsn(start.raw()), file);
  auto b = parse_block_header(bv.raw.data(), geo_);
  if (!b || b->container != start.container() || b->offset != start.block_offset())
    return failure(errc::corrupt_record, position::at_lsn(start.raw()), file);
  const std::size_t bytes = std::size_t{b->sectors} * 512;
  if (bytes > geo_.io_align)
    if (auto ec = dev->read(off + geo_.io_align, bv.raw.span().subspan(geo_.io_align, bytes - geo_.io_align)))
      return failure(ec, position::at_lsn(start.raw()), file);
  if (errc e = check_block(bv.raw.data(), *b, bv.body, bv.offsets); e != errc{})
    return failure(e, position::at_lsn(start.raw()), file);
  bv.info = *b;
  bv.start = start;
  return {};
}

}  // namespace ktm::log::detail
