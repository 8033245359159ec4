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
// What opening `img` in one recovery mode (0 tolerate_corrupted_tail,
// 1 absolute_consistency, 2 point_in_time) and reading it forward gave.
struct outcome {
  bool opened = false;
  ktm::failure error;  // open's, when it failed
  std::vector<std::string> got;
  ktm::failure status;  // the forward view's, when it opened
  tail_report report;
};
const char* const mode_name[3] = {"tolerate_corrupted_tail", "absolute_consistency", "point_in_time"};
template <class L>
outcome attempt_as(memory_storage& img) {
  outcome o;
  ktm::result<L> lg = ktm::failure(errc::invalid_argument);
  o.got = reopen_and_read(img, lg, &o.status);
  o.opened = static_cast<bool>(lg);
  if (o.opened) o.report = lg->recovery_report();
  else o.error = lg.error();
  return o;
}
outcome attempt(int mode, memory_storage& img) {
  return mode == 0 ? attempt_as<tlog>(img) : mode == 1 ? attempt_as<alog>(img) : attempt_as<plog>(img);
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
  const auto block_end = [&](std::size_t i) { return sl.block_offset(i) + (i == 4 ? 1024 : 512); };
  const std::vector<std::byte> orig = ktm::test::bytes_of(sl.st, "l.c0");
  using kind = ktm::position::kind;
  // Every error names its place: a byte offset or an LSN, and the file.
  const auto names_its_place = [](const ktm::failure& f, const std::string& file) {
    CHECK(f.code.category() == ktm::error_category());
    CHECK((f.where.what == kind::offset || f.where.what == kind::lsn));
    CHECK(f.file == file);
  };
  int opened[3] = {}, failed[3] = {}, cut_tails[3] = {};
  for (std::size_t cut = 0; cut <= end; ++cut) {
    // bytes after `cut` never reached the preallocated container
    auto img = ktm::test::crash_image(sl.st);
    ktm::test::zero_range(img, "l.c0", cut, 4096);
    // Zeroing original zeroes changes nothing: the image is the log cut at
    // `eff`, the first byte at or after the cut that was not zero.
    std::size_t eff = cut;
    while (eff < orig.size() && orig[eff] == std::byte{0}) ++eff;
    const bool in_header = eff < 64;  // the container header's used bytes
    std::size_t whole = 0;            // records whose blocks the cut left whole
    while (whole < 5 && block_end(whole) <= eff) ++whole;
    // The next block, cut inside: with its header intact (64 bytes) it is
    // damage (torn, or failing its checks); with its header cut and so
    // every sector trailer too, nothing says it was written: a clean end.
    const bool damaged = !in_header && whole < 5 && eff >= sl.block_offset(whole) + 64;
    const std::vector<std::string> prefix(sl.records.begin(), sl.records.begin() + static_cast<std::ptrdiff_t>(whole));
    for (int mode = 0; mode < 3; ++mode) {
      INFO("cut at " << cut << " (first changed byte " << eff << ") mode " << mode_name[mode]);
      auto copy = ktm::test::crash_image(img);
      const outcome o = attempt(mode, copy);
      if (!o.opened) {
        ++failed[mode];
        names_its_place(o.error, "l.c0");
        if (in_header) {  // every mode checks the active container's header
          CHECK(o.error.code == errc::corrupt_container);
          CHECK(o.error.where.what == kind::offset);
          CHECK(o.error.where.value == 0);
        } else {  // only absolute_consistency fails on a damaged block
          CHECK(mode == 1);
          CHECK(damaged);
          const auto c = o.error.code;
          CHECK((c == errc::torn_write || c == errc::checksum_mismatch || c == errc::corrupt_record));
          CHECK(o.error.where.what == kind::offset);
          CHECK(o.error.where.value == sl.block_offset(whole));
        }
        continue;
      }
      ++opened[mode];
      CHECK_FALSE(in_header);
      CHECK((mode != 1 || !damaged));
      // exactly the records whose blocks are whole, read up to the end
      CHECK(o.got == prefix);
      CHECK(o.status.code == errc::end_of_stream);
      if (o.status.code != errc::end_of_stream) names_its_place(o.status, "l.c0");
      // a cut block is reported where it is
      CHECK(o.report.damaged == damaged);
      if (o.report.damaged) {
        ++cut_tails[mode];
        CHECK(o.report.file == "l.c0");
        CHECK(o.report.offset == sl.block_offset(whole));
        CHECK(o.report.at == sl.lsns[whole]);
        const auto c = o.report.reason;
        CHECK((c == errc::torn_write || c == errc::checksum_mismatch || c == errc::corrupt_record));
      }
    }
    // the file itself cut short: a clean error naming the file and its
    // size, in every mode, and no read past its end (that would be out_of_range)
    for (int mode = 0; mode < 3; ++mode) {
      INFO("file cut short at " << cut << " mode " << mode_name[mode]);
      auto shortened = ktm::test::crash_image(sl.st);
      ktm::test::bytes_of(shortened, "l.c0").resize(cut);
      const outcome o = attempt(mode, shortened);
      REQUIRE_FALSE(o.opened);
      CHECK(o.error.code == errc::corrupt_container);
      names_its_place(o.error, "l.c0");
      CHECK(o.error.where.what == kind::offset);
      CHECK(o.error.where.value == cut);
    }
  }
  for (int mode = 0; mode < 3; ++mode) {
    INFO("mode " << mode_name[mode]);
    CHECK(opened[mode] > 0);
    CHECK(failed[mode] > 0);  // the header cuts, in every mode
  }
  CHECK(cut_tails[0] > 0);
  CHECK(cut_tails[1] == 0);
  CHECK(cut_tails[2] > 0);
  CHECK(cut_tails[0] == cut_tails[2]);
}

TEST_CASE("a base file cut at every byte offset is a clean corrupt_base_file; or incomplete_log when empty") {
  small_log sl;
  const std::size_t n = ktm::test::bytes_of(sl.st, "l.blf").size();
  for (std::size_t cut = 0; cut < n; cut += (cut < 1024 || cut > n - 1024) ? 1 : 97) {
    auto img = ktm::test::crash_image(sl.st);
    ktm::test::bytes_of(img, "l.blf").resize(cut);
    // an empty base file is what a create crashed before writing it left
    CHECK(tlog::open(img, "l").code() == (cut == 0 ? errc::incomplete_log : errc::corrupt_base_file));
  }
}

TEST_CASE("a bit flip at every byte of a small log is caught; never silently applied") {
  // Two images of the same five blocks: after a crash (the base file's head
  // is before them: open scans them all) and after a clean close (the head
  // is past them: only absolute_consistency's open reads them; in the other
  // modes a reader finds the damage).
  small_log sl;
  memory_storage closed;
  {
    auto lg = tlog::create(closed, "l", ktm::test::small_log_options());
    REQUIRE(lg);
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    for (std::size_t i = 0; i < sl.records.size(); ++i)
      REQUIRE(*ma->append(as_bytes(sl.records[i]), record_type::data, append_flags::force) == sl.lsns[i]);
  }
  struct image { const char* name; memory_storage* st; };
  const image images[2] = {{"after a crash", &sl.st}, {"after a clean close", &closed}};
  struct region { std::string file; std::size_t from, to; };
  const std::size_t used = ktm::log::format::load32(ktm::test::bytes_of(sl.st, "l.blf").data() +
                                                    ktm::log::format::bf::used);
  REQUIRE(used == ktm::log::format::load32(ktm::test::bytes_of(closed, "l.blf").data() + ktm::log::format::bf::used));
  const std::size_t copy = ktm::log::format::base_copy_size;
  std::vector<region> regions{{"l.c0", 0, sl.block_offset(4) + 1024}, {"l.c1", 0, 512},
                              {"l.blf", 0, used}, {"l.blf", copy, copy + used}};
  using kind = ktm::position::kind;
  // The block of l.c0 that byte `off` is in (5: the container header).
  const auto block_of = [&](std::size_t off) {
    std::size_t b = 5;
    for (std::size_t i = 0; i < 5; ++i)
      if (off >= sl.block_offset(i)) b = i;
    return b;
  };
  // Every error names its place: the file flipped, and there the damaged
  // block (by its offset in the container or by its LSN) or the container
  // header (offset 0).
  const auto names_its_place = [&](const ktm::failure& f, const region& rg, std::size_t off) {
    CHECK(f.code.category() == ktm::error_category());
    CHECK((f.where.what == kind::offset || f.where.what == kind::lsn));
    CHECK(f.file == rg.file);
    if (rg.file != "l.c0") return;
    const std::size_t b = block_of(off);
    if (b == 5) {
      CHECK(f.code == errc::corrupt_container);
      CHECK(f.where.what == kind::offset);
      CHECK(f.where.value == 0);
    } else if (f.where.what == kind::offset) {
      CHECK(f.where.value == sl.block_offset(b));
    } else {
      CHECK(f.where.value == sl.lsns[b].raw());
    }
  };
  struct tally { int open_errors = 0, read_errors = 0, clean = 0, cut = 0; };
  tally t[2][3];
  for (int im = 0; im < 2; ++im) {
    for (const auto& rg : regions) {
      for (std::size_t off = rg.from; off < rg.to; ++off) {
        for (int mode = 0; mode < 3; ++mode) {
          INFO(images[im].name << ": " << rg.file << " offset " << off << " bit " << off % 8 << " mode "
                               << mode_name[mode]);
          auto img = ktm::test::crash_image(*images[im].st);
          ktm::test::flip_bit(img, rg.file, off, static_cast<int>(off % 8));
          const outcome o = attempt(mode, img);
          tally& n = t[im][mode];
          // whatever was returned is original, in order
          REQUIRE(o.got.size() <= sl.records.size());
          for (std::size_t i = 0; i < o.got.size(); ++i) CHECK(o.got[i] == sl.records[i]);
          if (!o.opened) {
            ++n.open_errors;
            names_its_place(o.error, rg, off);
            // point_in_time stops at a damaged block; only a damaged header
            // of the active container fails its open
            if (mode == 2) CHECK(o.error.code == errc::corrupt_container);
            continue;
          }
          if (o.status.code != errc::end_of_stream) {
            // damage open did not read: the read stops at the damaged block
            // with its error (never in absolute_consistency, whose open
            // read every block)
            ++n.read_errors;
            names_its_place(o.status, rg, off);
            CHECK(mode != 1);
            CHECK(o.got.size() == block_of(off));
            continue;
          }
          if (o.got == sl.records) {
            ++n.clean;
            CHECK_FALSE(o.report.damaged);
            continue;
          }
          // only tolerate and point_in_time modes may cut, and only a
          // reported tail, at the damaged block
          ++n.cut;
          CHECK(mode != 1);
          CHECK(o.report.damaged);
          CHECK(o.report.file == rg.file);
          CHECK(o.report.offset == sl.block_offset(o.got.size()));
          CHECK(o.report.at == sl.lsns[o.got.size()]);
          CHECK(o.got.size() == block_of(off));
        }
      }
    }
  }
  for (int im = 0; im < 2; ++im) {
    const tally(&m)[3] = t[im];
    INFO(images[im].name);
    // the same flips are harmless in every mode
    CHECK(m[0].clean > 0);
    CHECK(m[0].clean == m[1].clean);
    CHECK(m[0].clean == m[2].clean);
    // absolute_consistency fails its open wherever another mode would lose
    // a record (cut it, stop before it, or end a read there) or fail
    CHECK(m[1].read_errors == 0);
    CHECK(m[1].cut == 0);
    CHECK(m[1].open_errors > 0);
    CHECK(m[1].open_errors == m[0].open_errors + m[0].read_errors + m[0].cut);
    CHECK(m[1].open_errors == m[2].open_errors + m[2].read_errors + m[2].cut);
    // point_in_time fails only on the 64 bytes of the active container's header
    CHECK(m[2].open_errors == 64);
  }
  // after a crash open scans every block: a reader never meets damage
  CHECK(t[0][0].read_errors == 0);
  CHECK(t[0][2].read_errors == 0);
  CHECK(t[0][0].cut > 0);
  CHECK(t[0][2].cut > 0);
  // after a clean close nothing is scanned: damage is met by the reader
  CHECK(t[1][0].read_errors > 0);
  CHECK(t[1][2].read_errors > 0);
  CHECK(t[1][0].cut == 0);
  CHECK(t[1][2].cut == 0);
}
