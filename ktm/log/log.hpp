// ktm/log/log.hpp: a log, dedicated (one stream) or multiplexed (many named
// streams sharing one write path and one flush).
//
//   auto lg = ktm::log::log<ktm::io::memory_storage>::create(storage, "name", options);
//   auto st = lg->create_stream("tm");
//   auto ma = st->marshalling_area();
//   auto l  = ma->append(bytes, record_type::data, append_flags::force);
//   for (const auto& rec : st->read_forward()) ...
//
// `Io` is where the base file (name.blf) and containers (name.c<N>) live; it
// must outlive the log and every handle derived from it. `Recovery` decides
// what open does with damage at the end of the log (recovery_mode.hpp).
// Handles (log, stream, marshalling_area, views) share the log's state; the
// last one to go flushes and writes the base file (log_options::
// persist_on_close). All calls are thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/log/detail/log_core.hpp"
#include "ktm/log/log_options.hpp"
#include "ktm/log/recovery_mode.hpp"
#include "ktm/log/stream.hpp"

namespace ktm::log {

struct container_info {
  std::uint32_t physical_id;  // file number: <name>.c<physical_id>
  std::uint32_t logical_id;   // the logical container it holds now (0xffffffff: free)
};

template <class Io, class Recovery = tolerate_corrupted_tail>
class log {
  static_assert(check_io_policy<Io>(), "ktm::log::log<Io, Recovery>: 'Io' must model ktm::io_policy");
  static_assert(check_recovery_policy<Recovery>());
  using core = detail::log_core<Io>;

 public:
  using io_type = Io;
  using recovery = Recovery;
  using stream_type = ktm::log::stream<Io>;

  // Creates a new log. Errors: already_exists, invalid_argument (geometry),
  // too_few_containers, too_many_containers, I/O errors.
  static result<log> create(Io& io, std::string_view name, const log_options& o = {}) {
    auto c = core::create(io, std::string(name), o);
    if (!c) return std::move(c).error();
    (*c)->count_flushes_from_now();
    return log(std::move(*c));
  }
  // Opens an existing log and finds its true end (see recovery_mode.hpp).
  // Geometry options are ignored. Errors: not_found, corrupt_base_file,
  // corrupt_container, unsupported_version, and per Recovery the damage found.
  static result<log> open(Io& io, std::string_view name, const log_options& o = {}) {
    auto c = core::open(io, std::string(name), o, Recovery::action);
    if (!c) return std::move(c).error();
    (*c)->count_flushes_from_now();
    return log(std::move(*c));
  }

  result<stream_type> create_stream(std::string_view name) {
    auto s = c_->create_stream(name);
    if (!s) return std::move(s).error();
    return stream_type(c_, std::move(*s));
  }
  result<stream_type> open_stream(std::string_view name) {
    auto s = c_->find_stream(name);
    if (!s) return std::move(s).error();
    return stream_type(c_, std::move(*s));
  }
  // The one stream of a dedicated log ("default").
  result<stream_type> default_stream() { return open_stream("default"); }
  result<void> delete_stream(std::string_view name) { return c_->delete_stream(name); }
  std::vector<std::string> streams() const { return c_->stream_names(); }

  // Every record appended so far becomes durable; returns the next unflushed LSN.
  result<lsn> flush_all() { return c_->flush_all(); }
  // The LSN below which every record is durable.
  lsn durable_lsn() const { return c_->durable_lsn(); }

  result<void> add_container() { return c_->add_container(); }
  // Errors: too_few_containers, container_in_use (holds part of the active
  // log, or its room backs reservations).
  result<void> remove_container(std::uint32_t physical_id) { return c_->remove_container(physical_id); }
  std::vector<container_info> containers() const {
    std::vector<container_info> v;
    for (auto [p, l] : c_->container_map()) v.push_back({p, l});
    return v;
  }
  log_full_info space_info() const { return c_->full_info(); }

  // What open found at the end of the log.
  const tail_report& recovery_report() const { return c_->last_report(); }
  // Flushes and writes the base file; later calls fail. Optional.
  result<void> close() { return c_->close(); }
  // Device flushes this log has completed since create or open returned,
  // on every file of the log: the write path's flushes of the containers
  // (one per container written since the last flush, per durable flush: a
  // forced append, flush_to_lsn, flush_all, a restart area), the base-file
  // writes (one flush each: create_stream, delete_stream, add_container,
  // remove_container, close, the first durable flush after advance_base,
  // and the writer moving into a container whose older records the base
  // file on disk still names as needed) and the flush of each container
  // file add_container creates (also as the log grows: log_options::grow).
  // Not counted: the flushes of create and open themselves, directory
  // syncs, and a flush that failed. A counting I/O policy under the log
  // sees the same flushes (and any that failed).
  std::uint64_t device_flushes() const { return c_->device_flushes(); }
  bool dedicated() const { return c_->dedicated(); }

 private:
  explicit log(std::shared_ptr<core> c) : c_(std::move(c)) {}
  std::shared_ptr<core> c_;
};

}  // namespace ktm::log
