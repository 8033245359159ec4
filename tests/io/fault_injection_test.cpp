// Tests of ktm/io/fault_injection.hpp and ktm/io/fault_controller.hpp.
//
// Most tests wrap a memory_storage, so the bytes "on disk" after a crash are
// read straight from the inner storage (tests/support/byte_edit.hpp).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/io/posix_file.hpp"
#include "tests/io/block_device_laws.hpp"
#include "tests/io/io_policy_laws.hpp"
#include "tests/support/byte_edit.hpp"
#include "tests/support/temp_dir.hpp"

using ktm::errc;
using ktm::open_mode;
using ktm::io::call_kind;
using ktm::io::crash_spec;
using ktm::io::fault;
using ktm::io::fault_controller;
using ktm::io::fault_injection;
using ktm::io::fault_injection_storage;
using ktm::io::kind_set;
using ktm::io::memory_device;
using ktm::io::memory_storage;
using ktm::io::persistence;
using bytes = std::vector<std::byte>;

namespace {

using storage = fault_injection_storage<memory_storage>;
using device = storage::device_type;

struct rig {
  explicit rig(std::size_t lbs = 1) : mem(lbs), s(mem, ctl) {}
  memory_storage mem;
  std::shared_ptr<fault_controller> ctl = std::make_shared<fault_controller>();
  storage s;

  device create(const std::string& name, std::uint64_t size) {
    auto d = s.open(name, open_mode::create_new);
    REQUIRE(d);
    REQUIRE_FALSE(d->grow(size));
    return std::move(*d);
  }
  bytes disk(const std::string& name) { return ktm::test::read_all(mem, name); }
};

bytes pattern(std::size_t n, std::uint32_t seed) {
  bytes v(n);
  ktm::test::fill_pattern(v, seed);
  return v;
}

void put(bytes& model, std::uint64_t off, const bytes& b) {
  std::copy(b.begin(), b.end(), model.begin() + static_cast<std::ptrdiff_t>(off));
}

bool region_is(const bytes& disk, std::uint64_t off, const bytes& b) {
  return std::equal(b.begin(), b.end(), disk.begin() + static_cast<std::ptrdiff_t>(off));
}

bool region_zero(const bytes& disk, std::uint64_t off, std::size_t n) {
  return std::all_of(disk.begin() + static_cast<std::ptrdiff_t>(off),
                     disk.begin() + static_cast<std::ptrdiff_t>(off + n),
                     [](std::byte c) { return c == std::byte{0}; });
}

}  // namespace

TEST_CASE("a fault-injecting device obeys the block device laws while no fault fires") {
  for (std::size_t b : {1u, 512u, 4096u}) {
    INFO("logical block size " << b);
    rig r(b);
    int n = 0;
    ktm::test::check_block_device_laws([&] {
      auto d = r.s.open("d" + std::to_string(n++), open_mode::create_new);
      REQUIRE(d);
      return std::move(*d);
    });
    auto ctl = std::make_shared<fault_controller>();
    ktm::test::check_block_device_laws(
        [&] { return fault_injection<memory_device>(memory_device(b), ctl, "standalone"); });
  }
}

TEST_CASE("a fault-injecting storage obeys the io policy laws") {
  rig r;
  ktm::test::check_io_policy_laws(r.s);
  rig r4k(4096);
  ktm::test::check_io_policy_laws(r4k.s);
}

TEST_CASE("a crash loses every write not covered by a flush") {
  rig r;
  auto f = r.create("f", 4096);
  auto g = r.create("g", 4096);
  auto h = r.create("h", 4096);
  bytes model(4096, std::byte{0});
  const auto a = pattern(1000, 1), b = pattern(1000, 2), c = pattern(500, 3);
  REQUIRE_FALSE(f.write(0, a));
  REQUIRE_FALSE(f.flush());
  put(model, 0, a);
  REQUIRE_FALSE(f.write(500, b));  // overlaps the flushed write
  REQUIRE_FALSE(f.write(900, c));  // overlaps the unflushed one: reverted newest first
  REQUIRE_FALSE(f.write(3000, c));
  REQUIRE_FALSE(g.write(100, b));
  REQUIRE_FALSE(h.write(100, c));
  REQUIRE_FALSE(h.flush());
  CHECK(r.ctl->unflushed_writes("f") == 3);
  CHECK(r.ctl->unflushed_writes() == 4);

  CHECK_FALSE(r.ctl->crash());
  CHECK(r.ctl->crashes() == 1);
  CHECK(r.ctl->unflushed_writes() == 0);
  CHECK(r.disk("f") == model);
  CHECK(r.disk("g") == bytes(4096, std::byte{0}));
  bytes hm(4096, std::byte{0});
  put(hm, 100, c);
  CHECK(r.disk("h") == hm);
}

TEST_CASE("one crash hits the files of every storage sharing the controller") {
  auto ctl = std::make_shared<fault_controller>();
  memory_storage m1, m2;
  storage s1(m1, ctl), s2(m2, ctl);
  auto a = s1.open("same-name", open_mode::create_new);
  auto b = s2.open("same-name", open_mode::create_new);
  REQUIRE(a);
  REQUIRE(b);
  REQUIRE_FALSE(a->grow(64));
  REQUIRE_FALSE(b->grow(64));
  REQUIRE_FALSE(a->write(0, pattern(10, 1)));
  REQUIRE_FALSE(b->write(0, pattern(10, 2)));
  REQUIRE_FALSE(a->flush());  // covers only s1's file
  CHECK_FALSE(ctl->crash());
  CHECK(ktm::test::read_all(m1, "same-name") != bytes(64, std::byte{0}));
  CHECK(ktm::test::read_all(m2, "same-name") == bytes(64, std::byte{0}));
}

TEST_CASE("after a crash; devices opened before it fail with device_failed until reopened") {
  rig r;
  auto f = r.create("f", 1024);
  REQUIRE_FALSE(f.write(0, pattern(100, 1)));
  REQUIRE_FALSE(r.ctl->crash());
  const auto before = r.ctl->counts();
  bytes buf(10);
  CHECK(f.read(0, buf) == errc::device_failed);
  CHECK(f.write(0, buf) == errc::device_failed);
  CHECK(f.flush() == errc::device_failed);
  CHECK(f.grow(4096) == errc::device_failed);
  CHECK(r.ctl->counts().total() == before.total());  // dead calls are not counted
  CHECK(f.size() == 1024);

  auto again = r.s.open("f", open_mode::open_existing);
  REQUIRE(again);
  bytes back(100);
  CHECK_FALSE(again->read(0, back));
  CHECK(back == bytes(100, std::byte{0}));
  CHECK_FALSE(again->write(0, back));
  CHECK_FALSE(again->flush());

  // A standalone device is dead too; wrapping its inner device again revives it.
  auto ctl = std::make_shared<fault_controller>();
  fault_injection<memory_device> d(memory_device(), ctl, "solo");
  REQUIRE_FALSE(d.grow(16));
  REQUIRE_FALSE(ctl->crash());
  CHECK(d.flush() == errc::device_failed);
  fault_injection<memory_device> revived(d.inner(), ctl, "solo");
  CHECK_FALSE(revived.flush());
}

TEST_CASE("a flush through one handle covers the writes of every handle on the file") {
  rig r;
  auto f1 = r.create("f", 256);
  auto f2 = r.s.open("f", open_mode::open_existing);
  REQUIRE(f2);
  const auto w = pattern(50, 4);
  REQUIRE_FALSE(f2->write(10, w));
  REQUIRE_FALSE(f1.flush());
  REQUIRE_FALSE(r.ctl->crash());
  CHECK(region_is(r.disk("f"), 10, w));
}

TEST_CASE("a keep-all crash keeps every unflushed write in order") {
  rig r;
  auto f = r.create("f", 2048);
  bytes model(2048, std::byte{0});
  for (std::uint32_t i = 0; i < 10; ++i) {
    const auto w = pattern(300, i);
    REQUIRE_FALSE(f.write(i * 150, w));  // each overlaps the one before
    put(model, i * 150, w);
  }
  crash_spec s;
  s.unflushed = crash_spec::writes::kept;
  REQUIRE_FALSE(r.ctl->crash(s));
  CHECK(r.disk("f") == model);
}

TEST_CASE("a random-subset crash is deterministic for a seed and keeps whole writes") {
  // 16 disjoint unflushed writes of 100 bytes after a flushed base.
  auto run = [](std::uint64_t seed) {
    rig r;
    auto f = r.create("f", 1600);
    REQUIRE_FALSE(f.flush());
    for (std::uint32_t i = 0; i < 16; ++i) REQUIRE_FALSE(f.write(i * 100, pattern(100, i)));
    crash_spec s;
    s.unflushed = crash_spec::writes::random_subset;
    s.seed = seed;
    REQUIRE_FALSE(r.ctl->crash(s));
    return r.disk("f");
  };
  std::set<std::vector<bool>> outcomes;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    INFO("seed " << seed);
    const auto disk = run(seed);
    CHECK(run(seed) == disk);  // replays exactly
    std::vector<bool> kept;
    for (std::uint32_t i = 0; i < 16; ++i) {
      const bool k = region_is(disk, i * 100, pattern(100, i));
      CHECK((k || region_zero(disk, i * 100, 100)));  // all of a write or none of it
      kept.push_back(k);
    }
    outcomes.insert(kept);
  }
  CHECK(outcomes.size() > 10);
  CHECK(outcomes.count(std::vector<bool>(16, true)) == 0);
  CHECK(outcomes.count(std::vector<bool>(16, false)) == 0);
}

TEST_CASE("a torn last write keeps some of its 512-byte sectors and loses the others") {
  for (std::uint64_t seed = 0; seed < 16; ++seed) {
    INFO("seed " << seed);
    rig r;
    auto f = r.create("f", 8192);
    auto g = r.create("g", 8192);
    REQUIRE_FALSE(f.flush());
    const auto early = pattern(100, 50), last = pattern(1500, 51), other = pattern(700, 52);
    REQUIRE_FALSE(f.write(6000, early));
    REQUIRE_FALSE(f.write(700, last));  // sectors [700,1024) [1024,1536) [1536,2048) [2048,2200)
    REQUIRE_FALSE(g.write(100, other));
    crash_spec s;
    s.unflushed = crash_spec::writes::kept;
    s.last_write = crash_spec::last::torn;
    s.seed = seed;
    s.device = "f";  // g's last write follows `unflushed`
    REQUIRE_FALSE(r.ctl->crash(s));
    const auto disk = r.disk("f");
    CHECK(region_is(disk, 6000, early));  // earlier unflushed writes kept
    CHECK(region_is(r.disk("g"), 100, other));
    const std::uint64_t cuts[] = {700, 1024, 1536, 2048, 2200};
    int kept = 0;
    for (int i = 0; i < 4; ++i) {
      const bytes piece(last.begin() + static_cast<std::ptrdiff_t>(cuts[i] - 700),
                        last.begin() + static_cast<std::ptrdiff_t>(cuts[i + 1] - 700));
      const bool k = region_is(disk, cuts[i], piece);
      CHECK((k || region_zero(disk, cuts[i], piece.size())));
      kept += k;
    }
    CHECK(kept >= 1);
    CHECK(kept <= 3);

    rig again;  // same seed, same tear
    auto f2 = again.create("f", 8192);
    auto g2 = again.create("g", 8192);
    REQUIRE_FALSE(f2.flush());
    REQUIRE_FALSE(f2.write(6000, early));
    REQUIRE_FALSE(f2.write(700, last));
    REQUIRE_FALSE(g2.write(100, other));
    REQUIRE_FALSE(again.ctl->crash(s));
    CHECK(again.disk("f") == disk);
  }
}

TEST_CASE("a device with 4096-byte sectors tears at 4096-byte granularity") {
  rig r(4096);
  auto f = r.create("f", 4 * 4096);
  ktm::io::aligned_buffer w(4 * 4096, 4096);
  ktm::test::fill_pattern(w.span(), 5);
  REQUIRE_FALSE(f.write(0, w.span()));
  crash_spec s;
  s.last_write = crash_spec::last::torn;
  s.seed = 3;
  REQUIRE_FALSE(r.ctl->crash(s));
  const auto disk = r.disk("f");
  int kept = 0;
  for (std::size_t i = 0; i < 4; ++i) {
    const bytes block(w.data() + i * 4096, w.data() + (i + 1) * 4096);
    const bool k = region_is(disk, i * 4096, block);
    CHECK((k || region_zero(disk, i * 4096, 4096)));
    kept += k;
  }
  CHECK(kept >= 1);
  CHECK(kept <= 3);
}

TEST_CASE("garbage replaces the last written region and nothing else") {
  rig r;
  auto f = r.create("f", 4096);
  const auto base = pattern(4096, 60);
  REQUIRE_FALSE(f.write(0, base));
  REQUIRE_FALSE(f.flush());
  const auto w1 = pattern(200, 61), w2 = pattern(600, 62);
  REQUIRE_FALSE(f.write(100, w1));
  REQUIRE_FALSE(f.write(2000, w2));
  crash_spec s;
  s.unflushed = crash_spec::writes::kept;
  s.last_write = crash_spec::last::garbage;
  s.seed = 77;
  REQUIRE_FALSE(r.ctl->crash(s));
  const auto disk = r.disk("f");
  bytes expect = base;
  put(expect, 100, w1);
  CHECK(std::equal(disk.begin(), disk.begin() + 2000, expect.begin()));
  CHECK(std::equal(disk.begin() + 2600, disk.end(), expect.begin() + 2600));
  CHECK_FALSE(region_is(disk, 2000, w2));
  CHECK_FALSE(region_is(disk, 2000, bytes(base.begin() + 2000, base.begin() + 2600)));
  // The same seed writes the same garbage.
  rig again;
  auto g = again.create("f", 4096);
  REQUIRE_FALSE(g.write(0, base));
  REQUIRE_FALSE(g.flush());
  REQUIRE_FALSE(g.write(100, w1));
  REQUIRE_FALSE(g.write(2000, w2));
  REQUIRE_FALSE(again.ctl->crash(s));
  CHECK(again.disk("f") == disk);
}

TEST_CASE("garbage on command overwrites a given region of a device") {
  rig r;
  auto f = r.create("f", 1024);
  REQUIRE_FALSE(f.flush());
  CHECK_FALSE(r.ctl->garbage("f", 100, 50, 9));
  const auto disk = r.disk("f");
  CHECK(region_zero(disk, 0, 100));
  CHECK_FALSE(region_zero(disk, 100, 50));
  CHECK(region_zero(disk, 150, 1024 - 150));
}

namespace {
// One call of kind k on file "f" of r (open) or on d; grow grows by 512.
std::error_code call_of_kind(call_kind k, rig& r, device& d, bytes& buf, std::uint64_t& grow_to) {
  switch (k) {
    case call_kind::open: return r.s.open("f", open_mode::open_existing).code();
    case call_kind::read: return d.read(0, buf);
    case call_kind::write: return d.write(0, buf);
    case call_kind::flush: return d.flush();
    case call_kind::grow: return d.grow(grow_to += 512);
    default: break;  // directory operations: their own test case
  }
  return {};
}
}  // namespace

TEST_CASE("EIO or ENOSPC once on the nth call of each kind fails that call only") {
  const call_kind kinds[] = {call_kind::open, call_kind::read, call_kind::write, call_kind::flush,
                             call_kind::grow};
  for (auto e : {errc::io_error, errc::no_space}) {
    for (auto k : kinds) {
      INFO("kind " << int(k) << " error " << int(e));
      rig r;
      auto f = r.create("f", 1024);
      REQUIRE_FALSE(f.flush());
      const auto id = r.ctl->fail_nth(k, 2, e, persistence::once);
      bytes buf = pattern(64, 1);
      std::uint64_t grow_to = 1024;
      auto call = [&] { return call_of_kind(k, r, f, buf, grow_to); };
      CHECK_FALSE(call());
      const auto disk = r.disk("f");
      ktm::test::fill_pattern(buf, 2);
      const auto buf_before = buf;
      CHECK(call() == e);
      CHECK(r.ctl->fired(id) == 1);
      // The failed call moved nothing.
      CHECK(r.disk("f") == disk);
      if (k == call_kind::read) CHECK(buf == buf_before);
      if (k == call_kind::flush) {
        CHECK(call() == errc::device_failed);  // fail-stop
        auto again = r.s.open("f", open_mode::open_existing);
        REQUIRE(again);
        CHECK_FALSE(again->flush());
      } else {
        CHECK_FALSE(call());
      }
      CHECK(r.ctl->fired(id) == 1);
    }
  }
}

TEST_CASE("EIO or ENOSPC persistent from the nth call of a kind fails every later call of that kind") {
  const call_kind kinds[] = {call_kind::open, call_kind::read, call_kind::write, call_kind::flush,
                             call_kind::grow};
  for (auto e : {errc::io_error, errc::no_space}) {
    for (auto k : kinds) {
      INFO("kind " << int(k) << " error " << int(e));
      rig r;
      auto f = r.create("f", 1024);
      r.ctl->fail_nth(k, 2, e, persistence::persistent);
      bytes buf(64);
      std::uint64_t grow_to = 1024;
      auto call = [&](device& d) { return call_of_kind(k, r, d, buf, grow_to); };
      CHECK_FALSE(call(f));
      CHECK(call(f) == e);
      if (k == call_kind::flush) {
        CHECK(call(f) == errc::device_failed);
        for (int i = 0; i < 3; ++i) {
          auto d = r.s.open("f", open_mode::open_existing);
          REQUIRE(d);
          CHECK(call(*d) == e);  // every new handle's flush fails too
        }
      } else {
        for (int i = 0; i < 5; ++i) CHECK(call(f) == e);
        // Other kinds are unaffected.
        if (k != call_kind::read) CHECK_FALSE(f.read(0, buf));
        if (k != call_kind::write) CHECK_FALSE(f.write(0, buf));
      }
    }
  }
}

namespace {

// A small workload: returns the 1-based index of the first I/O call (read,
// write, flush, grow) that failed, or 0. Opens are not I/O calls.
std::uint64_t workload(storage& s) {
  std::uint64_t n = 0;
  auto step = [&n](std::error_code ec) {
    ++n;
    return !ec;
  };
  auto f = s.open("w", open_mode::open_or_create);
  if (!f) return 1000;
  bytes b = pattern(256, 8);
  if (!step(f->grow(4096))) return n;
  for (std::uint64_t i = 0; i < 3; ++i)
    if (!step(f->write(i * 256, b))) return n;
  if (!step(f->flush())) return n;
  if (!step(f->read(0, b))) return n;
  if (!step(f->read(256, b))) return n;
  if (!step(f->grow(8192))) return n;
  if (!step(f->write(5000, b))) return n;
  if (!step(f->flush())) return n;
  return 0;
}

}  // namespace

TEST_CASE("failing every I/O call in turn; the call that got the fault reports it") {
  rig clean;
  REQUIRE(workload(clean.s) == 0);
  const auto total = clean.ctl->counts().total() - clean.ctl->counts().opens();
  REQUIRE(total == 10);
  for (auto e : {errc::io_error, errc::no_space}) {
    for (std::uint64_t n = 1; n <= total; ++n) {
      INFO("failing I/O call " << n);
      rig r;
      const auto id = r.ctl->fail_nth_io_call(n, e);
      CHECK(workload(r.s) == n);
      CHECK(r.ctl->fired(id) == 1);
    }
  }
}

TEST_CASE("a failed flush is fail-stop; and its writes are lost by a crash") {
  rig r;
  auto f = r.create("f", 1024);
  REQUIRE_FALSE(f.write(0, pattern(100, 1)));
  r.ctl->fail_nth(call_kind::flush, 1);
  ktm::test::check_fail_stop_law(f);
  CHECK(f.failed());
  CHECK(r.ctl->unflushed_writes("f") == 1);
  REQUIRE_FALSE(r.ctl->crash());
  CHECK(r.disk("f") == bytes(1024, std::byte{0}));

  // A real failure of the inner flush (fdatasync on a pipe) is fail-stop too.
  int p[2];
  REQUIRE(::pipe(p) == 0);
  ktm::io::unique_fd keep_read_end(p[0]);
  fault_injection<ktm::io::posix_file> pf(ktm::io::posix_file(ktm::io::unique_fd(p[1])),
                                          std::make_shared<fault_controller>(), "pipe");
  ktm::test::check_fail_stop_law(pf);
}

TEST_CASE("a bit flip changes exactly one bit at the given device; offset and bit") {
  for (std::size_t b : {1u, 4096u}) {
    INFO("logical block size " << b);
    rig r(b);
    auto f = r.create("f", 8192);
    auto g = r.create("g", 8192);
    REQUIRE_FALSE(f.flush());
    const auto before = r.disk("f");
    CHECK_FALSE(r.ctl->flip_bit("f", 5000, 3));
    auto after = r.disk("f");
    CHECK(after[5000] == std::byte{8});
    after[5000] = std::byte{0};
    CHECK(after == before);
    CHECK(r.disk("g") == bytes(8192, std::byte{0}));
    // Every handle reads the flipped bit.
    ktm::io::aligned_buffer buf(b == 1 ? 1 : b, b);
    REQUIRE_FALSE(f.read(b == 1 ? 5000 : 4096, buf.span()));
    CHECK(buf[b == 1 ? 0 : 5000 - 4096] == std::byte{8});
    CHECK(r.ctl->flip_bit("nope", 0, 0) == errc::not_found);
    CHECK(r.ctl->flip_bit("f", 8192, 0) == errc::out_of_range);
  }
  // A standalone device (no storage) is found through its live handle.
  auto ctl = std::make_shared<fault_controller>();
  memory_device inner;
  fault_injection<memory_device> d(inner, ctl, "solo");
  REQUIRE_FALSE(d.grow(16));
  CHECK_FALSE(ctl->flip_bit("solo", 15, 7));
  bytes one(1);
  REQUIRE_FALSE(d.read(15, one));
  CHECK(one[0] == std::byte{0x80});
}

TEST_CASE("the controller counts calls of each kind per device and in total") {
  rig r;
  auto f = r.create("f", 1024);  // 1 open, 1 grow
  auto g = r.create("g", 1024);
  bytes b(16);
  REQUIRE_FALSE(f.write(0, b));
  REQUIRE_FALSE(f.write(16, b));
  REQUIRE_FALSE(f.write(32, b));
  REQUIRE_FALSE(f.read(0, b));
  REQUIRE_FALSE(f.read(0, b));
  REQUIRE_FALSE(f.flush());
  REQUIRE_FALSE(g.flush());
  REQUIRE_FALSE(g.flush());
  const auto cf = r.ctl->counts("f");
  CHECK(cf.opens() == 1);
  CHECK(cf.grows() == 1);
  CHECK(cf.writes() == 3);
  CHECK(cf.reads() == 2);
  CHECK(cf.flushes() == 1);
  CHECK(cf.total() == 8);
  CHECK(r.ctl->counts("g").flushes() == 2);
  const auto all = r.ctl->counts();
  CHECK(all.opens() == 2);
  CHECK(all.flushes() == 3);
  CHECK(all.total() == 8 + 4);
  // Calls failed by injection count; calls on a failed device do not.
  r.ctl->fail_nth(call_kind::flush, 1);
  CHECK(f.flush());
  CHECK(f.flush() == errc::device_failed);
  CHECK(r.ctl->counts("f").flushes() == 2);
  r.ctl->reset_counts();
  CHECK(r.ctl->counts().total() == 0);
  CHECK(r.ctl->counts("g").total() == 0);
}

TEST_CASE("random failures from a seed replay exactly") {
  auto run = [](std::uint64_t seed) {
    rig r;
    auto f = r.create("f", 4096);
    r.ctl->fail_randomly(seed, 200'000, call_kind::write, errc::io_error);
    std::vector<int> failed;
    bytes b(8);
    for (int i = 0; i < 200; ++i)
      if (f.write(static_cast<std::uint64_t>(i) * 8, b)) failed.push_back(i);
    return failed;
  };
  const auto a = run(42);
  CHECK(run(42) == a);
  CHECK(a.size() > 10);
  CHECK(a.size() < 80);
  CHECK(run(43) != a);
}

TEST_CASE("a crash at the nth write can land before it; or after it and tear it") {
  SECTION("before: the write never happens and earlier unflushed writes are lost") {
    rig r;
    auto f = r.create("f", 4096);
    r.ctl->crash_at(call_kind::write, 3);
    CHECK_FALSE(f.write(0, pattern(100, 1)));
    CHECK_FALSE(f.write(100, pattern(100, 2)));
    CHECK(f.write(200, pattern(100, 3)) == errc::device_failed);
    CHECK(r.ctl->crashes() == 1);
    CHECK(r.disk("f") == bytes(4096, std::byte{0}));
    CHECK(f.write(0, pattern(1, 1)) == errc::device_failed);
  }
  SECTION("after: the write lands; then is torn") {
    rig r;
    auto f = r.create("f", 4096);
    crash_spec s;
    s.unflushed = crash_spec::writes::kept;
    s.last_write = crash_spec::last::torn;
    s.seed = 5;
    r.ctl->crash_at(call_kind::write, 3, s, true);
    const auto w1 = pattern(100, 1), w2 = pattern(100, 2), w3 = pattern(2048, 3);
    CHECK_FALSE(f.write(0, w1));
    CHECK_FALSE(f.write(100, w2));
    CHECK(f.write(1024, w3) == errc::device_failed);
    const auto disk = r.disk("f");
    CHECK(region_is(disk, 0, w1));
    CHECK(region_is(disk, 100, w2));
    int kept = 0;
    for (std::size_t i = 0; i < 4; ++i)
      kept += region_is(disk, 1024 + i * 512,
                        bytes(w3.begin() + static_cast<std::ptrdiff_t>(i * 512),
                              w3.begin() + static_cast<std::ptrdiff_t>(i * 512 + 512)));
    CHECK(kept >= 1);
    CHECK(kept <= 3);
  }
  SECTION("after a flush: the flushed writes survive though the caller saw a failure") {
    rig r;
    auto f = r.create("f", 4096);
    r.ctl->crash_at(call_kind::flush, 1, {}, true);
    const auto w = pattern(100, 1);
    CHECK_FALSE(f.write(0, w));
    CHECK(f.flush() == errc::device_failed);
    CHECK(region_is(r.disk("f"), 0, w));
  }
  SECTION("around an open") {
    rig r;
    auto f = r.create("f", 4096);
    REQUIRE_FALSE(f.write(0, pattern(100, 1)));
    r.ctl->crash_at(call_kind::open, 1);
    auto g = r.s.open("f", open_mode::open_existing);
    CHECK(g.code() == errc::device_failed);
    CHECK(g.error().file == "f");
    CHECK(r.disk("f") == bytes(4096, std::byte{0}));
    CHECK(r.s.open("f", open_mode::open_existing));
  }
}

TEST_CASE("a renamed file keeps its journal and counters; a removed file drops its journal") {
  rig r;
  auto a = r.create("a", 256);
  REQUIRE_FALSE(a.flush());
  REQUIRE_FALSE(a.write(0, pattern(10, 1)));
  REQUIRE_FALSE(r.s.rename("a", "b"));
  CHECK(r.ctl->unflushed_writes("b") == 1);
  CHECK(r.ctl->counts("b").writes() == 1);
  CHECK(r.ctl->counts("a").total() == 0);
  CHECK(a.name() == "b");

  auto c = r.create("c", 256);
  REQUIRE_FALSE(c.write(0, pattern(10, 2)));
  REQUIRE_FALSE(r.s.remove("c"));
  CHECK(r.ctl->unflushed_writes("c") == 0);

  REQUIRE_FALSE(r.ctl->crash());
  CHECK(r.disk("b") == bytes(256, std::byte{0}));
  CHECK_FALSE(r.s.exists("c"));
}

TEST_CASE("a predicate or a device name selects which calls fail") {
  rig r;
  auto f = r.create("f", 8192);
  auto g = r.create("g", 8192);
  r.ctl->fail_when([](const ktm::io::call_info& c) { return c.offset >= 4096; }, errc::no_space,
                   persistence::every_match, call_kind::write);
  r.ctl->fail_nth(call_kind::read, 1, errc::io_error, persistence::once, "g");
  bytes b(16);
  CHECK_FALSE(f.write(0, b));
  CHECK(f.write(4096, b) == errc::no_space);
  CHECK_FALSE(f.write(100, b));
  CHECK(g.write(5000, b) == errc::no_space);
  CHECK_FALSE(f.read(0, b));
  CHECK(g.read(0, b) == errc::io_error);
  CHECK_FALSE(g.read(0, b));
}

TEST_CASE("removed or cleared faults stop firing") {
  rig r;
  auto f = r.create("f", 64);
  bytes b(8);
  const auto id = r.ctl->fail_when([](const auto&) { return true; }, errc::io_error,
                                   persistence::persistent, call_kind::read);
  CHECK(f.read(0, b) == errc::io_error);
  r.ctl->remove_fault(id);
  CHECK_FALSE(f.read(0, b));
  r.ctl->fail_nth_io_call(1, errc::io_error, persistence::persistent);
  CHECK(f.write(0, b) == errc::io_error);
  r.ctl->clear_faults();
  CHECK_FALSE(f.write(0, b));
}

TEST_CASE("writes into a grown region that were never flushed become zeros after a crash") {
  // grow is taken as durable (the concept has no truncate), its new bytes as zeros.
  rig r;
  auto f = r.create("f", 512);
  REQUIRE_FALSE(f.flush());
  REQUIRE_FALSE(f.grow(1024));
  REQUIRE_FALSE(f.write(600, pattern(100, 1)));
  REQUIRE_FALSE(r.ctl->crash());
  CHECK(r.disk("f") == bytes(1024, std::byte{0}));
}

TEST_CASE("a crash reverts unflushed writes on real files; even after the handle is closed") {
  ktm::test::temp_dir dir;
  auto ctl = std::make_shared<fault_controller>();
  fault_injection_storage<ktm::io::posix_storage> s(ktm::io::posix_storage(dir.path().string()),
                                                    ctl);
  const auto kept = pattern(300, 1), lost = pattern(300, 2);
  {
    auto f = s.open("real", open_mode::create_new);
    REQUIRE(f);
    REQUIRE_FALSE(f->grow(4096));
    REQUIRE_FALSE(f->write(0, kept));
    REQUIRE_FALSE(f->flush());
    REQUIRE_FALSE(f->write(200, lost));
    REQUIRE_FALSE(f->write(3000, lost));
  }
  REQUIRE_FALSE(ctl->crash());
  auto f = ktm::io::posix_file::open(dir.file("real"));
  REQUIRE(f);
  bytes disk(4096);
  REQUIRE_FALSE(f->read(0, disk));
  CHECK(region_is(disk, 0, kept));
  CHECK(region_zero(disk, 300, 4096 - 300));
  CHECK_FALSE(ctl->flip_bit("real", 0, 0));
  REQUIRE_FALSE(f->read(0, disk));
  CHECK(disk[0] == (kept[0] ^ std::byte{1}));
}

TEST_CASE("a crash undoes the directory operations not synced; newest first") {
  rig r;
  r.s.set_directory_sync(storage::directory_sync::explicit_only);
  auto make = [&](const std::string& n, std::uint32_t seed) {
    auto d = r.create(n, 512);
    REQUIRE_FALSE(d.write(0, pattern(512, seed)));
    REQUIRE_FALSE(d.flush());
  };
  make("kept", 1);
  make("gone", 2);
  REQUIRE_FALSE(r.s.sync_directory());
  CHECK(r.s.directory_syncs() == 1);
  REQUIRE_FALSE(r.s.remove("gone"));            // comes back
  make("fresh", 3);                             // disappears
  REQUIRE_FALSE(r.s.rename("kept", "moved"));   // is reversed
  CHECK(r.s.unsynced_directory_ops() == 3);
  r.ctl->crash();
  CHECK(r.s.exists("kept"));
  CHECK_FALSE(r.s.exists("moved"));
  CHECK_FALSE(r.s.exists("fresh"));
  REQUIRE(r.s.exists("gone"));
  CHECK(r.disk("gone") == pattern(512, 2));
  CHECK(r.disk("kept") == pattern(512, 1));
  CHECK(r.s.unsynced_directory_ops() == 0);
  // a synced operation survives a crash
  REQUIRE_FALSE(r.s.remove("kept"));
  REQUIRE_FALSE(r.s.sync_directory());
  r.ctl->crash();
  CHECK_FALSE(r.s.exists("kept"));
}

TEST_CASE("a random-subset crash may keep a later directory operation and lose an earlier one") {
  bool reordered = false;
  for (std::uint64_t seed = 1; seed <= 64 && !reordered; ++seed) {
    rig r;
    r.s.set_directory_sync(storage::directory_sync::explicit_only);
    r.create("first", 512);
    r.create("second", 512);
    crash_spec c;
    c.unsynced_directory = crash_spec::writes::random_subset;
    c.seed = seed;
    r.ctl->crash(c);
    reordered = !r.s.exists("first") && r.s.exists("second");
  }
  CHECK(reordered);
}

TEST_CASE("by default directory operations are durable on return") {
  rig r;
  r.create("a", 512);
  REQUIRE_FALSE(r.s.rename("a", "b"));
  CHECK(r.s.unsynced_directory_ops() == 0);
  r.ctl->crash();
  CHECK(r.s.exists("b"));
  CHECK_FALSE(r.s.exists("a"));
}

TEST_CASE("remove; rename and sync_directory are counted calls that a rule fails without effect") {
  rig r;
  r.s.set_directory_sync(storage::directory_sync::explicit_only);
  r.create("a", 512);
  r.create("b", 512);
  const auto before = r.ctl->counts();
  REQUIRE_FALSE(r.s.rename("a", "c"));
  REQUIRE_FALSE(r.s.remove("b"));
  REQUIRE_FALSE(r.s.sync_directory());
  const auto after = r.ctl->counts();
  CHECK(after.renames() == before.renames() + 1);
  CHECK(after.removes() == before.removes() + 1);
  CHECK(after.directory_syncs() == before.directory_syncs() + 1);
  CHECK(r.ctl->counts(".").directory_syncs() == 1);
  CHECK(r.ctl->counts("b").removes() == 1);

  for (auto e : {errc::io_error, errc::no_space}) {
    INFO("error " << int(e));
    r.create("d", 512);
    auto rm = r.ctl->fail_nth(call_kind::remove, 1, e, persistence::once);
    CHECK(r.s.remove("d") == e);
    CHECK(r.s.exists("d"));  // nothing happened
    CHECK(r.ctl->fired(rm) == 1);
    auto mv = r.ctl->fail_nth(call_kind::rename, 1, e, persistence::once);
    CHECK(r.s.rename("d", "e") == e);
    CHECK(r.s.exists("d"));
    CHECK_FALSE(r.s.exists("e"));
    CHECK(r.ctl->fired(mv) == 1);
    auto sy = r.ctl->fail_nth(call_kind::sync_directory, 1, e, persistence::once);
    const auto pending = r.s.unsynced_directory_ops();
    CHECK(r.s.sync_directory() == e);
    CHECK(r.s.unsynced_directory_ops() == pending);  // nothing became durable
    CHECK(r.ctl->fired(sy) == 1);
    REQUIRE_FALSE(r.s.remove("d"));  // the rules are spent
    REQUIRE_FALSE(r.s.sync_directory());
  }
}

TEST_CASE("a crash before a rename leaves the old name; a crash after it keeps the new one once synced") {
  for (auto what : {fault::action::crash_before, fault::action::crash_after}) {
    INFO("crash " << (what == fault::action::crash_before ? "before" : "after"));
    rig r;
    r.create("a", 512);
    fault f;
    f.kinds = call_kind::rename;
    f.nth = 1;
    f.what = what;
    r.ctl->inject(f);
    CHECK(r.s.rename("a", "b") == errc::device_failed);
    CHECK(r.ctl->crashes() == 1);
    // per_call directory persistence: a rename done is durable
    CHECK(r.s.exists(what == fault::action::crash_before ? "a" : "b"));
    CHECK_FALSE(r.s.exists(what == fault::action::crash_before ? "b" : "a"));
  }
}

namespace {

// How many bits differ between two byte images of the same size.
std::size_t bits_differing(const bytes& a, const bytes& b) {
  REQUIRE(a.size() == b.size());
  std::size_t n = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    n += static_cast<std::size_t>(std::popcount(static_cast<unsigned>(a[i] ^ b[i])));
  return n;
}

// A flip rule on the nth call of `kinds` (0: every call that meets the rest).
fault flip_rule(kind_set kinds, std::uint64_t seed, std::uint32_t bits, std::uint64_t nth = 1,
                persistence p = persistence::once) {
  fault f;
  f.kinds = kinds;
  f.what = fault::action::flip;
  f.flip_bits = bits;
  f.seed = seed;
  f.nth = nth;
  f.lasting = p;
  return f;
}

// Files "f" (8192 bytes) and "g" (4096 bytes) of flushed pattern bytes.
struct two_files {
  explicit two_files(std::size_t lbs = 1) : r(lbs) {
    for (auto [name, size, seed] : {std::tuple{"f", 8192u, 1u}, std::tuple{"g", 4096u, 2u}}) {
      auto d = r.create(name, size);
      ktm::io::aligned_buffer b(size, lbs);
      ktm::test::fill_pattern(b.span(), seed);
      REQUIRE_FALSE(d.write(0, b.span()));
      REQUIRE_FALSE(d.flush());
    }
    f0 = r.disk("f");
    g0 = r.disk("g");
  }
  rig r;
  bytes f0, g0;  // the bytes before any flip
};

}  // namespace

TEST_CASE("random bit flips replay for a seed and differ between seeds") {
  for (std::size_t lbs : {1u, 4096u}) {
    INFO("logical block size " << lbs);
    auto images = [lbs](std::uint64_t seed, std::string_view device) {
      two_files t(lbs);
      CHECK(t.r.ctl->flip_random_bits(seed, 40, device) == 40);
      return std::pair{t.r.disk("f"), t.r.disk("g")};
    };
    for (std::string_view device : {std::string_view{}, std::string_view{"f"}}) {
      INFO("device '" << device << "'");
      const auto a = images(7, device);
      CHECK(images(7, device) == a);  // the same seed flips the same bits
      const auto b = images(8, device);
      CHECK(b != a);  // another seed flips others
      if (device == "f") {
        two_files t(lbs);
        CHECK(a.second == t.g0);  // only the named file is touched
        CHECK(b.second == t.g0);
      }
    }
  }
}

TEST_CASE("random bit flips change exactly count distinct bits of the stored bytes") {
  for (std::size_t lbs : {1u, 4096u}) {
    INFO("logical block size " << lbs);
    for (std::size_t count : {1u, 8u, 100u, 1000u}) {
      INFO("count " << count);
      {
        two_files t(lbs);
        CHECK(t.r.ctl->flip_random_bits(count, count, "g") == count);
        CHECK(bits_differing(t.r.disk("g"), t.g0) == count);
        CHECK(t.r.disk("f") == t.f0);
      }
      {
        // Over every file the controller knows, still distinct bits.
        two_files t(lbs);
        CHECK(t.r.ctl->flip_random_bits(count, count) == count);
        const auto in_f = bits_differing(t.r.disk("f"), t.f0);
        const auto in_g = bits_differing(t.r.disk("g"), t.g0);
        CHECK(in_f + in_g == count);
        if (count >= 100) {  // both files are drawn from
          CHECK(in_f > 0);
          CHECK(in_g > 0);
        }
      }
    }
  }
}

TEST_CASE("random bit flips on a small file are distinct and stop at every bit flipped") {
  rig r;
  auto f = r.create("f", 16);  // 128 bits: 100 draws with repeats would collide
  REQUIRE_FALSE(f.flush());
  const bytes zero(16, std::byte{0});
  CHECK(r.ctl->flip_random_bits(3, 100, "f") == 100);
  CHECK(bits_differing(r.disk("f"), zero) == 100);
  rig all;
  auto g = all.create("g", 16);
  REQUIRE_FALSE(g.flush());
  CHECK(all.ctl->flip_random_bits(3, 1000, "g") == 128);
  CHECK(all.disk("g") == bytes(16, std::byte{0xff}));
}

TEST_CASE("random bit flips report zero when there are no bytes to flip") {
  CHECK(fault_controller{}.flip_random_bits(1, 10) == 0);
  rig r;
  CHECK(r.ctl->flip_random_bits(1, 10) == 0);  // no files
  r.create("empty", 0);
  CHECK(r.ctl->flip_random_bits(1, 10) == 0);
  CHECK(r.ctl->flip_random_bits(1, 10, "empty") == 0);
  CHECK(r.ctl->flip_random_bits(1, 10, "nope") == 0);
  r.create("f", 64);
  CHECK(r.ctl->flip_random_bits(1, 0) == 0);
  CHECK(r.disk("f") == bytes(64, std::byte{0}));
  // A removed file (no handle left on it) is skipped: every flip lands in
  // the file that remains.
  r.create("g", 64);
  REQUIRE_FALSE(r.s.remove("f"));
  CHECK(r.ctl->flip_random_bits(1, 30) == 30);
  CHECK(bits_differing(r.disk("g"), bytes(64, std::byte{0})) == 30);
  // A standalone device is found through its live handle.
  auto ctl = std::make_shared<fault_controller>();
  fault_injection<memory_device> d(memory_device(), ctl, "solo");
  REQUIRE_FALSE(d.grow(32));
  CHECK(ctl->flip_random_bits(5, 9) == 9);
  bytes back(32);
  REQUIRE_FALSE(d.read(0, back));
  CHECK(bits_differing(back, bytes(32, std::byte{0})) == 9);
}

TEST_CASE("a flip rule on a read corrupts only the returned copy and leaves the stored bytes intact") {
  for (std::size_t lbs : {1u, 4096u}) {
    INFO("logical block size " << lbs);
    auto read_with_flips = [lbs](std::uint64_t seed) {
      two_files t(lbs);
      const auto id = t.r.ctl->inject(flip_rule(call_kind::read, seed, 5));
      auto f = t.r.s.open("f", open_mode::open_existing);
      REQUIRE(f);
      ktm::io::aligned_buffer buf(t.f0.size(), lbs);
      CHECK_FALSE(f->read(0, buf.span()));  // the call succeeds
      const bytes got(buf.span().begin(), buf.span().end());
      CHECK(bits_differing(got, t.f0) == 5);
      CHECK(t.r.disk("f") == t.f0);  // the stored bytes are intact
      CHECK(t.r.ctl->fired(id) == 1);
      CHECK_FALSE(f->read(0, buf.span()));  // the rule is spent: a clean read
      CHECK(bytes(buf.span().begin(), buf.span().end()) == t.f0);
      CHECK(t.r.ctl->unflushed_writes() == 0);
      return got;
    };
    const auto a = read_with_flips(21);
    CHECK(read_with_flips(21) == a);
    CHECK(read_with_flips(22) != a);
  }
  // More bits than the buffer holds: every bit of it; an empty read flips nothing.
  rig r;
  auto f = r.create("f", 64);
  const auto id = r.ctl->inject(flip_rule(call_kind::read, 1, 100, 0, persistence::every_match));
  bytes two(2);
  CHECK_FALSE(f.read(10, two));
  CHECK(two == bytes(2, std::byte{0xff}));
  bytes none;
  CHECK_FALSE(f.read(10, none));
  CHECK(r.ctl->fired(id) == 2);
  CHECK(r.disk("f") == bytes(64, std::byte{0}));
}

TEST_CASE("a flip rule on a write stores corrupted bytes and reports success") {
  for (std::size_t lbs : {1u, 4096u}) {
    INFO("logical block size " << lbs);
    auto write_with_flips = [lbs](std::uint64_t seed, crash_spec::writes on_crash) {
      rig r(lbs);
      auto f = r.create("f", 8192);
      REQUIRE_FALSE(f.flush());
      const auto id = r.ctl->inject(flip_rule(call_kind::write, seed, 7));
      ktm::io::aligned_buffer w(4096, lbs);
      ktm::test::fill_pattern(w.span(), 9);
      const bytes sent(w.span().begin(), w.span().end());
      CHECK_FALSE(f.write(4096, w.span()));  // the call reports success
      CHECK(bytes(w.span().begin(), w.span().end()) == sent);  // the caller's bytes untouched
      CHECK(r.ctl->fired(id) == 1);
      const auto disk = r.disk("f");
      const bytes stored(disk.begin() + 4096, disk.end());
      CHECK(bits_differing(stored, sent) == 7);
      CHECK(region_zero(disk, 0, 4096));
      ktm::io::aligned_buffer back(4096, lbs);
      REQUIRE_FALSE(f.read(4096, back.span()));  // every read sees the stored bytes
      CHECK(bytes(back.span().begin(), back.span().end()) == stored);
      // The journal holds the stored bytes: a crash keeps them flipped or loses them.
      crash_spec s;
      s.unflushed = on_crash;
      REQUIRE_FALSE(r.ctl->crash(s));
      const auto after = r.disk("f");
      if (on_crash == crash_spec::writes::kept)
        CHECK(after == disk);
      else
        CHECK(after == bytes(8192, std::byte{0}));
      return stored;
    };
    const auto a = write_with_flips(31, crash_spec::writes::kept);
    CHECK(write_with_flips(31, crash_spec::writes::lost) == a);
    CHECK(write_with_flips(32, crash_spec::writes::kept) != a);
  }
  // A write the inner device rejects stores nothing, flipped or not.
  rig r(512);
  auto f = r.create("f", 1024);
  r.ctl->inject(flip_rule(call_kind::write, 1, 3));
  ktm::io::aligned_buffer odd(100, 512);
  CHECK(f.write(0, odd.span()) == errc::misaligned);
  CHECK(r.disk("f") == bytes(1024, std::byte{0}));
  CHECK(r.ctl->unflushed_writes() == 0);
}

TEST_CASE("a flip rule counts reads and writes and fires once or persistently like the other actions") {
  const bytes sent = pattern(64, 4);
  SECTION("once: the nth write only") {
    rig r;
    auto f = r.create("f", 64 * 5);
    const auto id = r.ctl->inject(flip_rule(call_kind::write, 5, 2, 3));
    for (std::uint64_t i = 0; i < 5; ++i) CHECK_FALSE(f.write(i * 64, sent));
    const auto disk = r.disk("f");
    for (std::uint64_t i = 0; i < 5; ++i) {
      INFO("write " << i + 1);
      const bytes got(disk.begin() + static_cast<std::ptrdiff_t>(i * 64),
                      disk.begin() + static_cast<std::ptrdiff_t>(i * 64 + 64));
      CHECK(bits_differing(got, sent) == (i == 2 ? 2u : 0u));
    }
    CHECK(r.ctl->fired(id) == 1);
  }
  SECTION("persistent: the nth read and every later one") {
    rig r;
    auto f = r.create("f", 64);
    REQUIRE_FALSE(f.write(0, sent));
    const auto id =
        r.ctl->inject(flip_rule(call_kind::read, 5, 3, 2, persistence::persistent));
    for (int i = 1; i <= 5; ++i) {
      INFO("read " << i);
      bytes got(64);
      CHECK_FALSE(f.read(0, got));
      CHECK(bits_differing(got, sent) == (i >= 2 ? 3u : 0u));
    }
    CHECK(r.ctl->fired(id) == 4);
    CHECK(r.disk("f") == sent);
  }
  SECTION("flushes and grows do not match a flip rule; the nth read or write does") {
    rig r;
    auto f = r.create("f", 64);
    // kinds: reads, writes, flushes and grows; only the reads and writes count.
    const auto id = r.ctl->inject(flip_rule(kind_set::io(), 5, 1, 2));
    REQUIRE_FALSE(f.flush());
    REQUIRE_FALSE(f.grow(128));
    bytes got(64);
    REQUIRE_FALSE(f.read(0, got));  // the first match
    CHECK(got == bytes(64, std::byte{0}));
    REQUIRE_FALSE(f.flush());
    CHECK(r.ctl->fired(id) == 0);
    CHECK_FALSE(f.write(0, sent));  // the second match
    CHECK(r.ctl->fired(id) == 1);
    const auto disk = r.disk("f");
    CHECK(bits_differing(bytes(disk.begin(), disk.begin() + 64), sent) == 1);
  }
  SECTION("a device name selects the file and a removed rule stops firing") {
    rig r;
    auto f = r.create("f", 64);
    auto g = r.create("g", 64);
    const auto id = r.ctl->inject([] {
      auto x = flip_rule(call_kind::write, 5, 4, 0, persistence::every_match);
      x.device = "g";
      return x;
    }());
    CHECK_FALSE(f.write(0, sent));
    CHECK_FALSE(g.write(0, sent));
    CHECK(r.disk("f") == sent);
    CHECK(bits_differing(r.disk("g"), sent) == 4);
    r.ctl->remove_fault(id);
    CHECK_FALSE(g.write(0, sent));
    CHECK(r.disk("g") == sent);
    CHECK(r.ctl->fired(id) == 1);
  }
  SECTION("random firing replays for a seed") {
    auto run = [&](std::uint64_t seed) {
      rig r;
      auto f = r.create("f", 64);
      REQUIRE_FALSE(f.write(0, sent));
      auto rule = flip_rule(call_kind::read, seed, 1, 0, persistence::every_match);
      rule.per_million = 300'000;
      r.ctl->inject(rule);
      std::vector<bytes> reads;
      for (int i = 0; i < 40; ++i) {
        bytes got(64);
        REQUIRE_FALSE(f.read(0, got));
        reads.push_back(got);
      }
      return reads;
    };
    const auto a = run(77);
    CHECK(run(77) == a);
    CHECK(run(78) != a);
    const auto corrupted =
        std::count_if(a.begin(), a.end(), [&](const bytes& b) { return b != sent; });
    CHECK(corrupted > 2);
    CHECK(corrupted < 30);
  }
}
