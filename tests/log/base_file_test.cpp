// The base file: two shadow copies, generations, validation of each copy.
#include <catch2/catch.hpp>

#include "ktm/log/format.hpp"
#include "tests/support/log_fixtures.hpp"

using namespace ktm::log;
using ktm::errc;
using ktm::test::as_bytes;
using ktm::test::memory_storage;
using mlog = ktm::log::log<memory_storage>;
namespace bf = ktm::log::format::bf;
constexpr std::size_t copy = ktm::log::format::base_copy_size;

namespace {
// A log whose base file has been written at least twice (both slots valid).
memory_storage two_generations() {
  memory_storage st;
  auto o = ktm::test::medium_log_options();
  o.persist_on_close = false;  // the last base write is the one that adds "b"
  auto lg = mlog::create(st, "l", o);
  REQUIRE(lg->create_stream("a"));
  REQUIRE(lg->create_stream("b"));
  return st;
}
std::uint64_t generation(memory_storage& st, std::size_t slot) {
  return ktm::log::format::load64(ktm::test::bytes_of(st, "l.blf").data() + slot * copy + bf::generation);
}
std::size_t newest_slot(memory_storage& st) { return generation(st, 0) > generation(st, 1) ? 0 : 1; }
}  // namespace

TEST_CASE("when the newest base copy is corrupt the other copy is used") {
  auto st = two_generations();
  const std::size_t n = newest_slot(st);
  ktm::test::flip_bit(st, "l.blf", n * copy + bf::header_size + 40);  // inside a stream name
  auto lg = mlog::open(st, "l");
  REQUIRE(lg);
  // the older copy knows only stream "a"
  CHECK(lg->streams() == std::vector<std::string>{"a"});
}

TEST_CASE("when both base copies are corrupt open fails with corrupt_base_file") {
  auto st = two_generations();
  ktm::test::flip_bit(st, "l.blf", bf::log_id);
  ktm::test::flip_bit(st, "l.blf", copy + bf::log_id);
  auto lg = mlog::open(st, "l");
  REQUIRE_FALSE(lg);
  CHECK(lg.code() == errc::corrupt_base_file);
  CHECK(lg.error().file == "l.blf");
  CHECK(lg.error().where.what == ktm::position::kind::offset);
}

TEST_CASE("a zeroed checksum is not trusted and does not steer open to a forged copy") {
  auto st = two_generations();
  const std::size_t n = newest_slot(st);
  auto& b = ktm::test::bytes_of(st, "l.blf");
  // zero the newest copy's CRC
  for (int i = 0; i < 4; ++i) b[n * copy + bf::crc + static_cast<std::size_t>(i)] = std::byte{0};
  // forge the other copy: an out-of-range container count with a valid CRC
  const std::size_t o = (1 - n) * copy;
  ktm::log::format::store<std::uint32_t>(b.data() + o + bf::container_count, 100000);
  ktm::log::format::store<std::uint32_t>(b.data() + o + bf::crc, 0);
  const std::uint32_t used = ktm::log::format::load32(b.data() + o + bf::used);
  ktm::log::format::store<std::uint32_t>(b.data() + o + bf::crc, ktm::log::crc32c(b.data() + o, used));
  auto lg = mlog::open(st, "l");
  REQUIRE_FALSE(lg);
  CHECK(lg.code() == errc::corrupt_base_file);
}

TEST_CASE("a forged copy with a valid checksum but bad fields is rejected field by field") {
  auto st = two_generations();
  auto& b = ktm::test::bytes_of(st, "l.blf");
  struct edit { std::size_t off; std::uint32_t v; };
  for (edit e : {edit{bf::stream_count, 300}, edit{bf::head_container, 77}, edit{bf::head_offset, 0},
                 edit{bf::block_size, 1000}, edit{bf::used, 1 << 20}, edit{bf::io_align, 513},
                 edit{bf::header_size + 4, 200} /* first stream's name length */}) {
    auto saved = b;
    for (std::size_t slot = 0; slot < 2; ++slot) {
      std::byte* p = b.data() + slot * copy;
      ktm::log::format::store<std::uint32_t>(p + e.off, e.v);
      const std::uint32_t used = std::min<std::uint32_t>(ktm::log::format::load32(p + bf::used), copy);
      ktm::log::format::store<std::uint32_t>(p + bf::crc, 0);
      ktm::log::format::store<std::uint32_t>(p + bf::crc, ktm::log::crc32c(p, used));
    }
    auto lg = mlog::open(st, "l");
    CHECK_FALSE(lg);
    b = saved;
  }
  CHECK(mlog::open(st, "l"));
}

TEST_CASE("a base file that is too short is corrupt; a missing one is not found") {
  memory_storage st;
  CHECK(mlog::open(st, "nope").code() == errc::not_found);
  auto d = st.open("x.blf", ktm::open_mode::create_new);
  REQUIRE(d->grow(4096) == std::error_code{});
  CHECK(mlog::open(st, "x").code() == errc::corrupt_base_file);
}

TEST_CASE("creating a log validates its geometry") {
  memory_storage st;
  auto o = ktm::test::small_log_options();
  o.containers = 1;
  CHECK(mlog::create(st, "a", o).code() == errc::too_few_containers);
  o = ktm::test::small_log_options();
  o.block_size = 1000;
  CHECK(mlog::create(st, "b", o).code() == errc::invalid_argument);
  o = ktm::test::small_log_options();
  REQUIRE(mlog::create(st, "c", o));
  CHECK(mlog::create(st, "c", o).code() == errc::already_exists);
}
