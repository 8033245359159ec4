// ktm/log/container_set.hpp: the containers of a log and the map from
// logical container ids (in LSNs) to physical containers (files).
//
// Each container starts with a header (io_align bytes, 64 used) naming the
// log, its file number, the logical id it holds now and the seq of its first
// block. A container is assigned a new logical id when the writer moves into
// it; its header is written before any of its blocks and is covered by the
// same flush. Not thread-safe: the log's mutex guards it.
//
// create() flushes the new file once; flushes() counts those flushes, for
// log_core::device_flushes (the write path flushes containers itself).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ktm/concepts/io_policy.hpp"
#include "ktm/io/aligned_buffer.hpp"
#include "ktm/log/block_codec.hpp"
#include "ktm/log/crc32c.hpp"
#include "ktm/log/format.hpp"
#include "ktm/result.hpp"

namespace ktm::log::detail {

inline std::string base_file_name(const std::string& log_name) { return log_name + ".blf"; }
// The base file while create writes it; renamed to base_file_name() last.
inline std::string staged_base_file_name(const std::string& log_name) { return log_name + ".blf.new"; }
inline std::string container_file_name(const std::string& log_name, std::uint32_t physical) {
  return log_name + ".c" + std::to_string(physical);
}

struct container_header {
  std::uint64_t log_id = 0;
  std::uint32_t physical_id = 0;
  std::uint32_t logical_id = format::no_logical;
  std::uint64_t first_seq = 0;
  std::uint32_t container_size = 0;
  std::uint32_t epoch = 0;
};

// Encodes into `out` (io_align bytes, zero beyond 64).
inline void encode_container_header(const container_header& h, std::span<std::byte> out) {
  namespace ch = format::ch;
  std::memset(out.data(), 0, out.size());
  format::store<std::uint64_t>(out.data() + ch::magic, format::container_magic);
  format::store<std::uint32_t>(out.data() + ch::version, format::version);
  format::store<std::uint64_t>(out.data() + ch::log_id, h.log_id);
  format::store<std::uint32_t>(out.data() + ch::physical_id, h.physical_id);
  format::store<std::uint32_t>(out.data() + ch::logical_id, h.logical_id);
  format::store<std::uint64_t>(out.data() + ch::first_seq, h.first_seq);
  format::store<std::uint32_t>(out.data() + ch::container_size, h.container_size);
  format::store<std::uint32_t>(out.data() + ch::epoch, h.epoch);
  format::store<std::uint32_t>(out.data() + ch::crc, crc32c(out.data(), ch::size));
}

// nullopt unless magic, version, CRC, log id, size and file number all match.
inline std::optional<container_header> decode_container_header(const std::byte* p, const geometry& g,
                                                                std::uint32_t physical) {
  namespace ch = format::ch;
  if (format::load64(p + ch::magic) != format::container_magic) return std::nullopt;
  if (format::load32(p + ch::version) != format::version) return std::nullopt;
  std::byte tmp[ch::size];
  std::memcpy(tmp, p, ch::size);
  format::store<std::uint32_t>(tmp + ch::crc, 0);
  if (crc32c(tmp, ch::size) != format::load32(p + ch::crc)) return std::nullopt;
  for (std::size_t i = 48; i < ch::size; ++i)
    if (p[i] != std::byte{0}) return std::nullopt;
  container_header h;
  h.log_id = format::load64(p + ch::log_id);
  h.physical_id = format::load32(p + ch::physical_id);
  h.logical_id = format::load32(p + ch::logical_id);
  h.first_seq = format::load64(p + ch::first_seq);
  h.container_size = format::load32(p + ch::container_size);
  h.epoch = format::load32(p + ch::epoch);
  if (h.log_id != g.log_id || h.physical_id != physical || h.container_size != g.container_size)
    return std::nullopt;
  if ((h.logical_id == format::no_logical) != (h.first_seq == 0)) return std::nullopt;
  return h;
}

template <io_policy Io>
class container_set {
 public:
  using device = typename Io::device_type;
  struct slot {
    std::uint32_t physical = 0;
    std::uint32_t logical = format::no_logical;
    std::shared_ptr<device> dev;
    std::string file;
    bool dirty = false;  // written since its last flush
  };

  container_set() = default;
  container_set(Io* io, std::string log_name, geometry g) : io_(io), name_(std::move(log_name)), g_(g) {}

  // Creates container file `physical`, zero-filled, with an unassigned header.
  // `preformat` (log_options::preformat_containers): the zeros are written,
  // not only reserved; one flush covers them and the header.
  // Errors: io_align_below_device when the device needs coarser alignment
  // than the log's io_align.
  result<void> create(std::uint32_t physical, std::span<std::byte> scratch, bool preformat = false) {
    std::string file = container_file_name(name_, physical);
    auto d = io_->open(file, open_mode::create_new);
    if (!d) return std::move(d).error();
    auto dev = std::make_shared<device>(std::move(*d));
    if (dev->logical_block_size() > g_.io_align) return failure(errc::io_align_below_device, {}, file);
    if (auto ec = dev->grow(g_.container_size)) return failure(ec, position::at_offset(0), file);
    if (preformat) KTM_TRY(write_zeros(*dev, file));
    encode_container_header({g_.log_id, physical, format::no_logical, 0, g_.container_size, 0},
                            scratch.first(g_.io_align));
    if (auto ec = dev->write(0, scratch.first(g_.io_align))) return failure(ec, position::at_offset(0), file);
    if (auto ec = dev->flush()) return failure(ec, position::at_offset(0), file);
    ++flushes_;
    slots_.push_back({physical, format::no_logical, std::move(dev), std::move(file), false});
    return {};
  }

  // Opens container file `physical` and reads its header (nullopt header if
  // damaged). Errors: not_found, or corrupt_container when its size is wrong.
  result<std::optional<container_header>> open(std::uint32_t physical, std::uint32_t logical,
                                               std::span<std::byte> scratch) {
    std::string file = container_file_name(name_, physical);
    auto d = io_->open(file, open_mode::open_existing);
    if (!d) return std::move(d).error();
    auto dev = std::make_shared<device>(std::move(*d));
    if (dev->logical_block_size() > g_.io_align) return failure(errc::io_align_below_device, {}, file);
    if (dev->size() != g_.container_size)
      return failure(errc::corrupt_container, position::at_offset(dev->size()), file);
    if (auto ec = dev->read(0, scratch.first(g_.io_align))) return failure(ec, position::at_offset(0), file);
    auto h = decode_container_header(scratch.data(), g_, physical);
    slots_.push_back({physical, logical, std::move(dev), std::move(file), false});
    return h;
  }

  slot* by_logical(std::uint32_t logical) {
    for (auto& s : slots_)
      if (s.logical == logical) return &s;
    return nullptr;
  }
  slot* by_physical(std::uint32_t physical) {
    for (auto& s : slots_)
      if (s.physical == physical) return &s;
    return nullptr;
  }
  std::vector<slot>& slots() { return slots_; }
  const std::vector<slot>& slots() const { return slots_; }
  void erase_physical(std::uint32_t physical) {
    std::erase_if(slots_, [&](const slot& s) { return s.physical == physical; });
  }
  const geometry& geo() const { return g_; }
  const std::string& log_name() const { return name_; }
  Io& io() { return *io_; }
  // Device flushes create() has completed (one per container file created).
  std::uint64_t flushes() const noexcept { return flushes_; }

 private:
  // Writes zeros over everything after the header, 1 MiB at a time
  // (container_size and 1 MiB are multiples of io_align).
  result<void> write_zeros(device& dev, const std::string& file) {
    const std::uint64_t size = g_.container_size;
    const std::uint64_t chunk = std::min<std::uint64_t>(size, std::uint64_t{1} << 20);
    io::aligned_buffer zeros(static_cast<std::size_t>(chunk), g_.io_align);
    for (std::uint64_t off = g_.io_align; off < size; off += chunk) {
      const auto n = static_cast<std::size_t>(std::min(chunk, size - off));
      if (auto ec = dev.write(off, zeros.span().first(n))) return failure(ec, position::at_offset(off), file);
    }
    return {};
  }

  Io* io_ = nullptr;
  std::string name_;
  geometry g_;
  std::vector<slot> slots_;
  std::uint64_t flushes_ = 0;
};

}  // namespace ktm::log::detail
