// ktm/log/detail/log_create.hpp: creating a new log (log_core::create): its
// containers, the first container header, the write buffers and the first
// base file. A log is persisted on close only once fully created.
// Part of log_core's write path; included by log_core.hpp only.
#pragma once

#include "ktm/io/directory_sync.hpp"
#include "ktm/log/detail/log_core.hpp"

namespace ktm::log::detail {

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
  geometry g{o.block_size, o.container_size, o.io_align, 0};
  if (!geometry_ok(g) || o.write_buffers < 2 || name.empty()) return errc::invalid_argument;
  if (o.containers < 2) return errc::too_few_containers;
  if (o.containers > format::max_containers || o.max_containers > format::max_containers)
    return errc::too_many_containers;
  const std::string base = base_file_name(name);
  if (io.exists(base)) return failure(errc::already_exists, {}, base);
  std::random_device rd;
  g.log_id = (std::uint64_t{rd()} << 32) ^ rd() ^
             static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  if (g.log_id == 0) g.log_id = 1;

  auto c = std::make_shared<log_core>(io, name, o);
  c->opt_.persist_on_close = false;  // until fully created
  c->geo_ = g;
  c->dedicated_ = o.dedicated;
  auto bd = io.open(base, open_mode::create_new);
  if (!bd) return std::move(bd).error();
  c->base_dev_ = std::make_shared<device>(std::move(*bd));
  if (auto ec = c->base_dev_->grow(2 * format::base_copy_size)) return failure(ec, {}, base);
  c->base_scratch_ = aligned_buffer(format::base_copy_size, g.io_align);
  c->cs_ = container_set<Io>(&io, name, g);
  for (std::uint32_t i = 0; i < o.containers; ++i) KTM_TRY(c->cs_.create(i, c->base_scratch_.span()));
  // the base file's and the containers' names are durable before the base
  // file records them (io_policy laws, or an explicit directory sync)
  if (auto ec = io::sync_directory(io)) return failure(ec, {}, base);
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
  {
    std::lock_guard lk(c->mu_);
    KTM_TRY(c->write_base_locked());
  }
  c->opt_.persist_on_close = o.persist_on_close;
  return c;
}

}  // namespace ktm::log::detail
