// tests/crash/commit_fault_test.cpp: I/O errors at every I/O call of a
// bank-style commit, and damaged log files between runs (reliability.md
// rows 4-7).
//
// A durable TM and two transactional maps (even accounts in one, odd in the
// other) share one multiplexed log over fault_injection_storage<memory_
// storage>; every transfer moves money between an even and an odd account,
// so both RMs enlist. For EIO and ENOSPC, once and persistent, the calls of
// one transfer are counted, then the transfer is repeated from the same
// state with call k failing, for every k. Then the process "dies" (a crash
// that loses, or keeps a random subset of, what was not flushed), the bank is
// reopened and recovered, and: an acknowledged transfer is there; a failed
// flush was never acknowledged and left the TM fail-stop (errc::tm_failed,
// no further device flush); an unacknowledged transfer is all or nothing;
// the sum of balances holds. Then the log files of a bank (closed, or as a
// crash leaves them) are truncated, bit-flipped or zeroed from many offsets
// on (including inside the last written block): opening either fails with
// an error code or recovers a consistent prefix of the acknowledged
// transfers (all of them when the damage lies past the log's written end).
// Both a full and a shorter prefix must occur.
//
// KTM_FAULT_SEEDS=N (--test_env) runs N starting states instead of 3.
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ktm/io/fault_injection.hpp"
#include "ktm/io/memory_device.hpp"
#include "ktm/log.hpp"
#include "ktm/rm.hpp"
#include "ktm/tm.hpp"
#include "ktm/tm/durable_transaction_manager.hpp"
#include "tests/support/byte_edit.hpp"
#include "tests/support/log_fixtures.hpp"

namespace {

using ktm::errc;
using fstore = ktm::io::fault_injection_storage<ktm::io::memory_storage>;
using map_t = ktm::rm::transactional_map<fstore>;
using tm_t = ktm::tm::durable_transaction_manager<fstore, ktm::tm::with_storage<ktm::tm::dynamic_storage>>;
using balances = std::map<int, long>;

constexpr int accounts = 6;
constexpr long initial = 100;

ktm::log::log_options options() { return ktm::test::growing_log_options(); }

struct ids {
  ktm::guid tm = ktm::guid::generate(), even = ktm::guid::generate(), odd = ktm::guid::generate();
};

// The log, the TM and the two maps, opened and recovered in KTM's order.
// A failure to open is an error code (never a crash): open() returns it.
struct bank {
  std::optional<ktm::log::log<fstore>> lg;
  std::unique_ptr<tm_t> tm;
  std::unique_ptr<map_t> even, odd;
  ~bank() { tm.reset(); }

  static ktm::result<std::unique_ptr<bank>> open(fstore& st, bool create, const ids& id) {
    auto b = std::make_unique<bank>();
    auto l = create ? ktm::log::log<fstore>::create(st, "bank", options())
                    : ktm::log::log<fstore>::open(st, "bank", options());
    if (!l) return std::move(l).error();
    b->lg.emplace(std::move(*l));
    auto stream = [&](const char* n) { return create ? b->lg->create_stream(n) : b->lg->open_stream(n); };
    auto ts = stream("tm");
    if (!ts) return std::move(ts).error();
    b->tm = std::make_unique<tm_t>(ktm::tm::log_arg, std::move(*ts), id.tm);
    KTM_TRY(b->tm->recover());
    ktm::rm::transactional_map_options mo;
    mo.prepare = ktm::rm::durability::queue_only;  // the TM's forced commit record covers it
    mo.lock_timeout = std::chrono::milliseconds(50);
    for (auto [name, gid, slot] : {std::tuple{"even", id.even, &b->even}, std::tuple{"odd", id.odd, &b->odd}}) {
      auto s = stream(name);
      if (!s) return std::move(s).error();
      auto w = s->marshalling_area();
      if (!w) return std::move(w).error();
      *slot = std::make_unique<map_t>(*s, std::move(*w), mo, gid);
      map_t& m = **slot;
      auto rep = m.recover();
      if (!rep) return std::move(rep).error();
      KTM_TRY(b->tm->add_resource_manager(m));
      KTM_TRY(b->tm->recover_resource_manager(m));
      for (const auto& t : m.in_doubt())
        KTM_TRY(m.resolve(t.uow, b->tm->recovered_outcome(t.uow) == ktm::tm::transaction_outcome::committed
                                     ? ktm::rm::outcome::commit
                                     : ktm::rm::outcome::abort));
    }
    return b;
  }

  map_t& of(int a) { return a % 2 ? *odd : *even; }
  static std::string key(int a) { return "acct" + std::to_string(a); }

  ktm::result<void> create_accounts() {
    auto tx = tm->begin();
    for (int a = 0; a < accounts; ++a) KTM_TRY(of(a).put(tx, key(a), std::to_string(initial)));
    return tx.commit();
  }
  // One transfer between accounts `from` and `to` (one even, one odd).
  ktm::result<void> transfer(int from, int to, long amount) {
    auto tx = tm->begin();
    long bal[2];
    int who[2] = {from, to};
    for (int i = 0; i < 2; ++i) {
      auto v = of(who[i]).get_for_update(tx, key(who[i]));
      if (!v) return std::move(v).error();
      if (!*v) return errc::corrupt_record;
      bal[i] = std::stol(**v);
    }
    KTM_TRY(of(from).put(tx, key(from), std::to_string(bal[0] - amount)));
    KTM_TRY(of(to).put(tx, key(to), std::to_string(bal[1] + amount)));
    return tx.commit();
  }
  balances read() const {
    balances out;
    for (const map_t* m : {even.get(), odd.get()})
      for (const auto& [k, v] : m->snapshot()) out[std::stoi(k.substr(4))] = std::stol(v);
    return out;
  }
};

long total(const balances& b) {
  long t = 0;
  for (const auto& [a, v] : b) t += v;
  return t;
}

balances initial_balances() {
  balances b;
  for (int a = 0; a < accounts; ++a) b[a] = initial;
  return b;
}

struct move_t {
  int from, to;
  long amount;
};
move_t nth_move(std::uint64_t seed, int i) {
  const int even = static_cast<int>((seed * 7 + static_cast<std::uint64_t>(i) * 3) % 3) * 2;
  const int odd = static_cast<int>((seed + static_cast<std::uint64_t>(i)) % 3) * 2 + 1;
  const long amount = static_cast<long>((seed * 13 + static_cast<std::uint64_t>(i) * 5) % 17 + 1);
  return i % 2 ? move_t{even, odd, amount} : move_t{odd, even, amount};
}
void apply(balances& b, const move_t& m) {
  b[m.from] -= m.amount;
  b[m.to] += m.amount;
}

int seeds() {
  const char* v = std::getenv("KTM_FAULT_SEEDS");
  return v && *v ? std::max(1, std::atoi(v)) : 3;
}

// A bank with `warm` transfers done (all acknowledged); `model` gets them.
std::unique_ptr<bank> warm_bank(fstore& st, const ids& id, std::uint64_t seed, int warm, balances& model) {
  auto b = bank::open(st, true, id);
  REQUIRE(b);
  REQUIRE((*b)->create_accounts());
  model = initial_balances();
  for (int i = 0; i < warm; ++i) {
    const move_t m = nth_move(seed, i);
    REQUIRE((*b)->transfer(m.from, m.to, m.amount));
    apply(model, m);
  }
  return std::move(*b);
}

}  // namespace

TEST_CASE("EIO and ENOSPC at every I/O call of a commit: no failed flush acknowledged; fail-stop; and recovery keeps every acknowledged transfer") {
  struct stats_t {
    int runs = 0, acked = 0, failed_flushes = 0, fail_stops = 0, kept_unacked = 0;
  } stats;
  for (errc error : {errc::io_error, errc::no_space}) {
    for (auto lasting : {ktm::io::persistence::once, ktm::io::persistence::persistent}) {
      for (int seed = 1; seed <= seeds(); ++seed) {
        const int warm = (seed * 7) % 23;
        const move_t target = nth_move(static_cast<std::uint64_t>(seed), warm);
        // 1. count the I/O calls of the target transfer
        std::uint64_t calls = 0;
        {
          fstore st{ktm::io::memory_storage{}};
          balances model;
          auto b = warm_bank(st, ids{}, static_cast<std::uint64_t>(seed), warm, model);
          const auto before = st.controller()->counts().total();
          REQUIRE(b->transfer(target.from, target.to, target.amount));
          calls = st.controller()->counts().total() - before;
        }
        REQUIRE(calls > 0);
        // 2. fail call k, for every k
        for (std::uint64_t k = 1; k <= calls; ++k) {
          INFO("error " << static_cast<int>(error) << (lasting == ktm::io::persistence::once ? " once" : " persistent")
                        << ", seed " << seed << ", call " << k << " of " << calls);
          fstore st{ktm::io::memory_storage{}};
          const ids id;
          balances model;
          auto b = warm_bank(st, id, static_cast<std::uint64_t>(seed), warm, model);
          std::optional<ktm::io::call_kind> hit;
          ktm::io::fault f;
          f.kinds = ktm::io::kind_set::all();
          f.nth = k;
          f.lasting = lasting;
          f.error = error;
          f.when = [&hit](const ktm::io::call_info& c) {
            if (!hit) hit = c.kind;
            return true;
          };
          st.controller()->inject(f);
          const auto r = b->transfer(target.from, target.to, target.amount);
          const bool acked = static_cast<bool>(r);
          ++stats.runs;
          stats.acked += acked;
          REQUIRE(hit);  // the k-th call was reached and failed
          if (*hit == ktm::io::call_kind::flush) {
            ++stats.failed_flushes;
            REQUIRE(!acked);  // a failed flush is never acknowledged as a commit
            REQUIRE(b->tm->failed());
          }
          if (b->tm->failed()) {
            ++stats.fail_stops;
            REQUIRE(!acked);
            REQUIRE(b->tm->state() == ktm::tm::tm_state::offline);
            // fail-stop: new work gets tm_failed, and no device flush is tried again
            const auto flushes = b->lg->device_flushes();
            const auto again = b->transfer(target.from, target.to, target.amount);
            REQUIRE(!again);
            REQUIRE(again.code() == ktm::make_error_code(errc::tm_failed));
            REQUIRE(b->tm->checkpoint().code() == ktm::make_error_code(errc::tm_failed));
            REQUIRE(b->lg->device_flushes() == flushes);
          }
          // the process dies: unflushed writes are lost (or a random subset survives)
          ktm::io::crash_spec c;
          c.unflushed = k % 2 ? ktm::io::crash_spec::writes::lost : ktm::io::crash_spec::writes::random_subset;
          c.seed = static_cast<std::uint64_t>(seed) * 1000 + k;
          b.reset();
          st.controller()->clear_faults();
          REQUIRE(!st.controller()->crash(c));
          auto reopened = bank::open(st, false, id);
          INFO((reopened ? std::string() : reopened.error().message()));
          REQUIRE(reopened);
          const balances got = (*reopened)->read();
          balances with = model;
          apply(with, target);
          CHECK(total(got) == accounts * initial);  // the invariant
          if (acked) {
            REQUIRE(got == with);  // acknowledged: durable
          } else {
            REQUIRE((got == model || got == with));  // never half applied
            stats.kept_unacked += got == with;
          }
          // and the recovered bank works
          const move_t next = nth_move(static_cast<std::uint64_t>(seed), warm + 1);
          REQUIRE((*reopened)->transfer(next.from, next.to, next.amount));
        }
      }
    }
  }
  std::printf(
      "commit fault test: %d runs (%d seeds), %d acknowledged despite the fault, %d failed flushes, %d fail-stops, "
      "%d unacknowledged transfers found committed after recovery\n",
      stats.runs, seeds(), stats.acked, stats.failed_flushes, stats.fail_stops, stats.kept_unacked);
  CHECK(stats.failed_flushes > 0);
  CHECK(stats.fail_stops > 0);
}

TEST_CASE("a log truncated or bit-flipped between runs opens with an error code or a consistent prefix of the acknowledged transfers") {
  int opened = 0, refused = 0, full = 0, checked = 0;
  for (int seed = 1; seed <= seeds(); ++seed) {
    INFO("seed " << seed);
    ktm::io::memory_storage mem;
    const ids id;
    std::vector<balances> prefixes;  // the state after each acknowledged transfer
    std::map<std::string, std::vector<std::byte>> pristine;
    {
      fstore st{mem};
      balances model;
      auto b = warm_bank(st, id, static_cast<std::uint64_t>(seed), 0, model);
      prefixes.push_back(model);
      for (int i = 0; i < 40; ++i) {
        const move_t m = nth_move(static_cast<std::uint64_t>(seed), i);
        REQUIRE(b->transfer(m.from, m.to, m.amount));
        apply(model, m);
        prefixes.push_back(model);
      }
      // A pristine copy of every file; each damage starts from it. Odd
      // seeds take it after the bank closed (the base file's head covers
      // every record), even seeds before, as a crash would leave the files
      // (the head is older: damage after it may cut acknowledged transfers
      // off the end, leaving a prefix).
      if (seed % 2 == 1) b.reset();
      for (const auto& n : mem.names()) pristine[n] = ktm::test::read_all(mem, n);
    }
    auto restore = [&] {
      ktm::io::memory_storage m;
      for (const auto& [n, bytes] : pristine) {
        auto d = m.open(n, ktm::open_mode::create_new);
        REQUIRE(d);
        REQUIRE(!d->grow(bytes.size()));
        ktm::test::overwrite(m, n, 0, bytes);
      }
      return m;
    };
    // where each container's written bytes end (the rest is never-written zeroes)
    auto written_end = [](const std::vector<std::byte>& b) {
      std::size_t e = b.size();
      while (e > 0 && b[e - 1] == std::byte{0}) --e;
      return e;
    };
    const std::size_t block = options().effective_block_size();
    for (const auto& [name, bytes] : pristine) {
      if (name.find(".c") == std::string::npos) continue;  // containers; the base file has shadow copies
      const std::size_t end = written_end(bytes);
      const std::size_t end_block = (end + block - 1) / block * block;
      const std::size_t step = std::max<std::size_t>(1, bytes.size() / (seed == 1 ? 97 : 31));
      std::vector<std::size_t> offsets;
      for (std::size_t off = seed; off < bytes.size(); off += step) offsets.push_back(off);
      // and inside the last written block, where damage cuts acknowledged
      // transfers off the end (tolerate mode): what is left must be a prefix
      if (end > 0)
        for (const std::size_t back : {std::size_t{1}, block / 2, block - 16})
          if (back <= end) offsets.push_back(end - back);
      for (const std::size_t off : offsets) {
        // 0: truncate at off; 1: flip a bit at off; 2: zeroes from off on (the
        // device lost acknowledged writes: what is left must be a prefix)
        for (int mode = 0; mode < 3; ++mode) {
          INFO(name << (mode == 0 ? " truncated at " : mode == 1 ? " bit flip at " : " zeroed from ") << off
                    << " (written end " << end << ")");
          if (mode == 2 && off >= end) continue;  // zeroes already
          ktm::io::memory_storage m = restore();
          if (mode == 0) ktm::test::truncate(m, name, off);
          else if (mode == 1) ktm::test::flip_bit(m, name, off, static_cast<unsigned>(off % 8));
          else ktm::test::fill(m, name, off, bytes.size() - off, std::byte{0});
          fstore st{m};
          auto b = bank::open(st, false, id);
          ++checked;
          if (!b) {  // a clear error code, never a crash
            ++refused;
            REQUIRE(b.error().code);
            continue;
          }
          ++opened;
          const balances got = (*b)->read();
          CHECK(total(got) == accounts * initial);
          bool is_prefix = false;
          for (const auto& p : prefixes) is_prefix = is_prefix || p == got;
          REQUIRE(is_prefix);
          if (got == prefixes.back()) ++full;
          if (mode == 1 && off >= end_block) REQUIRE(got == prefixes.back());  // past the written end: nothing lost
        }
      }
    }
  }
  std::printf("log damage test: %d damaged opens, %d refused with an error code, %d opened (%d with every transfer, "
              "%d with a shorter prefix)\n",
              checked, refused, opened, full, opened - full);
  CHECK(refused > 0);
  CHECK(full > 0);
  CHECK(opened > full);  // damage at the end did cut acknowledged transfers, and what stayed is a prefix
}
