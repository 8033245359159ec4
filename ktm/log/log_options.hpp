// ktm/log/log_options.hpp: how a log is shaped and how it behaves.
//
// Geometry (block_size, container_size, io_align, dedicated) is fixed at
// create and read from the base file on open; the rest applies per open.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "ktm/log/lsn.hpp"
#include "ktm/log/recovery_mode.hpp"

namespace ktm::log {

// Passed to the log-full callback: who holds the oldest container.
struct log_full_info {
  std::uint64_t bytes_needed = 0;
  std::uint32_t containers = 0;      // containers the log has now
  std::string pinning_stream;        // the stream whose tail is oldest ("" if none)
  lsn pinning_lsn;                   // that stream's tail
};

struct log_options {
  // ---- geometry (create only) ----
  // Largest block; a multiple of io_align. 0 (the default): 1 MiB where
  // eight fit in a container after its header, otherwise 256 KiB halved
  // until two fit (effective_block_size). A block should hold many large
  // records: a 256 KiB block holds three of 64 KiB, and such appends ran at
  // 0.66-0.68x of raw pwrite where 1 MiB blocks ran at 0.75-0.79x; but the
  // end of each container may go unused, up to one block (a block starts
  // only where a whole one fits), hence the eight (doc/log.md, "Block size").
  std::uint32_t block_size = 0;
  std::uint32_t container_size = 16 * 1024 * 1024;  // a multiple of io_align, < 4 GiB
  std::uint32_t containers = 2;                  // initial count, >= 2
  std::uint32_t io_align = 512;                  // power of two, 512..65536, >= the device's
  bool dedicated = false;                        // one stream, named "default"

  // ---- behaviour (every open) ----
  std::uint32_t write_buffers = 4;     // block buffers of the write path, >= 2
  std::uint32_t max_containers = 64;   // growth limit (<= 4096)
  bool grow = false;                   // add a container when full, up to max_containers
  // Called (without locks held) when the log is full after growing; clients
  // should advance their tails. Return true to retry the append once.
  std::function<bool(const log_full_info&)> on_full;
  tail_reporter on_tail;               // called by open with what it found at the end
  bool persist_on_close = true;        // flush and write the base file when the last handle goes
  // A forward read that goes past its first read_ahead window (1 MiB) goes
  // on with a helper thread that reads and frames the blocks ahead while the
  // caller checks CRCs and consumes records (reader.hpp), unless the reading
  // thread may run on one CPU only. False: every read stays on the caller's
  // thread.
  bool read_thread = true;
  // Containers this handle creates (at create, and when the log grows) are
  // written out in full, with zeros, and flushed before their first record,
  // instead of only having their space reserved (fallocate). A file system
  // then has no unwritten extents to convert when records first land there,
  // so a forced append into a new container flushes only data, as it does
  // once the log has wrapped (a flush after a first write to reserved space
  // also writes the file's extent map: one more device round trip on ext4).
  // Costs writing container_size bytes per new container. For logs on file
  // systems; a memory or raw device gains nothing. doc/log.md, "Preformatted
  // containers".
  bool preformat_containers = false;
  // For I/O policies whose writes are copies into the page cache
  // (posix_storage declares write_behind): true starts a writer thread of
  // the log, which writes each block sealed because it is full while
  // appenders fill the next one. False (the default): the appender that
  // seals a full block writes it at once, from its own cache, or a flush
  // does. The thread pays only where it has a core of its own near the
  // appender's: on the two far-apart vCPUs of the development machine (a
  // cache line took ~190 ns between them; 256 KiB blocks) it ran 64 B
  // appends at 5-21 M/s against 28-29 M/s without it, and 64 KiB appends at
  // 4-13 GB/s against 12.3-12.7 GB/s, a third or a quarter of its best in
  // most runs. doc/log.md, "Write-behind".
  bool write_behind = false;

  // block_size, or for 0 the automatic choice above: 1 MiB if
  // container_size >= io_align + 8 MiB; otherwise 256 KiB, halved (not below
  // io_align) while container_size < io_align + 2 * block. (A geometry with
  // no room for two blocks of at least 1 KiB still fails at create.)
  std::uint32_t effective_block_size() const noexcept {
    if (block_size != 0) return block_size;
    const std::uint64_t room = container_size >= io_align ? container_size - io_align : 0;
    if (room >= 8 * (std::uint64_t{1} << 20)) return 1u << 20;
    std::uint64_t b = 256 * 1024;
    while (b > io_align && room < 2 * b) b /= 2;
    return static_cast<std::uint32_t>(b);
  }
};

}  // namespace ktm::log
