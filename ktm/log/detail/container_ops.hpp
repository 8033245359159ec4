// ktm/log/detail/container_ops.hpp: adding and removing containers while
// the log is open; each change is recorded by a base-file write. A new file's
// name is made durable (io::sync_directory) before the base file records it;
// a file is removed only after the base file stopped recording it.
// Part of log_core's write path; included by log_core.hpp only.
#pragma once

#include "ktm/io/directory_sync.hpp"
#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

template <io_policy Io>
result<void> log_core<Io>::add_container_locked(std::unique_lock<std::mutex>& lk) {
  KTM_TRY(writable());
  if (cs_.slots().size() >= std::min<std::uint32_t>(opt_.max_containers, format::max_containers))
    return errc::too_many_containers;
  while (io_busy_) cv_.wait(lk);
  // No base file ever recorded a container numbered next_physical_ or more:
  // a file of that name is what an add that crashed before its base-file
  // write left behind (its create was durable, the record of it not).
  const std::string file = container_file_name(name_, next_physical_);
  if (io_->exists(file))
    if (auto ec = io_->remove(file)) return fail_stop(failure(ec, {}, file));
  auto r = cs_.create(next_physical_, base_scratch_.span(), opt_.preformat_containers);
  if (!r) {
    (void)io_->remove(file);
    return r;
  }
  // the new name is durable before the base file records it
  if (auto ec = io::sync_directory(*io_)) return fail_stop(failure(ec, {}, file));
  ++next_physical_;
  return persist_locked(lk);
}

template <io_policy Io>
result<void> log_core<Io>::remove_container(std::uint32_t physical) {
  std::unique_lock lk(mu_);
  KTM_TRY(writable());
  auto* s = cs_.by_physical(physical);
  if (!s) return errc::invalid_argument;
  if (cs_.slots().size() <= 2) return errc::too_few_containers;
  const std::uint32_t tl = std::min(persisted_tail_, tail_locked().container());
  if (!slot_free(*s, tl) || s->logical == next_pos_.container())
    return failure(errc::container_in_use, {}, s->file);
  // its room backs reservations (available_locked counts every free slot)
  if (available_locked() - free_container_room() < total_reserved_) return failure(errc::container_in_use, {}, s->file);
  std::string file = s->file;
  cs_.erase_physical(physical);
  KTM_TRY(persist_locked(lk));  // no longer recorded, then removed: a crash leaves at worst an unused file
  if (auto ec = io_->remove(file)) {
    orphans_.push_back(file);  // tried again at close
    return failure(ec, {}, file);
  }
  if (auto ec = io::sync_directory(*io_)) return failure(ec, {}, file);
  return {};
}

// Deletes the container files in orphans_ (no base copy names them: see
// remove_container and log_core::open) and returns how many it deleted;
// keeps those it cannot delete for a later try. Best effort: such a file
// costs only its space, never data.
template <io_policy Io>
std::uint32_t log_core<Io>::remove_orphans_locked() {
  std::uint32_t n = 0;
  bool changed = false;
  std::erase_if(orphans_, [&](const std::string& file) {
    if (!io_->exists(file)) return true;
    if (io_->remove(file)) return false;
    ++n;
    changed = true;
    return true;
  });
  if (changed) (void)io::sync_directory(*io_);
  return n;
}

}  // namespace ktm::log::detail
