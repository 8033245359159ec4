// ktm/log/restart_area.hpp: restart areas as the caller sees them.
//
// A restart area is a record of type record_type::restart, appended and
// forced atomically by write_restart_area. Its payload is an 8-byte new base
// LSN (0 = unchanged) followed by the caller's bytes; its undo-next field
// holds the LSN of the stream's previous restart area, which makes the chain
// read by read_previous_restart_area.
#pragma once

#include <cstddef>
#include <vector>

#include "ktm/log/format.hpp"
#include "ktm/log/lsn.hpp"
#include "ktm/log/record.hpp"
#include "ktm/result.hpp"

namespace ktm::log {

struct restart_area {
  lsn at;                   // the restart record
  lsn previous;             // the previous restart area of the stream (null if none)
  lsn new_base;             // the base it set (null if it left the base alone)
  std::vector<std::byte> data;
};

namespace detail {
inline result<restart_area> decode_restart(const owned_record& r) {
  if (r.type != record_type::restart || r.payload.size() < 8 || (!r.undo_next.is_null() && r.undo_next >= r.at))
    return failure(errc::corrupt_restart_area, position::at_lsn(r.at.raw()));
  restart_area a;
  a.at = r.at;
  a.previous = r.undo_next;
  a.new_base = lsn(format::load64(r.payload.data()));
  a.data.assign(r.payload.begin() + 8, r.payload.end());
  return a;
}
}  // namespace detail

}  // namespace ktm::log
