// tests/fuzz/log_fuzzer.cpp: opening and scanning arbitrary log bytes.
//
// The input is split into a base file and containers of a log named "f"
// (tests/fuzz/log_fuzz_input.hpp). In each recovery mode the fuzzer opens the
// log, lists its streams, reads each forward, backward and along undo-next,
// reads single records at LSNs from the input, walks the restart-area chain,
// then appends, forces, writes a restart area and reopens (flags: 1 persist
// on close, 2 grow, 4 restart area, 8 moving the base, 16 advance_base, 32 a
// payload of 4 KiB or more, 64 preformatted containers). Every outcome must
// be a value or a ktm error: a crash, a sanitizer report or a hang is a bug.
//
// One property is checked as well: a forced append that returned success is
// found again by the next open (point_in_time, which never fails on damage),
// with its payload. A violation traps.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "tests/fuzz/log_fuzz_input.hpp"

namespace {

using ktm::io::memory_storage;
using namespace ktm::log;

// A limit no valid log of the fuzzer's size can reach: reaching it is a hang.
constexpr int max_steps = 100000;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

// Every failure must be one of ktm's codes.
void check_failure(const ktm::failure& f) {
  check(f.code.category() == ktm::error_category());
  (void)f.message();
}

// Puts the files of `f` (and nothing else) into `s`, reusing its buffers.
void load(memory_storage& s, const ktm::fuzz::log_files& f) {
  std::vector<std::string> names{"f.blf"};
  for (std::size_t i = 0; i < f.containers.size(); ++i) names.push_back("f.c" + std::to_string(i));
  for (const auto& n : s.names())
    if (std::find(names.begin(), names.end(), n) == names.end()) (void)s.remove(n);
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto d = s.open(names[i], ktm::open_mode::open_or_create);
    const auto& src = i == 0 ? f.base : f.containers[i - 1];
    d->shared_buffer()->bytes.assign(src.begin(), src.end());
  }
}

struct tape {
  const std::vector<std::byte>& t;
  std::size_t pos = 0;
  std::uint8_t u8() { return pos < t.size() ? static_cast<std::uint8_t>(t[pos++]) : 0; }
  std::uint64_t u64() {
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{u8()} << (8 * i);
    return v;
  }
};

template <class View>
int drain(View&& v) {
  int n = 0;
  for (const log_record& r : v) {
    check(r.at.is_valid());
    volatile std::size_t sink = 0;
    for (auto b : r.payload) sink = sink + static_cast<std::size_t>(b);
    check(++n < max_steps);
  }
  check_failure(v.status());
  return n;
}

template <class Stream>
void read_stream(Stream& s, tape& tp) {
  drain(s.read_forward());
  drain(s.read_backward());
  drain(s.read_forward(lsn(tp.u64())));
  const lsn last = s.last_lsn();
  if (last.is_valid()) drain(s.read_undo_next(last));
  drain(s.read_undo_next(lsn(tp.u64())));
  for (int i = 0; i < 2; ++i) {
    auto r = s.read_record(lsn(tp.u64()));
    if (!r) check_failure(r.error());
  }
  auto ra = s.read_restart_area();
  for (int n = 0; ra; ++n) {
    check(n < max_steps);
    ra = s.read_previous_restart_area(*ra);
  }
  check_failure(ra.error());
}

template <class Recovery>
void run(const ktm::fuzz::log_files& files) {
  using L = ktm::log::log<memory_storage, Recovery>;
  static memory_storage st;  // reused: its buffers keep their capacity
  load(st, files);
  tape tp{files.tape};
  log_options o;
  o.persist_on_close = (files.flags & 1) != 0;
  o.grow = (files.flags & 2) != 0;
  o.max_containers = 6;
  o.write_buffers = 2;
  o.preformat_containers = (files.flags & 64) != 0;  // containers added by growth
  // flag 32: a payload of 4 KiB or more (append copies it in outside the
  // log's lock), else 0..255 bytes
  const std::size_t length = (files.flags & 32) ? 4096 + std::size_t{tp.u8()} * 32 : tp.u8();
  std::vector<std::byte> payload(length, std::byte{0x5a});
  lsn forced;
  {
    auto lg = L::open(st, "f", o);
    if (!lg) return check_failure(lg.error());
    (void)lg->recovery_report();
    for (const auto& name : lg->streams()) {
      auto s = lg->open_stream(name);
      if (!s) {
        check_failure(s.error());
        continue;
      }
      read_stream(*s, tp);
    }
    // write: to the first stream, or a new one
    auto names = lg->streams();
    auto s = names.empty() ? lg->create_stream("fz") : lg->open_stream(names.front());
    if (!s) return check_failure(s.error());
    auto ma = s->marshalling_area();
    if (!ma) return check_failure(ma.error());
    auto a = ma->append(payload, record_type::data, append_flags::force);
    if (!a) return check_failure(a.error());
    forced = *a;
    if (files.flags & 4) {
      auto r = ma->write_restart_area(payload, (files.flags & 8) ? std::optional<lsn>(*a) : std::nullopt);
      if (!r) check_failure(r.error());
    }
    if (files.flags & 16) {
      auto r = s->advance_base(*a);
      if (!r) check_failure(r.error());
    }
    auto q = ma->append(payload);  // queued only
    if (!q) check_failure(q.error());
    read_stream(*s, tp);
  }
  // the acknowledged record is found again
  auto lg = ktm::log::log<memory_storage, point_in_time>::open(st, "f", o);
  check(static_cast<bool>(lg));
  auto names = lg->streams();
  check(!names.empty());
  auto s = lg->open_stream(names.front());
  check(static_cast<bool>(s));
  auto r = s->read_record(forced);
  check(static_cast<bool>(r) && r->payload == payload);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static ktm::fuzz::log_files files;  // reused: its buffers keep their capacity
  ktm::fuzz::split_input(std::span(data, size), files);
  run<tolerate_corrupted_tail>(files);
  run<absolute_consistency>(files);
  run<point_in_time>(files);
  return 0;
}
