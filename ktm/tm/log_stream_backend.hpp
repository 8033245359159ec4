// ktm/tm/log_stream_backend.hpp: a log_backend over one stream of a
// ktm::log log (dedicated or multiplexed) and the stream's marshalling area.
//
//   auto lg = ktm::log::log<Io>::create(storage, "txlog", options);
//   auto st = lg->create_stream("tm");                 // or open_stream on restart
//   ktm::tm::log_stream_backend<Io> b(*st);           // takes the stream's writer
//   // or: auto b = log_stream_backend<Io>::open(*st);  // result<...>, writer errors reported
//
// The backend owns the stream's marshalling area (one writer per stream), so
// nothing else may write the TM's stream while the TM lives. Records are
// appended as record_type::data; restart areas are the log's own restart
// records (write_restart_area), read back with read_restart_area.
//
//   append(bytes, queue_only | force)  -> the record's LSN (force: durable)
//   flush_to(l)                        -> next unflushed LSN (every record <= l durable)
//   write_restart_area(bytes[, base])  -> appended and forced; with `base`
//                                         also moves the stream's base
//   read_restart_area(out)             -> the latest one's LSN; its bytes in out
//   read_record(l, out)                -> the next record's LSN of the stream,
//                                         or errc::end_of_stream after the last
//   scan(f)                            f(lsn, is_restart, payload) for every
//                                      record from the stream's base, in order
//
// A backend built from a stream whose writer cannot be had (errc::
// writer_exists) reports that error from every call; open() reports it at
// once. LSNs are ktm::log::lsn: the TM's LSNs and its RMs' LSNs in the same
// multiplexed log are comparable and one flush covers every record below it.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/concepts/log_backend.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log/lsn.hpp"
#include "ktm/log/marshalling_area.hpp"
#include "ktm/log/record.hpp"
#include "ktm/log/stream.hpp"
#include "ktm/result.hpp"

namespace ktm::tm {

template <io_policy Io>
class log_stream_backend {
 public:
  using lsn_type = ktm::log::lsn;
  using io_type = Io;
  static constexpr bool durable = true;

  log_stream_backend() = default;  // unusable: every call fails with errc::invalid_state
  // Takes the stream's marshalling area; if it cannot (writer_exists,
  // stream_not_found) every later call reports that failure.
  log_stream_backend(ktm::log::stream<Io> s) : st_(std::move(s)) {  // NOLINT: implicit on purpose
    auto w = st_->marshalling_area();
    if (w) ma_.emplace(std::move(*w));
    else err_ = std::move(w).error();
  }
  log_stream_backend(ktm::log::stream<Io> s, ktm::log::marshalling_area<Io> writer)
      : st_(std::move(s)), ma_(std::move(writer)) {}

  static result<log_stream_backend> open(ktm::log::stream<Io> s) {
    log_stream_backend b(std::move(s));
    if (!b.ma_) return b.err_;
    return b;
  }

  log_stream_backend(log_stream_backend&&) noexcept = default;
  log_stream_backend& operator=(log_stream_backend&&) noexcept = default;

  result<lsn_type> append(std::span<const std::byte> bytes, log_append_mode m) {
    if (!ma_) return unusable();
    return ma_->append(bytes, ktm::log::record_type::data,
                       m == log_append_mode::force ? ktm::log::append_flags::force : ktm::log::append_flags::none);
  }
  result<lsn_type> flush_to(lsn_type l) {
    if (!ma_) return unusable();
    return ma_->flush_to_lsn(l);
  }
  result<lsn_type> write_restart_area(std::span<const std::byte> bytes) {
    if (!ma_) return unusable();
    return ma_->write_restart_area(bytes);
  }
  result<lsn_type> write_restart_area(std::span<const std::byte> bytes, lsn_type new_base) {
    if (!ma_) return unusable();
    return ma_->write_restart_area(bytes, new_base);
  }
  result<lsn_type> read_restart_area(std::vector<std::byte>& out) {
    if (!st_) return unusable();
    auto a = st_->read_restart_area();
    if (!a) return std::move(a).error();
    out = std::move(a->data);
    return a->at;
  }
  result<lsn_type> read_record(lsn_type l, std::vector<std::byte>& out) {
    if (!st_) return unusable();
    auto v = st_->read_forward(l);
    bool first = true;
    for (const ktm::log::log_record& r : v) {
      if (first) {
        if (r.at != l) return failure(errc::invalid_lsn, position::at_lsn(l.raw()), st_->name());
        out.assign(r.payload.begin(), r.payload.end());
        first = false;
        continue;
      }
      return r.at;
    }
    if (first) {
      failure f = v.status();
      if (f.code == make_error_code(errc::end_of_stream)) f.code = make_error_code(errc::invalid_lsn);
      return f;
    }
    if (!v.ok()) return v.status();
    return failure(errc::end_of_stream, position::at_lsn(l.raw()), st_->name());
  }

  // Every record of the stream from its base, in order: f(lsn, is_restart,
  // payload) (a restart record's payload is the caller's bytes, without the
  // log's 8-byte base prefix). Stops at the first failure and returns it.
  template <class F>
  result<void> scan(F&& f) {
    if (!st_) return unusable();
    auto v = st_->read_forward();
    for (const ktm::log::log_record& r : v) {
      const bool restart = r.type == ktm::log::record_type::restart;
      std::span<const std::byte> p = r.payload;
      if (restart) {
        if (p.size() < 8) return failure(errc::corrupt_restart_area, position::at_lsn(r.at.raw()), st_->name());
        p = p.subspan(8);
      }
      f(r.at, restart, p);
    }
    if (!v.ok()) return v.status();
    return {};
  }

  lsn_type base_lsn() const { return st_ ? st_->base_lsn() : lsn_type{}; }
  lsn_type last_lsn() const { return st_ ? st_->last_lsn() : lsn_type{}; }
  const ktm::log::stream<Io>& stream() const { return *st_; }
  bool usable() const noexcept { return ma_.has_value(); }
  // Success when the backend holds the stream's writer, else why not.
  result<void> status() const {
    if (ma_) return {};
    return unusable();
  }

 private:
  failure unusable() const { return err_.code ? err_ : failure(errc::invalid_state); }

  std::optional<ktm::log::stream<Io>> st_;
  std::optional<ktm::log::marshalling_area<Io>> ma_;
  failure err_{};
};

static_assert(check_log_backend<log_stream_backend<ktm::io::memory_storage>>());

}  // namespace ktm::tm
