// ktm/log/stream.hpp: a handle on one stream of a log.
//
// A stream has a name, a base LSN (the oldest record it still needs) and a
// last LSN. Handles are cheap to copy and keep the log open. After
// delete_stream, calls on old handles give errc::stream_not_found.
//
//   marshalling_area()            the stream's writer (one at a time)
//   write_restart_area(data, nb)  appends and forces a restart record; with
//                                 nb also moves the base to nb (nb >= base).
//                                 Acts as the stream's writer for the call:
//                                 errc::writer_exists if a marshalling area
//                                 is open (write through it instead)
//   read_restart_area()           the latest (errc::no_restart_area if none)
//   read_previous_restart_area(a) the one before restart area a
//   advance_base(l)               records < l become reclaimable (l >= base);
//                                 durable when the next forced append,
//                                 flush or restart area returns
//   read_record(l)                one record, payload copied
//   read_forward / read_backward / read_undo_next   views (reader.hpp)
#pragma once

#include <optional>
#include <span>
#include <string>

#include "ktm/log/detail/log_core.hpp"
#include "ktm/log/marshalling_area.hpp"
#include "ktm/log/reader.hpp"
#include "ktm/log/restart_area.hpp"

namespace ktm::log {

template <io_policy Io>
class stream {
 public:
  stream() = default;
  stream(std::shared_ptr<detail::log_core<Io>> c, std::shared_ptr<detail::stream_state> s)
      : c_(std::move(c)), s_(std::move(s)) {}

  const std::string& name() const { return s_->name; }
  std::uint32_t id() const { return s_->id; }
  lsn base_lsn() const { return c_->snapshot(*s_).base; }
  lsn last_lsn() const { return c_->snapshot(*s_).last; }

  result<ktm::log::marshalling_area<Io>> marshalling_area() const {
    {
      std::lock_guard lk(c_->state_mutex());
      if (s_->deleted) return failure(errc::stream_not_found, {}, s_->name);
      if (s_->has_writer) return failure(errc::writer_exists, {}, s_->name);
      s_->has_writer = true;
    }
    return ktm::log::marshalling_area<Io>(c_, s_);
  }

  // The stream's writer for the duration of the call: errc::writer_exists
  // while a marshalling area is open (use its write_restart_area then).
  result<lsn> write_restart_area(std::span<const std::byte> data, std::optional<lsn> new_base = std::nullopt) const {
    KTM_TRY(c_->usable_now());
    {
      std::lock_guard lk(c_->state_mutex());
      if (s_->deleted) return failure(errc::stream_not_found, {}, s_->name);
      if (s_->has_writer) return failure(errc::writer_exists, {}, s_->name);
      s_->has_writer = true;
    }
    detail::writer_state w{s_};
    auto r = c_->write_restart_durable_base(w, data, new_base);
    std::lock_guard lk(c_->state_mutex());
    s_->has_writer = false;
    return r;
  }
  result<restart_area> read_restart_area() const {
    auto snap = c_->snapshot(*s_);
    if (snap.deleted) return failure(errc::stream_not_found, {}, s_->name);
    if (snap.restart.is_null()) return failure(errc::no_restart_area, {}, s_->name);
    auto r = read_record(snap.restart);
    if (!r) return std::move(r).error();
    return detail::decode_restart(*r);
  }
  result<restart_area> read_previous_restart_area(const restart_area& a) const {
    if (a.previous.is_null()) return failure(errc::no_restart_area, position::at_lsn(a.at.raw()), s_->name);
    auto r = read_record(a.previous);
    if (!r) return std::move(r).error();
    return detail::decode_restart(*r);
  }

  result<void> advance_base(lsn l) const { return c_->advance_base(*s_, l); }

  // One record. Errors: before_base, invalid_lsn (not a record of this
  // stream), or what reading found (corrupt_record, checksum_mismatch...).
  result<owned_record> read_record(lsn l) const {
    auto v = read_backward(l);
    for (const log_record& r : v) {
      owned_record o{r.at, r.previous, r.undo_next, r.type, r.stream_id, r.payload_copy()};
      return o;
    }
    failure f = v.status();
    if (f.code == make_error_code(errc::end_of_stream)) f.code = make_error_code(errc::invalid_lsn);
    if (f.file.empty()) f.file = s_->name;
    return f;
  }

  record_view<Io> read_forward(lsn from = lsn::null()) const { return view(read_mode::forward, from); }
  record_view<Io> read_backward(lsn from = lsn::null()) const { return view(read_mode::backward, from); }
  record_view<Io> read_undo_next(lsn from) const { return view(read_mode::undo_next, from); }

 private:
  record_view<Io> view(read_mode m, lsn from) const {
    auto snap = c_->snapshot(*s_);
    if (snap.deleted) return record_view<Io>(c_, s_->id, m, lsn::invalid(), lsn::null(), lsn::invalid());
    return record_view<Io>(c_, s_->id, m, snap.base, snap.last, from);
  }
  std::shared_ptr<detail::log_core<Io>> c_;
  std::shared_ptr<detail::stream_state> s_;
};

}  // namespace ktm::log
