// A long forward read goes on with a helper thread (read_thread, the
// default) that reads and frames the log ahead while the reader checks
// CRCs and yields records. Whatever the log holds, a read with the helper
// gives the same records, the same end and the same error at the same
// position as a read on the caller's thread alone (read_thread = false).
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sched.h>
#endif

#include "ktm/log/format.hpp"
#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using namespace ktm::test::crash_test_names;
using ktm::test::flip_bit;
using ktm::test::memory_log_names::mlog;

namespace {

// Two streams interleaved in containers of 2 MiB (windowed_log_options): a
// read of one stream skips the other's records, and the helper starts past
// the first MiB.
log_options options(bool read_thread) { return ktm::test::windowed_log_options(read_thread); }

std::string payload(int i) { return "record " + std::to_string(i) + std::string(90 + i * 7 % 130, 'p'); }

// What a forward read saw: each record's LSN and payload, then the status.
struct reading {
  std::vector<lsn> at;
  std::vector<std::string> payloads;
  ktm::failure status{errc::end_of_stream};
  bool operator==(const reading& o) const {
    return at == o.at && payloads == o.payloads && status.code == o.status.code &&
           status.where.value == o.status.where.value;
  }
};

template <class Log>
reading read(Log& lg, const std::string& name, lsn from = lsn::null()) {
  reading out;
  auto s = lg.open_stream(name);
  REQUIRE(s);
  auto v = s->read_forward(from);
  for (const log_record& r : v) {
    out.at.push_back(r.at);
    out.payloads.push_back(ktm::test::as_string(r.payload));
  }
  out.status = v.status();
  return out;
}

// A log "l" in `st` with streams "a" and "b": n records, a to b 2:1, a
// block forced every 5 records. Returns the LSNs of a's records.
template <class Storage>
std::vector<lsn> fill(Storage& st, int n) {
  auto lg = ktm::log::log<Storage>::create(st, "l", options(true));
  REQUIRE(lg);
  auto a = lg->create_stream("a");
  auto b = lg->create_stream("b");
  REQUIRE(a);
  REQUIRE(b);
  auto ma = a->marshalling_area();
  auto mb = b->marshalling_area();
  REQUIRE(ma);
  REQUIRE(mb);
  std::vector<lsn> as;
  for (int i = 0; i < n; ++i) {
    const auto f = (i + 1) % 5 == 0 ? append_flags::force : append_flags::none;
    auto l = (i % 3 == 2 ? *mb : *ma).append(ktm::test::as_bytes(payload(i)), record_type::data, f);
    REQUIRE(l);
    if (i % 3 != 2) as.push_back(*l);
  }
  return as;
}

// Reads stream `name` of the log in `st` with the helper, then (after
// closing that handle) without it.
template <class Storage>
std::pair<reading, reading> both_ways(Storage& st, const std::string& name, lsn from = lsn::null()) {
  reading r[2];
  for (bool read_thread : {true, false}) {
    auto lg = ktm::log::log<Storage>::open(st, "l", options(read_thread));
    REQUIRE(lg);
    r[read_thread ? 0 : 1] = read(*lg, name, from);
  }
  return {r[0], r[1]};
}

// A log filled by fill(st, n) in `st`, and the file of the container that
// holds a's record k.
template <class Storage>
struct filled_log {
  filled_log(Storage s, int n) : st(std::move(s)), as(fill(st, n)) {}
  std::string file_of(std::size_t k) {
    auto lg = ktm::log::log<Storage>::open(st, "l", options(false));
    REQUIRE(lg);
    std::string f = ktm::test::container_file(*lg, as[k].container());
    REQUIRE(!f.empty());
    return f;
  }
  Storage st;
  std::vector<lsn> as;
};

#if defined(__linux__)
// Threads of this process now.
std::size_t thread_count() {
  std::size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task")) n += e.is_directory() ? 1 : 0;
  return n;
}

// The most threads this process had during a forward read of stream a
// (counted every 1,000 records: the helper starts past the first MiB and
// ends once it has read to the end, up to three slots ahead of the reader),
// with the calling thread confined to `cpus` CPUs (restored after); the
// read must still be whole.
std::size_t threads_mid_read(filled_log<memory_storage>& f, int cpus) {
  cpu_set_t old, one;
  REQUIRE(sched_getaffinity(0, sizeof old, &old) == 0);
  CPU_ZERO(&one);
  for (int c = 0, kept = 0; c < CPU_SETSIZE && kept < cpus; ++c)
    if (CPU_ISSET(c, &old)) CPU_SET(c, &one), ++kept;
  REQUIRE(sched_setaffinity(0, sizeof one, &one) == 0);
  struct restore {  // on every way out, a failed REQUIRE's too
    cpu_set_t set;
    ~restore() { sched_setaffinity(0, sizeof set, &set); }
  } const restore_old{old};
  std::size_t during = 0, n = 0;
  {
    auto lg = mlog::open(f.st, "l", options(true));
    REQUIRE(lg);
    auto s = lg->open_stream("a");
    REQUIRE(s);
    auto v = s->read_forward();
    for (const log_record& r : v) {
      CHECK(r.at == f.as[n]);
      if (++n % 1000 == 0) during = std::max(during, thread_count());
    }
    CHECK(v.ok());
  }
  CHECK(n == f.as.size());
  return during;
}
#endif

}  // namespace

TEST_CASE("a long forward read yields the same records with the helper thread as without it") {
  filled_log<memory_storage> f(memory_storage(), 60000);  // about 9 MB: several containers
  for (const char* name : {"a", "b"}) {
    auto [with, without] = both_ways(f.st, name);
    CHECK(with.status.code == errc::end_of_stream);
    CHECK(with.at.size() == (std::string(name) == "a" ? f.as.size() : 60000 - f.as.size()));
    CHECK(with == without);
  }
  auto [with, without] = both_ways(f.st, "a", f.as[31000]);  // from the middle of the log
  CHECK(with.at.size() == f.as.size() - 31000);
  CHECK(with == without);
}

TEST_CASE("damage far into a long forward read stops it where a read without the helper stops; with the same error") {
  filled_log<memory_storage> f(memory_storage(), 30000);
  const lsn at = f.as[17000];  // well past the first MiB
  const std::string file = f.file_of(17000);
  const std::size_t off = at.block_byte_offset();
  struct damage {
    const char* what;
    std::size_t byte;  // in the block
    errc expected;
  };
  const damage cases[] = {
      {"a record's payload (its CRC)", format::bh::size + format::rh::size + 40, errc::checksum_mismatch},
      {"the block header", 20, errc::corrupt_record},
      {"a sector trailer (a torn block)", format::sector_body + 1, errc::torn_write},
  };
  for (const auto& d : cases) {
    INFO(d.what);
    flip_bit(f.st, file, off + d.byte, 3);
    auto [with, without] = both_ways(f.st, "a");
    CHECK(with.status.code == d.expected);
    CHECK(with.status.where.value == at.block_start().raw());
    CHECK(with.at.size() > 10000);
    CHECK(with == without);
    flip_bit(f.st, file, off + d.byte, 3);  // repaired
  }
  auto [with, without] = both_ways(f.st, "a");
  CHECK(with.at.size() == f.as.size());
  CHECK(with == without);
}

TEST_CASE("a read error far into a long forward read is reported as a read without the helper reports it") {
  filled_log<fstore> f(fstore(memory_storage(), std::make_shared<fault_controller>()), 30000);
  const std::string file = f.file_of(16000);
  const std::uint64_t bad = f.as[16000].block_byte_offset();
  f.st.controller()->fail_when(
      [&](const ktm::io::call_info& c) {
        return c.device == file && c.offset <= bad && bad < c.offset + c.length;
      },
      errc::io_error, ktm::io::persistence::every_match, ktm::io::kind_set(call_kind::read));
  auto [with, without] = both_ways(f.st, "a");
  CHECK(with.status.code == errc::io_error);
  CHECK(with.at.size() > 10000);
  CHECK(with.at.size() < f.as.size());
  CHECK(with == without);
}

TEST_CASE("long forward reads left at any point; many at once; stop their helpers cleanly") {
  filled_log<memory_storage> f(memory_storage(), 30000);
  auto lg = mlog::open(f.st, "l", options(true));
  REQUIRE(lg);
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    readers.emplace_back([&, t] {
      auto s = lg->open_stream("a");
      if (!s) return void(++wrong);
      for (std::size_t stop_at : {std::size_t{5000} + 977 * t, std::size_t{12000} + 3 * t, f.as.size()}) {
        auto v = s->read_forward();
        std::size_t n = 0;
        for (const log_record& r : v) {
          if (r.at != f.as[n]) ++wrong;
          if (++n == stop_at) break;
        }
        if (n != stop_at) ++wrong;
      }
    });
  for (auto& r : readers) r.join();
  CHECK(wrong == 0);
}

TEST_CASE("a long forward read while the log is being appended to ends at the stream's last record when it began") {
  filled_log<memory_storage> f(memory_storage(), 20000);
  auto lg = mlog::open(f.st, "l", options(true));
  REQUIRE(lg);
  auto a = lg->open_stream("a");
  auto b = lg->open_stream("b");
  REQUIRE(a);
  REQUIRE(b);
  auto mb = b->marshalling_area();
  REQUIRE(mb);
  auto v = a->read_forward();  // its end: the last record of "a" now
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop && i < 20000; ++i)
      (void)mb->append(ktm::test::as_bytes(payload(i)), record_type::data,
                       i % 50 == 0 ? append_flags::force : append_flags::none);
  });
  std::size_t n = 0;
  for (const log_record& r : v) {
    if (r.at != f.as[n]) FAIL("record " << n);
    ++n;
  }
  stop = true;
  writer.join();
  CHECK(n == f.as.size());
  CHECK(v.ok());
}

#if defined(__linux__)
TEST_CASE("a long forward read by a thread confined to one CPU stays on that thread") {
  cpu_set_t mine;
  REQUIRE(sched_getaffinity(0, sizeof mine, &mine) == 0);
  filled_log<memory_storage> f(memory_storage(), 40000);
  const std::size_t before = thread_count();
  CHECK(threads_mid_read(f, 1) == before);
  if (CPU_COUNT(&mine) > 1) CHECK(threads_mid_read(f, 2) == before + 1);  // the helper
}
#endif
