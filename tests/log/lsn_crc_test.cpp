// LSN packing, order and sentinels; CRC32C known vectors.
#include <catch2/catch.hpp>

#include <random>
#include <vector>

#include "ktm/log/crc32c.hpp"
#include "ktm/log/lsn.hpp"

using ktm::log::lsn;

TEST_CASE("an LSN packs container, block offset and record number") {
  lsn l(0x12345678u, 0x7abcde, 0x1ff);
  CHECK(l.container() == 0x12345678u);
  CHECK(l.block_offset() == 0x7abcdeu);
  CHECK(l.record() == 0x1ffu);
  CHECK(l.raw() == ((0x12345678ull << 32) | (0x7abcdeull << 9) | 0x1ff));
  CHECK(l.block_byte_offset() == 0x7abcdeull * 512);
  CHECK(l.block_start() == lsn(0x12345678u, 0x7abcde, 0));
}

TEST_CASE("LSNs are ordered by container, then offset, then record") {
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

TEST_CASE("the portable and the default CRC32C agree, and extending equals one pass") {
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
