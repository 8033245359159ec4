// ktm/log/detail/log_create.hpp: creating a new log (log_core::create): its
// containers, the first container header, the write buffers and the first
// base file. A log is persisted on close only once fully created.
// Part of log_core's write path; included by log_core.hpp only.
//
// Create is atomic for the caller: the base file appears under its name
// only once complete. Order: containers (each flushed), container 0's
// header (flushed), the base file under its staged name (flushed), a
// directory sync, the rename to the base file name, a directory sync. A
// crash at any point leaves either a complete empty log or leftovers: a
// staged base file, containers, or (from earlier versions) a base file
// that is empty or two all-zero copies. open reports those as errc::incomplete_log
// (errc::not_found when nothing is left); create removes them first. A
// base file that is anything else is never removed (already_exists).
#pragma once

#include <algorithm>

#include "ktm/io/directory_sync.hpp"
#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

// True when file `base` is the leftover of an unfinished create: empty, or
// grown to its two copies and all zeroes (what create left before writing a
// copy; a complete base file always holds a written copy).
template <io_policy Io>
bool unfinished_base_file(Io& io, const std::string& base) {
  auto d = io.open(base, open_mode::open_existing);
  if (!d) return false;
  const std::uint64_t size = d->size();
  if (size == 0) return true;
  if (size != 2 * format::base_copy_size) return false;
  const std::size_t unit = std::max<std::size_t>(format::max_io_align, d->logical_block_size());
  if (size % d->logical_block_size() != 0) return false;
  aligned_buffer buf(unit, unit);
  for (std::uint64_t off = 0; off < size; off += unit) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(unit, size - off));
    if (d->read(off, buf.span().first(n))) return false;
    if (std::any_of(buf.data(), buf.data() + n, [](std::byte b) { return b != std::byte{0}; })) return false;
  }
  return true;
}

// Removes what an unfinished create of log `name` may have left (the caller
// checked that no complete base file is there), then syncs the directory.
template <io_policy Io>
std::error_code remove_create_leftovers(Io& io, const std::string& name) {
  for (const auto& f : {base_file_name(name), staged_base_file_name(name)})
    if (io.exists(f))
      if (auto ec = io.remove(f)) return ec;
  for (std::uint32_t i = 0; i < format::max_containers; ++i) {
    const std::string f = container_file_name(name, i);
    if (io.exists(f))
      if (auto ec = io.remove(f)) return ec;
  }
  return io::sync_directory(io);
}

template <io_policy Io>
result<void> log_core<Io>::init_buffers() {
  if (opt_.write_buffers < 2) return errc::invalid_argument;
  bufs_.clear();
  free_bufs_.clear();
  for (std::uint32_t i = 0; i < opt_.write_buffers; ++i) {
    bufs_.emplace_back(geo_.block_size, geo_.io_align);
    free_bufs_.push_back(static_cast<int>(i));
  }
  return {};
}

template <io_policy Io>
result<std::shared_ptr<log_core<Io>>> log_core<Io>::create(Io& io, std::string name, const log_options& o) {
  geometry g{o.effective_block_size(), o.container_size, o.io_align, 0};
  if (!geometry_ok(g) || o.write_buffers < 2 || name.empty()) return errc::invalid_argument;
  if (o.containers < 2) return errc::too_few_containers;
  if (o.containers > format::max_containers || o.max_containers > format::max_containers)
    return errc::too_many_containers;
  const std::string base = base_file_name(name);
  const std::string staged = staged_base_file_name(name);
  if (io.exists(base) && !unfinished_base_file(io, base)) return failure(errc::already_exists, {}, base);
  if (auto ec = remove_create_leftovers(io, name)) return failure(ec, {}, base);
  std::random_device rd;
  g.log_id = (std::uint64_t{rd()} << 32) ^ rd() ^
             static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  if (g.log_id == 0) g.log_id = 1;

  auto c = std::make_shared<log_core>(io, name, o);
  c->opt_.persist_on_close = false;  // until fully created
  c->geo_ = g;
  c->dedicated_ = o.dedicated;
  c->base_scratch_ = aligned_buffer(format::base_copy_size, g.io_align);
  c->cs_ = container_set<Io>(&io, name, g);
  for (std::uint32_t i = 0; i < o.containers; ++i) KTM_TRY(c->cs_.create(i, c->base_scratch_.span(), o.preformat_containers));
  c->next_physical_ = o.containers;
  // container 0 holds logical 0 from the start
  auto& s0 = c->cs_.slots()[0];
  s0.logical = 0;
  encode_container_header({g.log_id, 0, 0, 1, g.container_size, 1}, c->base_scratch_.span().first(g.io_align));
  if (auto ec = s0.dev->write(0, c->base_scratch_.span().first(g.io_align))) return failure(ec, {}, s0.file);
  if (auto ec = s0.dev->flush()) return failure(ec, {}, s0.file);
  c->next_pos_ = c->durable_lsn_ = c->written_lsn_ = lsn(0, g.first_block_units(), 0);
  if (o.dedicated) {
    auto s = std::make_shared<stream_state>();
    s->id = c->next_stream_id_++;
    s->name = "default";
    s->base = c->next_pos_;
    c->streams_.push_back(s);
  }
  KTM_TRY(c->init_buffers());
  auto bd = io.open(staged, open_mode::create_new);
  if (!bd) return std::move(bd).error();
  c->base_dev_ = std::make_shared<device>(std::move(*bd));
  if (auto ec = c->base_dev_->grow(2 * format::base_copy_size)) return failure(ec, {}, staged);
  {
    std::lock_guard lk(c->mu_);
    KTM_TRY(c->write_base_locked());  // written and flushed
  }
  // the containers' and the staged file's names are durable before the
  // rename publishes the log (io_policy laws, or an explicit directory sync)
  if (auto ec = io::sync_directory(io)) return failure(ec, {}, staged);
  if (auto ec = io.rename(staged, base)) return failure(ec, {}, staged);
  if (auto ec = io::sync_directory(io)) return failure(ec, {}, base);
  c->opt_.persist_on_close = o.persist_on_close;
  return c;
}

}  // namespace ktm::log::detail
