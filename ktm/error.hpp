// ktm/error.hpp: the library's error codes.
//
// Every failure the library reports is a std::error_code of ktm's category.
// The numeric values are stable ids: they are written in logs and docs and
// never reused or renumbered. New codes are appended within their group.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace ktm {

enum class errc : int {
  // 1..19: I/O (ktm/io)
  io_error = 1,            // the device reported EIO or a similar hard error
  no_space = 2,            // ENOSPC / EDQUOT
  misaligned = 3,          // direct I/O buffer, offset or length not aligned
  out_of_range = 4,        // read or write beyond the end of a device
  not_found = 5,           // a named file or device does not exist
  already_exists = 6,      // a named file or device exists already
  device_failed = 7,       // fail-stop: an earlier flush failed, no more I/O
  short_io = 8,            // a read or write moved fewer bytes than asked
  permission_denied = 9,   // EACCES / EPERM / EROFS
  unsupported = 10,        // the device or file system cannot do this

  // 20..59: the log (ktm/log)
  corrupt_base_file = 20,      // no valid copy of the base (metadata) file
  corrupt_container = 21,      // a container's header is damaged or foreign
  corrupt_record = 22,         // a record header or payload fails validation
  torn_write = 23,             // a block was not written whole
  checksum_mismatch = 24,      // a CRC32C does not match
  invalid_lsn = 25,            // the LSN is not one of this stream's records
  end_of_stream = 26,          // read past the last record of a stream
  before_base = 27,            // read before the base LSN of a stream
  log_full = 28,               // no room: grow the log or advance tails
  record_too_large = 29,       // a record does not fit in one block
  stream_not_found = 30,
  stream_exists = 31,
  no_restart_area = 32,        // the stream has no (earlier) restart area
  tail_pinned = 33,            // log full and an old record pins the tail
  too_few_containers = 34,     // a log needs at least two containers
  container_in_use = 35,       // the container holds the active log
  reservation_exceeded = 36,   // use-reservation without enough reserved
  log_failed = 37,             // fail-stop: the log saw a failed flush
  unsupported_version = 38,    // on-disk format version not understood
  invalid_argument = 39,       // a caller's argument is out of its domain
  too_many_streams = 40,
  too_many_containers = 41,
  corrupt_restart_area = 42,
  writer_exists = 43,          // the stream has a marshalling area already
  io_align_below_device = 44,  // the log's io_align is smaller than the device's logical block size
  incomplete_log = 45,         // leftovers of a create that did not finish: no log (create again)

  // 60..99: transactions (ktm/tm, ktm/rm)
  invalid_state = 60,          // the call is not legal in the object's state
  transaction_aborted = 61,    // the transaction rolled back
  volatile_tm_durable_rm = 62, // a volatile TM accepts only volatile RMs
  superior_exists = 63,        // a transaction has at most one superior
  timed_out = 64,
  tm_not_online = 65,
  tm_failed = 66,              // fail-stop after a log failure
  rm_not_found = 67,
  enlistment_not_found = 68,
  transaction_not_found = 69,
  too_large = 70,              // description / recovery information too long
  volatile_tm = 71,            // the call needs a durable TM
  commit_requested = 72,       // a superior exists: commit goes to it
  in_doubt = 73,
  heuristic_outcome = 74,
  capacity_exhausted = 75,     // a fixed-capacity store is full
  already_enlisted = 76,
  disconnected = 77,           // transport: the peer is unreachable
};

// The category of ktm::errc. Its name is "ktm".
class error_category_impl final : public std::error_category {
 public:
  const char* name() const noexcept override { return "ktm"; }
  std::string message(int v) const override;
};

inline const std::error_category& error_category() noexcept {
  static const error_category_impl instance;
  return instance;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

// Maps an errno value from a system call onto a ktm code, so that callers
// see one category whatever the device.
inline std::error_code from_errno(int e) noexcept {
  switch (e) {
    case 0: return {};
    case ENOSPC:
    case EDQUOT: return make_error_code(errc::no_space);
    case ENOENT: return make_error_code(errc::not_found);
    case EEXIST: return make_error_code(errc::already_exists);
    case EACCES:
    case EPERM:
    case EROFS: return make_error_code(errc::permission_denied);
    case EINVAL: return make_error_code(errc::invalid_argument);
    case EOPNOTSUPP: return make_error_code(errc::unsupported);
    default: return make_error_code(errc::io_error);
  }
}

inline std::string error_category_impl::message(int v) const {
  switch (static_cast<errc>(v)) {
    case errc::io_error: return "I/O error";
    case errc::no_space: return "no space left on device";
    case errc::misaligned: return "buffer, offset or length not aligned to the logical block size";
    case errc::out_of_range: return "access beyond the end of the device";
    case errc::not_found: return "no such file or device";
    case errc::already_exists: return "file or device exists already";
    case errc::device_failed: return "device failed earlier (fail-stop)";
    case errc::short_io: return "short read or write";
    case errc::permission_denied: return "permission denied";
    case errc::unsupported: return "operation not supported";
    case errc::corrupt_base_file: return "base log file is corrupt";
    case errc::corrupt_container: return "log container is corrupt";
    case errc::corrupt_record: return "log record is corrupt";
    case errc::torn_write: return "torn write: block not written whole";
    case errc::checksum_mismatch: return "checksum mismatch";
    case errc::invalid_lsn: return "invalid LSN";
    case errc::end_of_stream: return "end of log stream";
    case errc::before_base: return "LSN is before the base of the stream";
    case errc::log_full: return "log is full";
    case errc::record_too_large: return "record larger than a log block";
    case errc::stream_not_found: return "no such log stream";
    case errc::stream_exists: return "log stream exists already";
    case errc::no_restart_area: return "no restart area";
    case errc::tail_pinned: return "log full: tail pinned by an old record";
    case errc::too_few_containers: return "a log needs at least two containers";
    case errc::container_in_use: return "container holds part of the active log";
    case errc::reservation_exceeded: return "not enough space reserved";
    case errc::log_failed: return "log failed earlier (fail-stop)";
    case errc::unsupported_version: return "unsupported log format version";
    case errc::invalid_argument: return "invalid argument";
    case errc::too_many_streams: return "too many log streams";
    case errc::too_many_containers: return "too many containers";
    case errc::corrupt_restart_area: return "restart area is corrupt";
    case errc::writer_exists: return "log stream has a writer already";
    case errc::io_align_below_device:
      return "log io_align is smaller than the device's logical block size (use io_align >= it)";
    case errc::incomplete_log: return "no log: leftovers of an unfinished create (create it again)";
    case errc::invalid_state: return "operation not valid in the current state";
    case errc::transaction_aborted: return "transaction aborted";
    case errc::volatile_tm_durable_rm: return "a volatile transaction manager accepts only volatile resource managers";
    case errc::superior_exists: return "transaction already has a superior enlistment";
    case errc::timed_out: return "timed out";
    case errc::tm_not_online: return "transaction manager is not online";
    case errc::tm_failed: return "transaction manager failed (fail-stop)";
    case errc::rm_not_found: return "no such resource manager";
    case errc::enlistment_not_found: return "no such enlistment";
    case errc::transaction_not_found: return "no such transaction";
    case errc::too_large: return "value too large";
    case errc::volatile_tm: return "operation needs a durable transaction manager";
    case errc::commit_requested: return "commit forwarded to the superior transaction manager";
    case errc::in_doubt: return "transaction outcome in doubt";
    case errc::heuristic_outcome: return "heuristic outcome";
    case errc::capacity_exhausted: return "fixed capacity exhausted";
    case errc::already_enlisted: return "already enlisted";
    case errc::disconnected: return "peer disconnected";
  }
  return "unknown ktm error " + std::to_string(v);
}

}  // namespace ktm

template <>
struct std::is_error_code_enum<ktm::errc> : std::true_type {};
