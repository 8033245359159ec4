// examples/distributed/crash_points.hpp: the steps of the protocol at which
// a node may be told to die (SIGKILL, raised by itself), and an I/O policy
// that reports every device flush to them.
//
//   crash_points cp;                       // off
//   cp.arm("force_after:3");               // die right after this process's 3rd device flush
//   cp.hit(step::send_before);             // counts the step; raises SIGKILL on the armed one
//   hooked_storage<posix_storage> io(posix_storage(dir), &cp);  // force_before / force_after
//
// Steps, each counted separately from enable() (the node calls it when it
// is online: the log's creation and recovery are not counted):
//   force_before / force_after   a device flush of the node's log (the TM's
//                                forced records and the RM's prepare records)
//   send_before / send_after     a message handed to the transport
//   recv_before / recv_after     a message given to the node's TM
// counts() reports how often each step was passed (the node prints them).
// Thread-safe.
#pragma once

#include <signal.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/result.hpp"

namespace ktm::distributed {

enum class step : std::uint8_t { force_before, force_after, send_before, send_after, recv_before, recv_after };
inline constexpr std::array<std::string_view, 6> step_names{"force_before", "force_after", "send_before",
                                                            "send_after",   "recv_before", "recv_after"};

inline std::optional<step> parse_step(std::string_view s) {
  for (std::size_t i = 0; i < step_names.size(); ++i)
    if (step_names[i] == s) return static_cast<step>(i);
  return std::nullopt;
}

class crash_points {
 public:
  // "<step>:<n>" (n >= 1): the n-th pass of step raises SIGKILL. False when
  // it does not parse.
  bool arm(std::string_view spec) {
    const auto colon = spec.find(':');
    if (colon == std::string_view::npos) return false;
    const auto s = parse_step(spec.substr(0, colon));
    const long n = std::strtol(std::string(spec.substr(colon + 1)).c_str(), nullptr, 10);
    if (!s || n < 1) return false;
    armed_ = *s;
    at_ = static_cast<std::uint64_t>(n);
    return true;
  }
  // Steps count from here on (a node enables them once it is online).
  void enable() { enabled_.store(true, std::memory_order_relaxed); }
  // No more counting or crashing (a node shutting down cleanly).
  void disable() { enabled_.store(false, std::memory_order_relaxed); }
  void hit(step s) {
    if (!enabled_.load(std::memory_order_relaxed)) return;
    const std::uint64_t n = counts_[static_cast<std::size_t>(s)].fetch_add(1, std::memory_order_relaxed) + 1;
    if (armed_ == s && n == at_) ::raise(SIGKILL);
  }
  std::uint64_t count(step s) const { return counts_[static_cast<std::size_t>(s)].load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> enabled_{false};
  std::optional<step> armed_;
  std::uint64_t at_ = 0;
  std::array<std::atomic<std::uint64_t>, step_names.size()> counts_{};
};

// An io_policy whose devices pass force_before / force_after around each
// flush.
template <io_policy Inner>
class hooked_storage {
 public:
  class device {
   public:
    device(typename Inner::device_type d, crash_points* cp) : d_(std::move(d)), cp_(cp) {}
    std::uint64_t size() const { return d_.size(); }
    std::size_t logical_block_size() const { return d_.logical_block_size(); }
    std::error_code read(std::uint64_t off, std::span<std::byte> out) { return d_.read(off, out); }
    std::error_code write(std::uint64_t off, std::span<const std::byte> in) { return d_.write(off, in); }
    std::error_code flush() {
      cp_->hit(step::force_before);
      auto ec = d_.flush();
      cp_->hit(step::force_after);
      return ec;
    }
    std::error_code grow(std::uint64_t n) { return d_.grow(n); }

   private:
    typename Inner::device_type d_;
    crash_points* cp_;
  };
  using device_type = device;
  static constexpr bool write_behind = requires { requires Inner::write_behind; };

  hooked_storage(Inner inner, crash_points& cp) : inner_(std::move(inner)), cp_(&cp) {}

  result<device> open(std::string_view name, open_mode m) {
    auto d = inner_.open(name, m);
    if (!d) return std::move(d).error();
    return device(std::move(*d), cp_);
  }
  bool exists(std::string_view name) { return inner_.exists(name); }
  std::error_code remove(std::string_view name) { return inner_.remove(name); }
  std::error_code rename(std::string_view a, std::string_view b) { return inner_.rename(a, b); }

 private:
  Inner inner_;
  crash_points* cp_;
};

}  // namespace ktm::distributed
