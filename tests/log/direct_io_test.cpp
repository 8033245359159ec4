// Reliability matrix row 9 for the log: over direct_storage (O_DIRECT) on a
// file under $TEST_TMPDIR, with io_align 4096 and 512. A log whose io_align
// is below the device's logical block size is refused with a clear error
// (errc::io_align_below_device), at create and at open. If the file system
// refuses O_DIRECT, the test checks errc::unsupported instead and warns.
#include <catch2/catch.hpp>

#include "ktm/io/direct_device.hpp"
#include "tests/support/log_fixtures.hpp"
#include "tests/support/temp_dir.hpp"

using namespace ktm::log;
using ktm::errc;
using ktm::io::direct_options;
using ktm::io::direct_storage;
using ktm::test::as_bytes;
using dlog = ktm::log::log<direct_storage>;

namespace {

// The logical block size direct I/O needs here, or 0 if O_DIRECT is refused.
std::size_t probe(direct_storage& s) {
  auto d = s.open("probe", ktm::open_mode::create_new);
  if (!d) {
    CHECK(d.code() == errc::unsupported);
    WARN("O_DIRECT refused by the file system of " << s.directory().root() << ": checked that path instead");
    return 0;
  }
  const std::size_t b = d->logical_block_size();
  (void)s.remove("probe");
  return b;
}

log_options options(std::uint32_t io_align, bool preformat = false) {
  auto o = ktm::test::medium_log_options();  // blocks of 8 KiB, containers of 64 KiB
  o.io_align = io_align;
  o.preformat_containers = preformat;
  return o;
}

// Writes, closes, crashes nothing (O_DIRECT + fdatasync), reopens, reads.
void round_trip(direct_storage& st, const std::string& name, std::uint32_t io_align, bool preformat = false) {
  std::vector<std::string> want;
  {
    auto lg = dlog::create(st, name, options(io_align, preformat));
    INFO((lg ? std::string() : lg.error().message()));
    REQUIRE(lg);
    auto s = lg->create_stream("a");
    auto ma = s->marshalling_area();
    for (int i = 0; i < 40; ++i) {  // forced and queued, across containers
      want.push_back("rec" + std::to_string(i) + std::string(static_cast<std::size_t>(i * 97 % 3000), 'd'));
      REQUIRE(ma->append(as_bytes(want.back()), record_type::data,
                         i % 3 == 0 ? append_flags::force : append_flags::none));
    }
    REQUIRE(ma->write_restart_area(as_bytes("restart")));
    want.push_back("");  // the restart record's payload is not compared
  }
  auto lg = dlog::open(st, name);
  INFO((lg ? std::string() : lg.error().message()));
  REQUIRE(lg);
  auto got = ktm::test::read_all(*lg->open_stream("a"));
  REQUIRE(got.size() == want.size());
  for (std::size_t i = 0; i + 1 < got.size(); ++i) CHECK(got[i] == want[i]);
  auto ra = lg->open_stream("a")->read_restart_area();
  REQUIRE(ra);
  CHECK(ktm::test::as_string(ra->data) == "restart");
}

}  // namespace

TEST_CASE("row 9: a log over O_DIRECT files works with io_align 4096 and 512") {
  ktm::test::temp_dir dir;
  direct_storage st(dir.path().string());
  const std::size_t lbs = probe(st);
  if (lbs == 0) {
    CHECK(dlog::create(st, "x", options(4096)).code() == errc::unsupported);
    return;
  }
  INFO("detected logical block size " << lbs);
  for (std::uint32_t a : {4096u, 512u}) {
    INFO("io_align " << a);
    if (a >= lbs) {
      round_trip(st, "log" + std::to_string(a), a);
    } else {
      auto lg = dlog::create(st, "log" + std::to_string(a), options(a));
      REQUIRE_FALSE(lg);
      CHECK(lg.code() == errc::io_align_below_device);
    }
  }
}

TEST_CASE("row 9: a log over O_DIRECT preformats its containers with aligned writes") {
  ktm::test::temp_dir dir;
  direct_storage st(dir.path().string());
  const std::size_t lbs = probe(st);
  if (lbs == 0) return;
  for (std::uint32_t a : {4096u, 512u})
    if (a >= lbs) round_trip(st, "pre" + std::to_string(a), a, true);
}

TEST_CASE("row 9: a log over O_DIRECT with O_DSYNC works too") {
  ktm::test::temp_dir dir;
  direct_storage st(dir.path().string(), direct_options{true, 0});
  const std::size_t lbs = probe(st);
  if (lbs == 0) return;
  round_trip(st, "dsync", static_cast<std::uint32_t>(std::max<std::size_t>(lbs, 512)));
}

TEST_CASE("row 9: io_align below the device's logical block size is refused at create and at open") {
  ktm::test::temp_dir dir;
  direct_storage st4k(dir.path().string(), direct_options{false, 4096});  // 4 KiB sectors
  if (probe(st4k) == 0) return;
  auto lg = dlog::create(st4k, "small", options(512));
  REQUIRE_FALSE(lg);
  CHECK(lg.code() == errc::io_align_below_device);
  CHECK(lg.error().message().find("logical block size") != std::string::npos);
  INFO(lg.error().message());
  CHECK(lg.error().file.find("small") == 0);
  // a log made with io_align 512 on a device that allows it, then opened
  // where sectors are 4 KiB
  direct_storage st(dir.path().string());
  const std::size_t lbs = probe(st);
  if (lbs > 512) return;  // cannot make an io_align 512 log here
  { REQUIRE(dlog::create(st, "moved", options(512))); }
  auto reopened = dlog::open(st4k, "moved");
  REQUIRE_FALSE(reopened);
  CHECK(reopened.code() == errc::io_align_below_device);
  CHECK(reopened.error().file == "moved.blf");
}
