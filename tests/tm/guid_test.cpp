// tests/tm/guid_test.cpp
#include <catch2/catch.hpp>

#include <array>
#include <random>
#include <utility>
#include <vector>
#include <set>
#include <unordered_set>

#include "ktm/guid.hpp"

using ktm::guid;

TEST_CASE("generated guids are distinct version-4 ids") {
  std::set<guid> seen;
  for (int i = 0; i < 1000; ++i) {
    const guid g = guid::generate();
    CHECK((g.bytes()[6] >> 4) == 4);
    CHECK((g.bytes()[8] & 0xc0) == 0x80);
    CHECK(seen.insert(g).second);
  }
}

TEST_CASE("a guid from random bits takes their bytes least significant first and sets version and variant") {
  std::mt19937_64 rng(7);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> cases = {{0, 0}, {~0ull, ~0ull}, {0x0123456789abcdefull, 0xfedcba9876543210ull}};
  for (int i = 0; i < 1000; ++i) cases.emplace_back(rng(), rng());
  for (const auto& [hi, lo] : cases) {
    guid::bytes_type want;
    for (std::size_t k = 0; k < 8; ++k) {
      want[k] = static_cast<std::uint8_t>(hi >> (8 * k));
      want[8 + k] = static_cast<std::uint8_t>(lo >> (8 * k));
    }
    want[6] = static_cast<std::uint8_t>((want[6] & 0x0f) | 0x40);
    want[8] = static_cast<std::uint8_t>((want[8] & 0x3f) | 0x80);
    INFO("hi " << hi << " lo " << lo);
    CHECK(guid::from_random_bits(hi, lo).bytes() == want);
  }
  CHECK(guid::from_random_bits(0x0123456789abcdefull, 0xfedcba9876543210ull).to_string() ==
        "efcdab89-6745-4301-9032-547698badcfe");
}

TEST_CASE("every bit of a generated guid but the six fixed ones is random") {
  // the version nibble (byte 6, high half) and the variant's two bits
  // (byte 8, top) are fixed; each of the other 122 bits takes both values
  std::array<int, 128> ones{};
  const int n = 2000;
  for (int i = 0; i < n; ++i) {
    const guid g = guid::generate();
    for (int b = 0; b < 128; ++b) ones[static_cast<std::size_t>(b)] += (g.bytes()[static_cast<std::size_t>(b / 8)] >> (b % 8)) & 1;
  }
  int random_bits = 0;
  for (int b = 0; b < 128; ++b) {
    const bool fixed = (b / 8 == 6 && b % 8 >= 4) || (b / 8 == 8 && b % 8 >= 6);
    const int k = ones[static_cast<std::size_t>(b)];
    if (fixed) {
      CHECK((k == 0 || k == n));
    } else {
      INFO("bit " << b << " was one " << k << " times of " << n);
      CHECK(k > n / 4);
      CHECK(k < 3 * n / 4);
      ++random_bits;
    }
  }
  CHECK(random_bits == 122);
}

TEST_CASE("a guid survives a round trip through its text form") {
  const guid g = guid::generate();
  const std::string s = g.to_string();
  REQUIRE(s.size() == 36);
  CHECK(s[8] == '-');
  CHECK(s[23] == '-');
  CHECK(guid::from_string(s) == g);
}

TEST_CASE("text that is not a guid does not parse") {
  CHECK(!guid::from_string(""));
  CHECK(!guid::from_string("1b4e28ba-2fa1-11d2-883f-0016d3cca42"));    // short
  CHECK(!guid::from_string("1b4e28ba+2fa1-11d2-883f-0016d3cca427"));   // separator
  CHECK(!guid::from_string("1b4e28ba-2fa1-11d2-883f-0016d3cca42g"));   // digit
  REQUIRE(guid::from_string("1B4E28BA-2FA1-11D2-883F-0016D3CCA427"));
  CHECK(guid::from_string("1B4E28BA-2FA1-11D2-883F-0016D3CCA427")->to_string() ==
        "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
}

TEST_CASE("guids compare bytewise and hash consistently") {
  const guid nil;
  CHECK(nil.is_nil());
  const guid a = *guid::from_string("00000000-0000-0000-0000-000000000001");
  const guid b = *guid::from_string("00000000-0000-0000-0000-000000000002");
  CHECK(a < b);
  CHECK(a != b);
  CHECK(nil < a);
  CHECK(std::hash<guid>{}(a) == std::hash<guid>{}(*guid::from_string(a.to_string())));
  std::unordered_set<guid> set{a, b, a};
  CHECK(set.size() == 2);
}
