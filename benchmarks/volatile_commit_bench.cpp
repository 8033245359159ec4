// benchmarks/volatile_commit_bench.cpp: the cost of the transaction layer
// on its fastest path.
//
// A volatile two-phase commit with two static RMs through the inline
// dispatcher, against a hand-written baseline that calls the same RM
// handlers directly, in the same order (PREPREPARE a, b; PREPARE a, b;
// COMMIT a, b), checking each reply as a coordinator must. Both do the same
// client work per transaction (a fresh UOW id and one register update in each
// RM, in the style of the reference's recipe: before-image, change a copy,
// commit copies the after-image). Global operator new/delete are replaced by
// counting versions; allocs_per_tx must be 0 on the TM path.
//
// The TM runs with the default concurrency policy (thread_safe: a
// transaction lock, an atomic virtual clock) and with
// with_threading<single_threaded> (no lock, a plain clock), which is what a
// client that runs its TM from one thread would choose; each with both kinds
// of transaction: basic_transaction (tm.begin(): enlistment handles, replies
// by return or later) and the static transaction (tm.begin_static():
// replies by return only, no handles). The summary names what each line
// measured. The RMs record the UOW id at PREPREPARE (as an RM that tags its
// changes would), so the baseline computes the whole id as the TM does.
//
// Build: bazel build --config=bench //benchmarks:volatile_commit_bench
// Run: volatile_commit_bench --benchmark_repetitions=10
//          --benchmark_enable_random_interleaving=true
//      (the summary's ratios are of medians; one repetition is noisy)
// Instructions per transaction (repeatable where wall-clock time is not):
//   valgrind --tool=callgrind <binary> --benchmark_filter='static_transaction_single_threaded/8/'
//       --iterations=20000   (then 60000; the totals' difference / 40000)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <map>
#include <new>
#include <string>

#include "ktm/tm.hpp"

namespace {
std::atomic<std::uint64_t> g_allocations{0};
}

// The replaced global operator delete frees what the replaced operator new
// got from malloc; g++ 12 cannot see the pairing after inlining and warns.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, std::align_val_t a) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::aligned_alloc(static_cast<std::size_t>(a), (n + static_cast<std::size_t>(a) - 1) & ~(static_cast<std::size_t>(a) - 1))) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }

namespace {

namespace kt = ktm::tm;

// A volatile store of 16 registers of `words` 64-bit words each (the
// benchmark argument: 8 words = 64 bytes, ...). The client changes a working
// copy (keeping the before-image); PREPARE validates the copy, COMMIT
// installs it, ROLLBACK restores the before-image. Memory is allocated once,
// at construction.
template <int Id>
class register_rm : public kt::resource_manager_base<> {
 public:
  explicit register_rm(std::size_t words)
      : words_(words), committed_(16 * words), work_(16 * words), before_(16 * words) {}

  void write(std::size_t i, std::uint64_t v) {
    std::uint64_t* c = &committed_[i * words_];
    std::memcpy(&before_[i * words_], c, words_ * 8);
    std::uint64_t* w = &work_[i * words_];
    for (std::size_t k = 0; k < words_; ++k) w[k] = c[k] + v;
  }

  kt::reply on_preprepare(kt::enlistment&, const kt::notification& n) {
    last_clock_ = n.virtual_clock;
    last_uow_ = n.transaction;  // as an RM that tags its changes would
    return kt::reply::done();
  }
  kt::reply on_prepare(kt::enlistment&, const kt::notification& n) {
    const std::uint64_t* w = &work_[n.key.value() * words_];
    std::uint64_t sum = 0;
    for (std::size_t k = 0; k < words_; ++k) sum += w[k];
    checksum_ += sum;
    return kt::reply::done();
  }
  kt::reply on_commit(kt::enlistment&, const kt::notification& n) {
    std::memcpy(&committed_[n.key.value() * words_], &work_[n.key.value() * words_], words_ * 8);
    ++commits_;
    return kt::reply::done();
  }
  kt::reply on_rollback(kt::enlistment&, const kt::notification& n) {
    std::memcpy(&work_[n.key.value() * words_], &before_[n.key.value() * words_], words_ * 8);
    return kt::reply::done();
  }

  std::uint64_t commits() const { return commits_; }
  std::uint64_t checksum() const { return checksum_ + last_uow_.bytes()[0]; }

 private:
  std::size_t words_;
  std::vector<std::uint64_t> committed_, work_, before_;
  std::uint64_t checksum_ = 0, last_clock_ = 0, commits_ = 0;
  ktm::guid last_uow_{};
};

using rm_a = register_rm<1>;
using rm_b = register_rm<2>;
using tm_type = kt::volatile_transaction_manager<kt::with_storage<kt::static_storage<rm_a, rm_b>>,
                                                 kt::with_dispatcher<kt::inline_dispatcher>>;
using tm_st_type = kt::volatile_transaction_manager<kt::with_storage<kt::static_storage<rm_a, rm_b>>,
                                                    kt::with_dispatcher<kt::inline_dispatcher>,
                                                    kt::with_threading<kt::single_threaded>>;
static_assert(tm_type::concurrent && !tm_st_type::concurrent);

void set_allocs(benchmark::State& state, std::uint64_t before) {
  state.counters["allocs_per_tx"] = benchmark::Counter(
      static_cast<double>(g_allocations.load() - before) / static_cast<double>(state.iterations()));
}

void BM_baseline_direct_calls(benchmark::State& state) {
  const auto words = static_cast<std::size_t>(state.range(0));
  rm_a a(words);
  rm_b b(words);
  kt::enlistment ea, eb;  // handlers ignore it; built once, in the baseline's favour
  std::uint64_t clock = 1, i = 0;
  const std::uint64_t before = g_allocations.load();
  for (auto _ : state) {
    const std::size_t slot = i++ & 15;
    const ktm::guid uow = ktm::guid::generate();
    a.write(slot, i);
    b.write(slot, i);
    kt::notification n{uow, kt::notify::preprepare, ++clock, kt::enlistment_key(slot)};
    bool ok = a.on_preprepare(ea, n).what() == kt::reply::kind::done;
    ok = b.on_preprepare(eb, n).what() == kt::reply::kind::done && ok;
    n.kind = kt::notify::prepare;
    ok = ok && a.on_prepare(ea, n).what() == kt::reply::kind::done;
    ok = ok && b.on_prepare(eb, n).what() == kt::reply::kind::done;
    if (ok) {
      n.kind = kt::notify::commit;
      (void)a.on_commit(ea, n);
      (void)b.on_commit(eb, n);
    } else {
      n.kind = kt::notify::rollback;
      (void)a.on_rollback(ea, n);
      (void)b.on_rollback(eb, n);
    }
    benchmark::DoNotOptimize(ok);
  }
  set_allocs(state, before);
  benchmark::DoNotOptimize(a.checksum() + b.checksum());
  if (a.commits() != static_cast<std::uint64_t>(state.iterations())) state.SkipWithError("lost commits");
}

// One transaction per iteration through the TM, run by `one(tm, a, b,
// slot, i)`: the same client work and checks as the baseline's.
template <class TM, class One>
void run_tm(benchmark::State& state, One one) {
  const auto words = static_cast<std::size_t>(state.range(0));
  rm_a a(words);
  rm_b b(words);
  TM tm{a, b};
  (void)tm.recover();
  std::uint64_t i = 0;
  const std::uint64_t before = g_allocations.load();
  for (auto _ : state) {
    const std::size_t slot = i++ & 15;
    one(tm, a, b, slot, i);
  }
  set_allocs(state, before);
  benchmark::DoNotOptimize(a.checksum() + b.checksum());
  if (a.commits() != static_cast<std::uint64_t>(state.iterations())) state.SkipWithError("lost commits");
}

// basic_transaction (tm.begin()): enlistment handles, replies by return or later.
template <class TM>
void BM_tm_inline_static(benchmark::State& state) {
  run_tm<TM>(state, [](TM& tm, rm_a& a, rm_b& b, std::size_t slot, std::uint64_t i) {
    auto tx = tm.begin();
    a.write(slot, i);
    b.write(slot, i);
    auto ha = tx.enlist(a, kt::default_mask, kt::enlistment_key(slot));
    auto hb = tx.enlist(b, kt::default_mask, kt::enlistment_key(slot));
    ktm::result<void> r = tx.commit();
    benchmark::DoNotOptimize(r);
  });
}

// The same transaction through a static transaction (tm.begin_static()):
// handlers answer by returning, enlist hands out no handle.
template <class TM>
void BM_tm_static_transaction(benchmark::State& state) {
  run_tm<TM>(state, [](TM& tm, rm_a& a, rm_b& b, std::size_t slot, std::uint64_t i) {
    auto tx = tm.begin_static();
    a.write(slot, i);
    b.write(slot, i);
    (void)tx.enlist(a, kt::default_mask, kt::enlistment_key(slot));
    (void)tx.enlist(b, kt::default_mask, kt::enlistment_key(slot));
    ktm::result<void> r = tx.commit();
    benchmark::DoNotOptimize(r);
  });
}

// Register sizes: 64 bytes (the headline), 512 bytes, 4 KiB. A fixed
// iteration count (--iterations=N, 0: Google Benchmark's choice) makes runs
// comparable under callgrind: instructions per transaction are the
// difference of two runs' totals over the difference of their counts.
void register_all(std::int64_t iterations) {
  auto each = [&](benchmark::internal::Benchmark* b) {
    b->Arg(8)->Arg(64)->Arg(512);
    if (iterations > 0) b->Iterations(iterations);
  };
  each(benchmark::RegisterBenchmark("BM_baseline_direct_calls", BM_baseline_direct_calls));
  each(benchmark::RegisterBenchmark("BM_tm_inline_static_single_threaded", BM_tm_inline_static<tm_st_type>));
  each(benchmark::RegisterBenchmark("BM_tm_inline_static_thread_safe", BM_tm_inline_static<tm_type>));
  each(benchmark::RegisterBenchmark("BM_tm_static_transaction_single_threaded", BM_tm_static_transaction<tm_st_type>));
  each(benchmark::RegisterBenchmark("BM_tm_static_transaction_thread_safe", BM_tm_static_transaction<tm_type>));
}

// Keeps each run's time per iteration for the summary: with repetitions
// (--benchmark_repetitions=N, best with
// --benchmark_enable_random_interleaving=true), the median of a
// benchmark's runs, and the most allocations any run counted.
class summary_reporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.run_type != Run::RT_Iteration) continue;
      const auto it = r.counters.find("allocs_per_tx");
      std::string name = r.benchmark_name();
      name = name.substr(0, name.find("/iterations:"));
      name = name.substr(0, name.find("/repeats:"));
      times[name].push_back(r.GetAdjustedCPUTime());
      double& allocs = rows[name].second;
      allocs = std::max(allocs, it == r.counters.end() ? 0.0 : it->second.value);
      std::vector<double> v = times[name];
      std::sort(v.begin(), v.end());
      rows[name].first = v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    }
    ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, std::vector<double>> times;
  std::map<std::string, std::pair<double, double>> rows;
};

}  // namespace

int main(int argc, char** argv) {
  std::int64_t iterations = 0;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--iterations=", 13) != 0) continue;
    iterations = std::atoll(argv[i] + 13);
    for (int j = i; j + 1 < argc; ++j) argv[j] = argv[j + 1];
    --argc;
    --i;
  }
  register_all(iterations);
  benchmark::Initialize(&argc, argv);
  summary_reporter rep;
  benchmark::RunSpecifiedBenchmarks(&rep);
  const char* sizes[] = {"8", "64", "512"};
  const char* policies[] = {"single_threaded", "thread_safe"};
  struct kind {
    const char* prefix;
    const char* name;
  };
  const kind kinds[] = {{"BM_tm_inline_static_", "basic_transaction (tm.begin())"},
                        {"BM_tm_static_transaction_", "static_transaction (tm.begin_static())"}};
  for (const kind& k : kinds) {
    for (const char* policy : policies) {
      std::printf("\n%s, TM with_threading<%s>%s\n", k.name, policy,
                  std::string(policy) == "thread_safe" ? " (the default)" : "");
      std::printf("%-8s %14s %14s %10s %14s %12s\n", "register", "baseline ns", "tm ns", "ratio", "tm overhead",
                  "tm allocs/tx");
      for (const char* w : sizes) {
        const auto b = rep.rows.find(std::string("BM_baseline_direct_calls/") + w);
        const auto t = rep.rows.find(std::string(k.prefix) + policy + "/" + w);
        if (b == rep.rows.end() || t == rep.rows.end()) continue;
        const std::size_t bytes = static_cast<std::size_t>(std::atoi(w)) * 8;
        std::printf("%6zuB %14.1f %14.1f %9.3fx %11.1f ns %12.3f\n", bytes, b->second.first, t->second.first,
                    t->second.first / b->second.first, t->second.first - b->second.first, t->second.second);
        if (bytes == 64)
          std::printf("summary: 64-byte registers, %s, with_threading<%s>: TM/baseline = %.3fx (target <= 1.10x), "
                      "allocations per transaction = %.3f\n",
                      k.name, policy, t->second.first / b->second.first, t->second.second);
      }
    }
  }
  benchmark::Shutdown();
  return 0;
}
