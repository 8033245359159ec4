// Tests of ktm/io/memory_device.hpp and of tests/support/byte_edit.hpp.
#include <catch2/catch.hpp>

#include <cstddef>
#include <vector>

#include "ktm/io/memory_device.hpp"
#include "tests/io/block_device_laws.hpp"
#include "tests/io/io_policy_laws.hpp"
#include "tests/support/byte_edit.hpp"

using ktm::errc;
using ktm::open_mode;
using ktm::io::memory_device;
using ktm::io::memory_storage;

TEST_CASE("a memory device obeys the block device laws at every logical block size") {
  for (std::size_t b : {1u, 512u, 4096u}) {
    INFO("logical block size " << b);
    ktm::test::check_block_device_laws([b] { return memory_device(b); });
  }
}

TEST_CASE("a memory storage obeys the io policy laws") {
  memory_storage s;
  ktm::test::check_io_policy_laws(s);
  memory_storage s4k(4096);
  ktm::test::check_io_policy_laws(s4k);
}

TEST_CASE("a memory device counts its flushes and shares them with its copies") {
  memory_device d;
  auto copy = d;
  CHECK(d.flush_count() == 0);
  CHECK_FALSE(d.flush());
  CHECK_FALSE(copy.flush());
  CHECK(d.flush_count() == 2);
}

TEST_CASE("a memory device rejects a misaligned grow") {
  memory_device d(512);
  CHECK(d.grow(100) == errc::misaligned);
  CHECK(d.size() == 0);
}

TEST_CASE("byte_edit flips; overwrites; fills and truncates a named file") {
  memory_storage s;
  auto d = s.open("f", open_mode::create_new);
  REQUIRE(d);
  REQUIRE_FALSE(d->grow(16));
  auto hello = ktm::test::bytes_of("hello");
  REQUIRE_FALSE(d->write(2, hello));

  ktm::test::flip_bit(s, "f", 2, 0);  // 'h' (0x68) -> 0x69
  auto all = ktm::test::read_all(s, "f");
  CHECK(all[2] == std::byte{0x69});
  CHECK(all[3] == std::byte{'e'});

  ktm::test::overwrite(s, "f", 0, ktm::test::bytes_of("AB"));
  ktm::test::fill(s, "f", 10, 6, std::byte{0xff});
  all = ktm::test::read_all(s, "f");
  CHECK(all[0] == std::byte{'A'});
  CHECK(all[1] == std::byte{'B'});
  CHECK(all[9] == std::byte{0});
  CHECK(all[15] == std::byte{0xff});

  ktm::test::truncate(s, "f", 4);
  CHECK(ktm::test::file_size(s, "f") == 4);
  CHECK(d->size() == 4);  // every handle sees the edit
}

TEST_CASE("byte_edit refuses a missing file and a range past the end") {
  memory_storage s;
  CHECK_THROWS_AS(ktm::test::flip_bit(s, "nope", 0, 0), std::out_of_range);
  auto d = s.open("f", open_mode::create_new);
  REQUIRE(d);
  REQUIRE_FALSE(d->grow(4));
  CHECK_THROWS_AS(ktm::test::flip_bit(s, "f", 4, 0), std::out_of_range);
  CHECK_THROWS_AS(ktm::test::truncate(s, "f", 5), std::out_of_range);
  CHECK_THROWS_AS(ktm::test::overwrite(s, "f", 3, ktm::test::bytes_of("xy")), std::out_of_range);
}
