// ktm/tm/notification.hpp: what the transaction manager tells a resource
// manager, and the mask an enlistment subscribes with.
//
// The numeric values are KTM's (TRANSACTION_NOTIFY_*); they are stable ids.
// A notification carries the transaction's UOW id, the notification, the
// TM's virtual clock when it was sent, and the key the RM gave at enlistment.
#pragma once

#include <cstdint>

#include "ktm/guid.hpp"

namespace ktm::tm {

enum class notify : std::uint32_t {
  none = 0,
  // to resource managers
  preprepare = 0x1,
  prepare = 0x2,
  commit = 0x4,
  rollback = 0x8,
  recover = 0x100,
  single_phase_commit = 0x200,
  last_recover = 0x2000,
  indoubt = 0x4000,
  rm_disconnected = 0x01000000,
  tm_online = 0x02000000,
  // to a superior (not produced by the volatile TM)
  preprepare_complete = 0x10,
  prepare_complete = 0x20,
  commit_complete = 0x40,
  rollback_complete = 0x80,
  recover_query = 0x800,
  commit_request = 0x04000000,
  request_outcome = 0x20000000,
};

// A set of notifications. Built with |: `notify::prepare | notify::commit`.
class notification_mask {
 public:
  constexpr notification_mask() noexcept = default;
  constexpr notification_mask(notify n) noexcept : bits_(static_cast<std::uint32_t>(n)) {}
  constexpr explicit notification_mask(std::uint32_t bits) noexcept : bits_(bits) {}

  constexpr bool has(notify n) const noexcept {
    return (bits_ & static_cast<std::uint32_t>(n)) != 0;
  }
  constexpr std::uint32_t bits() const noexcept { return bits_; }

  friend constexpr notification_mask operator|(notification_mask a, notification_mask b) noexcept {
    return notification_mask(a.bits_ | b.bits_);
  }
  friend constexpr bool operator==(notification_mask, notification_mask) noexcept = default;

 private:
  std::uint32_t bits_ = 0;
};

constexpr notification_mask operator|(notify a, notify b) noexcept {
  return notification_mask(a) | notification_mask(b);
}

// What an ordinary two-phase participant subscribes to.
inline constexpr notification_mask default_mask =
    notify::preprepare | notify::prepare | notify::commit | notify::rollback;

// The RM's opaque key for an enlistment: a number or a pointer, returned in
// every notification for that enlistment.
class enlistment_key {
 public:
  constexpr enlistment_key() noexcept = default;
  constexpr explicit enlistment_key(std::uint64_t v) noexcept : value_(v) {}
  explicit enlistment_key(const void* p) noexcept
      : value_(static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p))) {}

  constexpr std::uint64_t value() const noexcept { return value_; }
  template <class T>
  T* pointer() const noexcept {
    return reinterpret_cast<T*>(static_cast<std::uintptr_t>(value_));
  }
  friend constexpr bool operator==(enlistment_key, enlistment_key) noexcept = default;

 private:
  std::uint64_t value_ = 0;
};

struct notification {
  guid transaction{};            // the UOW id; nil for TM-wide notifications
  notify kind = notify::none;
  std::uint64_t virtual_clock = 0;  // the TM's virtual clock when sent
  enlistment_key key{};          // the enlistment's key; zero for TM-wide ones
};

}  // namespace ktm::tm
