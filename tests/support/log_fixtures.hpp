// tests/support/log_fixtures.hpp: shared helpers for the log tests.
//
// small_log_options()  a geometry small enough to damage every byte of
// growing_log_options() small containers that grow (up to 64): crash tests
//                      whose workloads wrap and add containers
// crash_image(s)       a copy of every file of a memory_storage: what a crash
//                      after the last completed write would leave
// bytes_of / flip_bit / zero_range   direct edits of a memory file
// failing_storage      memory_storage whose devices fail writes or flushes
//                      on demand (fail-stop tests)
// memory_log_names     what the memory-log tests name unqualified (errc,
//                      as_bytes, as_string, memory_storage, mlog)
// crash_test_names     what the log crash tests name unqualified (errc, the
//                      fault controller's vocabulary, the byte helpers,
//                      fstore: fault injection over memory storage):
//                      `using namespace ktm::test::crash_test_names;`
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"

namespace ktm::test {

using ktm::io::memory_storage;

inline ktm::log::log_options small_log_options() {
  ktm::log::log_options o;
  o.block_size = 1024;
  o.container_size = 4096;
  o.containers = 2;
  o.write_buffers = 2;
  return o;
}

inline ktm::log::log_options growing_log_options() {
  ktm::log::log_options o;
  o.block_size = 2048;
  o.container_size = 16384;
  o.containers = 2;
  o.write_buffers = 2;
  o.grow = true;
  o.max_containers = 64;
  return o;
}

inline ktm::log::log_options medium_log_options() {
  ktm::log::log_options o;
  o.block_size = 8192;
  o.container_size = 65536;
  o.containers = 2;
  o.write_buffers = 4;
  return o;
}

// Containers of 2 MiB (two read-ahead windows each), growing up to 8: logs
// for long forward reads (which go on with a helper thread past the first
// window unless read_thread is false).
inline ktm::log::log_options windowed_log_options(bool read_thread = true) {
  ktm::log::log_options o;
  o.block_size = 8192;
  o.container_size = 2u << 20;
  o.containers = 2;
  o.grow = true;
  o.max_containers = 8;
  o.read_thread = read_thread;
  return o;
}

inline std::span<const std::byte> as_bytes(std::string_view s) {
  return std::as_bytes(std::span(s.data(), s.size()));
}
inline std::string as_string(std::span<const std::byte> b) {
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

// The raw bytes of a memory file (a test hook: edits are seen by the log).
inline std::vector<std::byte>& bytes_of(memory_storage& s, std::string_view name) {
  auto d = s.open(name, ktm::open_mode::open_existing);
  return d->shared_buffer()->bytes;  // the buffer outlives the handle
}

inline void flip_bit(memory_storage& s, std::string_view name, std::size_t offset, int bit = 0) {
  auto& b = bytes_of(s, name);
  b.at(offset) ^= static_cast<std::byte>(1u << bit);
}

inline void zero_range(memory_storage& s, std::string_view name, std::size_t offset, std::size_t n) {
  auto& b = bytes_of(s, name);
  for (std::size_t i = offset; i < offset + n && i < b.size(); ++i) b[i] = std::byte{0};
}

// A deep copy of every file.
inline memory_storage crash_image(memory_storage& s) {
  memory_storage out;
  for (const auto& n : s.names()) {
    auto src = s.open(n, ktm::open_mode::open_existing);
    auto dst = out.open(n, ktm::open_mode::create_new);
    std::lock_guard g(src->shared_buffer()->mutex);
    dst->shared_buffer()->bytes = src->shared_buffer()->bytes;
  }
  return out;
}

// memory_storage whose devices fail on demand. A failed flush is sticky
// (the device is then failed, as the block_device laws require).
struct fault_switch {
  std::atomic<bool> fail_writes{false};
  std::atomic<bool> fail_flushes{false};
  std::atomic<bool> failed{false};
};

class failing_device {
 public:
  failing_device(ktm::io::memory_device d, std::shared_ptr<fault_switch> f) : d_(std::move(d)), f_(std::move(f)) {}
  std::uint64_t size() const { return d_.size(); }
  std::size_t logical_block_size() const { return d_.logical_block_size(); }
  std::error_code read(std::uint64_t off, std::span<std::byte> out) {
    if (f_->failed) return make_error_code(ktm::errc::device_failed);
    return d_.read(off, out);
  }
  std::error_code write(std::uint64_t off, std::span<const std::byte> in) {
    if (f_->failed) return make_error_code(ktm::errc::device_failed);
    if (f_->fail_writes) return make_error_code(ktm::errc::io_error);
    return d_.write(off, in);
  }
  std::error_code flush() {
    if (f_->failed) return make_error_code(ktm::errc::device_failed);
    if (f_->fail_flushes) {
      f_->failed = true;
      return make_error_code(ktm::errc::io_error);
    }
    return d_.flush();
  }
  std::error_code grow(std::uint64_t n) { return d_.grow(n); }

 private:
  ktm::io::memory_device d_;
  std::shared_ptr<fault_switch> f_;
};

class failing_storage {
 public:
  using device_type = failing_device;
  explicit failing_storage(memory_storage inner = memory_storage())
      : inner_(std::move(inner)), f_(std::make_shared<fault_switch>()) {}
  ktm::result<failing_device> open(std::string_view n, ktm::open_mode m) {
    auto d = inner_.open(n, m);
    if (!d) return std::move(d).error();
    return failing_device(std::move(*d), f_);
  }
  bool exists(std::string_view n) { return inner_.exists(n); }
  std::error_code remove(std::string_view n) { return inner_.remove(n); }
  std::error_code rename(std::string_view a, std::string_view b) { return inner_.rename(a, b); }
  fault_switch& faults() { return *f_; }
  memory_storage& inner() { return inner_; }

 private:
  memory_storage inner_;
  std::shared_ptr<fault_switch> f_;
};

static_assert(ktm::check_io_policy<failing_storage>());

// The file name of the container that holds logical container `logical` of
// the log `name` ("" if none does).
template <class Log>
std::string container_file(const Log& lg, std::uint32_t logical, std::string_view name = "l") {
  for (const auto& c : lg.containers())
    if (c.logical_id == logical) return std::string(name) + ".c" + std::to_string(c.physical_id);
  return {};
}

// Reads every record of a stream forward; returns payloads as strings.
template <class Stream>
std::vector<std::string> read_all(Stream&& s, ktm::failure* status = nullptr) {
  std::vector<std::string> v;
  auto view = s.read_forward();
  for (const auto& r : view) v.push_back(as_string(r.payload));
  if (status) *status = view.status();
  return v;
}

// What the memory-log tests name unqualified:
// `using namespace ktm::test::memory_log_names;`
namespace memory_log_names {
using ktm::errc;
using ktm::test::as_bytes;
using ktm::test::as_string;
using ktm::test::memory_storage;
using mlog = ktm::log::log<memory_storage>;
}  // namespace memory_log_names

namespace crash_test_names {
using ktm::errc;
using ktm::io::call_kind;
using ktm::io::crash_spec;
using ktm::io::fault_controller;
using ktm::test::as_bytes;
using ktm::test::as_string;
using ktm::test::memory_storage;
using fstore = ktm::io::fault_injection_storage<memory_storage>;
}  // namespace crash_test_names

}  // namespace ktm::test
