// ktm/concepts/log_backend.hpp: the concept of a log backend, the seam
// between the transaction manager and a log stream (ktm/log).
//
// What a durable TM needs from its stream, and no more. The TM calls it at
// fixed points of the protocol (transaction.hpp):
//   - at the commit point, before any COMMIT is sent: append(commit record,
//     force); a failure rolls the transaction back (presumed abort);
//   - after the last commit_complete: append(end record, queue_only), lazily;
//   - checkpoint(): write_restart_area;
//   - recovery (recovery_policy): read_restart_area, then read_record forward.
// Nothing is logged for a transaction that aborts (presumed abort).
//
// Minimal complete definition (b a B&, bytes a std::span<const std::byte>,
// out a std::vector<std::byte>&, l a B::lsn_type):
//   typename B::lsn_type                  totally ordered record address
//   B::durable                            constexpr bool; false = the null log
//   b.append(bytes, log_append_mode) -> result<lsn_type>
//   b.flush_to(l) -> result<lsn_type>     every record <= l durable; returns
//                                         the next unflushed LSN
//   b.write_restart_area(bytes) -> result<lsn_type>   appended and forced
//   b.read_restart_area(out) -> result<lsn_type>      the latest one;
//                                         errc::no_restart_area if none
//   b.read_record(l, out) -> result<lsn_type>         the record at l and
//                                         the LSN after it; errc::end_of_stream
//
// Laws: LSNs returned by append strictly increase; a forced append is
// durable when it returns; read_record from the LSN of a restart area's
// base yields every later record in append order.
// Models: no_log (the null model; every call is a no-op the TM never makes).
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ktm/result.hpp"

namespace ktm::tm {

enum class log_append_mode : std::uint8_t {
  queue_only,  // buffered; durable at the next flush
  force,       // durable when append returns
};

namespace detail {

template <class B>
concept has_lsn_type = requires { typename B::lsn_type; } && std::totally_ordered<typename B::lsn_type>;
template <class B>
concept has_durable_flag = requires {
  { B::durable } -> std::convertible_to<bool>;
};
template <class B>
concept has_append = has_lsn_type<B> && requires(B& b, std::span<const std::byte> bytes, log_append_mode m) {
  { b.append(bytes, m) } -> std::same_as<result<typename B::lsn_type>>;
};
template <class B>
concept has_flush_to = has_lsn_type<B> && requires(B& b, typename B::lsn_type l) {
  { b.flush_to(l) } -> std::same_as<result<typename B::lsn_type>>;
};
template <class B>
concept has_write_restart_area = has_lsn_type<B> && requires(B& b, std::span<const std::byte> bytes) {
  { b.write_restart_area(bytes) } -> std::same_as<result<typename B::lsn_type>>;
};
template <class B>
concept has_read_restart_area = has_lsn_type<B> && requires(B& b, std::vector<std::byte>& out) {
  { b.read_restart_area(out) } -> std::same_as<result<typename B::lsn_type>>;
};
template <class B>
concept has_read_record = has_lsn_type<B> && requires(B& b, typename B::lsn_type l, std::vector<std::byte>& out) {
  { b.read_record(l, out) } -> std::same_as<result<typename B::lsn_type>>;
};

}  // namespace detail

template <class B>
concept log_backend = detail::has_lsn_type<B> && detail::has_durable_flag<B> && detail::has_append<B> &&
                      detail::has_flush_to<B> && detail::has_write_restart_area<B> &&
                      detail::has_read_restart_area<B> && detail::has_read_record<B>;

template <class B>
consteval bool check_log_backend() {
  static_assert(detail::has_lsn_type<B>, "log_backend: missing totally ordered member type `lsn_type`");
  static_assert(detail::has_durable_flag<B>, "log_backend: missing `static constexpr bool durable`");
  static_assert(detail::has_append<B>,
                "log_backend: missing `result<lsn_type> append(std::span<const std::byte>, log_append_mode)`");
  static_assert(detail::has_flush_to<B>, "log_backend: missing `result<lsn_type> flush_to(lsn_type)`");
  static_assert(detail::has_write_restart_area<B>,
                "log_backend: missing `result<lsn_type> write_restart_area(std::span<const std::byte>)`");
  static_assert(detail::has_read_restart_area<B>,
                "log_backend: missing `result<lsn_type> read_restart_area(std::vector<std::byte>&)`");
  static_assert(detail::has_read_record<B>,
                "log_backend: missing `result<lsn_type> read_record(lsn_type, std::vector<std::byte>&)`");
  return log_backend<B>;
}

}  // namespace ktm::tm
