// tests/io/block_device_laws.hpp: the block_device laws, checked on any model.
//
// check_block_device_laws(make) checks every law of
// ktm/concepts/block_device.hpp that does not need a failing device, on the
// device `make()` returns, which must be fresh and empty (size() == 0):
//   exact transfers; reads return the latest write or zeros; grow zero-fills
//   and never shrinks; out-of-range and misaligned calls fail with their code
//   and move nothing; flush keeps contents; a seeded random workload agrees
//   with a byte-vector model.
// check_fail_stop_law(d) checks the fail-stop law on a device whose next
// flush fails: that flush reports an error, every later call device_failed.
// Call them inside a TEST_CASE (they use Catch2 assertions).
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include "ktm/concepts/block_device.hpp"
#include "ktm/error.hpp"
#include "ktm/io/aligned_buffer.hpp"

namespace ktm::test {

// Deterministic bytes: the same (seed, index) always gives the same byte.
inline void fill_pattern(std::span<std::byte> b, std::uint32_t seed) {
  std::uint32_t x = seed * 2654435761u + 0x9e3779b9u;
  for (auto& c : b) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    c = std::byte(x & 0xff);
  }
}

inline bool all_equal(std::span<const std::byte> b, std::byte v) {
  return std::all_of(b.begin(), b.end(), [v](std::byte c) { return c == v; });
}

// The whole device, read in one aligned call.
template <class D>
std::vector<std::byte> contents(D& d) {
  const auto n = static_cast<std::size_t>(d.size());
  io::aligned_buffer buf(n, d.logical_block_size());
  REQUIRE_FALSE(d.read(0, buf.span()));
  return {buf.data(), buf.data() + n};
}

template <class Make>
void check_block_device_laws(Make&& make) {
  auto d = make();
  using D = std::remove_cvref_t<decltype(d)>;
  static_assert(ktm::block_device<D>);
  const std::size_t B = d.logical_block_size();
  INFO("logical block size " << B);
  REQUIRE(B != 0);
  REQUIRE((B & (B - 1)) == 0);
  REQUIRE(d.size() == 0);

  // grow(n) with n <= size() does nothing; otherwise size() becomes n, zero-filled.
  CHECK_FALSE(d.grow(0));
  CHECK(d.size() == 0);
  REQUIRE_FALSE(d.grow(8 * B));
  REQUIRE(d.size() == 8 * B);
  CHECK_FALSE(d.grow(4 * B));
  CHECK(d.size() == 8 * B);
  CHECK_FALSE(d.grow(8 * B));
  CHECK(d.size() == 8 * B);
  std::vector<std::byte> model(8 * B, std::byte{0});
  CHECK(contents(d) == model);

  // A read returns the latest write to each byte, zero where never written.
  io::aligned_buffer a(2 * B, B), c(2 * B, B);
  fill_pattern(a.span(), 1);
  fill_pattern(c.span(), 2);
  REQUIRE_FALSE(d.write(B, a.span()));
  std::copy(a.span().begin(), a.span().end(), model.begin() + B);
  CHECK(contents(d) == model);
  REQUIRE_FALSE(d.write(2 * B, c.span()));
  std::copy(c.span().begin(), c.span().end(), model.begin() + 2 * B);
  CHECK(contents(d) == model);
  io::aligned_buffer part(B, B);
  REQUIRE_FALSE(d.read(2 * B, part.span()));
  CHECK(std::equal(part.span().begin(), part.span().end(), c.span().begin()));

  // Zero-length transfers inside or at the end succeed and move nothing.
  CHECK_FALSE(d.read(8 * B, part.span().first(0)));
  CHECK_FALSE(d.write(8 * B, part.span().first(0)));
  CHECK_FALSE(d.write(0, part.span().first(0)));

  // A range not within [0, size()) fails with out_of_range and moves nothing.
  auto out_of_range = [&](std::uint64_t off, std::size_t len) {
    INFO("range at " << off << " length " << len);
    io::aligned_buffer r(len, B);
    std::fill(r.span().begin(), r.span().end(), std::byte{0xAA});
    CHECK(d.read(off, r.span()) == errc::out_of_range);
    CHECK(all_equal(r.span(), std::byte{0xAA}));
    CHECK(d.write(off, r.span()) == errc::out_of_range);
    CHECK(contents(d) == model);
  };
  out_of_range(8 * B, B);      // starts at the end
  out_of_range(7 * B, 2 * B);  // straddles the end
  out_of_range(9 * B, B);      // starts past the end
  out_of_range(std::numeric_limits<std::uint64_t>::max() / B * B, B);  // offset + length overflows

  // Offsets, lengths and buffer addresses must be multiples of B.
  if (B > 1) {
    io::aligned_buffer m(3 * B, B);
    std::fill(m.span().begin(), m.span().end(), std::byte{0xAA});
    auto misaligned = [&](std::uint64_t off, std::span<std::byte> buf, const char* what) {
      INFO("misaligned " << what);
      CHECK(d.read(off, buf) == errc::misaligned);
      CHECK(all_equal(m.span(), std::byte{0xAA}));
      CHECK(d.write(off, buf) == errc::misaligned);
      CHECK(contents(d) == model);
    };
    misaligned(1, m.span().first(B), "offset");
    misaligned(B / 2, m.span().first(B), "offset by half a block");
    misaligned(0, m.span().first(B / 2), "length");
    misaligned(0, m.span().first(B + 1), "length over a block");
    misaligned(0, m.span().subspan(1, B), "buffer address");
  }

  // flush() keeps the contents.
  CHECK_FALSE(d.flush());
  CHECK(contents(d) == model);

  // Large transfers move every byte (several calls' worth of pages).
  {
    const std::size_t big = std::max<std::size_t>(256 * 1024, 64 * B);
    const std::uint64_t at = d.size();
    REQUIRE_FALSE(d.grow(at + big));
    io::aligned_buffer w(big, B), r(big, B);
    fill_pattern(w.span(), 3);
    REQUIRE_FALSE(d.write(at, w.span()));
    REQUIRE_FALSE(d.read(at, r.span()));
    CHECK(std::equal(w.span().begin(), w.span().end(), r.span().begin()));
    model.resize(at + big);
    std::copy(w.span().begin(), w.span().end(), model.begin() + static_cast<std::ptrdiff_t>(at));
  }

  // A seeded random workload agrees with the model.
  std::uint64_t s = 12345;
  auto next = [&s] {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return s >> 33;
  };
  for (int i = 0; i < 300; ++i) {
    const auto blocks = model.size() / B;
    const auto op = next() % 10;
    const auto first = next() % blocks;
    const auto count = 1 + next() % std::min<std::uint64_t>(8, blocks - first);
    io::aligned_buffer buf(count * B, B);
    if (op < 5) {
      fill_pattern(buf.span(), static_cast<std::uint32_t>(100 + i));
      REQUIRE_FALSE(d.write(first * B, buf.span()));
      std::copy(buf.span().begin(), buf.span().end(),
                model.begin() + static_cast<std::ptrdiff_t>(first * B));
    } else if (op < 8) {
      REQUIRE_FALSE(d.read(first * B, buf.span()));
      REQUIRE(std::equal(buf.span().begin(), buf.span().end(),
                         model.begin() + static_cast<std::ptrdiff_t>(first * B)));
    } else if (op == 8) {
      const auto n = model.size() + (next() % 4) * B;
      REQUIRE_FALSE(d.grow(n));
      model.resize(n, std::byte{0});
      REQUIRE(d.size() == n);
    } else {
      REQUIRE_FALSE(d.flush());
    }
  }
  CHECK(contents(d) == model);
}

// `d`'s next flush must fail; `d` must be at least one block long.
template <class D>
void check_fail_stop_law(D& d) {
  const std::size_t B = d.logical_block_size();
  io::aligned_buffer buf(B, B);
  const auto first = d.flush();
  REQUIRE(first);
  CHECK(first != errc::device_failed);
  CHECK(d.flush() == errc::device_failed);
  CHECK(d.read(0, buf.span()) == errc::device_failed);
  CHECK(d.write(0, buf.span()) == errc::device_failed);
  CHECK(d.grow(d.size() + 16 * B) == errc::device_failed);
  CHECK(d.flush() == errc::device_failed);
}

}  // namespace ktm::test
