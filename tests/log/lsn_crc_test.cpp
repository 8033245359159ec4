// LSN packing, order and sentinels; CRC32C known vectors; record CRCs.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "ktm/log/block_codec.hpp"
#include "ktm/log/crc32c.hpp"
#include "ktm/log/lsn.hpp"

using ktm::log::lsn;

TEST_CASE("an LSN packs container; block offset and record number") {
  lsn l(0x12345678u, 0x7abcde, 0x1ff);
  CHECK(l.container() == 0x12345678u);
  CHECK(l.block_offset() == 0x7abcdeu);
  CHECK(l.record() == 0x1ffu);
  CHECK(l.raw() == ((0x12345678ull << 32) | (0x7abcdeull << 9) | 0x1ff));
  CHECK(l.block_byte_offset() == 0x7abcdeull * 512);
  CHECK(l.block_start() == lsn(0x12345678u, 0x7abcde, 0));
}

TEST_CASE("LSNs are ordered by container; then offset; then record") {
  CHECK(lsn(1, 0, 511) < lsn(1, 1, 0));
  CHECK(lsn(1, lsn::max_offset, 511) < lsn(2, 1, 0));
  CHECK(lsn(3, 5, 1) == lsn(3, 5, 1));
}

TEST_CASE("null is below every record and invalid above") {
  CHECK(lsn::null().is_null());
  CHECK_FALSE(lsn::null().is_valid());
  CHECK_FALSE(lsn::invalid().is_valid());
  CHECK(lsn::null() < lsn(0, 1, 0));
  CHECK(lsn(lsn::max_container, lsn::max_offset, lsn::max_record) < lsn::invalid());
  CHECK(lsn(lsn::max_container, lsn::max_offset, lsn::max_record).is_valid());
}

TEST_CASE("CRC32C matches the known vectors") {
  using ktm::log::crc32c;
  CHECK(crc32c("123456789", 9) == 0xe3069283u);
  std::vector<unsigned char> z(32, 0), f(32, 0xff), up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[static_cast<std::size_t>(i)] = static_cast<unsigned char>(i);
    down[static_cast<std::size_t>(i)] = static_cast<unsigned char>(31 - i);
  }
  CHECK(crc32c(z.data(), 32) == 0x8a9136aau);
  CHECK(crc32c(f.data(), 32) == 0x62a8ab43u);
  CHECK(crc32c(up.data(), 32) == 0x46dd794eu);
  CHECK(crc32c(down.data(), 32) == 0x113fdb5cu);
  CHECK(crc32c("", 0) == 0u);
}

TEST_CASE("the portable and the default CRC32C agree; and extending equals one pass") {
  std::mt19937 g(7);
  std::vector<unsigned char> d(10007);
  for (auto& b : d) b = static_cast<unsigned char>(g());
  for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 31u, 32u, 33u, 63u, 126u, 383u, 4096u, 10007u}) {
    CHECK(ktm::log::crc32c(d.data(), n) == ktm::log::crc32c_portable(d.data(), n));
    const std::size_t h = n / 3;
    CHECK(ktm::log::crc32c_extend(ktm::log::crc32c(d.data(), h), d.data() + h, n - h) ==
          ktm::log::crc32c(d.data(), n));
  }
}

TEST_CASE("record CRCs checked three at a time agree with one at a time; for record lengths 32 to 72") {
  namespace rh = ktm::log::format::rh;
  std::mt19937 g(11);
  // a body of records of lengths 32..32+40, each length in many triples
  // beside others, each carrying its CRC; check_record_crcs takes them three
  // at a time
  std::vector<std::byte> body;
  std::vector<std::uint32_t> offsets;
  for (std::size_t a = 0; a < 41; ++a)
    for (std::size_t b : {0u, 1u, 5u, 8u, 23u, 40u}) {
      for (std::size_t len : {a, b, (a * 7 + b) % 41}) {
        offsets.push_back(static_cast<std::uint32_t>(body.size()));
        const std::size_t n = rh::size + len;
        for (std::size_t i = 0; i < n; ++i) body.push_back(static_cast<std::byte>(g()));
        std::byte* h = body.data() + offsets.back();
        ktm::log::format::store<std::uint32_t>(h + rh::crc, ktm::log::detail::record_crc(h, n));
      }
    }
  REQUIRE(offsets.size() % 3 == 0);
  // all of them (three at a time), and the first m for m = 1, 2, 4, 5 and
  // one or two fewer than all: one or two left over after the threes
  std::vector<std::size_t> counts = {1, 2, 4, 5, offsets.size() - 1, offsets.size() - 2, offsets.size()};
  for (std::size_t m : counts) {
    INFO("records " << m);
    const std::size_t end = m == offsets.size() ? body.size() : offsets[m];
    REQUIRE(ktm::log::detail::check_record_crcs(body.data(), offsets.data(), m, end));
    // a flipped byte anywhere but the crc field is found, whichever chain
    // and tail step it falls in: in the first records, and in the last two
    std::vector<std::size_t> which;
    for (std::size_t k = 0; k < std::min<std::size_t>(m, 24); ++k) which.push_back(k);
    if (m > 24) which.insert(which.end(), {m - 2, m - 1});
    for (std::size_t k : which) {
      const std::size_t from = offsets[k], to = k + 1 < m ? offsets[k + 1] : end;
      for (std::size_t i = from; i < to; ++i) {
        if (i >= from + rh::crc && i < from + rh::crc + 4) continue;
        body[i] ^= std::byte{0x20};
        CHECK_FALSE(ktm::log::detail::check_record_crcs(body.data(), offsets.data(), m, end));
        body[i] ^= std::byte{0x20};
      }
    }
  }
}
