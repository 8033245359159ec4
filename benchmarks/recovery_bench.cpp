// benchmarks/recovery_bench.cpp: how fast a durable TM recovers.
//
//   bazel run --config=bench //benchmarks:recovery_bench [-- --short]
//
// (a) Replay against a raw scan. A durable TM (one enlisted RM per
//     transaction, a dedicated log over posix_storage, no restart areas)
//     commits N transactions (1,000,000; --short: 20,000) from 16 threads
//     (group commit), then closes. Measured in the same run, on the same
//     files: the raw sequential read (pread, 1 MiB) of the log's bytes from
//     the stream's base to its last block, and recovery: open the log, open
//     the stream, build the TM, recover() (replay of every commit and end
//     record). Throughput = those bytes / seconds. Each is the median of 3
//     runs, interleaved; the files are in the page cache for both.
//     Target: recovery >= 0.5x the raw scan.
// (b) Bounded recovery. The same TM with a restart area every 10,000 ended
//     transactions (--short: 1,000): recovery time after 20,000 commits
//     (--short: 2,000) and after 1,000,000 (--short: 20,000), median of 3.
//     Target: the second within 2x of the first.
// Also shown: the log's reader alone (open + read_forward of every record),
// the floor under the TM's replay, and recovery with every read on the
// caller's thread (log_options::read_thread = false; by default a long
// forward read has a helper thread, reader.hpp).
// Options: --short (or KTM_BENCH_SHORT=1), --transactions=N (for (a)),
// --runs=N (interleaved runs of (a), 3 by default), --log-dir=PATH (for
// profiling: (a) uses the log in PATH, committing it only if PATH holds none,
// keeps it, and (b) is skipped).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "benchmarks/support/bench_dir.hpp"
#include "benchmarks/support/raw_io.hpp"
#include "benchmarks/support/table.hpp"
#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"
#include "ktm/tm.hpp"

namespace {

using namespace ktm::bench;
namespace kt = ktm::tm;
using io_t = ktm::io::posix_storage;
using log_t = ktm::log::log<io_t>;

// Answers every notification with done: each commit record names it.
struct done_rm : kt::resource_manager_base<> {
  kt::reply on_prepare(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_commit(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
  kt::reply on_rollback(kt::enlistment&, const kt::notification&) { return kt::reply::done(); }
};

template <std::size_t Every>
using tm_t = kt::durable_transaction_manager<io_t, kt::with_storage<kt::static_storage<done_rm>>,
                                             kt::with_recovery<kt::replay_recovery<Every>>>;

const ktm::guid tm_id = ktm::guid::generate();

template <class R>
auto must(R&& r, const char* what) {
  if (!r) throw std::runtime_error(std::string(what) + ": " + r.error().message());
  return std::move(*r);
}

ktm::log::log_options options(bool read_thread = true) {
  ktm::log::log_options o;
  o.read_thread = read_thread;
  o.container_size = 64u << 20;
  o.containers = 2;
  o.grow = true;
  o.max_containers = 256;
  return o;
}

// Opens (or creates) the log and commits until `total` transactions exist.
template <std::size_t Every>
void commit_up_to(const std::string& dir, bool create, std::uint64_t from, std::uint64_t total) {
  io_t io(dir);
  auto lg = must(create ? log_t::create(io, "txlog", options()) : log_t::open(io, "txlog", options()), "open log");
  auto ts = must(create ? lg.create_stream("tm") : lg.open_stream("tm"), "stream");
  done_rm rm;
  tm_t<Every> tm{kt::log_arg, ts, tm_id, rm};
  must(tm.recover(), "recover");
  std::atomic<std::uint64_t> next{from};
  std::vector<std::thread> ts_;
  for (int t = 0; t < 16; ++t)
    ts_.emplace_back([&] {
      while (next.fetch_add(1) < total) {
        auto tx = tm.begin();
        auto e = tx.enlist(rm);
        if (!e || !tx.commit()) throw std::runtime_error("commit failed");
      }
    });
  for (auto& t : ts_) t.join();
  must(lg.flush_all(), "flush");
}

struct recovered {
  double seconds = 0;
  double open_seconds = 0;  // of which: opening the log
  double replay_seconds = 0;  // and recover()
  std::uint64_t bytes = 0;   // from the stream's base block to the end of its last block
  std::uint32_t first_container = 0, last_container = 0;
  std::uint64_t first_offset = 0, end_offset = 0;
  std::size_t in_doubt = 0;
};

template <std::size_t Every>
recovered recover_once(const std::string& dir, bool read_thread = true) {
  recovered out;
  const auto t0 = clock_type::now();
  io_t io(dir);
  auto lg = must(log_t::open(io, "txlog", options(read_thread)), "open log");
  out.open_seconds = seconds_since(t0);
  auto ts = must(lg.open_stream("tm"), "stream");
  done_rm rm;
  tm_t<Every> tm{kt::log_arg, ts, tm_id, rm};
  const auto t1 = clock_type::now();
  auto r = must(tm.recover(), "recover");
  out.seconds = seconds_since(t0);
  out.replay_seconds = seconds_since(t1);
  out.in_doubt = r.in_doubt;
  const auto o = options();
  const ktm::log::lsn base = ts.base_lsn(), last = ts.last_lsn();
  out.first_container = base.container();
  out.last_container = last.container();
  out.first_offset = base.block_byte_offset();
  out.end_offset = last.block_byte_offset() + o.effective_block_size();
  out.bytes = std::uint64_t{out.last_container - out.first_container} * o.container_size + out.end_offset -
              out.first_offset;
  return out;
}

// The raw baseline: pread of the same byte ranges of the same container
// files, in 1 MiB requests.
double raw_scan_seconds(const std::string& dir, const recovered& r, std::uint64_t& bytes_read) {
  io_t io(dir);
  std::vector<std::uint32_t> physical;
  {
    auto lg = must(log_t::open(io, "txlog", options()), "open log");
    auto map = lg.containers();
    for (std::uint32_t l = r.first_container; l <= r.last_container; ++l)
      for (const auto& c : map)
        if (c.logical_id == l) physical.push_back(c.physical_id);
  }
  std::vector<char> buf(1u << 20);
  const std::uint64_t csize = options().container_size;
  bytes_read = 0;
  const auto t0 = clock_type::now();
  for (std::size_t i = 0; i < physical.size(); ++i) {
    const std::string p = dir + "/txlog.c" + std::to_string(physical[i]);
    const int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error("open " + p);
    const std::uint64_t from = i == 0 ? r.first_offset : 0;
    const std::uint64_t to = i + 1 == physical.size() ? r.end_offset : csize;
    for (std::uint64_t off = from; off < to;) {
      const auto n = ::pread(fd, buf.data(), std::min<std::uint64_t>(buf.size(), to - off), static_cast<off_t>(off));
      if (n <= 0) throw std::runtime_error("pread " + p);
      off += static_cast<std::uint64_t>(n);
      bytes_read += static_cast<std::uint64_t>(n);
    }
    ::close(fd);
  }
  return seconds_since(t0);
}

// The log's reader alone: open the log and the stream, read every record
// from the base (what replay costs before the TM looks at a record).
double reader_seconds(const std::string& dir, std::uint64_t& records) {
  const auto t0 = clock_type::now();
  io_t io(dir);
  auto lg = must(log_t::open(io, "txlog", options()), "open log");
  auto ts = must(lg.open_stream("tm"), "stream");
  records = 0;
  std::uint64_t bytes = 0;
  auto v = ts.read_forward();
  for (const ktm::log::log_record& r : v) {
    ++records;
    bytes += r.payload.size();
  }
  if (!v.ok()) throw std::runtime_error("read_forward: " + v.status().message());
  const double s = seconds_since(t0);
  if (bytes == 0) throw std::runtime_error("empty stream");
  return s;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  bool short_run = short_mode();
  std::uint64_t n_a = 0;
  int runs = 3;
  std::string log_dir;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--short") == 0) short_run = true;
    else if (std::strncmp(argv[i], "--transactions=", 15) == 0) n_a = std::strtoull(argv[i] + 15, nullptr, 10);
    else if (std::strncmp(argv[i], "--runs=", 7) == 0) runs = std::max(1, std::atoi(argv[i] + 7));
    else if (std::strncmp(argv[i], "--log-dir=", 10) == 0) log_dir = argv[i] + 10;
    else {
      std::fprintf(stderr, "usage: %s [--short] [--transactions=N] [--runs=N] [--log-dir=PATH]\n", argv[0]);
      return 2;
    }
  }
  if (n_a == 0) n_a = short_run ? 20'000 : 1'000'000;
  const std::uint64_t b_small = short_run ? 2'000 : 20'000, b_large = short_run ? 20'000 : 1'000'000;
  try {
    bench_dir dir("recovery");
    std::printf("recovery_bench: directory %s\n", dir.path().c_str());
    std::fflush(stdout);

    // (a)
    const bool reuse = !log_dir.empty() && std::filesystem::exists(std::filesystem::path(log_dir) / "txlog.c0");
    const std::string da = log_dir.empty() ? dir.fresh("a") : log_dir;
    if (!log_dir.empty()) std::filesystem::create_directories(da);
    auto t0 = clock_type::now();
    if (!reuse) commit_up_to<0>(da, true, 0, n_a);
    std::printf("(a) %llu transactions committed in %.1f s%s\n", static_cast<unsigned long long>(n_a), seconds_since(t0),
                reuse ? " (earlier: the log in --log-dir)" : "");
    std::vector<double> rec_s, raw_s, reader_s, one_s;
    std::uint64_t records = 0;
    recovered ra;
    std::uint64_t raw_bytes = 0;
    for (int rep = 0; rep < runs; ++rep) {
      ra = recover_once<0>(da);
      rec_s.push_back(ra.seconds);
      raw_s.push_back(raw_scan_seconds(da, ra, raw_bytes));
      reader_s.push_back(reader_seconds(da, records));
      one_s.push_back(recover_once<0>(da, false).seconds);
      std::printf("  run %d: recovery %.4f s (log open %.4f s, replay %.4f s), raw scan %.4f s, %llu bytes, %zu in doubt\n", rep,
                  ra.seconds, ra.open_seconds, ra.replay_seconds, raw_s.back(), static_cast<unsigned long long>(ra.bytes), ra.in_doubt);
      std::fflush(stdout);
    }
    const double rec = median(rec_s), raw = median(raw_s), reader = median(reader_s), one = median(one_s);
    const double mb = static_cast<double>(ra.bytes) / 1e6;
    table ta({"what", "seconds", "MB/s", "transactions/s"});
    ta.row({"raw sequential pread", fmt(raw, 4), fmt(mb / raw, 0), "-"});
    ta.row({"log reader alone (open + read_forward, " + std::to_string(records) + " records)", fmt(reader, 4),
            fmt(mb / reader, 0), "-"});
    ta.row({"recovery (open + replay)", fmt(rec, 4), fmt(mb / rec, 0), fmt(static_cast<double>(n_a) / rec, 0)});
    ta.row({"recovery, reads on one thread (read_thread = false)", fmt(one, 4), fmt(mb / one, 0),
            fmt(static_cast<double>(n_a) / one, 0)});
    ta.print("(a) recovery of " + std::to_string(n_a) + " committed transactions (" + fmt(mb, 1) +
             " MB of log) against a raw scan of the same bytes (higher MB/s is better)");
    summary("recovery throughput vs raw sequential scan", raw / rec, "x", true, 0.5);
    if (!log_dir.empty()) return 0;
    dir.fresh("a");

    // (b)
    constexpr std::size_t every_full = 10'000, every_short = 1'000;
    const std::string db = dir.fresh("b");
    auto measure = [&](auto every_tag) {
      constexpr std::size_t every = decltype(every_tag)::value;
      std::vector<double> s;
      for (int rep = 0; rep < 3; ++rep) s.push_back(recover_once<every>(db).seconds);
      return median(s);
    };
    double small = 0, large = 0;
    if (short_run) {
      using e = std::integral_constant<std::size_t, every_short>;
      commit_up_to<every_short>(db, true, 0, b_small);
      small = measure(e{});
      commit_up_to<every_short>(db, false, b_small, b_large);
      large = measure(e{});
    } else {
      using e = std::integral_constant<std::size_t, every_full>;
      commit_up_to<every_full>(db, true, 0, b_small);
      small = measure(e{});
      commit_up_to<every_full>(db, false, b_small, b_large);
      large = measure(e{});
    }
    table tb({"transactions", "recovery seconds"});
    tb.row({std::to_string(b_small), fmt(small, 4)});
    tb.row({std::to_string(b_large), fmt(large, 4)});
    tb.print("(b) recovery time with a restart area every " +
             std::to_string(short_run ? every_short : every_full) + " transactions (lower is better)");
    summary("recovery after " + std::to_string(b_large) + " vs after " + std::to_string(b_small), large / small, "x",
            false, 2.0);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "recovery_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
