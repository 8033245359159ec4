// Regression tests for the log's hardening: bugs found by the fuzzer and the
// fault matrix, and the partial contracts closed (advance_base durability,
// reserve growing, one writer for restart areas, a damaged container header
// at a container switch).
#include <catch2/catch.hpp>

#include <optional>

#include "ktm/log/crc32c.hpp"
#include "tests/support/byte_edit.hpp"
#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using ktm::errc;
using ktm::test::as_bytes;
using ktm::test::memory_storage;
using mlog = ktm::log::log<memory_storage>;
template <class R>
using rlog = ktm::log::log<memory_storage, R>;
namespace fmt = ktm::log::format;

namespace {

// Sets a u32 field of both base copies and fixes their checksums: a forged
// base file that passes the CRC.
void forge_base_u32(memory_storage& st, std::size_t field, std::uint32_t v) {
  auto& b = ktm::test::bytes_of(st, "l.blf");
  for (std::size_t k = 0; k < 2; ++k) {
    std::byte* p = b.data() + k * fmt::base_copy_size;
    const std::uint32_t used = fmt::load32(p + fmt::bf::used);
    if (used < fmt::bf::header_size || used > fmt::base_copy_size) continue;
    fmt::store<std::uint32_t>(p + field, v);
    fmt::store<std::uint32_t>(p + fmt::bf::crc, 0);
    fmt::store<std::uint32_t>(p + fmt::bf::crc, ktm::log::crc32c(p, used));
  }
}

std::vector<std::byte> rec(std::size_t n, char c = 'r') { return std::vector<std::byte>(n, std::byte(c)); }

}  // namespace

TEST_CASE("a base file naming an epoch near 2^32 is corrupt and open does not hang") {
  memory_storage st;
  {
    auto lg = mlog::create(st, "l", ktm::test::small_log_options());
    auto s = lg->create_stream("a");
    REQUIRE(s->marshalling_area()->append(as_bytes("x"), record_type::data, append_flags::force));
  }
  for (std::uint32_t e : {0xfffffff7u, 0xfffffffeu, 1u << 30}) {
    auto img = ktm::test::crash_image(st);
    forge_base_u32(img, fmt::bf::epoch, e);
    CHECK(mlog::open(img, "l").code() == errc::corrupt_base_file);
  }
  // below the limit it still opens, and the next epoch is larger
  auto img = ktm::test::crash_image(st);
  forge_base_u32(img, fmt::bf::epoch, (1u << 30) - 2);
  auto lg = mlog::open(img, "l");
  REQUIRE(lg);
  CHECK(ktm::test::read_all(*lg->open_stream("a")) == std::vector<std::string>{"x"});
}

TEST_CASE("opening with max_containers above the format limit is refused; never written") {
  memory_storage st;
  { auto lg = mlog::create(st, "l", ktm::test::small_log_options()); }
  log_options o;
  o.max_containers = fmt::max_containers + 1;
  CHECK(mlog::open(st, "l", o).code() == errc::too_many_containers);
  CHECK(mlog::open(st, "l"));  // the base file is untouched and valid
}

TEST_CASE("a log whose io_align is below the device's logical block size is rejected clearly") {
  memory_storage st(4096);  // 4 KiB logical sectors
  auto o = ktm::test::medium_log_options();
  o.io_align = 512;
  auto lg = mlog::create(st, "l", o);
  REQUIRE_FALSE(lg);
  CHECK(lg.code() == errc::io_align_below_device);
  CHECK(lg.error().message().find("logical block size") != std::string::npos);
  // io_align 4096 works on it
  memory_storage st2(4096);
  o.io_align = 4096;
  {
    auto ok = mlog::create(st2, "l", o);
    REQUIRE(ok);
    REQUIRE(ok->create_stream("a")->marshalling_area()->append(as_bytes("y"), record_type::data,
                                                                 append_flags::force));
  }
  REQUIRE(mlog::open(st2, "l"));
  // a log made with io_align 512, moved to a 4 KiB device, does not open
  memory_storage small;
  { auto l512 = mlog::create(small, "l", ktm::test::medium_log_options()); }
  memory_storage moved(4096);
  for (const auto& n : small.names()) {
    auto d = moved.open(n, ktm::open_mode::create_new);
    d->shared_buffer()->bytes = ktm::test::read_all(small, n);
  }
  auto reopened = mlog::open(moved, "l");
  REQUIRE_FALSE(reopened);
  CHECK(reopened.code() == errc::io_align_below_device);
  CHECK(reopened.error().file == "l.blf");
}

TEST_CASE("an advanced base is durable once the next forced append or flush returns") {
  for (int how = 0; how < 4; ++how) {
    INFO("made durable by " << (how == 0 ? "a forced append" : how == 1 ? "flush_all" : how == 2 ? "flush_to_lsn" : "a restart area"));
    memory_storage st;
    auto o = ktm::test::medium_log_options();
    o.persist_on_close = false;
    auto lg = mlog::create(st, "l", o);
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    std::vector<lsn> l;
    for (int i = 0; i < 4; ++i) l.push_back(*ma->append(as_bytes("r" + std::to_string(i)), record_type::data, append_flags::force));
    REQUIRE(s->advance_base(l[2]));
    switch (how) {
      case 0: REQUIRE(ma->append(as_bytes("after"), record_type::data, append_flags::force)); break;
      case 1: REQUIRE(lg->flush_all()); break;
      case 2: REQUIRE(ma->flush_to_lsn(l[3])); break;
      default: REQUIRE(ma->write_restart_area(as_bytes("ra"))); break;
    }
    auto img = ktm::test::crash_image(st);
    auto lg2 = mlog::open(img, "l");
    REQUIRE(lg2);
    auto s2 = lg2->open_stream("a");
    CHECK(s2->base_lsn() == l[2]);
    CHECK(s2->read_record(l[1]).code() == errc::before_base);
    CHECK(ktm::test::read_all(*s2).front() == "r2");
  }
}

TEST_CASE("an advance already written with the base file costs no extra flush") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  auto a = ma->append(as_bytes("a"), record_type::data, append_flags::force);
  REQUIRE(s->advance_base(*a));
  REQUIRE(lg->create_stream("b"));  // writes the base file (with the advance)
  auto blf = st.open("l.blf", ktm::open_mode::open_existing);
  const auto before = blf->flush_count();
  REQUIRE(ma->append(as_bytes("b"), record_type::data, append_flags::force));
  CHECK(blf->flush_count() == before);
}

TEST_CASE("reserve grows the log like append does") {
  memory_storage st;
  auto o = ktm::test::medium_log_options();
  o.grow = true;
  o.max_containers = 4;
  auto lg = mlog::create(st, "l", o);
  auto s = lg->create_stream("a");
  auto ma = s->marshalling_area();
  REQUIRE(ma->reserve(1, 150000));  // more than two containers hold
  CHECK(lg->containers().size() > 2);
  CHECK(lg->containers().size() <= 4);
  // the reserved room exists: the compensation record can be written
  REQUIRE(ma->append(rec(7000), record_type::data, append_flags::use_reservation));
  // beyond the maximum: log_full
  CHECK(ma->reserve(1, 1 << 20).code() == errc::log_full);
}

TEST_CASE("reserve asks the log-full callback; and reports a tail still pinned") {
  memory_storage st;
  auto o = ktm::test::medium_log_options();
  std::optional<ktm::log::stream<memory_storage>> s;
  lsn last;
  int calls = 0;
  bool let_go = true;
  o.on_full = [&](const log_full_info& fi) {
    ++calls;
    CHECK(fi.pinning_stream == "a");
    return let_go && static_cast<bool>(s->advance_base(last));
  };
  auto lg = mlog::create(st, "l", o);
  s = *lg->create_stream("a");
  auto ma = s->marshalling_area();
  for (int i = 0; i < 25; ++i) last = *ma->append(rec(3000));
  REQUIRE(ma->reserve(1, 40000));
  CHECK(calls == 1);
  REQUIRE(ma->reserve(-1, -40000));
  for (int i = 0; i < 25; ++i) last = *ma->append(rec(3000));
  let_go = false;
  auto r = ma->reserve(1, 100000);
  CHECK(r.code() == errc::tail_pinned);
  CHECK(r.error().file == "a");
  CHECK(calls >= 2);
}

TEST_CASE("a stream's own restart area respects the one-writer rule") {
  memory_storage st;
  auto lg = mlog::create(st, "l", ktm::test::medium_log_options());
  auto s = lg->create_stream("a");
  {
    auto ma = s->marshalling_area();
    REQUIRE(ma);
    CHECK(s->write_restart_area(as_bytes("r")).code() == errc::writer_exists);
    REQUIRE(ma->write_restart_area(as_bytes("through the writer")));
  }
  auto r = s->write_restart_area(as_bytes("no writer open"));
  REQUIRE(r);
  CHECK(s->read_restart_area()->at == *r);
  // the call gave the writer back
  CHECK(s->marshalling_area());
}

namespace {
// Forced records until the writer has put `blocks_in_c1` blocks into the
// second container (logical 1, file l.c1); then a crash image.
struct switched_log {
  memory_storage st;
  std::vector<std::string> before, after;
  explicit switched_log(int blocks_in_c1) {
    auto o = ktm::test::small_log_options();
    o.persist_on_close = false;
    auto lg = mlog::create(st, "l", o);
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    int in_c1 = 0;
    for (int i = 0; in_c1 < blocks_in_c1; ++i) {
      std::string p = "rec" + std::to_string(i);
      auto l = ma->append(as_bytes(p), record_type::data, append_flags::force);
      REQUIRE(l);
      if (l->container() == 1) {
        ++in_c1;
        after.push_back(p);
      } else {
        before.push_back(p);
      }
    }
    st = ktm::test::crash_image(st);
  }
};
}  // namespace

TEST_CASE("a damaged header of the container the log moved into is damage; not a clean end") {
  for (int blocks = 1; blocks <= 2; ++blocks) {
    INFO(blocks << " forced block(s) in the damaged container");
    switched_log sl(blocks);
    ktm::test::flip_bit(sl.st, "l.c1", 30, 1);  // the header's logical id
    {
      auto img = ktm::test::crash_image(sl.st);
      auto lg = rlog<absolute_consistency>::open(img, "l");
      REQUIRE_FALSE(lg);
      CHECK(lg.code() == errc::corrupt_container);
      CHECK(lg.error().file == "l.c1");
    }
    {
      auto img = ktm::test::crash_image(sl.st);
      auto lg = rlog<point_in_time>::open(img, "l");
      REQUIRE(lg);
      CHECK(lg->recovery_report().damaged);
      CHECK(lg->recovery_report().reason == errc::corrupt_container);
      CHECK(lg->recovery_report().file == "l.c1");
      CHECK(ktm::test::read_all(*lg->open_stream("a")) == sl.before);
    }
    {
      auto img = ktm::test::crash_image(sl.st);
      auto lg = rlog<tolerate_corrupted_tail>::open(img, "l");
      if (blocks == 1) {
        // nothing on disk proves the block after the header was durable: cut
        REQUIRE(lg);
        CHECK(lg->recovery_report().damaged);
        CHECK(lg->recovery_report().reason == errc::corrupt_container);
        CHECK(ktm::test::read_all(*lg->open_stream("a")) == sl.before);
      } else {
        // the second block says the first was durable: an error
        REQUIRE_FALSE(lg);
        CHECK(lg.code() == errc::corrupt_container);
        CHECK(lg.error().file == "l.c1");
      }
    }
  }
}

TEST_CASE("an intact switch to the next container still reads every record") {
  switched_log sl(2);
  auto lg = rlog<absolute_consistency>::open(sl.st, "l");
  REQUIRE(lg);
  auto all = sl.before;
  all.insert(all.end(), sl.after.begin(), sl.after.end());
  CHECK(ktm::test::read_all(*lg->open_stream("a")) == all);
  CHECK_FALSE(lg->recovery_report().damaged);
}
