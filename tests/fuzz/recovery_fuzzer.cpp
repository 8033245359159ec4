// tests/fuzz/recovery_fuzzer.cpp: recovering a durable TM and a
// transactional map from arbitrary records.
//
// The log fuzzer (log_fuzzer.cpp) attacks the log's own framing; records
// whose CRCs match reach the layers above it, and those must not trust the
// bytes either. Here the input is a program that writes a valid log holding
// two streams, "tm" (the TM's records) and "map" (a transactional map's change
// records), then recovers both:
//
//   input   := op*
//   op      := u8 selector, then the selector's fields (below); the input
//              ending in the middle of an op ends the program
//   selector % 9:
//     0  TM commit record: u8 uow, u64 clock, u8 n (n % 4 enlistments of
//        u8 rm, u64 key (bit 8: a mask without COMMIT and ROLLBACK), u8 len,
//        len % 24 bytes of recovery information
//        (len & 0x80: the subordinate tag instead)), u8 d (d % 70 bytes of
//        description)
//     1  TM end record: u8 uow, u64 clock
//     2  TM prepared record: u8 uow, u64 clock, u8 superior, then as 0
//     3  TM record of u8 len raw bytes
//     4  TM restart area: u64 clock (a restart record), or raw bytes when
//        the clock's low byte is 0xff (u8 len bytes)
//     5  map change record: u8 kind (% 8), u8 uow, u8 key len (% 8),
//        key, u8 value len (% 8, 7: no value), value
//     6  map record of u8 len raw bytes
//     7  map restart area: u8 checkpoint id, u8 a, u8 b (indexes into the
//        LSNs appended so far), u64 count, or raw bytes (a & 0x80)
//     8  a forced flush of both streams
//   uow, rm, superior index small pools of fixed ids (rm 0 is the map, so
//   the TM delivers to it), so records refer to each other.
//
// Then the log is closed and reopened; the map recovers (its own scan), the
// TM recovers (RECOVER / COMMIT / LAST_RECOVER to the map), and if both
// succeed a new transaction commits, everything is closed, and both recover
// once more. Every failure must be one of ktm's error codes; a crash, a
// sanitizer report, an exception or a hang is a bug.
//
// Seeds (tests/fuzz/corpus/recovery_fuzzer) come from a fuzzing run: for
// each combination of how far recovery got, the three largest inputs. With
// them the regression test's mutated inputs reach the TM's redelivery and the
// map's in-doubt resolution in most runs; random bytes alone rarely do.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"

namespace {

using ktm::guid;
using ktm::io::memory_storage;
namespace kl = ktm::log;
namespace kt = ktm::tm;
using map_t = ktm::rm::transactional_map<memory_storage>;
using tm_t = kt::durable_transaction_manager<memory_storage, kt::with_storage<kt::static_storage<map_t>>>;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

template <class R>
bool ok_or_ktm_error(const R& r) {
  if (r) return true;
  check(r.error().code.category() == ktm::error_category());
  (void)r.error().message();
  return false;
}

guid fixed_id(std::uint8_t family, std::uint8_t i) {
  guid::bytes_type b{};
  b[0] = family;
  b[1] = i;
  b[6] = 0x40;
  b[8] = 0x80;
  b[15] = 1;
  return guid(b);
}
const guid map_id = fixed_id(1, 0);
const guid tm_id = fixed_id(2, 0);
guid uow_of(std::uint8_t i) { return fixed_id(3, i % 6); }
guid rm_of(std::uint8_t i) { return i % 3 == 0 ? map_id : fixed_id(1, i % 3); }
// The enlistment's notification mask: without COMMIT and ROLLBACK when the
// key has bit 8 set, else the default (PREPREPARE, PREPARE, COMMIT, ROLLBACK).
std::uint32_t mask_of(std::uint64_t key) { return (key & 0x100) ? 0x3u : 0xfu; }

// Reads the program; every read past the end yields nothing and ends it.
class source {
 public:
  explicit source(std::span<const std::uint8_t> b) : b_(b) {}
  bool more() const { return at_ < b_.size(); }
  std::optional<std::uint8_t> u8() {
    if (at_ >= b_.size()) return std::nullopt;
    return b_[at_++];
  }
  std::optional<std::uint64_t> u64() {
    if (b_.size() - at_ < 8) return std::nullopt;
    std::uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= static_cast<std::uint64_t>(b_[at_++]) << (8 * i);
    return v;
  }
  // u8 len, then len bytes.
  std::optional<std::vector<std::byte>> blob() {
    auto len = u8();
    if (!len) return std::nullopt;
    return bytes(*len);
  }
  std::optional<std::vector<std::byte>> bytes(std::size_t n) {
    if (b_.size() - at_ < n) return std::nullopt;
    std::vector<std::byte> v(n);
    if (n != 0) std::memcpy(v.data(), b_.data() + at_, n);
    at_ += n;
    return v;
  }

 private:
  std::span<const std::uint8_t> b_;
  std::size_t at_ = 0;
};

kl::log_options shape() {
  kl::log_options o;
  o.block_size = 4096;
  o.container_size = 64 * 1024;
  o.containers = 2;
  o.write_buffers = 2;
  return o;
}

// Enlistments and a description for a commit or prepared record.
bool add_body(source& in, kt::detail::tm_record_writer& w) {
  auto n = in.u8();
  if (!n) return false;
  for (int i = 0; i < *n % 4; ++i) {
    auto rm = in.u8();
    auto key = in.u64();
    auto len = in.u8();
    if (!rm || !key || !len) return false;
    if (*len & 0x80) {
      w.add_enlistment(rm_of(*rm), *key, mask_of(*key), kt::proxy_tag);
      continue;
    }
    auto info = in.bytes(*len % 24);
    if (!info) return false;
    w.add_enlistment(rm_of(*rm), *key, mask_of(*key), *info);
  }
  auto d = in.u8();
  if (!d) return false;
  auto text = in.bytes(*d % 70);
  if (!text) return false;
  w.set_description(std::string(reinterpret_cast<const char*>(text->data()), text->size()));
  return true;
}

// One map change record: kind, uow, key, value (or none), encoded by the
// map's own encoder (ktm/rm/record.hpp); kind 0 is not a valid kind.
std::optional<std::vector<std::byte>> map_record(source& in) {
  auto kind = in.u8();
  auto uow = in.u8();
  auto klen = in.u8();
  if (!kind || !uow || !klen) return std::nullopt;
  auto key = in.bytes(*klen % 8);
  auto vlen = in.u8();
  if (!key || !vlen) return std::nullopt;
  const bool absent = *vlen % 8 == 7;
  auto value = in.bytes(absent ? 0 : *vlen % 8);
  if (!value) return std::nullopt;
  auto text = [](const std::vector<std::byte>& b) {
    return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
  };
  return ktm::rm::encode_record(static_cast<ktm::rm::change_kind>(*kind % 8), uow_of(*uow), text(*key),
                                absent ? ktm::rm::image_view() : ktm::rm::image_view(text(*value)));
}

// Runs the program against a fresh log; false when the log could not be made.
bool write_program(memory_storage& st, source& in) {
  auto lg = kl::log<memory_storage>::create(st, "f", shape());
  if (!ok_or_ktm_error(lg)) return false;
  auto ts = lg->create_stream("tm");
  auto ms = lg->create_stream("map");
  if (!ok_or_ktm_error(ts) || !ok_or_ktm_error(ms)) return false;
  auto tw = ts->marshalling_area();
  auto mw = ms->marshalling_area();
  if (!ok_or_ktm_error(tw) || !ok_or_ktm_error(mw)) return false;
  std::vector<kl::lsn> appended;
  auto note = [&](const auto& r) {
    if (ok_or_ktm_error(r)) appended.push_back(*r);
  };
  for (int steps = 0; in.more() && steps < 200; ++steps) {
    const std::uint8_t op = *in.u8() % 9;
    switch (op) {
      case 0:
      case 2: {
        auto uow = in.u8();
        auto clock = in.u64();
        if (!uow || !clock) return true;
        const bool prepared = op == 2;
        kt::detail::tm_record_writer w(prepared ? kt::detail::tm_record_type::prepared
                                                : kt::detail::tm_record_type::commit,
                                       *clock, uow_of(*uow));
        if (prepared) {
          auto sup = in.u8();
          if (!sup) return true;
          w.set_superior(fixed_id(4, *sup % 2));
        }
        if (!add_body(in, w)) return true;
        note(tw->append(w.bytes()));
        break;
      }
      case 1: {
        auto uow = in.u8();
        auto clock = in.u64();
        if (!uow || !clock) return true;
        kt::detail::tm_record_writer w(kt::detail::tm_record_type::end, *clock, uow_of(*uow));
        note(tw->append(w.bytes()));
        break;
      }
      case 3:
      case 6: {
        auto raw = in.blob();
        if (!raw) return true;
        note((op == 3 ? *tw : *mw).append(*raw));
        break;
      }
      case 4: {
        auto clock = in.u64();
        if (!clock) return true;
        if ((*clock & 0xff) == 0xff) {
          auto raw = in.blob();
          if (!raw) return true;
          note(tw->write_restart_area(*raw));
        } else {
          kt::detail::tm_record_writer w(kt::detail::tm_record_type::restart, *clock, tm_id);
          note(tw->write_restart_area(w.bytes()));
        }
        break;
      }
      case 5: {
        auto r = map_record(in);
        if (!r) return true;
        note(mw->append(*r));
        break;
      }
      case 7: {
        auto id = in.u8();
        auto a = in.u8();
        auto b = in.u8();
        auto count = in.u64();
        if (!id || !a || !b || !count) return true;
        std::vector<std::byte> r;
        if (*a & 0x80) {
          ktm::rm::detail::put64(r, *count);
          r.push_back(static_cast<std::byte>(*id));
        } else {
          auto pick = [&](std::uint8_t i) { return appended.empty() ? kl::lsn() : appended[i % appended.size()]; };
          r = ktm::rm::encode_restart({uow_of(*id), pick(*a), pick(*b), *count % 16});
        }
        note(mw->write_restart_area(r));
        break;
      }
      case 8:
        (void)ok_or_ktm_error(tw->flush_all());
        (void)ok_or_ktm_error(mw->flush_all());
        break;
    }
  }
  return true;
}

// Opens the log and recovers the map and the TM; with `commit`, then runs
// one new transaction. True when everything succeeded.
bool recover(memory_storage& st, bool commit) {
  auto lg = kl::log<memory_storage>::open(st, "f", shape());
  if (!ok_or_ktm_error(lg)) return false;
  auto ms = lg->open_stream("map");
  auto ts = lg->open_stream("tm");
  if (!ok_or_ktm_error(ms) || !ok_or_ktm_error(ts)) return false;
  auto mw = ms->marshalling_area();
  if (!ok_or_ktm_error(mw)) return false;
  ktm::rm::transactional_map_options o;
  o.prepare = ktm::rm::durability::queue_only;
  map_t map(*ms, std::move(*mw), o, map_id);
  if (!ok_or_ktm_error(map.recover())) return false;
  tm_t tm{kt::log_arg, *ts, map};
  auto r = tm.recover();
  if (!ok_or_ktm_error(r)) return false;
  for (std::uint8_t i = 0; i < 6; ++i) (void)tm.recovered_outcome(uow_of(i));
  (void)map.snapshot();
  if (!commit) return true;
  auto tx = tm.begin();
  if (!ok_or_ktm_error(map.put(tx, "k", "v"))) return false;
  return ok_or_ktm_error(tx.commit());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  memory_storage st;
  source in(std::span<const std::uint8_t>(data, size));
  if (!write_program(st, in)) return 0;
  if (!recover(st, true)) return 0;
  (void)recover(st, false);
  return 0;
}
