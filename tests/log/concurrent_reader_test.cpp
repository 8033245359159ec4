// Many threads append to one stream (small records, and records of 4 KiB or
// more that the log copies in after releasing its lock; some forced) while
// another thread reads the stream forward from its base again and again.
// Every read returns whole records, each one appended already, in
// increasing LSNs with each thread's records in its append order, and
// every record whose append returned before the read began; at the end a
// read (and one after reopening) returns exactly every record appended.
//
// KTM_LOG_STRESS_ROUNDS (default 1) sets how many logs each case fills.
#include <catch2/catch.hpp>

#include <array>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "ktm/io/posix_file.hpp"
#include "tests/log/stamped_record.hpp"
#include "tests/log/stamped_scan.hpp"
#include "tests/log/stress_knobs.hpp"
#include "tests/support/log_fixtures.hpp"
#include "tests/support/temp_dir.hpp"

using namespace ktm::log;
using namespace ktm::test::memory_log_names;

namespace {

constexpr std::uint32_t writers = 8;
constexpr std::uint32_t per_writer = 200;
constexpr std::uint32_t pace = 8;  // a writer's appends between reads at most

// Room for every round's records without wrapping (about 4 MB a round).
log_options options() { return ktm::test::stress_log_options(8u << 20); }

// What the reader found over all its reads (Catch's macros are not
// thread-safe: the main thread checks these once the threads have joined).
struct reader_findings {
  std::size_t reads = 0, records = 0;
  std::size_t unclean = 0;          // reads with a torn or misordered record
  std::size_t unappended = 0;       // records whose append had not begun
  std::size_t missed = 0;           // acknowledged before the read began, not returned
  std::size_t bad_status = 0;       // reads that did not end at the end of the stream
  std::string first_problem;
};

template <class Storage>
class shared_stream_run {
 public:
  explicit shared_stream_run(stream<Storage> s) : s_(std::move(s)) {}

  // Runs the writers and the reader to the end; the writers' failures are
  // counted in failed_appends / not_durable / lsn_regressions.
  void run(ktm::log::log<Storage>& lg) {
    auto ma = s_.marshalling_area();
    if (!ma) {
      ++failed_appends;
      return;
    }
    std::thread reader([&] {
      while (writing_.load()) read_once();
      read_once();  // everything is appended now
    });
    std::vector<std::thread> ts;
    for (std::uint32_t t = 0; t < writers; ++t) ts.emplace_back([&, t] { write(lg, *ma, t); });
    for (auto& th : ts) th.join();
    writing_ = false;
    reader.join();
  }

  reader_findings found;
  std::atomic<int> failed_appends{0}, not_durable{0}, lsn_regressions{0};

 private:
  void write(ktm::log::log<Storage>& lg, marshalling_area<Storage>& ma, std::uint32_t t) {
    lsn mine;
    for (std::uint32_t i = 0; i < per_writer; ++i) {
      // every `pace` appends, wait for a read that begins after this one's
      // records, so that many reads overlap the appends (eight writers
      // would otherwise be done before the reader had read a few times)
      if (i % pace == pace - 1) {
        const std::uint32_t next = reads_begun_.load() + 1;
        while (reads_done_.load() < next) std::this_thread::yield();
      }
      started_[t].store(i + 1);
      const auto flags = i % 8 == 7 ? append_flags::force : append_flags::none;
      auto l = ma.append(as_bytes(ktm::test::stamped_payload(t, i)), record_type::data, flags);
      if (!l) {
        ++failed_appends;
        continue;
      }
      if (!(mine < *l)) ++lsn_regressions;
      mine = *l;
      if (flags == append_flags::force && !(*l < lg.durable_lsn())) ++not_durable;
      acked_[t].store(i + 1);
    }
  }

  void read_once() {
    std::array<std::uint32_t, writers> before{};
    reads_begun_.fetch_add(1);
    for (std::uint32_t t = 0; t < writers; ++t) before[t] = acked_[t].load();
    ktm::test::stamped_scan scan(writers);
    std::size_t unappended = 0, missed = 0;
    auto v = s_.read_forward();
    for (const log_record& r : v)
      if (auto st = scan.add(r); st && st->seq >= started_[st->thread].load()) ++unappended;
    for (std::uint32_t t = 0; t < writers; ++t) missed += scan.seen[t] < before[t];
    ++found.reads;
    reads_done_.fetch_add(1);
    found.records += scan.records;
    found.unclean += !scan.clean();
    found.unappended += unappended;
    found.missed += missed;
    found.bad_status += !v.ok();
    if (found.first_problem.empty() && (!scan.clean() || unappended || missed || !v.ok()))
      found.first_problem = "read " + std::to_string(found.reads) + ": " + scan.describe() + "; " +
                            std::to_string(unappended) + " not appended yet; " + std::to_string(missed) +
                            " threads short of their acknowledged records; status " + v.status().message();
  }

  stream<Storage> s_;
  std::array<std::atomic<std::uint32_t>, writers> started_{}, acked_{};
  std::atomic<bool> writing_{true};
  std::atomic<std::uint32_t> reads_begun_{0}, reads_done_{0};
};

// A forward read of the whole stream returns exactly every record appended.
template <class Stream>
void check_everything_there(Stream&& s) {
  ktm::test::stamped_scan scan(writers);
  auto v = s.read_forward();
  for (const log_record& r : v) scan.add(r);
  INFO(scan.describe());
  CHECK(v.ok());
  CHECK(scan.clean());
  CHECK(scan.records == writers * per_writer);
  for (std::uint32_t t = 0; t < writers; ++t) CHECK(scan.seen[t] == per_writer);
}

// Fills a new log "l" in `st` through one stream while the reader reads it,
// checks what the threads saw, then that every record is there, and there
// again once the log is reopened.
template <class Storage>
void fill_while_reading(Storage& st) {
  {
    auto lg = ktm::log::log<Storage>::create(st, "l", options());
    REQUIRE(lg);
    auto s = lg->create_stream("shared");
    REQUIRE(s);
    shared_stream_run<Storage> run(*s);
    run.run(*lg);
    CHECK(run.failed_appends == 0);
    CHECK(run.not_durable == 0);
    CHECK(run.lsn_regressions == 0);
    const auto& f = run.found;
    INFO(f.reads << " reads returned " << f.records << " records; " << f.first_problem);
    CHECK(f.unclean == 0);
    CHECK(f.unappended == 0);
    CHECK(f.missed == 0);
    CHECK(f.bad_status == 0);
    REQUIRE(lg->flush_all());
    check_everything_there(*s);
  }
  auto lg = ktm::log::log<Storage>::open(st, "l");
  REQUIRE(lg);
  auto s = lg->open_stream("shared");
  REQUIRE(s);
  check_everything_there(*s);
}

}  // namespace

TEST_CASE("a reader of a stream that many threads append to sees only whole appended records in order (memory)") {
  for (int round = 0; round < ktm::test::stress_rounds(); ++round) {
    memory_storage st;
    fill_while_reading(st);
  }
}

TEST_CASE("a reader of a stream that many threads append to sees only whole appended records in order (files with the writer thread)") {
  for (int round = 0; round < ktm::test::stress_rounds(); ++round) {
    ktm::test::temp_dir dir;
    ktm::io::posix_storage st(dir.path().string());
    fill_while_reading(st);
  }
}
