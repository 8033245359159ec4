// The read views (read_forward, read_backward, read_undo_next) are lazy and
// bounded, as reader.hpp says: what a view costs depends on what is walked,
// not on the size of the log.
//
// Laziness is measured in device reads, over fault-injection storage (its
// controller counts every read call and sees its length): making a view
// reads nothing, its first element costs one read-ahead window (forward) or
// the one block it is in (chains), a full forward scan reads windows of
// many blocks, and a chain reads only the blocks of the records it visits.
//
// Bounded memory. sizeof(record_view) would prove nothing: it is a
// compile-time constant whatever the view holds, since a view's state lives
// behind a shared_ptr, and the buffers that state grows are on the heap. So
// this binary counts the heap: it replaces the global operator new and
// delete (every replaceable form, aligned and nothrow ones included: block
// and window buffers are aligned allocations, and a sanitizer's runtime
// would otherwise serve the forms left out) and keeps the live bytes and
// their peak. What a full
// forward scan allocates at its peak is then the honest measure of a view's
// memory; it must not grow with the log (the same for a log four times
// larger) and must stay far below the log's size. The read helper thread
// (log_options::read_thread) allocates through the same operators, so its
// slots count too.
#include <catch2/catch.hpp>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "tests/support/log_fixtures.hpp"

// ---- heap accounting: live bytes (malloc_usable_size) and their peak ----

namespace {
std::atomic<std::int64_t> g_live{0};
std::atomic<std::int64_t> g_peak{0};

void note_alloc(void* p) {
  const auto n = static_cast<std::int64_t>(malloc_usable_size(p));
  const std::int64_t now = g_live.fetch_add(n, std::memory_order_relaxed) + n;
  std::int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (now > peak && !g_peak.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
  }
}
void note_free(void* p) {
  if (p) g_live.fetch_sub(static_cast<std::int64_t>(malloc_usable_size(p)), std::memory_order_relaxed);
}
void* counted_alloc(std::size_t n) {
  void* p = std::malloc(n == 0 ? 1 : n);
  if (!p) throw std::bad_alloc();
  note_alloc(p);
  return p;
}
void* counted_aligned_alloc(std::size_t n, std::align_val_t a) {
  const std::size_t align = std::max(static_cast<std::size_t>(a), sizeof(void*));
  void* p = nullptr;
  if (posix_memalign(&p, align, n == 0 ? 1 : n) != 0) throw std::bad_alloc();
  note_alloc(p);
  return p;
}
void counted_free(void* p) noexcept {
  note_free(p);
  std::free(p);
}

// Peak heap bytes above the live bytes at construction, while it lives.
class heap_peak {
 public:
  heap_peak() : base_(g_live.load()) { g_peak.store(base_); }
  std::int64_t above_start() const { return g_peak.load() - base_; }

 private:
  std::int64_t base_;
};
}  // namespace

void* operator new(std::size_t n) { return counted_alloc(n); }
void* operator new[](std::size_t n) { return counted_alloc(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counted_aligned_alloc(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return counted_aligned_alloc(n, a); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  try {
    return counted_alloc(n);
  } catch (...) {
    return nullptr;
  }
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return counted_aligned_alloc(n, a);
  } catch (...) {
    return nullptr;
  }
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  try {
    return counted_aligned_alloc(n, a);
  } catch (...) {
    return nullptr;
  }
}
void operator delete(void* p) noexcept { counted_free(p); }
void operator delete[](void* p) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { counted_free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { counted_free(p); }

using namespace ktm::log;
using namespace ktm::test::crash_test_names;
using ktm::io::kind_set;
using ktm::io::persistence;
using flog = ktm::log::log<fstore>;

namespace {

constexpr std::size_t window = ktm::log::detail::log_core<fstore>::read_ahead_bytes;  // 1 MiB

std::string payload(std::size_t i, std::size_t size) {
  std::string p = "record " + std::to_string(i) + " ";
  p.resize(size, static_cast<char>('a' + i % 26));
  return p;
}

// Device reads of the controller's storage, with the bytes they asked for.
struct read_meter {
  std::shared_ptr<fault_controller> ctl;
  std::shared_ptr<std::uint64_t> bytes = std::make_shared<std::uint64_t>(0);
  std::shared_ptr<std::uint64_t> largest = std::make_shared<std::uint64_t>(0);
  explicit read_meter(std::shared_ptr<fault_controller> c) : ctl(std::move(c)) {
    // a rule that never fires, to see every read (called under the controller's mutex)
    ctl->fail_when(
        [b = bytes, l = largest](const ktm::io::call_info& i) {
          *b += i.length;
          *l = std::max<std::uint64_t>(*l, i.length);
          return false;
        },
        errc::io_error, persistence::every_match, kind_set(call_kind::read));
  }
  void reset() {
    ctl->reset_counts();
    *bytes = 0;
    *largest = 0;
  }
  std::uint64_t reads() const { return ctl->counts().reads(); }
};

// 20,000 records of about 100 bytes in 8 KiB blocks (2 MiB containers): a
// log of about 2.7 MB over a few hundred blocks. Every 1000th record's
// undo-next names the 1000th before it: a chain of 20 across the log.
struct big_log {
  static constexpr std::size_t n = 20000;
  static constexpr std::size_t link = 1000;
  big_log() {
    auto o = ktm::test::windowed_log_options();
    auto lg = flog::create(st, "l", o);
    REQUIRE(lg);
    auto s = lg->create_stream("s");
    REQUIRE(s);
    auto ma = s->marshalling_area();
    REQUIRE(ma);
    for (std::size_t i = 0; i < n; ++i) {
      const lsn undo = i % link == 0 && i > 0 ? lsns[i - link] : lsn::null();
      auto l = ma->append(payload(i, 100), record_type::data, append_flags::none, undo);
      REQUIRE(l);
      lsns.push_back(*l);
    }
    REQUIRE(ma->flush_all());
    for (std::size_t i = 0; i < n; ++i)
      if (i == 0 || lsns[i].block_start() != lsns[i - 1].block_start()) ++blocks;
    for (const auto& c : lg->containers())
      if (c.logical_id != 0xffffffffu) ++containers_used;
    bytes = (lsns.back().container() - lsns.front().container()) * std::uint64_t{o.container_size} +
            lsns.back().block_byte_offset() + o.block_size;  // an upper bound of the bytes the records span
  }
  fstore st{memory_storage(), std::make_shared<fault_controller>()};
  std::vector<lsn> lsns;
  std::size_t blocks = 0;
  std::size_t containers_used = 0;
  std::uint64_t bytes = 0;
  // opens the log again (every read below goes to the device)
  ktm::result<flog> open() { return flog::open(st, "l", ktm::test::windowed_log_options(read_thread_)); }
  bool read_thread_ = true;
};

}  // namespace

TEST_CASE("making a view reads nothing and its first record costs one read-ahead window of a 20000-record log") {
  big_log b;
  auto lg = b.open();
  REQUIRE(lg);
  auto s = lg->open_stream("s");
  REQUIRE(s);
  REQUIRE(b.blocks > 200);
  read_meter m(b.st.controller());
  m.reset();
  auto v = s->read_forward();
  CHECK(m.reads() == 0);  // lazy: nothing is read before iteration
  auto it = v.begin();
  REQUIRE(it != v.end());
  CHECK(it->at == b.lsns[0]);
  CHECK(as_string(it->payload) == payload(0, 100));
  // one device read brings in the first window: a few hundred records, not the log
  CHECK(m.reads() >= 1);
  CHECK(m.reads() <= 2);
  CHECK(*m.bytes <= window);
  CHECK(*m.bytes < b.bytes / 2);
  // the records in that window come from memory
  const std::uint64_t after_first = m.reads();
  std::size_t k = 1;
  for (++it; it != v.end() && k < 100; ++it, ++k) CHECK(it->at == b.lsns[k]);
  CHECK(k == 100);
  CHECK(m.reads() == after_first);
}

TEST_CASE("a full forward scan of 20000 records reads windows of many blocks and far fewer reads than records") {
  big_log b;
  for (const bool read_thread : {false, true}) {
    INFO("read_thread " << read_thread);
    b.read_thread_ = read_thread;
    auto lg = b.open();
    REQUIRE(lg);
    auto s = lg->open_stream("s");
    REQUIRE(s);
    read_meter m(b.st.controller());
    m.reset();
    std::size_t k = 0;
    auto v = s->read_forward();
    for (const auto& r : v) {
      if (r.at != b.lsns[k] || as_string(r.payload) != payload(k, 100)) FAIL("record " << k);
      ++k;
    }
    CHECK(k == big_log::n);
    CHECK(v.ok());
    // One read per window of up to 1 MiB, a window never spanning two
    // containers: the log's bytes in windows, plus one per container (its
    // last window may be partial); a block running past a window's end
    // starts the next window (no read more). The helper thread, where it takes
    // over, starts a window of its own: one read more. (3 reads here, with
    // or without it.)
    const std::uint64_t windows = (b.bytes + window - 1) / window + b.containers_used;
    CHECK(m.reads() >= 1);
    CHECK(m.reads() <= windows + (read_thread ? 1 : 0));
    CHECK(m.reads() * 100 < big_log::n);  // far fewer reads than records ...
    CHECK(m.reads() * 10 < b.blocks);     // ... and than blocks
    CHECK(*m.largest <= window);
    CHECK(*m.bytes <= 2 * b.bytes);  // each byte read about once
  }
}

TEST_CASE("a backward view reads only the blocks it walks") {
  big_log b;
  auto lg = b.open();
  REQUIRE(lg);
  auto s = lg->open_stream("s");
  REQUIRE(s);
  read_meter m(b.st.controller());
  m.reset();
  auto v = s->read_backward();
  CHECK(m.reads() == 0);
  auto it = v.begin();
  REQUIRE(it != v.end());
  CHECK(it->at == b.lsns.back());
  // one block: its first io_align bytes (the header says its size), then the rest
  CHECK(m.reads() >= 1);
  CHECK(m.reads() <= 2);
  CHECK(*m.largest <= 8192);
  // 300 records back: only the blocks they are in
  std::size_t k = 1, blocks = 1;
  for (++it; it != v.end() && k < 300; ++it, ++k) {
    const std::size_t i = big_log::n - 1 - k;
    CHECK(it->at == b.lsns[i]);
    if (b.lsns[i].block_start() != b.lsns[i + 1].block_start()) ++blocks;
  }
  CHECK(k == 300);
  CHECK(blocks < 10);
  CHECK(m.reads() >= blocks);
  CHECK(m.reads() <= 2 * blocks);
  CHECK(*m.bytes <= blocks * 8192);
}

TEST_CASE("an undo-next view reads only the blocks of the records on its chain") {
  big_log b;
  auto lg = b.open();
  REQUIRE(lg);
  auto s = lg->open_stream("s");
  REQUIRE(s);
  read_meter m(b.st.controller());
  m.reset();
  const std::size_t last_link = (big_log::n - 1) / big_log::link * big_log::link;  // 19000
  auto v = s->read_undo_next(b.lsns[last_link]);
  CHECK(m.reads() == 0);
  std::size_t k = 0;
  for (const auto& r : v) {
    REQUIRE(k * big_log::link <= last_link);
    CHECK(r.at == b.lsns[last_link - k * big_log::link]);
    ++k;
  }
  CHECK(k == last_link / big_log::link + 1);  // 20 records, one block each
  CHECK(v.ok());                              // ended at the null undo-next of record 0
  CHECK(m.reads() >= k);
  CHECK(m.reads() <= 2 * k);
  CHECK(m.reads() * 5 < b.blocks);  // not the blocks between them
  CHECK(*m.bytes <= k * 8192);
}

namespace {

// A log of `n` records of 900 bytes in memory (no fault injection: only the
// heap is measured); returns the peak heap bytes a full forward scan
// allocated above what was live before the view was made.
std::int64_t scan_peak(std::size_t n, bool read_thread) {
  memory_storage st;
  auto o = ktm::test::windowed_log_options(read_thread);
  o.max_containers = 64;
  auto lg = ktm::log::log<memory_storage>::create(st, "l", o);
  REQUIRE(lg);
  auto s = lg->create_stream("s");
  REQUIRE(s);
  {
    auto ma = s->marshalling_area();
    REQUIRE(ma);
    for (std::size_t i = 0; i < n; ++i) REQUIRE(ma->append(payload(i, 900)));
    REQUIRE(ma->flush_all());
  }
  heap_peak peak;
  std::size_t k = 0;
  {
    auto v = s->read_forward();
    for (const auto& r : v) {
      if (r.payload.size() != 900) FAIL("record " << k);
      ++k;
    }
    CHECK(v.ok());
  }
  CHECK(k == n);
  return peak.above_start();
}

}  // namespace

// Measured on the development machine (8 KiB blocks, 932-byte records):
// 1,056,936 bytes on one thread, whatever the log's size (the 1 MiB window
// and one block's body and offsets), and 8,926,424 bytes with the helper
// thread, again whatever the log's size.
TEST_CASE("the heap a full forward scan needs does not grow with the log") {
  // about 7.5 MB and 30 MB of records: both well past the first window and
  // the helper's three slots, so both reach the steady state
  constexpr std::size_t medium = 8000, large = 4 * medium;
  constexpr std::int64_t large_bytes = std::int64_t{large} * (900 + 32);
  constexpr std::int64_t w = window, blk = 8192;
  for (const bool read_thread : {false, true}) {
    INFO("read_thread " << read_thread);
    const std::int64_t m = scan_peak(medium, read_thread);
    const std::int64_t l = scan_peak(large, read_thread);
    INFO("peak heap of a scan: " << m << " bytes (" << medium << " records), " << l << " bytes (" << large
                                 << " records)");
    CHECK(m > 0);
    // the same peak for a log four times larger (slack: allocator rounding)
    CHECK(l <= m + 64 * 1024);
    CHECK(m <= l + 64 * 1024);
    CHECK(l < large_bytes / 3);  // far below the log
    if (!read_thread) {
      // on one thread: one window and one block's body and offsets
      CHECK(l <= w + 4 * blk + 64 * 1024);
    } else {
      // with the helper: the reader's window and the helper's, and three
      // slots of body; a slot needs at most a window and a block, but its
      // vector grows by doubling, so it may hold twice that, and while it
      // grows the old buffer is live too (one slot grows at a time); plus
      // block buffers and record offsets (slack)
      CHECK(l <= 2 * w + 3 * 2 * (w + blk) + (w + blk) + 512 * 1024);
    }
  }
}

// reader.hpp (and forward_pipeline.hpp) state the helper's memory as "at
// most three slots of about read_ahead_bytes + block_size of body (with
// their record offsets) and a window and block buffer of its own", on top
// of the reader's window and block. Each slot reserves its body once (a
// body grown by doubling held up to twice that, and two buffers while it
// grew).
TEST_CASE("a forward scan with the read helper stays within the memory reader.hpp states") {
  constexpr std::int64_t w = window, blk = 8192;
  const std::int64_t l = scan_peak(4 * 8000, true);
  INFO("peak heap of a scan: " << l << " bytes");
  // the reader's window and block, the helper's, three slots of a window and a block, offsets (slack)
  CHECK(l <= (w + 2 * blk) * 2 + 3 * (w + blk) + 256 * 1024);
}
