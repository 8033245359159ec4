// ktm/log/marshalling_area.hpp: the writer of one stream.
//
// A marshalling area appends records to its stream through the log's shared
// block buffers, holds the stream's reservation, and forces. One per stream
// at a time (a second gives errc::writer_exists); it may be used from many
// threads at once. Destroying it releases what it still has reserved.
//
//   append(payload, type, flags, undo_next) -> result<lsn>
//     atomic reserve-and-append. flags: none (queue only: buffered, durable
//     at a later flush), force (durable before it returns), use_reservation
//     (takes one record and payload.size() bytes from this writer's
//     reservation; errc::reservation_exceeded if it has not enough).
//     undo_next: null or an earlier record of this stream (the undo chain).
//     Errors: record_too_large, log_full / tail_pinned (see log_options),
//     log_failed (fail-stop), stream_not_found (deleted), invalid_argument
//     (a type that is not a client type; an undo_next that is not null and
//     not at or below the stream's last record).
//   reserve(records, bytes)   negative values release. When the log cannot
//     promise the room it does what append does: grows (log_options::grow),
//     then asks log_options::on_full once; errc::log_full (no grow, no
//     callback) or errc::tail_pinned (asked, still short).
//   flush_to_lsn(l) -> the next unflushed LSN; every record <= l is durable.
//   flush_all()     -> the same for every record appended so far.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "ktm/log/detail/log_core.hpp"
#include "ktm/log/record.hpp"
#include "ktm/log/restart_area.hpp"

namespace ktm::log {

template <io_policy Io>
class marshalling_area {
 public:
  marshalling_area() = default;
  marshalling_area(std::shared_ptr<detail::log_core<Io>> c, std::shared_ptr<detail::stream_state> s)
      : c_(std::move(c)), w_(std::make_unique<detail::writer_state>()) {
    w_->s = std::move(s);
  }
  marshalling_area(marshalling_area&&) noexcept = default;
  marshalling_area& operator=(marshalling_area&& o) noexcept {
    if (this != &o) {
      release();
      c_ = std::move(o.c_);
      w_ = std::move(o.w_);
    }
    return *this;
  }
  ~marshalling_area() { release(); }

  result<lsn> append(std::span<const std::byte> payload, record_type type = record_type::data,
                     append_flags flags = append_flags::none, lsn undo_next = lsn::null()) {
    if (!is_client_type(type)) return errc::invalid_argument;
    return c_->append_durable_base(*w_, payload, static_cast<std::uint8_t>(type), flags, undo_next);
  }
  result<lsn> append(std::string_view text, record_type type = record_type::data,
                     append_flags flags = append_flags::none, lsn undo_next = lsn::null()) {
    return append(std::as_bytes(std::span(text.data(), text.size())), type, flags, undo_next);
  }
  result<void> reserve(std::int64_t records, std::int64_t bytes) { return c_->reserve_or_grow(*w_, records, bytes); }
  std::int64_t reserved_records() const { return w_->reserved_records; }
  std::int64_t reserved_bytes() const { return w_->reserved_bytes; }

  result<lsn> flush_to_lsn(lsn l) { return c_->flush_to(l, true); }
  result<lsn> flush_all() { return c_->flush_all(); }

  // Appends and forces a restart area; see stream::write_restart_area.
  result<lsn> write_restart_area(std::span<const std::byte> data, std::optional<lsn> new_base = std::nullopt) {
    return c_->write_restart_durable_base(*w_, data, new_base);
  }

 private:
  void release() {
    if (!c_ || !w_) return;
    if (w_->reserved_records > 0 || w_->reserved_bytes > 0)
      (void)c_->reserve(*w_, -w_->reserved_records, -w_->reserved_bytes);
    std::lock_guard lk(c_->state_mutex());
    w_->s->has_writer = false;
    c_.reset();
  }
  std::shared_ptr<detail::log_core<Io>> c_;
  std::unique_ptr<detail::writer_state> w_;
};

}  // namespace ktm::log
