// ktm/log/detail/base_persistence.hpp: writing the base file (the log's
// metadata, shadow-copied; see base_file.hpp). persist_locked flushes every
// record first, so the head a base file records is always durable.
// Part of log_core's write path; included by log_core.hpp only.
#pragma once

#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

template <io_policy Io>
result<void> log_core<Io>::write_base_locked() {
  base_metadata m;
  m.generation = generation_ + 1;
  m.geo = geo_;
  m.dedicated = dedicated_;
  m.next_stream_id = next_stream_id_;
  m.head_container = next_pos_.container();
  m.head_offset = next_pos_.block_offset();
  m.head_seq = next_seq_;
  m.epoch = epoch_;
  m.next_physical = next_physical_;
  m.max_containers = opt_.max_containers;
  for (auto& s : streams_) m.streams.push_back({s->id, s->name, s->base, s->last, s->restart});
  for (auto& s : cs_.slots()) m.containers.push_back({s.physical, s.logical});
  auto r = store_base(*base_dev_, m, base_scratch_.span(), base_file_name(name_));
  if (!r) return fail_stop(std::move(r).error());
  generation_ = m.generation;
  persisted_tail_ = tail_locked().container();
  return {};
}

template <io_policy Io>
result<void> log_core<Io>::persist_locked(std::unique_lock<std::mutex>& lk) {
  while (io_busy_) cv_.wait(lk);
  if (failed_) return usable();
  if (read_only_) return writable();  // never writes the base file
  KTM_TRY(run_io_locked(lk, true, true, false));
  return write_base_locked();
}

}  // namespace ktm::log::detail
