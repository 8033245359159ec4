// ktm/io/fault_spec.hpp: the vocabulary of fault injection.
//
// Call kinds and sets of them, call counters, what a fault rule sees of a
// call (`call_info`), what a crash keeps (`crash_spec`) and the fault rule
// itself (`fault`). The fault_controller (ktm/io/fault_controller.hpp) acts
// on them.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "ktm/error.hpp"

namespace ktm::io {

// open, read, write, flush, grow: calls on a file. remove, rename and
// sync_directory: a storage's directory operations (counted on the file
// removed, the file renamed (by its old name), and the directory's own
// entry "." for sync_directory).
enum class call_kind : std::uint8_t { open, read, write, flush, grow, remove, rename, sync_directory };
inline constexpr std::size_t call_kind_count = 8;

// A set of call kinds.
struct kind_set {
  std::uint8_t bits = 0;
  constexpr kind_set() noexcept = default;
  constexpr kind_set(call_kind k) noexcept : bits(static_cast<std::uint8_t>(1u << unsigned(k))) {}
  static constexpr kind_set all() noexcept { return from_bits(0xff); }
  // read, write, flush, grow: calls on an open device.
  static constexpr kind_set io() noexcept { return from_bits(0x1e); }
  constexpr bool has(call_kind k) const noexcept { return (bits >> unsigned(k)) & 1u; }
  friend constexpr kind_set operator|(kind_set a, kind_set b) noexcept {
    return from_bits(static_cast<std::uint8_t>(a.bits | b.bits));
  }

 private:
  static constexpr kind_set from_bits(std::uint8_t b) noexcept {
    kind_set s;
    s.bits = b;
    return s;
  }
};

struct call_counts {
  std::array<std::uint64_t, call_kind_count> by_kind{};

  std::uint64_t of(call_kind k) const noexcept { return by_kind[std::size_t(k)]; }
  std::uint64_t opens() const noexcept { return of(call_kind::open); }
  std::uint64_t reads() const noexcept { return of(call_kind::read); }
  std::uint64_t writes() const noexcept { return of(call_kind::write); }
  std::uint64_t flushes() const noexcept { return of(call_kind::flush); }
  std::uint64_t grows() const noexcept { return of(call_kind::grow); }
  std::uint64_t removes() const noexcept { return of(call_kind::remove); }
  std::uint64_t renames() const noexcept { return of(call_kind::rename); }
  std::uint64_t directory_syncs() const noexcept { return of(call_kind::sync_directory); }
  std::uint64_t total() const noexcept {
    std::uint64_t t = 0;
    for (auto n : by_kind) t += n;
    return t;
  }
};

// What a fault rule sees of a call.
struct call_info {
  call_kind kind;
  std::string_view device;    // the file's name in its storage
  std::uint64_t offset = 0;   // read/write: offset; grow: the new size
  std::uint64_t length = 0;   // read/write: bytes
  std::uint64_t nth_of_kind;  // 1-based, over all files, this call included
  std::uint64_t nth_call;     // 1-based, over all kinds and files
};

enum class persistence : std::uint8_t {
  once,        // the rule fires on one call, then is spent
  persistent,  // once fired, it fires on every later matching call
  every_match, // it fires on every matching call that meets its conditions
};

// What a crash keeps of the writes not covered by a flush.
struct crash_spec {
  enum class writes : std::uint8_t { lost, random_subset, kept };
  enum class last : std::uint8_t { as_others, torn, garbage };

  writes unflushed = writes::lost;
  last last_write = last::as_others;  // the newest unflushed write of each file
  std::uint64_t seed = 0;             // for random_subset, torn and garbage
  std::string device{};               // torn/garbage only on this file ("" = every file)
  // Directory operations (create, rename, remove) not yet made durable by a
  // directory sync: only a storage in directory_sync::explicit_only mode has
  // any (see fault_injection_storage). random_subset keeps each one by a
  // seeded draw, so a later one may survive an earlier lost one (reordering).
  writes unsynced_directory = writes::lost;
};

// A fault rule. A call matches when its kind is in `kinds` and, if `device`
// is not empty, its file is `device`. The rule counts matching calls from the
// moment it is injected; it fires on a matching call when (nth == 0 or this
// is the nth match) and `when` (if set) accepts it and a seeded draw falls
// below `per_million`. `when` runs under the controller's mutex: it must not
// call the controller or a device. When several rules would fire on one
// call, the first injected decides what happens and alone counts it as
// fired; the others count the call as a match but do not fire (so an `nth`
// rule whose nth match was taken by an earlier rule does not fire later).
//
// A flip rule (action::flip) matches reads and writes only: the other kinds
// in `kinds` are ignored, so its nth counts reads and writes. Each time it
// fires it flips min(flip_bits, 8 * length) distinct bits of the call's
// bytes, chosen by splitmix64 seeded with the next draw of the rule's
// generator (seeded with `seed`, the one behind `per_million`): a seed
// replays the same flips on the same calls. Nothing else changes:
//   - read: the call does the inner read and succeeds; the caller's buffer
//     gets the flipped bits, the stored bytes stay intact (a failed inner
//     read returns its error and flips nothing);
//   - write: the device stores a copy of the caller's bytes with the bits
//     flipped (the caller's buffer is not touched), the call reports what
//     the inner write reports, and the journal holds the stored (flipped)
//     bytes, so a crash that keeps the write keeps them flipped.
// A zero-length read or write fires the rule and flips nothing.
struct fault {
  enum class action : std::uint8_t {
    fail,          // the call fails with `error` and does nothing
    crash_before,  // crash(crash) instead of the call; it returns device_failed
    crash_after,   // do the call, then crash(crash); it returns device_failed
    flip,          // do the call with `flip_bits` random bits of its bytes flipped
  };

  kind_set kinds = kind_set::io();
  std::string device{};
  std::uint64_t nth = 0;
  std::function<bool(const call_info&)> when{};
  std::uint32_t per_million = 1'000'000;
  std::uint64_t seed = 0;
  persistence lasting = persistence::once;
  action what = action::fail;
  errc error = errc::io_error;  // EIO: io_error; ENOSPC: no_space
  crash_spec crash{};
  std::uint32_t flip_bits = 1;  // action::flip: bits flipped per firing
};

}  // namespace ktm::io
