// Opening a log finds its true end; damage is handled per recovery mode.
#include <catch2/catch.hpp>

#include <random>

#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using ktm::errc;
using ktm::test::as_bytes;
using ktm::test::memory_storage;
template <class R>
using rlog = ktm::log::log<memory_storage, R>;
using tlog = rlog<tolerate_corrupted_tail>;
using alog = rlog<absolute_consistency>;
using plog = rlog<point_in_time>;

namespace {
// Four forced records r0..r3 (one sector each) and a fifth of two sectors,
// then a crash image: the base file's head is before all of them.
struct small_log {
  memory_storage st;
  std::vector<std::string> records;
  std::vector<lsn> lsns;
  explicit small_log(bool two_sector_tail = true) {
    auto o = ktm::test::small_log_options();
    {
      auto lg = tlog::create(st, "l", o);
      REQUIRE(lg->create_stream("a"));
    }
    auto lg = tlog::open(st, "l", o);
    auto s = lg->open_stream("a");
    auto ma = s->marshalling_area();
    for (int i = 0; i < 4; ++i) records.push_back("r" + std::to_string(i));
    if (two_sector_tail) records.push_back(std::string(700, 'T'));
    for (auto& r : records) lsns.push_back(*ma->append(as_bytes(r), record_type::data, append_flags::force));
    memory_storage img = ktm::test::crash_image(st);
    st = img;
  }
  std::size_t block_offset(std::size_t i) const { return lsns[i].block_byte_offset(); }
};

template <class L>
std::vector<std::string> reopen_and_read(memory_storage& st, ktm::result<L>& lg, ktm::failure* status = nullptr) {
  lg = L::open(st, "l");
  if (!lg) return {};
  auto s = lg->open_stream("a");
  if (!s) return {};
  return ktm::test::read_all(*s, status);
}
}  // namespace

TEST_CASE("reopening after a crash finds the true end of the log") {
  small_log sl;
  ktm::result<tlog> lg = ktm::failure(errc::invalid_argument);
  CHECK(reopen_and_read(sl.st, lg) == sl.records);
  CHECK_FALSE(lg->recovery_report().damaged);
  CHECK(lg->recovery_report().blocks_recovered == 5);
}

TEST_CASE("a torn final sector is cut and reported") {
  small_log sl;
  ktm::test::zero_range(sl.st, "l.c0", sl.block_offset(4) + 512, 512);
  std::vector<std::string> prefix(sl.records.begin(), sl.records.begin() + 4);
  tail_report seen;
  {
    ktm::result<tlog> lg = ktm::failure(errc::invalid_argument);
    auto img = ktm::test::crash_image(sl.st);
    CHECK(reopen_and_read(img, lg) == prefix);
    const auto& rep = lg->recovery_report();
    CHECK(rep.damaged);
    CHECK(rep.reason == errc::torn_write);
    CHECK(rep.offset == sl.block_offset(4));
    CHECK(rep.file == "l.c0");
    CHECK(rep.bytes_dropped == 1024);  // the whole torn block
    // the log goes on after the cut, and a second open is clean
    auto s = lg->open_stream("a");
    auto ma = s->marshalling_area();
    REQUIRE(ma->append(as_bytes("new"), record_type::data, append_flags::force));
    auto img2 = ktm::test::crash_image(img);
    ktm::result<tlog> lg2 = ktm::failure(errc::invalid_argument);
    auto again = reopen_and_read(img2, lg2);
    CHECK(again.size() == 5);
    CHECK(again.back() == "new");
    CHECK_FALSE(lg2->recovery_report().damaged);
  }
  {
    auto img = ktm::test::crash_image(sl.st);
    auto lg = alog::open(img, "l");
    REQUIRE_FALSE(lg);
    CHECK(lg.code() == errc::torn_write);
    CHECK(lg.error().where.value == sl.block_offset(4));
    CHECK(lg.error().file == "l.c0");
  }
  {
    auto img = ktm::test::crash_image(sl.st);
    ktm::log::log_options o;
    o.on_tail = [&](const tail_report& r) { seen = r; };
    auto lg = plog::open(img, "l", o);
    REQUIRE(lg);
    CHECK(seen.damaged);
    CHECK(ktm::test::read_all(*lg->open_stream("a")) == prefix);
  }
}

TEST_CASE("garbage after the last block is a clean end in every mode") {
  small_log sl(false);
  auto& b = ktm::test::bytes_of(sl.st, "l.c0");
  std::mt19937 g(1);
  for (std::size_t i = sl.block_offset(3) + 512; i < b.size(); ++i) b[i] = static_cast<std::byte>(g());
  ktm::result<alog> lg = ktm::failure(errc::invalid_argument);
  auto img = ktm::test::crash_image(sl.st);
  CHECK(reopen_and_read(img, lg) == sl.records);
  CHECK_FALSE(lg->recovery_report().damaged);
}

TEST_CASE("damage before a durable block is an error even when tolerating a damaged tail") {
  small_log sl;
  ktm::test::flip_bit(sl.st, "l.c0", sl.block_offset(1) + 64 + 32);  // r1's payload
  {
    auto img = ktm::test::crash_image(sl.st);
    auto lg = tlog::open(img, "l");
    REQUIRE_FALSE(lg);
    CHECK(lg.code() == errc::checksum_mismatch);
    CHECK(lg.error().where.value == sl.block_offset(1));
  }
  {
    auto img = ktm::test::crash_image(sl.st);
    ktm::result<plog> lg = ktm::failure(errc::invalid_argument);
    CHECK(reopen_and_read(img, lg) == std::vector<std::string>{"r0"});
    CHECK(lg->recovery_report().reason == errc::checksum_mismatch);
  }
}

TEST_CASE("damage before the head of a cleanly closed log fails an absolute_consistency open and ends reads in the other modes") {
  memory_storage st;
  std::vector<lsn> lsns;
  const auto o = ktm::test::small_log_options();
  {
    auto lg = tlog::create(st, "l", o);
    REQUIRE(lg);
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    for (int i = 0; i < 4; ++i)
      lsns.push_back(*ma->append(as_bytes("r" + std::to_string(i)), record_type::data, append_flags::force));
  }  // closed: the base file's head is past every block
  {  // an intact log opens in every mode, absolute_consistency's full pass included
    auto lg = alog::open(st, "l", o);
    REQUIRE(lg);
    auto s = lg->open_stream("a");
    CHECK(ktm::test::read_all(*s).size() == 4);
  }
  ktm::test::flip_bit(st, "l.c0", lsns[1].block_byte_offset() + 64 + 32);  // r1's payload
  {
    auto lg = alog::open(st, "l", o);
    REQUIRE_FALSE(lg);
    CHECK(lg.code() == errc::checksum_mismatch);
    CHECK(lg.error().where.value == lsns[1].raw());
    CHECK(lg.error().file == "l.c0");
  }
  const auto damaged_read = [&](auto& lg) {
    REQUIRE(lg);
    CHECK_FALSE(lg->recovery_report().damaged);  // nothing at the tail
    auto s = lg->open_stream("a");
    ktm::failure status;
    CHECK(ktm::test::read_all(*s, &status) == std::vector<std::string>{"r0"});
    CHECK(status.code == ktm::make_error_code(errc::checksum_mismatch));
  };
  {
    auto t = tlog::open(st, "l", o);
    damaged_read(t);
  }
  auto p = plog::open(st, "l", o);
  damaged_read(p);
}

TEST_CASE("a log cut at every byte offset opens per its mode and never reads past the end") {
  small_log sl;
  const std::size_t end = sl.block_offset(4) + 1024;
  for (std::size_t cut = 0; cut <= end; ++cut) {
    // bytes after `cut` never reached the preallocated container
    auto img = ktm::test::crash_image(sl.st);
    ktm::test::zero_range(img, "l.c0", cut, 4096);
    std::size_t whole = 0;  // records whose blocks end at or before the cut
    for (std::size_t i = 0; i < 5; ++i)
      if (sl.block_offset(i) + (i == 4 ? 1024 : 512) <= cut) whole = i + 1;
    // did the cut change the container header's used bytes?
    const auto& orig = ktm::test::bytes_of(sl.st, "l.c0");
    bool in_header = false;
    for (std::size_t i = cut; i < 64; ++i) in_header |= orig[i] != std::byte{0};
    auto prefix_at_least = [&](const std::vector<std::string>& got) {
      CHECK(got.size() >= whole);
      REQUIRE(got.size() <= sl.records.size());
      for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == sl.records[i]);
    };
    {
      auto copy = ktm::test::crash_image(img);
      ktm::result<tlog> lg = ktm::failure(errc::invalid_argument);
      auto got = reopen_and_read(copy, lg);
      if (in_header) {
        CHECK(lg.code() == errc::corrupt_container);
      } else {
        REQUIRE(lg);
        prefix_at_least(got);
      }
    }
    {
      auto copy = ktm::test::crash_image(img);
      ktm::result<alog> lg = ktm::failure(errc::invalid_argument);
      auto got = reopen_and_read(copy, lg);
      if (in_header) CHECK_FALSE(lg);
      if (lg) {
        prefix_at_least(got);
      } else {
        const auto c = lg.code();
        CHECK((c == errc::torn_write || c == errc::checksum_mismatch || c == errc::corrupt_record ||
               c == errc::corrupt_container));
      }
    }
    // the file itself cut short: a clean error, no read past its end
    auto shortened = ktm::test::crash_image(sl.st);
    ktm::test::bytes_of(shortened, "l.c0").resize(cut);
    CHECK(tlog::open(shortened, "l").code() == errc::corrupt_container);
  }
}

TEST_CASE("a base file cut at every byte offset is a clean corrupt_base_file, or incomplete_log when empty") {
  small_log sl;
  const std::size_t n = ktm::test::bytes_of(sl.st, "l.blf").size();
  for (std::size_t cut = 0; cut < n; cut += (cut < 1024 || cut > n - 1024) ? 1 : 97) {
    auto img = ktm::test::crash_image(sl.st);
    ktm::test::bytes_of(img, "l.blf").resize(cut);
    // an empty base file is what a create crashed before writing it left
    CHECK(tlog::open(img, "l").code() == (cut == 0 ? errc::incomplete_log : errc::corrupt_base_file));
  }
}

TEST_CASE("a bit flip at every byte of a small log is caught, never silently applied") {
  small_log sl;
  struct region { std::string file; std::size_t from, to; };
  const std::size_t used = ktm::log::format::load32(ktm::test::bytes_of(sl.st, "l.blf").data() +
                                                    ktm::log::format::bf::used);
  const std::size_t copy = ktm::log::format::base_copy_size;
  std::vector<region> regions{{"l.c0", 0, sl.block_offset(4) + 1024}, {"l.c1", 0, 512},
                              {"l.blf", 0, used}, {"l.blf", copy, copy + used}};
  int errors = 0, clean = 0;
  for (const auto& rg : regions) {
    for (std::size_t off = rg.from; off < rg.to; ++off) {
      for (int mode = 0; mode < 2; ++mode) {
        auto img = ktm::test::crash_image(sl.st);
        ktm::test::flip_bit(img, rg.file, off, static_cast<int>(off % 8));
        ktm::failure status;
        std::vector<std::string> got;
        bool opened = false, damaged = false;
        if (mode == 0) {
          ktm::result<alog> lg = ktm::failure(errc::invalid_argument);
          got = reopen_and_read(img, lg, &status);
          opened = static_cast<bool>(lg);
          if (!opened) CHECK(lg.code().category() == ktm::error_category());
        } else {
          ktm::result<tlog> lg = ktm::failure(errc::invalid_argument);
          got = reopen_and_read(img, lg, &status);
          opened = static_cast<bool>(lg);
          if (opened) damaged = lg->recovery_report().damaged;
          if (!opened) CHECK(lg.code().category() == ktm::error_category());
        }
        if (!opened || status.code != errc::end_of_stream) {
          ++errors;
          // whatever was returned before the error is original
          for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == sl.records.at(i));
          continue;
        }
        if (got == sl.records) {
          ++clean;
          continue;
        }
        // only tolerate mode may cut, and only a reported tail
        INFO(rg.file << " offset " << off << " mode " << mode);
        CHECK(mode == 1);
        CHECK(damaged);
        REQUIRE(got.size() < sl.records.size());
        for (std::size_t i = 0; i < got.size(); ++i) CHECK(got[i] == sl.records[i]);
      }
    }
  }
  CHECK(errors > 0);
  CHECK(clean > 0);
}
