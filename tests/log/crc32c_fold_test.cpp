// The folded CRC32C (carry-less multiplication) and the striped copy that
// rides on it: the same CRCs as the portable code, every byte where the
// sector layout puts it, and blocks that check and decode back.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <vector>

#include "ktm/log/block_codec.hpp"
#include "ktm/log/crc32c.hpp"
#include "ktm/log/detail/crc32c_fold.hpp"
#include "ktm/log/detail/crc32c_hybrid.hpp"
#include "ktm/log/detail/striped_copy.hpp"

namespace {

namespace d = ktm::log::detail;
namespace fmt = ktm::log::format;

std::vector<unsigned char> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 g(seed);
  std::vector<unsigned char> v(n);
  for (auto& b : v) b = static_cast<unsigned char>(g());
  return v;
}

// The portable register update continued from `crc` (a finished CRC value).
std::uint32_t portable_extend(std::uint32_t crc, const unsigned char* p, std::size_t n) {
  return ~d::crc32c_soft(~crc, p, n);
}

// The trailer a copy owes sector k (independently of striped_copy):
// stamp, index, and the begin flag for sector 0.
void expect_trailer(std::vector<std::byte>& want, std::size_t k, std::uint32_t stamp) {
  std::byte* t = want.data() + k * fmt::sector_size + fmt::sector_body;
  fmt::store<std::uint32_t>(t, stamp);
  fmt::store<std::uint16_t>(t + 4, static_cast<std::uint16_t>(k));
  fmt::store<std::uint16_t>(t + 6, k == 0 ? fmt::sector_begin : std::uint16_t{0});
}

// Body bytes [start, start + n) copied: every sector whose last body byte is
// among them gets its trailer.
void expect_trailers(std::vector<std::byte>& want, std::size_t start, std::size_t n, std::uint32_t stamp) {
  for (std::size_t k = 0; (k + 1) * fmt::sector_body <= start + n; ++k)
    if ((k + 1) * fmt::sector_body - 1 >= start) expect_trailer(want, k, stamp);
}

// A block of `block_size` bytes in containers of four, 512-byte I/O.
d::geometry block_geometry(std::uint32_t block_size, std::uint64_t log_id) {
  d::geometry g;
  g.block_size = block_size;
  g.container_size = 4 * block_size;
  g.io_align = 512;
  g.log_id = log_id;
  return g;
}

bool have_fold() {
#if KTM_CRC32C_HAVE_FOLD
  return d::cpu_has_crc32c_fold();
#else
  return false;
#endif
}

}  // namespace

TEST_CASE("the fold constants are x^e mod P; reflected and shifted by one") {
  // x^32 mod P is P's low part; x^31 is the top bit, reflected to bit 0
  CHECK(d::crc32c_fold_constant(31) == std::uint64_t{1} << 1);
  CHECK(d::crc32c_fold_constant(0) == std::uint64_t{1} << 32);
  std::uint32_t low = 0;  // reflect32(0x1edc6f41)
  for (int i = 0; i < 32; ++i)
    if (0x1edc6f41u & (1u << i)) low |= 1u << (31 - i);
  CHECK(low == ktm::log::detail::crc32c_poly);
  CHECK(d::crc32c_fold_constant(32) == std::uint64_t{low} << 1);
}

TEST_CASE("the default CRC32C agrees with the portable one for every length from 0 to 1400 and any start") {
  if (!have_fold()) WARN("this CPU has no AVX-512 VPCLMULQDQ: the default CRC32C here is the crc32 chains'");
  const auto data = random_bytes(1400 + 8, 3);
  std::mt19937 g(5);
  for (std::size_t n = 0; n <= 1400; ++n) {
    const std::size_t at = n % 8;
    const std::uint32_t start = static_cast<std::uint32_t>(g());
    INFO("length " << n << " at " << at);
    REQUIRE(ktm::log::crc32c_extend(start, data.data() + at, n) == portable_extend(start, data.data() + at, n));
  }
  // long ranges: many rounds of the folding loop, and every remainder
  const auto big = random_bytes(70000, 4);
  for (std::size_t n : {65536u, 65537u, 65536u + 63u, 65536u + 64u, 65536u + 255u, 69999u})
    CHECK(ktm::log::crc32c(big.data(), n) == ktm::log::crc32c_portable(big.data(), n));
}

TEST_CASE("the default CRC32C agrees with the portable one on long ranges of every length from 4000 to 6200") {
  // 4 KiB and up run the fold and four crc32 chains together: every split
  // of a range into the fold's head, the chains and a tail of 0-63 bytes
  const auto data = random_bytes(300000, 12);
  std::mt19937 g(13);
  for (std::size_t n = 4000; n <= 6200; ++n) {
    const std::size_t at = n % 13;
    const auto start = static_cast<std::uint32_t>(g());
    INFO("length " << n);
    REQUIRE(ktm::log::crc32c_extend(start, data.data() + at, n) == portable_extend(start, data.data() + at, n));
  }
  for (std::size_t n : {8191u, 8192u, 100000u, 131072u, 262144u + 17u, 299999u}) {
    INFO("length " << n);
    CHECK(ktm::log::crc32c(data.data(), n) == ktm::log::crc32c_portable(data.data(), n));
  }
}

#if KTM_CRC32C_HAVE_FOLD
TEST_CASE("shifting a CRC register by the hybrid's factor equals running it over 32 zero bytes per round") {
  if (!have_fold()) {
    WARN("this CPU has no AVX-512 VPCLMULQDQ: the hybrid CRC is not used here");
    return;
  }
  const std::vector<unsigned char> zeros(32 * 700, 0);
  std::mt19937 g(14);
  for (std::size_t m : {1u, 2u, 3u, 7u, 8u, 10u, 64u, 85u, 255u, 256u, 511u, 700u}) {
    const auto reg = static_cast<std::uint32_t>(g());
    INFO("rounds " << m);
    CHECK(d::crc32c_mul33(reg, d::crc32c_shift_factor(m)) == d::crc32c_soft(reg, zeros.data(), 32 * m));
  }
}

TEST_CASE("the fold and its striped copy put every byte and trailer where the sector layout puts them from any room") {
  if (!have_fold()) {
    WARN("this CPU has no AVX-512 VPCLMULQDQ: the fold is not used here");
    return;
  }
  const auto src = random_bytes(1400, 6);
  constexpr std::byte sentinel{0xee};
  std::vector<std::byte> got(8 * fmt::sector_size), want(8 * fmt::sector_size);
  for (std::size_t room = 1; room <= fmt::sector_body; ++room)
    for (std::size_t n : {256u, 257u, 300u, 319u, 320u, 383u, 447u, 511u, 640u, 1000u, 1399u}) {
      INFO("room " << room << ", length " << n);
      std::fill(got.begin(), got.end(), sentinel);
      std::fill(want.begin(), want.end(), sentinel);
      // independently of striped_copy: byte i goes to body offset start + i
      const std::size_t start = fmt::sector_body - room;
      for (std::size_t i = 0; i < n; ++i) want[d::raw_of_body(start + i)] = static_cast<std::byte>(src[i]);
      expect_trailers(want, start, n, 0xa1b2c3d4u);
      d::striped_copy out{got.data() + start, room, got.data(), 0xa1b2c3d4u};
      const std::uint32_t c = ~d::crc32c_fold(~0u, src.data(), n, out);
      REQUIRE(c == ktm::log::crc32c_portable(src.data(), n));
      REQUIRE(std::memcmp(got.data(), want.data(), got.size()) == 0);  // no other byte touched
      // the caller's copy is left where a scalar copy of the same bytes ends
      std::vector<std::byte> scratch(got.size());
      d::striped_copy scalar{scratch.data() + start, room, scratch.data(), 0xa1b2c3d4u};
      scalar.put(src.data(), n);
      REQUIRE(out.dst - got.data() == scalar.dst - scratch.data());
      REQUIRE(out.room == scalar.room);
    }
}
#endif

TEST_CASE("the scalar striped copy writes each trailer it passes") {
  const auto src = random_bytes(1200, 7);
  std::vector<std::byte> got(4 * fmt::sector_size, std::byte{0xee}), want(got);
  for (std::size_t start : {0u, 1u, 440u, 503u}) {
    std::fill(got.begin(), got.end(), std::byte{0xee});
    std::fill(want.begin(), want.end(), std::byte{0xee});
    for (std::size_t i = 0; i < src.size(); ++i) want[d::raw_of_body(start + i)] = static_cast<std::byte>(src[i]);
    expect_trailers(want, start, src.size(), 77);
    d::striped_copy out{got.data() + start, fmt::sector_body - start, got.data(), 77};
    out.put(src.data(), 700);
    out.put(src.data() + 700, src.size() - 700);
    CHECK(std::memcmp(got.data(), want.data(), got.size()) == 0);
  }
}

TEST_CASE("a block of records from 0 to 2100 bytes checks and decodes back to the same payloads") {
  const d::geometry g = block_geometry(256 * 1024, 0x1234);
  std::vector<std::byte> buf(g.block_size);
  const auto src = random_bytes(2101, 8);
  // lengths chosen so that the records start at many offsets in a sector
  std::vector<std::size_t> lengths;
  for (std::size_t n = 0; n <= 2100; n += 37) lengths.push_back(n);
  for (std::size_t n = 250; n <= 330; ++n) lengths.push_back(n);
  d::block_builder b;
  b.reset(buf.data(), g, 5, 2);
  std::vector<std::size_t> placed;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    const std::size_t n = lengths[i];
    if (!b.fits(n)) break;
    const auto at = i % (src.size() - n + 1);
    b.add(7, 1, ktm::log::lsn(1, 1, 0), ktm::log::lsn::null(),
          std::span<const std::byte>(reinterpret_cast<const std::byte*>(src.data()) + at, n));
    placed.push_back(i);
  }
  REQUIRE(placed.size() > 100);
  b.seal(g, 4, 1, 1);
  const auto info = d::parse_block_header(buf.data(), g);
  REQUIRE(info);
  REQUIRE(info->count == placed.size());
  std::vector<std::byte> body;
  std::vector<std::uint32_t> offsets;
  REQUIRE(d::check_block(buf.data(), *info, body, offsets) == ktm::errc{});
  REQUIRE(offsets.size() == placed.size());
  for (std::size_t k = 0; k < placed.size(); ++k) {
    const std::size_t n = lengths[placed[k]];
    const auto at = placed[k] % (src.size() - n + 1);
    const auto r = d::decode_record(body, offsets[k], *info, static_cast<std::uint32_t>(k));
    INFO("record " << k << ", " << n << " bytes");
    REQUIRE(r.payload.size() == n);
    CHECK(std::memcmp(r.payload.data(), src.data() + at, n) == 0);
    CHECK(r.stream_id == 7u);
  }
}

TEST_CASE("a sealed block carries every trailer with the end flag on its last sector only whatever the records' lengths") {
  d::geometry g = block_geometry(64 * 1024, 0x77);
  const auto src = random_bytes(20000, 9);
  std::vector<std::byte> buf(g.block_size);
  std::mt19937 rng(10);
  for (std::size_t io_align : {512u, 4096u})
    for (int round = 0; round < 300; ++round) {
      g.io_align = static_cast<std::uint32_t>(io_align);
      std::fill(buf.begin(), buf.end(), std::byte{0xee});
      d::block_builder b;
      b.reset(buf.data(), g, 1000 + round, 3);
      // the first record ends the body on a sector boundary in some rounds
      // (the copy, not seal, then wrote the last used sector's trailer)
      const std::size_t to_boundary = fmt::sector_body * (1 + round % 5) - fmt::bh::size - fmt::rh::size;
      std::size_t n = round % 3 == 0 ? to_boundary : rng() % 3000;
      for (int k = 0; k < 1 + round % 4 && b.fits(n); ++k) {
        b.add(1, 1, ktm::log::lsn(1, 1, 0), ktm::log::lsn::null(),
              std::span<const std::byte>(reinterpret_cast<const std::byte*>(src.data()), n));
        n = round % 3 == 0 ? 0 : rng() % (round % 2 ? 300 : 3000);
        if (round % 3 == 0) break;
      }
      const std::size_t used = b.used();
      const std::size_t len = b.seal(g, 999, 1, g.first_block_units());
      const std::size_t sectors = len / fmt::sector_size;
      INFO("round " << round << ", io_align " << io_align << ", body used " << used << ", sectors " << sectors);
      REQUIRE(len % io_align == 0);
      if (round % 3 == 0) CHECK(used % fmt::sector_body == 0);
      const std::uint32_t stamp = d::sector_stamp(1000 + round, 3);
      for (std::size_t i = 0; i < sectors; ++i) {
        const std::byte* t = buf.data() + i * fmt::sector_size + fmt::sector_body;
        INFO("sector " << i);
        REQUIRE(fmt::load32(t) == stamp);
        REQUIRE(fmt::load16(t + 4) == i);
        REQUIRE(fmt::load16(t + 6) == ((i == 0 ? fmt::sector_begin : 0) | (i + 1 == sectors ? fmt::sector_end : 0)));
      }
      if (len < buf.size()) REQUIRE(buf[len] == std::byte{0xee});  // nothing written past the block
      const auto info = d::parse_block_header(buf.data(), g);
      REQUIRE(info);
      std::vector<std::byte> body;
      std::vector<std::uint32_t> offsets;
      REQUIRE(d::check_block(buf.data(), *info, body, offsets) == ktm::errc{});
    }
}

TEST_CASE("a block check finds a flipped byte in any record small or large and passes the untouched block") {
  const d::geometry g = block_geometry(256 * 1024, 0x99);
  const auto src = random_bytes(40000, 11);
  // small records (checked three at a time), records around the size that
  // is checked alone (crc_alone_min), and large ones, mixed
  const std::vector<std::size_t> lengths = {10,   2000, 90,  d::crc_alone_min - 33, d::crc_alone_min - 32,
                                            300,  5,    700, 33000,                 64,
                                            1500, 1,    2,   3,                     d::crc_alone_min};
  std::vector<std::byte> buf(g.block_size);
  d::block_builder b;
  b.reset(buf.data(), g, 9, 1);
  std::vector<std::size_t> at;  // body offset of each payload
  for (std::size_t n : lengths) {
    REQUIRE(b.fits(n));
    at.push_back(b.used() + fmt::rh::size);
    b.add(3, 1, ktm::log::lsn(1, 1, 0), ktm::log::lsn::null(),
          std::span<const std::byte>(reinterpret_cast<const std::byte*>(src.data()), n));
  }
  b.seal(g, 8, 1, 1);
  const auto info = d::parse_block_header(buf.data(), g);
  REQUIRE(info);
  std::vector<std::byte> body;
  std::vector<std::uint32_t> offsets;
  REQUIRE(d::check_block(buf.data(), *info, body, offsets) == ktm::errc{});
  REQUIRE(offsets.size() == lengths.size());
  for (std::size_t k = 0; k < lengths.size(); ++k)
    for (std::size_t where : {std::size_t{0}, lengths[k] / 2, lengths[k] - 1}) {
      INFO("record " << k << " (" << lengths[k] << " bytes), payload byte " << where);
      std::vector<std::byte> bad(buf);
      bad[d::raw_of_body(at[k] + where)] ^= std::byte{0x10};
      CHECK(d::check_block(bad.data(), *info, body, offsets) == ktm::errc::checksum_mismatch);
    }
}
