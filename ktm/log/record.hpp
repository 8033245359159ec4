// ktm/log/record.hpp: what a record is to the caller.
//
// A record is a payload of bytes with a type, appended to one stream. The log
// adds its LSN, the previous LSN of the same stream and the undo-next LSN the
// writer gave. `log_record` is what reading returns: its payload is a view of
// the reader's buffer, valid until the reader moves on (copy it to keep it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ktm/log/lsn.hpp"

namespace ktm::log {

// Types 0 and 2..15 are the log's; callers may use 1 (data) and 16..255.
enum class record_type : std::uint8_t {
  data = 1,     // an ordinary client record
  restart = 2,  // a restart area (written by write_restart_area only)
};

inline constexpr bool is_client_type(record_type t) noexcept {
  auto v = static_cast<std::uint8_t>(t);
  return v == 1 || v >= 16;
}

enum class append_flags : std::uint8_t {
  none = 0,             // queue only: buffered, durable at a later flush
  force = 1,            // durable before append returns
  use_reservation = 2,  // take the space from this writer's reservation
};
constexpr append_flags operator|(append_flags a, append_flags b) noexcept {
  return static_cast<append_flags>(static_cast<std::uint8_t>(a) | static_cast<std::uint8_t>(b));
}
constexpr bool has_flag(append_flags set, append_flags f) noexcept {
  return (static_cast<std::uint8_t>(set) & static_cast<std::uint8_t>(f)) != 0;
}

struct log_record {
  lsn at;                             // this record
  lsn previous;                       // previous record of the stream (null for the first)
  lsn undo_next;                      // as given by the writer (null if none)
  record_type type = record_type::data;
  std::uint32_t stream_id = 0;
  std::span<const std::byte> payload; // valid until the reader advances

  std::vector<std::byte> payload_copy() const { return {payload.begin(), payload.end()}; }
};

// A record that owns its payload (returned by single-record reads).
struct owned_record {
  lsn at;
  lsn previous;
  lsn undo_next;
  record_type type = record_type::data;
  std::uint32_t stream_id = 0;
  std::vector<std::byte> payload;
};

}  // namespace ktm::log
