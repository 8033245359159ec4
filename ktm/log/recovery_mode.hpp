// ktm/log/recovery_mode.hpp: what opening a log does with damage at its end.
//
// Opening a log scans from the last durable head recorded in the base file to
// the true end. A block that is not a valid continuation is either a clean
// end (never written: zeroes, or a stale block of an earlier cycle) or damage
// (a torn block, a checksum failure). What damage means is a compile-time
// policy, the second template parameter of ktm::log::log:
//
//   tolerate_corrupted_tail (default): damage at the tail is cut and reported;
//     damage followed by a block that proves the damaged one was durable
//     (a later block whose durable_seq covers it) is an error.
//   absolute_consistency: any damage is an error; only a clean end is an end.
//     Open also reads and checks every block that some stream still needs,
//     from the tail to the head (a pass over the active log), so damage in
//     older, durable data fails the open too. In the other modes such damage
//     is found when it is read: a view ends there with the error.
//   point_in_time: stop at the first damage and report it; never an error.
//
// A recovery policy is a type with `static constexpr recovery_action action`.
#pragma once

#include <concepts>
#include <cstdint>
#include <functional>
#include <string>

#include "ktm/error.hpp"
#include "ktm/log/lsn.hpp"

namespace ktm::log {

enum class recovery_action : std::uint8_t { tolerate_tail, fail, stop };

struct tolerate_corrupted_tail {
  static constexpr recovery_action action = recovery_action::tolerate_tail;
};
struct absolute_consistency {
  static constexpr recovery_action action = recovery_action::fail;
};
struct point_in_time {
  static constexpr recovery_action action = recovery_action::stop;
};

template <class R>
concept recovery_policy = requires {
  { R::action } -> std::convertible_to<recovery_action>;
};

template <class R>
consteval bool check_recovery_policy() {
  static_assert(recovery_policy<R>,
                "ktm::log::log<Io, Recovery>: 'Recovery' must have `static constexpr "
                "recovery_action action` (use tolerate_corrupted_tail, absolute_consistency "
                "or point_in_time)");
  return recovery_policy<R>;
}

// What opening found at the end of the log.
struct tail_report {
  bool damaged = false;             // false: a clean end; the rest is empty
  errc reason = errc::end_of_stream; // torn_write, checksum_mismatch, corrupt_record, corrupt_container
  std::string file;                 // container holding the damage
  std::uint64_t offset = 0;         // byte offset of the damaged block in `file`
  lsn at;                           // LSN of the damaged block's start
  std::uint64_t bytes_dropped = 0;  // size of the damaged region that was cut
  std::uint64_t blocks_recovered = 0;  // blocks replayed after the base file's head
  std::uint32_t orphans_removed = 0;   // container files left by a crashed remove_container, deleted
};

using tail_reporter = std::function<void(const tail_report&)>;

}  // namespace ktm::log
