// benchmarks/log_bench.cpp: the log's three figures against raw I/O.
//
//   1. Append throughput without force, 64 B, 1 KiB and 64 KiB records,
//      against raw sequential pwrite of the same bytes (targets: >= 0.8x raw
//      for 64 KiB; >= 5 million 64 B records per second on one thread).
//   2. Forced append latency on one thread against one raw pwrite+fdatasync
//      of the same size (target: <= 1.15x), in alternating rounds: the
//      figure is the median of the rounds' ratios.
//   3. Group commit: 1, 4, 16, 64 threads each appending a 100-byte record
//      and forcing it; forced appends per second and device flushes per
//      append (target at 64 threads: >= 20x the one-thread rate; the
//      summary's figure is the median of rounds that each measure 1 and 64
//      threads back to back on one log).
// Every baseline is measured in the same run, in the same directory
// ($KTM_BENCH_DIR, default /var/tmp/ktm-bench). `--short` (or
// KTM_BENCH_SHORT=1) runs briefly, for CI. `--only=1|2|3` runs one section;
// `--seconds=S` sets the length of a group-commit cell (default 3, 0.5
// short); `--repeat=N` runs the group-commit section N times, the thread
// counts interleaved, and reports each cell's median (the "vs 1 thread"
// column: the median of the ratios taken within one repetition);
// `--simulated-flush-us=N` runs it over memory whose every flush sleeps N us
// (a steady device on a noisy machine; see support/counting_storage.hpp).
// The logs of 2 and 3 are created with log_options::preformat_containers
// (their containers written out with zeros), and 2's raw baseline file is
// written with zeros too; `--no-preformat` reserves both with fallocate
// instead (the log's default). 1 always reserves: its timer covers no flush.
// `--block-size=N` and `--io-align=N` set those log_options for every log
// (a bulk-append geometry: --block-size=1048576 --io-align=65536).
// `--write-behind` opens every log with log_options::write_behind = true
// (a writer thread writes the full blocks); by default, as the log's own
// default, the appender that seals a full block writes it.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

#include "benchmarks/support/bench_dir.hpp"
#include "benchmarks/support/counting_storage.hpp"
#include "benchmarks/support/raw_io.hpp"
#include "benchmarks/support/table.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/io/posix_file.hpp"
#include "ktm/log.hpp"

namespace {

using namespace ktm::bench;
using storage_type = counting_storage<ktm::io::posix_storage>;
using log_type = ktm::log::log<storage_type>;

[[noreturn]] void die(const std::string& what, const ktm::failure& f) {
  std::fprintf(stderr, "%s: %s\n", what.c_str(), f.message().c_str());
  std::exit(1);
}

template <class R>
auto must(R&& r, const char* what) {
  if (!r) die(what, r.error());
  return std::move(*r);
}

template <class Storage>
struct opened_on {
  Storage io;
  ktm::log::log<Storage> lg;
  ktm::log::stream<Storage> st;
};
using opened = opened_on<storage_type>;

// Sections 2 and 3: log_options::preformat_containers (--no-preformat: false).
bool g_preformat = true;
// Every section: log_options::write_behind (--write-behind: true).
bool g_write_behind = false;
// Every section: log_options::block_size and io_align (--block-size=N,
// --io-align=N; 0: the log's defaults, an automatic block size (1 MiB
// here) and 512).
std::uint32_t g_block_size = 0, g_io_align = 0;

// A fresh one-stream log in `io`, large enough for `bytes` of records.
template <class Storage>
opened_on<Storage> make_log_on(Storage io, std::uint64_t bytes, bool preformat = false) {
  ktm::log::log_options o;
  o.preformat_containers = preformat;
  o.write_behind = g_write_behind;
  if (g_block_size) o.block_size = g_block_size;
  if (g_io_align) o.io_align = g_io_align;
  o.container_size = 64u << 20;
  o.containers = static_cast<std::uint32_t>(bytes / o.container_size + 3);
  auto lg = must(ktm::log::log<Storage>::create(io, "bench", o), "create log");
  auto st = must(lg.create_stream("s"), "create stream");
  return {std::move(io), std::move(lg), std::move(st)};
}

// A fresh one-stream log in `dir`.
opened make_log(const std::string& dir, std::uint64_t bytes, bool preformat = false) {
  return make_log_on(storage_type{ktm::io::posix_storage(dir)}, bytes, preformat);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n == 0 ? 0 : (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

// 1. Unforced appends.
struct throughput {
  double log_rate;  // bytes per second
  double raw_rate;
  double records_per_second;
};

throughput measure_append(const bench_dir& dir, std::size_t record, std::uint64_t total) {
  throughput t{};
  t.raw_rate = raw_sequential_write_rate(dir.file("raw.dat"), record, total);
  {
    auto d = dir.fresh("log");
    auto o = make_log(d, total * 11 / 10);
    auto ma = must(o.st.marshalling_area(), "marshalling area");
    std::vector<std::byte> buf(record, std::byte{0x5a});
    const std::uint64_t n = total / record;
    auto t0 = clock_type::now();
    for (std::uint64_t i = 0; i < n; ++i) must(ma.append(buf), "append");
    double s = seconds_since(t0);
    t.log_rate = static_cast<double>(n * record) / s;
    t.records_per_second = static_cast<double>(n) / s;
    must(ma.flush_all(), "flush");
  }
  return t;
}

// Leaves the device quiet for the next measurement: section 1's files are
// removed (their page cache goes without being written back) and whatever
// else is dirty is written now, not during a forced-append cell.
void settle(const bench_dir& dir) {
  std::filesystem::remove_all(dir.path() / "log");
  std::filesystem::remove(dir.path() / "raw.dat");
  ::sync();
}

// 2. Forced append latency against raw pwrite + fdatasync, in `rounds`
// rounds of `per_round` calls each, the log's and the raw file's chunks
// alternating (which goes first alternates too), over one log and one raw
// file (both written with zeros first under preformat_containers). The
// device's latency drifts by tens of percent within seconds, so a ratio is
// taken within each round, where both saw the same device; the figure is
// their median. Latencies are medians of the rounds' means, in seconds.
struct forced_result {
  double ktm, raw, ratio;
};

forced_result measure_forced(const bench_dir& dir, std::size_t record, int rounds, int per_round) {
  const auto calls = static_cast<std::uint64_t>(rounds) * static_cast<std::uint64_t>(per_round + 8);
  auto d = dir.fresh("forced");
  auto o = make_log(d, calls * (record + 4096), g_preformat);
  auto ma = must(o.st.marshalling_area(), "marshalling area");
  raw_file raw(dir.file("raw_forced.dat"), calls * record + 4096,
               g_preformat ? prealloc_mode::write_zeros : prealloc_mode::reserve);
  std::vector<std::byte> buf(record, std::byte{0x33});
  std::uint64_t raw_off = 0;
  const auto log_chunk = [&](int n) {
    auto t0 = clock_type::now();
    for (int i = 0; i < n; ++i)
      must(ma.append(buf, ktm::log::record_type::data, ktm::log::append_flags::force), "forced append");
    return seconds_since(t0) / n;
  };
  const auto raw_chunk = [&](int n) {
    auto t0 = clock_type::now();
    for (int i = 0; i < n; ++i, raw_off += record) {
      raw.pwrite_all(buf.data(), record, raw_off);
      raw.sync();
    }
    return seconds_since(t0) / n;
  };
  (void)log_chunk(8);  // warm both
  (void)raw_chunk(8);
  std::vector<double> k, r, q;
  for (int round = 0; round < rounds; ++round) {
    double a, b;
    if (round % 2 == 0) {
      b = raw_chunk(per_round);
      a = log_chunk(per_round);
    } else {
      a = log_chunk(per_round);
      b = raw_chunk(per_round);
    }
    k.push_back(a);
    r.push_back(b);
    q.push_back(a / b);
  }
  return {median(k), median(r), median(q)};
}

// 3. Group commit: appends per second and device flushes per append.
struct group_result {
  double per_second;
  double flushes_per_append;
};

template <class Opened>
group_result measure_group_on(Opened&& o, int threads, double seconds) {
  auto ma = must(o.st.marshalling_area(), "marshalling area");
  std::atomic<bool> stop{false};
  std::atomic<std::uint64_t> appends{0};
  const auto flushes0 = o.io.flushes();
  std::vector<std::thread> pool;
  auto t0 = clock_type::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      std::vector<std::byte> buf(100, std::byte{0x42});
      std::uint64_t mine = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        must(ma.append(buf, ktm::log::record_type::data, ktm::log::append_flags::force), "forced append");
        ++mine;
      }
      appends.fetch_add(mine);
    });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : pool) th.join();
  double s = seconds_since(t0);
  auto n = appends.load();
  return {static_cast<double>(n) / s, static_cast<double>(o.io.flushes() - flushes0) / static_cast<double>(n)};
}

// Calls f with a fresh log for group-commit cells and returns what f
// returns. `simulated_us` > 0: over memory whose every flush sleeps that
// long; else over files in the bench directory.
template <class F>
auto with_group_log(const bench_dir& dir, int simulated_us, F&& f) {
  if (simulated_us > 0) {
    using sim = counting_storage<ktm::io::memory_storage>;
    auto o = make_log_on(sim{ktm::io::memory_storage(), std::chrono::microseconds(simulated_us)},
                         std::uint64_t{256} << 20);
    return f(o);
  }
  auto o = make_log(dir.fresh("group"), 512u << 20, g_preformat);
  return f(o);
}

group_result measure_group(const bench_dir& dir, int threads, double seconds, int simulated_us) {
  return with_group_log(dir, simulated_us, [&](auto& o) { return measure_group_on(o, threads, seconds); });
}

// The summary's 64-vs-1 ratio: `rounds` rounds, each a 1-thread and a
// 64-thread cell of `seconds` on one fresh log, which goes first
// alternating; the ratio is taken within each round. The device's flush
// latency drifts by tens of percent within seconds, and the table's cells
// are seconds apart: its "vs 1 thread" column divides rates measured on
// different devices, so to speak.
std::vector<double> paired_ratios(const bench_dir& dir, int rounds, double seconds, int simulated_us) {
  std::vector<double> r;
  for (int round = 0; round < rounds; ++round) {
    settle(dir);
    const bool one_first = round % 2 == 0;
    r.push_back(with_group_log(dir, simulated_us, [&](auto& o) {
      const group_result a = measure_group_on(o, one_first ? 1 : 64, seconds);
      const group_result b = measure_group_on(o, one_first ? 64 : 1, seconds);
      return one_first ? b.per_second / a.per_second : a.per_second / b.per_second;
    }));
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  bool brief = short_mode();
  int only = 0, repeat = 1;
  double cell_seconds = 0;
  int simulated_us = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--short") == 0) brief = true;
    if (std::strncmp(argv[i], "--only=", 7) == 0) only = std::atoi(argv[i] + 7);
    if (std::strncmp(argv[i], "--repeat=", 9) == 0) repeat = std::max(1, std::atoi(argv[i] + 9));
    if (std::strncmp(argv[i], "--seconds=", 10) == 0) cell_seconds = std::atof(argv[i] + 10);
    if (std::strncmp(argv[i], "--simulated-flush-us=", 21) == 0) simulated_us = std::atoi(argv[i] + 21);
    if (std::strcmp(argv[i], "--no-preformat") == 0) g_preformat = false;
    if (std::strcmp(argv[i], "--write-behind") == 0) g_write_behind = true;
    if (std::strncmp(argv[i], "--block-size=", 13) == 0) g_block_size = static_cast<std::uint32_t>(std::atol(argv[i] + 13));
    if (std::strncmp(argv[i], "--io-align=", 11) == 0) g_io_align = static_cast<std::uint32_t>(std::atol(argv[i] + 11));
    if (std::strcmp(argv[i], "--no-write-behind") == 0) g_write_behind = false;  // the default
  }
  bench_dir dir("log_bench");
  if (g_block_size || g_io_align)
    std::printf("log_bench: log_options block_size %u, io_align %u (0: default)\n", g_block_size, g_io_align);
  std::printf("log_bench: directory %s%s; containers of 2 and 3 %s; %s\n", dir.path().c_str(),
              brief ? " (short mode)" : "",
              g_preformat ? "preformatted (preformat_containers)" : "reserved (fallocate, --no-preformat)",
              g_write_behind ? "writer thread on (--write-behind)" : "no writer thread");

  // 1. Throughput.
  if (only == 0 || only == 1) {
    const std::uint64_t total = brief ? (32u << 20) : (512u << 20);
    table t1({"record", "ktm MB/s", "raw pwrite MB/s", "ktm/raw", "ktm records/s"});
    ::sync();  // what earlier programs left dirty is written now, not during the first cell
    double ratio_64k = 0, rate_64b = 0;
    for (std::size_t record : {std::size_t{64}, std::size_t{1024}, std::size_t{65536}}) {
      auto r = measure_append(dir, record, record == 64 ? total / 4 : total);
      settle(dir);
      double ratio = r.log_rate / r.raw_rate;
      if (record == 65536) ratio_64k = ratio;
      if (record == 64) rate_64b = r.records_per_second;
      t1.row({std::to_string(record) + " B", fmt(r.log_rate / 1e6, 1), fmt(r.raw_rate / 1e6, 1), fmt(ratio, 3),
              fmt(r.records_per_second, 0)});
    }
    t1.print("Append without force (one thread)");
    summary("append 64 KiB records, ktm/raw pwrite throughput", ratio_64k, "x", true, 0.8);
    summary("append 64 B records, records per second", rate_64b / 1e6, "million/s", true, 5.0);
  }

  // 2. Forced latency.
  if (only == 0 || only == 2) {
    const int rounds = brief ? 5 : 15, per_round = brief ? 60 : 200;
    table t2({"record", "ktm forced append us", "raw pwrite+fdatasync us", "ktm/raw (median of rounds)"});
    double worst = 0;
    for (std::size_t record : {std::size_t{100}, std::size_t{4096}}) {
      settle(dir);
      const forced_result f = measure_forced(dir, record, rounds, per_round);
      worst = std::max(worst, f.ratio);
      t2.row({std::to_string(record) + " B", fmt(f.ktm * 1e6, 1), fmt(f.raw * 1e6, 1), fmt(f.ratio, 3)});
    }
    t2.print("Forced append latency (one thread)");
    summary("forced append latency, ktm/raw (worst size)", worst, "x", false, 1.15);
  }

  // 3. Group commit.
  if (only == 0 || only == 3) {
    const double secs = cell_seconds > 0 ? cell_seconds : brief ? 0.5 : 3.0;
    const int counts[] = {1, 4, 16, 64};
    std::vector<double> rate[4], flushes[4], ratio[4];
    for (int rep = 0; rep < repeat; ++rep)
      for (int i = 0; i < 4; ++i) {
        settle(dir);
        auto g = measure_group(dir, counts[i], secs, simulated_us);
        rate[i].push_back(g.per_second);
        flushes[i].push_back(g.flushes_per_append);
        ratio[i].push_back(g.per_second / rate[0].back());
      }
    table t3({"threads", "forced appends/s", "device flushes/append", "vs 1 thread"});
    for (int i = 0; i < 4; ++i)
      t3.row({std::to_string(counts[i]), fmt(median(rate[i]), 0), fmt(median(flushes[i]), 3),
              fmt(median(ratio[i]), 2) + "x"});
    std::string title = "Group commit: each thread appends 100 B and forces";
    if (simulated_us > 0) title += ", simulated flush of " + std::to_string(simulated_us) + " us";
    if (repeat > 1) title += " (medians of " + std::to_string(repeat) + ")";
    t3.print(title);
    const std::vector<double> pr = paired_ratios(dir, brief ? 3 : 8, brief ? 0.3 : 1.0, simulated_us);
    std::printf("64 threads vs 1 thread in rounds on one log (1 and 64 alternating first):");
    for (double x : pr) std::printf(" %.2fx", x);
    std::printf("\n");
    summary("group commit, 64 threads vs 1 thread (median of rounds)", median(pr), "x", true, 20.0);
  }
  return 0;
}
