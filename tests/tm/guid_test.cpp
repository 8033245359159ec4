// tests/tm/guid_test.cpp
#include <catch2/catch.hpp>

#include <array>
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
